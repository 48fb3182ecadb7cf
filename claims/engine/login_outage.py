"""`login-outage-2024`: monthly fees from the plan's first covered month to the month of first login.

Rule `login-outage-month` (one line per subscription and covered month):
    amount = sum of the subscription's non-promotional charges whose service period starts in that
    JST month. Charges are whole yen, so no rounding happens (a sum of integers is exact).
    Last covered month = JST month of the first login at or after `restored_at`, or `cap_month` when
    there is none or it is later. Covered months = plan's first covered month .. last, inclusive
    (none when the first login came before the first covered month).

Set-based: one statement computes every customer's lines (first login per customer via GROUP BY/min,
joined to subscriptions of covered plans and their charges, aggregated per customer); one more fetches
the official submissions; a third explains the (few) submitters without lines.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import connection

from claims.engine.common import (
    STAGE_ENTITLEMENTS,
    STAGE_LINES,
    OfficialSubmission,
    application_reason,
    deadline_end,
    fetch_all,
    official_submissions,
    payout_method_for,
    scope_param,
    scoped_sql,
)
from claims.engine.types import Entitlement, Line, Reason
from claims.models import ApplicationRule, Program
from claims.parameters import LoginOutageParameters
from support_portal.core.business_days import BusinessCalendar

RULE = "login-outage-month"

LINES_SQL = """
WITH first_login AS (
    SELECT customer_id, min(logged_in_at) AS first_at
      FROM customers_login
     WHERE logged_in_at >= %(restored_at)s
     GROUP BY customer_id
),
plan_start AS (
    SELECT * FROM unnest(%(plans)s::text[], %(first_months)s::date[]) AS t(plan_id, first_month)
),
covered AS (
    SELECT s.customer_id, s.subscription_id, s.plan_id,
           date_trunc('month', c.period_start)::date AS month,
           sum(c.amount_jpy) AS amount
      FROM customers_subscription s
      JOIN plan_start ps ON ps.plan_id = s.plan_id
      JOIN customers_charge c ON c.subscription_id = s.subscription_id
      LEFT JOIN first_login fl ON fl.customer_id = s.customer_id
     WHERE NOT c.promotional
       AND (%(scope)s::text[] IS NULL OR s.customer_id = ANY(%(scope)s::text[]))
       AND c.period_start >= ps.first_month
       AND c.period_start < (
             LEAST(COALESCE((date_trunc('month', fl.first_at AT TIME ZONE 'Asia/Tokyo'))::date, %(cap)s::date),
                   %(cap)s::date)
             + interval '1 month')
     GROUP BY s.customer_id, s.subscription_id, s.plan_id, month
    HAVING sum(c.amount_jpy) > 0
)
SELECT customer_id,
       array_agg(subscription_id ORDER BY month, subscription_id),
       array_agg(plan_id ORDER BY month, subscription_id),
       array_agg(month ORDER BY month, subscription_id),
       array_agg(amount ORDER BY month, subscription_id)
  FROM covered
 GROUP BY customer_id
"""

# For submitters without lines only: does the customer exist, hold a covered plan, and could any
# month be covered at all (first login not before the plan's first covered month)?
EXPLAIN_SQL = """
WITH asked AS (SELECT unnest(%(subjects)s::text[]) AS customer_id),
plan_start AS (
    SELECT * FROM unnest(%(plans)s::text[], %(first_months)s::date[]) AS t(plan_id, first_month)
)
SELECT a.customer_id,
       EXISTS (SELECT 1 FROM customers_customer cu WHERE cu.customer_id = a.customer_id),
       EXISTS (
           SELECT 1
             FROM customers_subscription s
             JOIN plan_start ps ON ps.plan_id = s.plan_id
            WHERE s.customer_id = a.customer_id
              AND ps.first_month <= LEAST(
                    COALESCE((SELECT (date_trunc('month', min(l.logged_in_at) AT TIME ZONE 'Asia/Tokyo'))::date
                                FROM customers_login l
                               WHERE l.customer_id = a.customer_id AND l.logged_in_at >= %(restored_at)s),
                             %(cap)s::date),
                    %(cap)s::date)
       )
  FROM asked a
