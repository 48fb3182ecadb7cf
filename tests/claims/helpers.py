import datetime as dt
import threading
from collections.abc import Callable

from django.db import connection

from claims.engine import Entitlement
from claims.models import Program
from claims.selectors import dry_run_row, program_preview
from support_portal.core.business_days import BusinessCalendar
from tests.claims.factories import jst

AS_OF = jst(2025, 2, 10, 9)


def preview(program: Program, calendar: BusinessCalendar, as_of: dt.datetime = AS_OF) -> dict[str, Entitlement]:
    return {e.subject: e for e in program_preview(program=program, as_of=as_of, calendar=calendar)}


def rows(program: Program, calendar: BusinessCalendar, as_of: dt.datetime = AS_OF) -> dict[str, dict[str, str]]:
    """subject -> the dry-run CSV row (FORMATS.md)."""
    return {s: dry_run_row(e) for s, e in preview(program, calendar, as_of).items()}


def on_another_connection(work: Callable[[], object]) -> None:
    """Runs `work` to the end in a thread, on that thread's own database connection (committed there)."""

    def target() -> None:
        try:
            work()
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
