"""`python manage.py program_run SLUG` — run a program now: writes its Claims, ClaimLines and Grants.

The same `claims.services.program_run` as the admin's "Run" button, without a queued ProgramRun row or
a Celery worker (operations and benchmarks). Idempotent: a second run over unchanged data writes nothing
(and, for login-outage-2024, skips computing when no input changed: `--recompute` computes anyway).
"""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from claims.engine import EngineNeedsPostgreSQL
from claims.models import Program
from claims.parameters import ParameterError
from claims.services import ProgramNotRunnable, program_run


class Command(BaseCommand):
    help = "Computes every claim of a program and writes Claims, ClaimLines and Grants (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument(
            "--recompute",
            action="store_true",
            help="compute every claim even when no input changed since the last run (claims.inputs)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            program = Program.objects.get(slug=options["slug"])
        except Program.DoesNotExist:
            raise CommandError(f"no program with slug {options['slug']!r}") from None
        try:
            result = program_run(program=program, actor=None, recompute=options["recompute"])
        except (ParameterError, EngineNeedsPostgreSQL, ProgramNotRunnable) as exc:
            raise CommandError(f"program {program.slug}: {exc}") from None
        self.stdout.write(
            f"{program.slug}: total={result.total} created={result.created} updated={result.updated} "
            f"sent_to_rereview={result.sent_to_rereview} unchanged={result.unchanged}"
        )
        self.stdout.write("steps: " + " ".join(f"{name}={seconds:.2f}s" for name, seconds in result.timings.items()))