"""


def month_label(month: dt.date) -> str:
    return f"{month.year:04d}-{month.month:02d}"


def compute(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> list[Entitlement]:
    """The Python path (previews of small programs); `scope` limits it to those subjects."""
    params = program.typed_parameters()
    assert isinstance(params, LoginOutageParameters)
    plans = sorted(params.first_covered_month_by_plan)
    sql_params = {
        "restored_at": params.restored_at,
        "plans": plans,
        "first_months": [dt.date(m.year, m.month, 1) for m in (params.first_covered_month_by_plan[p] for p in plans)],
        "cap": dt.date(params.cap_month.year, params.cap_month.month, 1),
    }
    submissions = official_submissions(program, scope)
    entitlements: list[Entitlement] = []
    with_lines: set[str] = set()
    for customer_id, subscription_ids, plan_ids, months, amounts in fetch_all(
        LINES_SQL, {**sql_params, "scope": scope_param(scope)}
    ):
        with_lines.add(customer_id)
        lines = [
            Line(
                label=f"{month_label(month)} {plan_id}",
                amount_jpy=int(amount),
                rule=RULE,
                grant_key=f"sub-month:{subscription_id}:{month_label(month)}",
            )
            for subscription_id, plan_id, month, amount in zip(subscription_ids, plan_ids, months, amounts, strict=True)
        ]
        entitlements.append(_entitlement(program, customer_id, lines, submissions.get(customer_id)))

    unexplained = sorted(set(submissions) - with_lines)
    if unexplained:
        for customer_id, exists, could_be_covered in fetch_all(EXPLAIN_SQL, {**sql_params, "subjects": unexplained}):
            if not exists:
                reason = Reason.UNKNOWN_SUBJECT
            elif could_be_covered:
                reason = Reason.NO_CHARGE
            else:
                reason = Reason.NOT_COVERED
            submission = submissions[customer_id]
            entitlements.append(
                Entitlement(
                    subject=customer_id,
                    customer_id=customer_id if exists else None,
                    payee_id=customer_id if exists else None,
                    eligible=False,
                    reason=reason,
                    official_submission_id=submission.submission_id,
                )
            )
    return entitlements


def _entitlement(
    program: Program, customer_id: str, lines: list[Line], submission: OfficialSubmission | None
) -> Entitlement:
    reason = application_reason(submission, program=program)
    return Entitlement(
        subject=customer_id,
        customer_id=customer_id,
        # Compensation (not a refund) is paid to the member who could not log in and applied.
        payee_id=customer_id,
        eligible=not reason,
        reason=reason,
        lines=lines,
        official_submission_id=submission.submission_id if submission else None,
        payout_method=payout_method_for(program, submission),
    )


# --- The run's set-based path: the same rules as `compute`, written into the stage tables by SQL ---

STAGE_SQL = f"""
DROP TABLE IF EXISTS claims_stage_official, claims_stage_covered;
CREATE TEMP TABLE claims_stage_official AS
SELECT DISTINCT ON (subject)
       subject, submission_id,
       (%(deadline)s::timestamptz IS NULL OR submitted_at <= %(deadline)s::timestamptz) AS on_time,
       payout_method
  FROM claims_submission
 WHERE program_id = %(slug)s /*in_scope:subject*/
 ORDER BY subject,
          (%(deadline)s::timestamptz IS NULL OR submitted_at <= %(deadline)s::timestamptz) DESC,
          submitted_at DESC, submission_id DESC;
-- One statement over the base tables only (no TEMP table in it), so PostgreSQL may run it with parallel
-- workers: every charge of a covered plan in its subscription's window, per subscription and month.
CREATE TEMP TABLE claims_stage_covered AS
WITH plan_start AS (
    SELECT * FROM unnest(%(plans)s::text[], %(first_months)s::date[]) AS t(plan_id, first_month)
),
first_login AS (
    SELECT customer_id, min(logged_in_at) AS first_at
      FROM customers_login
     WHERE logged_in_at >= %(restored_at)s /*in_scope:customer_id*/
     GROUP BY customer_id
)
SELECT s.customer_id, s.subscription_id, s.plan_id,
       date_trunc('month', c.period_start)::date AS month,
       sum(c.amount_jpy)::integer AS amount
  FROM customers_subscription s
  JOIN plan_start ps ON ps.plan_id = s.plan_id
  JOIN customers_charge c ON c.subscription_id = s.subscription_id
  LEFT JOIN first_login fl ON fl.customer_id = s.customer_id
 WHERE NOT c.promotional /*in_scope:s.customer_id*/
   AND c.period_start >= ps.first_month
   AND c.period_start < (
         LEAST(COALESCE((date_trunc('month', fl.first_at AT TIME ZONE 'Asia/Tokyo'))::date, %(cap)s::date),
               %(cap)s::date)
         + interval '1 month')
 GROUP BY s.customer_id, s.subscription_id, s.plan_id, month
HAVING sum(c.amount_jpy) > 0;
ANALYZE claims_stage_official;
ANALYZE claims_stage_covered;
INSERT INTO {STAGE_ENTITLEMENTS} (subject, customer_id, payee_id, eligible, reason, official_submission_id,
                                  payout_method)
