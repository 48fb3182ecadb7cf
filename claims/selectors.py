"""Reads of the claims app that matter: the preview (dry run) and its CSV form (FORMATS.md)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TextIO

from django.db import connection, transaction
from django.utils import timezone

from claims.engine import Entitlement, compute_entitlements, require_postgresql, staging
from claims.models import Claim, Program
from support_portal.core.business_days import BusinessCalendar, business_calendar
from support_portal.core.csv_export import CsvDictWriter, CsvWriter

DRY_RUN_COLUMNS = ["subject", "eligible", "amount_jpy", "payee", "lines", "reason"]


def program_preview(
    *, program: Program, as_of: dt.datetime | None = None, calendar: BusinessCalendar | None = None
) -> list[Entitlement]:
    """Every claim the program would have as of `as_of` (default now); reads only.

    Outside any transaction it runs in a READ ONLY one, so nothing can be written even by mistake.
    """
    require_postgresql()
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION READ ONLY")
        return compute_entitlements(
            program=program, as_of=as_of or timezone.now(), calendar=calendar or business_calendar()
        )


def dry_run_row(entitlement: Entitlement) -> dict[str, str]:
    """One CSV row. `lines` lists the paid lines `label=amount` joined by `;` (sum == amount_jpy).

    `reason` is the not-eligible code; for an eligible subject some of whose lines another program
    already covers, it names that (`already_compensated:<slug>`) so the preview shows the exclusion.
    """
    paid = [line for line in entitlement.lines if not line.excluded_reason] if entitlement.eligible else []
    excluded = [line.excluded_reason for line in entitlement.lines if line.excluded_reason]
    reason = entitlement.reason or (excluded[0] if excluded else "")
    return {
        "subject": entitlement.subject,
        "eligible": "true" if entitlement.eligible else "false",
        "amount_jpy": str(entitlement.amount_jpy),
        "payee": entitlement.payee_id or "",
        "lines": ";".join(f"{line.label}={line.amount_jpy}" for line in paid),
        "reason": reason,
    }


def dry_run_write_csv(entitlements: list[Entitlement], out: TextIO) -> int:
    writer = CsvDictWriter(out, fieldnames=DRY_RUN_COLUMNS)
    writer.writeheader()
    for entitlement in entitlements:
        writer.writerow(dry_run_row(entitlement))
    return len(entitlements)


@dataclass(frozen=True)
class DryRunTotals:
    subjects: int
    eligible: int
    amount_jpy: int


def program_dry_run_write(
    *, program: Program, out: TextIO, as_of: dt.datetime | None = None, calendar: BusinessCalendar | None = None
) -> DryRunTotals:
    """Writes the dry-run CSV (FORMATS.md) of the program as of `as_of` (default now); changes nothing.

    Policies with a SQL stage (login-outage-2024) are computed into the run's TEMP stage tables, excluded
    against other programs' grants exactly as a run would, and streamed out through a server-side cursor:
    no Python object per subject, so memory stays flat at any population. The transaction is rolled back
    (TEMP tables included). Other policies go through `program_preview`.
    """
    as_of = as_of or timezone.now()
    calendar = calendar or business_calendar()
    if program.policy not in staging.SQL_STAGERS:
        entitlements = program_preview(program=program, as_of=as_of, calendar=calendar)
        rows = dry_run_write_csv(entitlements, out)
        eligible = [e for e in entitlements if e.eligible]
        return DryRunTotals(subjects=rows, eligible=len(eligible), amount_jpy=sum(e.amount_jpy for e in eligible))
    require_postgresql()
    writer = CsvWriter(out)
    writer.writerow(DRY_RUN_COLUMNS)
    subjects = eligible_count = amount = 0
    with transaction.atomic():
        staging.stage(program=program, as_of=as_of, calendar=calendar)
        staging.exclude_held_elsewhere(program)
        with connection.connection.cursor(name="claims_dry_run") as cursor:
            cursor.itersize = 10_000
            cursor.execute(staging.DRY_RUN_ROWS_SQL)
            for subject, is_eligible, amount_jpy, payee, lines, reason in cursor:
                writer.writerow([subject, is_eligible, amount_jpy, payee, lines, reason])
                subjects += 1
                if is_eligible == "true":
                    eligible_count += 1
                    amount += amount_jpy
        transaction.set_rollback(True)
    return DryRunTotals(subjects=subjects, eligible=eligible_count, amount_jpy=amount)


@dataclass(frozen=True)
class ClaimStatusView:
    """What an integration may read of a claim: where it stands and how much, nothing personal."""

    program: str
    subject: str
    status: str
    eligible: bool
    reason: str
    amount_jpy: int
    approved_amount_jpy: int | None
    computed_at: dt.datetime


def claim_status_by_subject(*, program_slug: str, subject: str) -> ClaimStatusView | None:
    """The claim of `subject` in the program (the (program, subject) UNIQUE index), or None."""
    row = (
        Claim.objects.filter(program__slug=program_slug, subject=subject)
        .values_list("status", "eligible", "reason", "amount_jpy", "approved_amount_jpy", "computed_at")
        .first()
    )
    if row is None:
        return None
    status, eligible, reason, amount, approved, computed_at = row
    return ClaimStatusView(program_slug, subject, status, eligible, reason, amount, approved, computed_at)


def program_by_slug(*, slug: str) -> Program | None:
    return Program.objects.filter(slug=slug).first()
