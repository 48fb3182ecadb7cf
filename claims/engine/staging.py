"""The run's working set: the engine's result as two TEMP tables, never as Python objects per subject.

`program_run` asks `stage(program=…, as_of=…, calendar=…)` to fill

- `claims_stage_entitlement` — one row per subject (customer/payee, eligible, reason, official
  submission, payout method, provider due date, note; amount and lines hash are filled by `summarise`);
- `claims_stage_line` — its lines (position from 1, label, amount, rule, grant key, `cover_key` = the key
  the line is paid under: its own, or for a line without a key (penalty, fee) the last keyed line's
  before it, excluded reason).

`login-outage-2024` (the policy with a population in the millions) fills them with SQL alone
(`login_outage.stage`); the other policies' Python engines' entitlements are copied in with COPY,
`COPY_CHUNK` at a time. The refund engines stream their rows from a server-side cursor, so a run holds
one chunk of them; coupon-outage-2023's engine still builds its list (it first matches every class-B
payment with the reversals of its coupon, in memory).
Everything after staging is set-based SQL (claims.services).

The tables live in the run's transaction (dropped at the start of the next run and at the end).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

from django.db import connection

from claims.engine import Entitlement, Reason, login_outage, stream_entitlements
from claims.engine.common import STAGE_ENTITLEMENTS as ENTITLEMENTS
from claims.engine.common import STAGE_LINES as LINES
from claims.engine.common import fetch_all
from claims.models import Policy, Program
from support_portal.core.business_days import BusinessCalendar

CREATE_SQL = f"""
DROP TABLE IF EXISTS {ENTITLEMENTS}, {LINES};
CREATE TEMP TABLE {ENTITLEMENTS} (
    subject text NOT NULL,
    customer_id text,
    payee_id text,
    eligible boolean NOT NULL,
    reason text NOT NULL DEFAULT '',
    amount_jpy integer NOT NULL DEFAULT 0,
    official_submission_id text,
    payout_method text NOT NULL DEFAULT '',
    provider_request_due_on date,
    note text NOT NULL DEFAULT '',
    changes_on date,  -- the first JST date the answer changes with the day of the run (claims.inputs)
    lines_hash text NOT NULL DEFAULT 'd41d8cd98f00b204e9800998ecf8427e'  -- md5(''): no lines
);
CREATE TEMP TABLE {LINES} (
    subject text NOT NULL,
    position integer NOT NULL,
    label text NOT NULL,
    amount_jpy integer NOT NULL,
    rule text NOT NULL,
    grant_key text NOT NULL DEFAULT '',
    cover_key text NOT NULL DEFAULT '',
    excluded_reason text NOT NULL DEFAULT ''
);
"""

DROP_SQL = f"DROP TABLE IF EXISTS {ENTITLEMENTS}, {LINES}"

# md5 of a claim's lines in position order (chr(31) between fields, chr(30) between lines); a claim
# without lines hashes md5(''). Stored on Claim.lines_hash so a re-run compares one column per claim.
LINE_HASH_ITEM = (
    "concat_ws(chr(31), {t}.position, {t}.label, {t}.amount_jpy, {t}.rule, {t}.grant_key, {t}.excluded_reason)"
)
EMPTY_LINES_HASH = "d41d8cd98f00b204e9800998ecf8427e"  # md5('')


def lines_hash_sql(alias: str) -> str:
    """The aggregate expression giving the lines hash over rows of `alias` (use with GROUP BY)."""
    return f"md5(COALESCE(string_agg({LINE_HASH_ITEM.format(t=alias)}, chr(30) ORDER BY {alias}.position), ''))"


def create_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(CREATE_SQL)


def drop_tables() -> None:
    with connection.cursor() as cursor:
        cursor.execute(DROP_SQL)


# Entitlements held in memory at once while the stage is filled (a COPY of each table per chunk).
COPY_CHUNK = 10_000


def _copy_entitlements(entitlements: Iterable[Entitlement]) -> None:
    """COPY the Python engine's entitlements into the stage tables, `COPY_CHUNK` at a time: an engine
    that streams its rows (the refund policies) then keeps memory flat whatever the program's size."""
    chunk: list[Entitlement] = []
    for entitlement in entitlements:
        chunk.append(entitlement)
        if len(chunk) == COPY_CHUNK:
            _copy_chunk(chunk)
            chunk = []
    if chunk:
        _copy_chunk(chunk)


def _copy_chunk(entitlements: list[Entitlement]) -> None:
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            f"COPY {ENTITLEMENTS} (subject, customer_id, payee_id, eligible, reason, official_submission_id,"
            " payout_method, provider_request_due_on, note, changes_on) FROM STDIN"
        ) as copy:
            for e in entitlements:
                copy.write_row(
                    (
                        e.subject,
                        e.customer_id,
                        e.payee_id,
                        e.eligible,
                        e.reason,
                        e.official_submission_id,
                        e.payout_method,
                        e.provider_request_due_on,
                        e.note,
                        e.changes_on,
                    )
                )
        with raw.copy(
            f"COPY {LINES} (subject, position, label, amount_jpy, rule, grant_key, cover_key, excluded_reason)"
            " FROM STDIN"
        ) as copy:
            for e in entitlements:
                cover = ""
                for position, line in enumerate(e.lines, start=1):
                    cover = line.grant_key or cover
                    copy.write_row(
                        (
                            e.subject,
                            position,
                            line.label,
                            line.amount_jpy,
                            line.rule,
                            line.grant_key,
                            cover,
                            line.excluded_reason,
                        )
                    )


