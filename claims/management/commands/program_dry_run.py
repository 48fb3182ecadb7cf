"""`python manage.py program_dry_run SLUG --out FILE.csv` — preview a program as of now (FORMATS.md)."""

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from claims.engine import EngineNeedsPostgreSQL
from claims.models import Program
from claims.parameters import ParameterError
from claims.selectors import program_dry_run_write


class Command(BaseCommand):
    help = "Computes every claim of a program as of now and writes the preview CSV; changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--out", required=True, help="CSV file to write (UTF-8)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            program = Program.objects.get(slug=options["slug"])
        except Program.DoesNotExist:
            raise CommandError(f"no program with slug {options['slug']!r}") from None
        # Written beside the target and renamed at the end: a refused or failed preview leaves no file.
        target = Path(options["out"])
        partial = target.with_name(target.name + ".partial")
        try:
            with partial.open("w", encoding="utf-8", newline="") as out:
                totals = program_dry_run_write(program=program, out=out)
        except BaseException as exc:
            partial.unlink(missing_ok=True)
            if isinstance(exc, ParameterError):
                raise CommandError(f"program {program.slug} has invalid parameters: {exc}") from None
            if isinstance(exc, EngineNeedsPostgreSQL):
                raise CommandError(str(exc)) from None
            raise
        partial.replace(target)
        self.stdout.write(
            f"{program.slug}: {totals.subjects} subjects, {totals.eligible} eligible, ¥{totals.amount_jpy}"
            f" -> {options['out']}"
        )
