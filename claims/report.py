"""The program report for managers (issue 4 item 9): population, eligible, applied, approved and amounts
by plan, class and month. Reads only, set-based: one GROUP BY statement per breakdown.

- population: subjects the program has a claim for (after a run); eligible: eligible claims; applied:
  distinct subjects with a submission; approved: claims approved.
- Breakdowns are over paid claim lines (eligible claims, lines not excluded); a line without a grant key
  (penalty, fee) belongs to the keyed line before it. Plan: the subscription's plan (`sub-month:` keys) or
  the charge's subscription's plan (`charge:` keys); coupons have no plan (`-`). Class: the line's rule
  code (for coupon-outage-2023, `coupon-balance` = class A, `coupon-restore` = class B). Month: the
  covered month (`sub-month:` keys), the charge's service-period month (`charge:` keys), else the JST
  month the claim was computed.
"""

from __future__ import annotations

import dataclasses
from typing import TextIO

from claims.engine.common import fetch_all
from claims.models import ClaimStatus, Program
from support_portal.core.csv_export import CsvWriter

TOTALS_SQL = """
SELECT count(*),
       count(*) FILTER (WHERE c.eligible),
       (SELECT count(DISTINCT s.subject) FROM claims_submission s WHERE s.program_id = %(slug)s),
       count(*) FILTER (WHERE c.status = %(approved)s),
       COALESCE(sum(c.amount_jpy) FILTER (WHERE c.eligible), 0),
       COALESCE(sum(c.approved_amount_jpy) FILTER (WHERE c.status = %(approved)s), 0)
  FROM claims_claim c
 WHERE c.program_id = %(program)s
"""

PAID_LINES_SQL = """
WITH lines AS (
    SELECT c.id AS claim_id, c.status, c.computed_at, l.amount_jpy, l.rule, l.excluded_reason,
           (array_agg(NULLIF(l.grant_key, '')) FILTER (WHERE l.grant_key <> '')
                OVER (PARTITION BY c.id ORDER BY l.position)) AS keys
      FROM claims_claim c
      JOIN claims_claimline l ON l.claim_id = c.id
     WHERE c.program_id = %(program)s AND c.eligible
),
paid AS (
    SELECT claim_id, status, computed_at, amount_jpy, rule, keys[cardinality(keys)] AS cover_key
      FROM lines
     WHERE excluded_reason = ''
),
located AS (
    SELECT p.*,
           COALESCE(s1.plan_id, s2.plan_id, '-') AS plan,
           COALESCE(
               CASE WHEN p.cover_key LIKE 'sub-month:%%' THEN split_part(p.cover_key, ':', 3) END,
               to_char(ch.period_start, 'YYYY-MM'),
               to_char(p.computed_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM')
           ) AS month
      FROM paid p
      LEFT JOIN customers_subscription s1
             ON p.cover_key LIKE 'sub-month:%%' AND s1.subscription_id = split_part(p.cover_key, ':', 2)
      LEFT JOIN customers_charge ch
             ON p.cover_key LIKE 'charge:%%' AND ch.charge_id = substr(p.cover_key, 8)
      LEFT JOIN customers_subscription s2 ON s2.subscription_id = ch.subscription_id
)
SELECT {dimension} AS value,
       count(DISTINCT claim_id),
       count(DISTINCT claim_id) FILTER (WHERE status = %(approved)s),
       COALESCE(sum(amount_jpy), 0),
       COALESCE(sum(amount_jpy) FILTER (WHERE status = %(approved)s), 0)
  FROM located
 GROUP BY 1
 ORDER BY 1
"""

DIMENSIONS = {"plan": "plan", "class": "rule", "month": "month"}


@dataclasses.dataclass(frozen=True)
class Totals:
    population: int
    eligible: int
    applied: int
    approved: int
    eligible_amount_jpy: int
    approved_amount_jpy: int


@dataclasses.dataclass(frozen=True)
class BreakdownRow:
    value: str
    claims: int
    approved: int
    eligible_amount_jpy: int
    approved_amount_jpy: int


@dataclasses.dataclass(frozen=True)
class ProgramReport:
    program: Program
    totals: Totals
    # dimension ("plan", "class", "month") -> rows ordered by value
    breakdowns: dict[str, list[BreakdownRow]]


def program_report(*, program: Program) -> ProgramReport:
    """The report's numbers in four GROUP BY statements (totals, then plan, class, month)."""
    params = {"program": program.pk, "slug": program.slug, "approved": ClaimStatus.APPROVED}
    totals = Totals(*(int(value) for value in fetch_all(TOTALS_SQL, params)[0]))
    breakdowns = {
        name: [
            BreakdownRow(str(row[0]), int(row[1]), int(row[2]), int(row[3]), int(row[4]))
            for row in fetch_all(PAID_LINES_SQL.format(dimension=column), params)
        ]
        for name, column in DIMENSIONS.items()
    }
    return ProgramReport(program=program, totals=totals, breakdowns=breakdowns)


CSV_COLUMNS = ["section", "value", "claims", "approved", "eligible_amount_jpy", "approved_amount_jpy"]


def program_report_write_csv(report: ProgramReport, out: TextIO) -> int:
    """The report as one CSV: a `total` row (claims = population, plus eligible/applied rows), then one
    row per plan, class and month. Returns the number of data rows."""
    writer = CsvWriter(out)
    writer.writerow(CSV_COLUMNS)
    t = report.totals
    rows: list[list[object]] = [
        ["total", "population", t.population, "", "", ""],
        ["total", "eligible", t.eligible, "", t.eligible_amount_jpy, ""],
        ["total", "applied", t.applied, "", "", ""],
        ["total", "approved", t.approved, t.approved, "", t.approved_amount_jpy],
    ]
    for name, breakdown in report.breakdowns.items():
        rows += [[name, r.value, r.claims, r.approved, r.eligible_amount_jpy, r.approved_amount_jpy] for r in breakdown]
    writer.writerows(rows)
    return len(rows)
