"""`python manage.py program_dry_run SLUG --out FILE.csv` — preview a program as of now (FORMATS.md)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from claims.engine import EngineNeedsPostgreSQL
from claims.models import Program
from claims.parameters import ParameterError
from claims.selectors import dry_run_write_csv, program_preview


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
        try:
            entitlements = program_preview(program=program)
        except ParameterError as exc:
            raise CommandError(f"program {program.slug} has invalid parameters: {exc}") from None
        except EngineNeedsPostgreSQL as exc:
            raise CommandError(str(exc)) from None
        with open(options["out"], "w", encoding="utf-8", newline="") as out:
            rows = dry_run_write_csv(entitlements, out)
        eligible = sum(1 for e in entitlements if e.eligible)
        total = sum(e.amount_jpy for e in entitlements)
        self.stdout.write(f"{program.slug}: {rows} subjects, {eligible} eligible, ¥{total} -> {options['out']}")