# Customers/payees the engine named that are not (or no longer) in the customer table are kept as NULL.
FORGET_UNKNOWN_CUSTOMERS_SQL = f"""
UPDATE {ENTITLEMENTS} e SET customer_id = NULL
 WHERE customer_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM customers_customer c WHERE c.customer_id = e.customer_id);
UPDATE {ENTITLEMENTS} e SET payee_id = NULL
 WHERE payee_id IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM customers_customer c WHERE c.customer_id = e.payee_id);
"""


def _stage_from_python(*, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scoped: bool) -> None:
    scope = [subject for (subject,) in fetch_all("SELECT subject FROM claims_stage_scope", {})] if scoped else None
    # Other programs' grants are excluded set-based after staging (exclude_held_elsewhere), so the
    # entitlements go in as the engine yields them: nothing collects them all.
    _copy_entitlements(stream_entitlements(program=program, as_of=as_of, calendar=calendar, scope=scope))
    with connection.cursor() as cursor:
        cursor.execute(FORGET_UNKNOWN_CUSTOMERS_SQL)


SQL_STAGERS: dict[str, Callable[..., None]] = {
    Policy.LOGIN_OUTAGE_2024: login_outage.stage,
}


def stage(*, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scoped: bool = False) -> None:
    """Fills the stage tables with the program's entitlements (before exclusion by other programs' grants);
    `scoped`: only those of the subjects in the TEMP table claims_stage_scope (claims.inputs)."""
    create_tables()
    SQL_STAGERS.get(program.policy, _stage_from_python)(program=program, as_of=as_of, calendar=calendar, scoped=scoped)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {ENTITLEMENTS}; ANALYZE {LINES}")


# --- Other programs' grants, and the dry-run rows (shared by program_run and the preview) ---------------

EXCLUDE_HELD_ELSEWHERE_SQL = f"""
WITH held AS (
    SELECT g.grant_key, p.slug
      FROM claims_grant g JOIN claims_program p ON p.id = g.program_id
     WHERE g.program_id <> %(program)s
)
UPDATE {LINES} l SET excluded_reason = '{Reason.ALREADY_COMPENSATED}:' || held.slug, amount_jpy = 0
  FROM held, {ENTITLEMENTS} e
 WHERE held.grant_key = l.cover_key AND l.excluded_reason = '' AND e.subject = l.subject AND e.eligible
"""

# A claim left with nothing to pay after exclusions is not eligible: reason = its first excluded line's.
# Then, as for every ineligible claim, only excluded lines are kept, at amount 0.
REDECIDE_ELIGIBILITY_SQL = f"""
UPDATE {ENTITLEMENTS} e SET eligible = false, reason = COALESCE(x.first_excluded, '{Reason.NOTHING_DUE}')
  FROM (
    SELECT subject,
           COALESCE(sum(amount_jpy) FILTER (WHERE excluded_reason = ''), 0) AS paid,
           (array_agg(excluded_reason ORDER BY position) FILTER (WHERE excluded_reason <> ''))[1] AS first_excluded
      FROM {LINES}
     WHERE subject IN (SELECT subject FROM {LINES} WHERE excluded_reason <> '')
     GROUP BY subject
  ) x
 WHERE e.subject = x.subject AND e.eligible AND x.paid <= 0;
DELETE FROM {LINES} l USING {ENTITLEMENTS} e WHERE e.subject = l.subject AND NOT e.eligible AND l.excluded_reason = '';
UPDATE {LINES} l SET amount_jpy = 0
  FROM {ENTITLEMENTS} e WHERE e.subject = l.subject AND NOT e.eligible AND l.amount_jpy <> 0;
"""


def exclude_held_elsewhere(program: Program) -> None:
    """Lines whose key another program holds are excluded; claims left with nothing due become ineligible."""
    with connection.cursor() as cursor:
        cursor.execute(EXCLUDE_HELD_ELSEWHERE_SQL, {"program": program.pk})
        if cursor.rowcount > 0:
            cursor.execute(REDECIDE_ELIGIBILITY_SQL)


# One CSV row per subject, as `claims.selectors.dry_run_row` writes it from an Entitlement: the paid lines
# `label=amount` in position order, the amount their sum, the reason the claim's or its first excluded
# line's. Subjects in code-point order (COLLATE "C"), as Python sorts them.
DRY_RUN_ROWS_SQL = f"""
SELECT e.subject,
       CASE WHEN e.eligible THEN 'true' ELSE 'false' END,
       CASE WHEN e.eligible THEN COALESCE(x.paid, 0) ELSE 0 END,
       COALESCE(e.payee_id, ''),
       CASE WHEN e.eligible THEN COALESCE(x.lines, '') ELSE '' END,
       COALESCE(NULLIF(e.reason, ''), x.first_excluded, '')
  FROM {ENTITLEMENTS} e
  LEFT JOIN (
       SELECT subject,
              sum(amount_jpy) FILTER (WHERE excluded_reason = '') AS paid,
              string_agg(label || '=' || amount_jpy, ';' ORDER BY position)
                FILTER (WHERE excluded_reason = '') AS lines,
              (array_agg(excluded_reason ORDER BY position) FILTER (WHERE excluded_reason <> ''))[1] AS first_excluded
         FROM {LINES}
        GROUP BY subject
  ) x ON x.subject = e.subject
 ORDER BY e.subject COLLATE "C"
"""