SELECT cv.customer_id, cv.customer_id, cv.customer_id, r.reason = '', r.reason, o.submission_id,
       CASE WHEN COALESCE(o.payout_method, '') <> '' AND o.payout_method = ANY(%(allowed)s::text[])
            THEN o.payout_method ELSE %(default_method)s END
  FROM (SELECT DISTINCT customer_id FROM claims_stage_covered) cv
  LEFT JOIN claims_stage_official o ON o.subject = cv.customer_id
 CROSS JOIN LATERAL (
       SELECT CASE WHEN NOT %(required)s THEN ''
                   WHEN o.subject IS NULL THEN '{Reason.NO_APPLICATION}'
                   WHEN NOT o.on_time THEN '{Reason.LATE_APPLICATION}'
                   ELSE '' END AS reason
 ) r;
INSERT INTO {STAGE_LINES} (subject, position, label, amount_jpy, rule, grant_key, cover_key)
SELECT c.customer_id,
       row_number() OVER (PARTITION BY c.customer_id ORDER BY c.month, c.subscription_id),
       to_char(c.month, 'YYYY-MM') || ' ' || c.plan_id,
       c.amount, '{RULE}', k.key, k.key
  FROM claims_stage_covered c
  JOIN {STAGE_ENTITLEMENTS} e ON e.subject = c.customer_id AND e.eligible
 CROSS JOIN LATERAL (SELECT 'sub-month:' || c.subscription_id || ':' || to_char(c.month, 'YYYY-MM') AS key) k;
WITH plan_start AS (
    SELECT * FROM unnest(%(plans)s::text[], %(first_months)s::date[]) AS t(plan_id, first_month)
),
unexplained AS MATERIALIZED (
    -- Materialized: `known` is read three times below, and an inlined EXISTS would be planned three
    -- times (three hashed scans of the customer table).
    -- Submitters without a covered line (tens of thousands at most): per row, index lookups (the
    -- EXISTS in the select list run as sub-plans) are cheaper than hashing the customer and
    -- subscription tables.
    SELECT o.subject, o.submission_id,
           EXISTS (SELECT 1 FROM customers_customer cu WHERE cu.customer_id = o.subject) AS known,
           EXISTS (
               SELECT 1
                 FROM customers_subscription s
                 JOIN plan_start ps ON ps.plan_id = s.plan_id
                WHERE s.customer_id = o.subject
                  AND ps.first_month <= LEAST(
                        COALESCE((SELECT (date_trunc('month', min(l.logged_in_at) AT TIME ZONE 'Asia/Tokyo'))::date
                                    FROM customers_login l
                                   WHERE l.customer_id = o.subject AND l.logged_in_at >= %(restored_at)s),
                                 %(cap)s::date),
                        %(cap)s::date)
           ) AS could_be_covered
      FROM claims_stage_official o
     WHERE NOT EXISTS (SELECT 1 FROM {STAGE_ENTITLEMENTS} e WHERE e.subject = o.subject)
)
INSERT INTO {STAGE_ENTITLEMENTS} (subject, customer_id, payee_id, eligible, reason, official_submission_id)
SELECT subject, CASE WHEN known THEN subject END, CASE WHEN known THEN subject END, false,
       CASE WHEN NOT known THEN '{Reason.UNKNOWN_SUBJECT}'
            WHEN could_be_covered THEN '{Reason.NO_CHARGE}'
            ELSE '{Reason.NOT_COVERED}' END,
       submission_id
  FROM unexplained;
DROP TABLE claims_stage_official, claims_stage_covered;
"""


# An incremental run (claims.inputs) computes the subjects of claims_stage_scope only: the same statements
# with each base-table read limited to them (a TEMP table in a statement rules out parallel workers, so
# the full run keeps the statement without it).
SCOPED_STAGE_SQL = scoped_sql(STAGE_SQL, scoped=True)
STAGE_SQL = scoped_sql(STAGE_SQL, scoped=False)


def stage(*, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scoped: bool = False) -> None:
    """Writes the program's entitlements into the stage tables with SQL only (no row reaches Python);
    `scoped`: those of the subjects in claims_stage_scope only."""
    params = program.typed_parameters()
    assert isinstance(params, LoginOutageParameters)
    plans = sorted(params.first_covered_month_by_plan)
    with connection.cursor() as cursor:
        cursor.execute(
            SCOPED_STAGE_SQL if scoped else STAGE_SQL,
            {
                "restored_at": params.restored_at,
                "plans": plans,
                "first_months": [
                    dt.date(m.year, m.month, 1) for m in (params.first_covered_month_by_plan[p] for p in plans)
                ],
                "cap": dt.date(params.cap_month.year, params.cap_month.month, 1),
                "deadline": deadline_end(program),
                "slug": program.slug,
                "required": program.application_rule == ApplicationRule.REQUIRED,
                "allowed": list(program.payout_methods or []),
                "default_method": program.default_payout_method,
            },
        )
