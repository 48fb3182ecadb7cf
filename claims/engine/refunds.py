"""The refund policies; the subject is a charge id and every refund goes back to the payer.

Request-driven policies (`autorenew-60day`, `cooling-off-7day`, `service-failure-prorata`,
`company-termination`) read the official submission per charge and the charge's facts in ONE
statement (usage and first-payment checks are correlated EXISTS sub-queries, not a query per row).
`overpayment` detects duplicates with one window-function statement and needs no application.

Every line is integer yen; where a rule divides, the docstring of its function names the rounding
(always DOWN, 切り捨て, via integer floor division of non-negative numbers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence

from claims.engine.common import (
    CHARGE_COLUMNS,
    OFFICIAL_SUBMISSIONS_SQL,
    ChargeFacts,
    OfficialSubmission,
    charge_facts,
    deadline_end,
    fetch_all,
    jst_days_between,
    refund_entitlement,
    scope_param,
    stream_all,
)
from claims.engine.types import Entitlement, Line, Reason
from claims.models import Program
from claims.parameters import (
    AutorenewParameters,
    CompanyTerminationParameters,
    CoolingOffParameters,
    OverpaymentParameters,
    ServiceFailureParameters,
)
from support_portal.core.business_days import BusinessCalendar, jst_date

REQUESTS_SQL = f"""
WITH official AS ({OFFICIAL_SUBMISSIONS_SQL})
SELECT o.subject, {CHARGE_COLUMNS},
       -- the first non-promotional payment of the subscription (cooling-off's "first payment")
       NOT EXISTS (
           SELECT 1 FROM customers_charge e
            WHERE e.subscription_id = c.subscription_id AND NOT e.promotional
              AND (e.charged_at, e.charge_id) < (c.charged_at, c.charge_id)
       ) AS is_first_payment,
       -- the customer used the service between the payment and the request
       EXISTS (
           SELECT 1 FROM customers_usageevent u
            WHERE (u.subscription_id = s.subscription_id
                   OR (u.subscription_id IS NULL AND u.customer_id = s.customer_id))
              AND u.used_at >= c.charged_at AND u.used_at <= o.submitted_at
       ) AS used_since_payment,
       s.auto_renew,
       o.submission_id, o.submitted_at, o.on_time, o.payout_method, o.reason, o.fault, o.effective_at
  FROM official o
  LEFT JOIN customers_charge c ON c.charge_id = o.subject
  LEFT JOIN customers_subscription s ON s.subscription_id = c.subscription_id
  LEFT JOIN customers_plan p ON p.plan_code = s.plan_id
"""

RULE_AUTORENEW = "autorenew-60day-full-refund"
RULE_COOLING_OFF_FIRST = "cooling-off-first-payment"
RULE_COOLING_OFF_LATER = "cooling-off-later-cycle"
RULE_COOLING_OFF_FEE = "cooling-off-processing-fee"
RULE_PRORATA = "service-failure-prorata"
RULE_LONG_LICENCE = "service-failure-long-licence"
RULE_PENALTY = "service-failure-penalty"
RULE_TERMINATION_BASE = "company-termination-unused"
RULE_TERMINATION_FEE = "company-termination-fee"
RULE_OVERPAYMENT = "overpayment-refund"
RULE_OVERPAYMENT_COST = "overpayment-member-refund-cost"


def _charge_key(charge: ChargeFacts) -> str:
    return f"charge:{charge.charge_id}"


def _requests(
    program: Program, calendar: BusinessCalendar, scope: Sequence[str] | None
) -> Iterator[tuple[Entitlement, ChargeFacts | None, OfficialSubmission, bool, bool, bool]]:
    """Each request with its charge's facts and its official submission, streamed from one statement
    (a server-side cursor): memory holds one fetch, not every request of a national program."""
    params = {"program": program.slug, "deadline": deadline_end(program), "scope": scope_param(scope)}
    for row in stream_all(REQUESTS_SQL, params):
        subject = row[0]
        charge = charge_facts(row[1:12])
        is_first, used, auto_renew = row[12], row[13], row[14]
        submission = OfficialSubmission(row[15], subject, *row[16:22])
        entitlement = refund_entitlement(
            subject=subject,
            charge=charge,
            submission=submission,
            program=program,
            calendar=calendar,
            requested_at=submission.submitted_at,
        )
        if entitlement.eligible and not submission.on_time:
            entitlement.eligible, entitlement.reason = False, Reason.LATE_APPLICATION
        yield entitlement, charge, submission, bool(is_first), bool(used), bool(auto_renew)


def _not_eligible(entitlement: Entitlement, reason: str) -> Entitlement:
    entitlement.eligible = False
    entitlement.reason = reason
    entitlement.lines = []
    return entitlement


MERGE_OUTCOMES_SQL = """
SELECT c.subject, m.outcome
  FROM claims_mergeoffer m JOIN claims_claim c ON c.id = m.claim_id
 WHERE c.program_id = %(program)s
"""

MERGE_REASONS = {"merged": Reason.MERGED, "declined": Reason.MERGE_DECLINED}


def compute_autorenew(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> Iterator[Entitlement]:
    """Full refund of a renewal charge requested within `window_days` JST days of the charge (inclusive).

    No division, no rounding. A reason from `allowed_reasons` is required (`reason_required`). A claim
    whose merge offer ended `merged` or `declined` (claims.models.MergeOffer) is not refunded.
    A charge counts as a renewal when the subscription auto-renews or an earlier payment exists.
    """
    params = program.typed_parameters()
    assert isinstance(params, AutorenewParameters)
    # A recorded merge offer that ended in a merge or a withdrawal: nothing to refund (one query).
    merge_outcomes = dict(fetch_all(MERGE_OUTCOMES_SQL, {"program": program.pk})) if program.pk else {}
    for entitlement, charge, submission, is_first, _used, auto_renew in _requests(program, calendar, scope):
        if entitlement.eligible and charge is not None:
            if merge_outcomes.get(entitlement.subject) in MERGE_REASONS:
                _not_eligible(entitlement, MERGE_REASONS[merge_outcomes[entitlement.subject]])
            elif not auto_renew and is_first:
                _not_eligible(entitlement, Reason.NOT_COVERED)
            elif jst_days_between(charge.charged_at, submission.submitted_at) > params.window_days:
                _not_eligible(entitlement, Reason.OUTSIDE_WINDOW)
            elif submission.reason not in params.allowed_reasons:
                _not_eligible(entitlement, Reason.REASON_REQUIRED)
            else:
                entitlement.lines = [
                    Line(f"refund {charge.charge_id}", charge.amount_jpy, RULE_AUTORENEW, _charge_key(charge))
                ]
        yield entitlement


def compute_cooling_off(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> Iterator[Entitlement]:
    """Withdrawal within `window_days` JST calendar days of a payment (request date <= charge date + 7).

    First payment: full refund, no usage since the payment required. Later cycle: the payment minus
    `processing_fee_jpy` (floored at 0; a fee line is negative), "no usage" required when
    `later_cycle_requires_no_usage`. No division, no rounding.
    """
    params = program.typed_parameters()
    assert isinstance(params, CoolingOffParameters)
    for entitlement, charge, submission, is_first, used, _auto in _requests(program, calendar, scope):
        if entitlement.eligible and charge is not None:
            if jst_days_between(charge.charged_at, submission.submitted_at) > params.window_days:
                _not_eligible(entitlement, Reason.OUTSIDE_WINDOW)
            elif used and (is_first or params.later_cycle_requires_no_usage):
                _not_eligible(entitlement, Reason.USED)
            elif is_first:
                entitlement.lines = [
                    Line(f"refund {charge.charge_id}", charge.amount_jpy, RULE_COOLING_OFF_FIRST, _charge_key(charge))
                ]
            else:
                fee = min(params.processing_fee_jpy, charge.amount_jpy)
                entitlement.lines = [
                    Line(f"refund {charge.charge_id}", charge.amount_jpy, RULE_COOLING_OFF_LATER, _charge_key(charge))
                ]
                if fee:
                    entitlement.lines.append(Line("processing fee", -fee, RULE_COOLING_OFF_FEE))
                if charge.amount_jpy - fee <= 0:
                    _not_eligible(entitlement, Reason.NOTHING_DUE)
        yield entitlement


def add_months(day: dt.date, months: int) -> dt.date:
    """`day` moved by whole months, clamped to the month's last day (1/31 + 1 month = 2/28 or 2/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = index // 12, index % 12 + 1
    for candidate_day in range(day.day, 27, -1):
        try:
            return dt.date(year, month, candidate_day)
        except ValueError:
            continue
    return dt.date(year, month, min(day.day, 28))


def months_started(period_start: dt.date, stop: dt.date) -> int:
    """Months of a licence started before `stop` (every started month counts; 0 when stop <= start)."""
    months = 0
    while add_months(period_start, months) < stop:
        months += 1
    return months


def unused_value(charge: ChargeFacts, stopped_on: dt.date, *, cycle_max_days: int) -> tuple[int, str, str]:
    """(refund, label, rule) of the unused part of a charge when the service stopped on `stopped_on`.

    Cycle (period <= cycle_max_days): amount * remaining_days // period_days — rounded DOWN; remaining =
    days from `stopped_on` to the exclusive period end, the whole amount when `stopped_on` precedes the
    period, 0 when it is at or after the end.
    Long licence: max(0, amount - months_started * monthly list price) — integers, no rounding.
    """
    period_days = (charge.period_end - charge.period_start).days
    if period_days <= cycle_max_days:
        remaining = (charge.period_end - max(stopped_on, charge.period_start)).days
        remaining = max(0, min(remaining, period_days))
        return (
            charge.amount_jpy * remaining // period_days,
            f"{charge.charge_id} unused {remaining}/{period_days} days",
            RULE_PRORATA,
        )
    used_months = months_started(charge.period_start, stopped_on)
    return (
        max(0, charge.amount_jpy - used_months * charge.monthly_fee_jpy),
        f"{charge.charge_id} paid {charge.amount_jpy} - {used_months} months x {charge.monthly_fee_jpy}",
        RULE_LONG_LICENCE,
    )


def _stopped_on(submission: OfficialSubmission) -> dt.date:
    # E is the submission's effective_at; a request without it is taken as effective when it arrived.
    return jst_date(submission.effective_at or submission.submitted_at)


def compute_service_failure(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> Iterator[Entitlement]:
    """Pro-rata refund of the undelivered part plus a penalty when the company is at fault.

    Penalty = refund * penalty_percent // 100 — rounded DOWN, a separate line.
    """
    params = program.typed_parameters()
    assert isinstance(params, ServiceFailureParameters)
    for entitlement, charge, submission, _first, _used, _auto in _requests(program, calendar, scope):
        if entitlement.eligible and charge is not None:
            refund, label, rule = unused_value(charge, _stopped_on(submission), cycle_max_days=params.cycle_max_days)
            if refund <= 0:
                _not_eligible(entitlement, Reason.OUTSIDE_WINDOW)
            else:
                entitlement.lines = [Line(label, refund, rule, _charge_key(charge))]
                fault = submission.fault or params.default_fault
                penalty = refund * params.penalty_percent // 100
                if fault == "company" and penalty > 0:
                    entitlement.lines.append(Line(f"penalty {params.penalty_percent}%", penalty, RULE_PENALTY))
        yield entitlement


def compute_company_termination(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> Iterator[Entitlement]:
    """Unused part at the termination date minus fee = max(base * fee_percent // 100, minimum_fee_jpy).

    The base is `unused_value` (rounded DOWN); the fee's percentage is rounded DOWN; the fee line is
    capped at the base so the refund is max(0, base - fee).
    """
    params = program.typed_parameters()
    assert isinstance(params, CompanyTerminationParameters)
    for entitlement, charge, submission, _first, _used, _auto in _requests(program, calendar, scope):
        if entitlement.eligible and charge is not None:
            base, label, _rule = unused_value(charge, _stopped_on(submission), cycle_max_days=params.cycle_max_days)
            fee = max(base * params.fee_percent // 100, params.minimum_fee_jpy)
            if base - fee <= 0:
                _not_eligible(entitlement, Reason.NOTHING_DUE)
            else:
                entitlement.lines = [
                    Line(label, base, RULE_TERMINATION_BASE, _charge_key(charge)),
                    Line("termination fee", -fee, RULE_TERMINATION_FEE),
                ]
        yield entitlement


OVERPAID_SQL = f"""
WITH ranked AS (
    SELECT c.charge_id,
           row_number() OVER (PARTITION BY c.subscription_id, c.period_start, c.period_end
                              ORDER BY c.charged_at, c.charge_id) AS n
      FROM customers_charge c
     WHERE NOT c.promotional
       AND (c.subscription_id, c.period_start, c.period_end) IN (
             SELECT subscription_id, period_start, period_end
               FROM customers_charge
              WHERE NOT promotional
                AND (%(scope)s::text[] IS NULL OR subscription_id IN (
                      SELECT subscription_id FROM customers_charge WHERE charge_id = ANY(%(scope)s::text[])))
              GROUP BY subscription_id, period_start, period_end
             HAVING count(*) > 1)
),
subjects AS (
    SELECT charge_id AS subject, true AS overpaid FROM ranked WHERE n > 1
    UNION ALL
    SELECT DISTINCT subject, false FROM claims_submission
     WHERE program_id = %(program)s AND subject NOT IN (SELECT charge_id FROM ranked WHERE n > 1)
),
official AS ({OFFICIAL_SUBMISSIONS_SQL})
SELECT x.subject, {CHARGE_COLUMNS}, x.overpaid,
       o.submission_id, o.submitted_at, o.on_time, o.payout_method, o.reason, o.fault, o.effective_at
  FROM (SELECT * FROM subjects WHERE %(scope)s::text[] IS NULL OR subject = ANY(%(scope)s::text[])) x
  LEFT JOIN official o ON o.subject = x.subject
  LEFT JOIN customers_charge c ON c.charge_id = x.subject
  LEFT JOIN customers_subscription s ON s.subscription_id = c.subscription_id
  LEFT JOIN customers_plan p ON p.plan_code = s.plan_id
"""


def compute_overpayment(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> Iterator[Entitlement]:
    """Every charge of a subscription after the first for the same service period is overpaid.

    No application needed (the company refunds on its own initiative; the request date for the
    provider due date is the run's date). Member fault (submission's `fault`, else `default_fault`):
    minus `member_fault_refund_cost_jpy`, floored at 0. No division, no rounding.
    """
    params = program.typed_parameters()
    assert isinstance(params, OverpaymentParameters)
    query = {"program": program.slug, "deadline": deadline_end(program), "scope": scope_param(scope)}
    for row in stream_all(OVERPAID_SQL, query):
        subject, charge, overpaid = row[0], charge_facts(row[1:12]), row[12]
        submission = OfficialSubmission(row[13], subject, *row[14:20]) if row[13] is not None else None
        entitlement = refund_entitlement(
            subject=subject,
            charge=charge,
            submission=submission,
            program=program,
            calendar=calendar,
            requested_at=submission.submitted_at if submission else as_of,
            requested_by_run=submission is None,
        )
        if entitlement.eligible and charge is not None:
            if not overpaid:
                _not_eligible(entitlement, Reason.NOT_COVERED)
            else:
                entitlement.lines = [
                    Line(f"overpaid {charge.charge_id}", charge.amount_jpy, RULE_OVERPAYMENT, _charge_key(charge))
                ]
                fault = (submission.fault if submission else "") or params.default_fault
                cost = min(params.member_fault_refund_cost_jpy, charge.amount_jpy)
                if fault == "member" and cost:
                    entitlement.lines.append(Line("refund cost (member fault)", -cost, RULE_OVERPAYMENT_COST))
                if charge.amount_jpy - (cost if fault == "member" else 0) <= 0:
                    _not_eligible(entitlement, Reason.NOTHING_DUE)
        yield entitlement


POLICIES: dict[str, Callable[..., Iterable[Entitlement]]] = {
    "autorenew-60day": compute_autorenew,
    "cooling-off-7day": compute_cooling_off,
    "service-failure-prorata": compute_service_failure,
    "company-termination": compute_company_termination,
    "overpayment": compute_overpayment,
}
