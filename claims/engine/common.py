"""Building blocks every policy shares: official submissions, deadlines, refund rules, payout choice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connection

from claims.engine.types import APP_STORE_INSTRUCTIONS, Entitlement, Reason
from claims.models import ApplicationRule, Program
from support_portal.core.business_days import BusinessCalendar, end_of_day_jst, jst_date
from support_portal.customers.models import PaymentMethod

# Submission reasons that mean "not the customer's own payment": no refund, escalate (SPEC).
FRAUD_REASONS = frozenset({"fraud", "stolen_payment_method"})
# The refund request must reach the payment provider within this many business days (SPEC).
PROVIDER_REQUEST_BUSINESS_DAYS = 3
# The run's TEMP tables (claims.engine.staging): one row per subject, one per line.
STAGE_ENTITLEMENTS = "claims_stage_entitlement"
STAGE_LINES = "claims_stage_line"


@dataclasses.dataclass(frozen=True)
class OfficialSubmission:
    """The submission that counts for a subject: the latest on-time one, else the latest late one."""

    submission_id: str
    subject: str
    submitted_at: dt.datetime
    on_time: bool
    payout_method: str
    reason: str
    fault: str
    effective_at: dt.datetime | None


def fetch_all(sql: str, params: dict[str, Any] | Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


STREAM_FETCH_ROWS = 5_000


def stream_all(sql: str, params: dict[str, Any] | Sequence[Any]) -> Iterator[tuple[Any, ...]]:
    """The rows of `sql` through a server-side cursor, `STREAM_FETCH_ROWS` at a time (inside the caller's
    transaction: a run's or a preview's); memory holds one fetch. Between fetches the connection is free
    for other statements (the stage's COPY)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(STREAM_FETCH_ROWS):
            yield from rows


SCOPE_MARKER = re.compile(r"/\*in_scope:([\w.]+)\*/")


def scoped_sql(sql: str, *, scoped: bool) -> str:
    """`sql` with each `/*in_scope:column*/` marker made a filter on claims_stage_scope, or removed."""
    return SCOPE_MARKER.sub(
        lambda match: f"AND {match[1]} IN (SELECT subject FROM claims_stage_scope)" if scoped else "", sql
    )


def scope_param(scope: Sequence[str] | None) -> list[str] | None:
    return None if scope is None else list(scope)


def deadline_end(program: Program) -> dt.datetime | None:
    """ "Apply by D" means until D 23:59:59(.999999) JST."""
    return end_of_day_jst(program.application_deadline) if program.application_deadline else None


OFFICIAL_SUBMISSIONS_SQL = """
SELECT DISTINCT ON (subject)
       subject, submission_id, submitted_at,
       (%(deadline)s::timestamptz IS NULL OR submitted_at <= %(deadline)s::timestamptz) AS on_time,
       payout_method, reason, fault, effective_at
  FROM claims_submission
 WHERE program_id = %(program)s AND (%(scope)s::text[] IS NULL OR subject = ANY(%(scope)s::text[]))
 ORDER BY subject,
          (%(deadline)s::timestamptz IS NULL OR submitted_at <= %(deadline)s::timestamptz) DESC,
          submitted_at DESC, submission_id DESC
"""


def official_submissions(program: Program, scope: Sequence[str] | None = None) -> dict[str, OfficialSubmission]:
    """Per subject, the official submission, in one query.

    All submissions are kept and the latest is official (seed 000: 最新の情報を正式なお申込み). A
    submission after the deadline is not an application, so a late re-submission does not cancel an
    on-time one: the official submission is the latest on-time one; only when there is none is the
    latest late one reported (its subject then gets `late_application`).
    """
    rows = fetch_all(
        OFFICIAL_SUBMISSIONS_SQL,
        {"deadline": deadline_end(program), "program": program.slug, "scope": scope_param(scope)},
    )
    return {row[0]: OfficialSubmission(row[1], row[0], row[2], row[3], row[4], row[5], row[6], row[7]) for row in rows}


def application_reason(submission: OfficialSubmission | None, *, program: Program, required: bool | None = None) -> str:
    """Empty when the application condition holds, else `no_application` or `late_application`."""
    if required is None:
        required = program.application_rule == ApplicationRule.REQUIRED
    if not required:
        return ""
    if submission is None:
        return Reason.NO_APPLICATION
    if not submission.on_time:
        return Reason.LATE_APPLICATION
    return ""


def payout_method_for(program: Program, submission: OfficialSubmission | None, *, refund: bool = False) -> str:
    """The method the customer chose when the program allows it, else the program's default.

    Refunds always go back through the original payment method (SPEC "Rules for every refund").
    """
    if refund:
        return "original_method"
    chosen = submission.payout_method if submission else ""
    if chosen and chosen in (program.payout_methods or []):
        return chosen
    return program.default_payout_method


@dataclasses.dataclass(frozen=True)
class ChargeFacts:
    """A charge as the refund rules see it (one row of a set-based query)."""

    charge_id: str
    amount_jpy: int
    charged_at: dt.datetime
    period_start: dt.date
    period_end: dt.date
    payment_method: str
    promotional: bool
    subscription_id: str
    customer_id: str
    payer_id: str
    monthly_fee_jpy: int


def refund_blocker(charge: ChargeFacts | None, submission: OfficialSubmission | None) -> str:
    """The rules for every refund, checked before any policy rule; empty when none blocks.

    Order: unknown charge, suspected fraud, app store (the store refunds), promotional/free.
    """
    if charge is None:
        return Reason.NO_CHARGE
    if submission is not None and submission.reason in FRAUD_REASONS:
        return Reason.FRAUD
    if charge.payment_method in PaymentMethod.app_store_methods():
        return Reason.APP_STORE
    if charge.promotional or charge.amount_jpy == 0:
        return Reason.PROMOTIONAL
    return ""


def refund_entitlement(
    *,
    subject: str,
    charge: ChargeFacts | None,
    submission: OfficialSubmission | None,
    program: Program,
    calendar: BusinessCalendar,
    requested_at: dt.datetime,
    requested_by_run: bool = False,
) -> Entitlement:
    """A refund claim skeleton: payer as payee, provider due date, and any blocking rule applied.

    `requested_by_run`: the request date is the run's own (no application): the due date moves with the
    day of the run, and `changes_on` names the first later JST date that gives another due date.
    """
    blocker = refund_blocker(charge, submission)
    entitlement = Entitlement(
        subject=subject,
        customer_id=charge.customer_id if charge else None,
        # When the payer differs from the user, the payer is refunded (seed 003).
        payee_id=charge.payer_id if charge else None,
        eligible=not blocker,
        reason=blocker,
        official_submission_id=submission.submission_id if submission else None,
        payout_method=payout_method_for(program, submission, refund=True),
        provider_request_due_on=calendar.due_date(requested_at, PROVIDER_REQUEST_BUSINESS_DAYS),
    )
    if requested_by_run:
        entitlement.changes_on = next_due_date_change(calendar, requested_at)
    if blocker == Reason.APP_STORE and charge is not None:
        entitlement.payout_method = ""
        entitlement.note = APP_STORE_INSTRUCTIONS.get(charge.payment_method, "")
    return entitlement


CHARGE_COLUMNS = """
       c.charge_id, c.amount_jpy, c.charged_at, c.period_start, c.period_end,
       COALESCE(NULLIF(c.payment_method, ''), s.payment_method), c.promotional,
       s.subscription_id, s.customer_id, COALESCE(s.payer_id, s.customer_id), p.monthly_fee_jpy
"""


def charge_facts(row: Sequence[Any]) -> ChargeFacts | None:
    """ChargeFacts from the CHARGE_COLUMNS part of a row (None when the charge was not found)."""
    if row[0] is None:
        return None
    return ChargeFacts(*row[:11])


def next_due_date_change(calendar: BusinessCalendar, requested_at: dt.datetime) -> dt.date:
    """The first JST date after `requested_at`'s on which a request gets another provider due date."""
    day = jst_date(requested_at)
    due = calendar.add_business_days(day, PROVIDER_REQUEST_BUSINESS_DAYS)
    later = day + dt.timedelta(days=1)
    while calendar.add_business_days(later, PROVIDER_REQUEST_BUSINESS_DAYS) == due:
        later += dt.timedelta(days=1)
    return later


def jst_days_between(earlier: dt.datetime, later: dt.datetime) -> int:
    """Calendar days between the JST dates of two instants (a request 7 JST days later gives 7)."""
    return (jst_date(later) - jst_date(earlier)).days
