"""What a program run read and what changed since, so that a run recomputes only what changed.

Every statement that writes one of the engine's input tables (`INPUT_TABLES`) leaves one row in
`claims_inputchange` and the subject keys it touched in `claims_inputchangekey`, written by
statement-level triggers from the statement's transition tables (migration 0016): whoever wrote — the
import, the admin, a service, raw SQL. A run records, in the same transaction as its claims, the
snapshot it started from (`pg_current_snapshot()`) and its own transaction id (`ProgramComputation`).
The next run (`program_scope`) reads the keys of every change row not visible in that snapshot (nor the
recorded run's own up to its last row), maps them to the program's subjects per policy (`SCOPE_*_SQL`),
adds the subjects whose answer changes with the day (`SubjectRecheck`), and recomputes only those.

It recomputes everything when the engine's code differs (`engine_revision`), the business calendar
differs (refund policies), the database is another cluster (`CLUSTER`) or its transaction ids went back,
the run is dated earlier than the recorded one, the program's own row changed (kind `r`: parameters,
deadline, rules), or a change is not traced to subjects (kind `*`: a plan, another program's slug,
TRUNCATE). Opening or closing another program changes nothing here.

A change committed while the previous run was computing is not visible in its snapshot, so its keys are
read by the next run (even if that run had in fact read it): never lost. docs/claims.md, "How a change
reaches the next run". `program_run(recompute=True)` (`manage.py program_run --recompute`) always
computes every subject.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from pathlib import Path
from typing import Any

from django.db import connection

from claims.engine.common import fetch_all, scoped_sql
from claims.models import Policy, Program, ProgramComputation
from support_portal.core.business_days import BusinessCalendar, jst_date

# Every table an engine or program_run reads (claims.engine, the exclusion by other programs' grants, the
# diff against the program's claims). tests/claims/test_inputs.py checks that every table those
# statements name is in this list and carries the triggers.
INPUT_TABLES = (
    "customers_customer",
    "customers_subscription",
    "customers_charge",
    "customers_login",
    "customers_usageevent",
    "customers_plan",
    "customers_coupon",
    "customers_coupontransaction",
    "claims_program",
    "claims_submission",
    "claims_grant",
    "claims_claim",
    "claims_claimline",
    "claims_mergeoffer",
    "claims_couponpaymentconfirmation",
    "claims_couponduplicatepayment",
)

# Every policy runs incrementally (the day-dependent answers are rechecked: SubjectRecheck).
INCREMENTAL_POLICIES = frozenset(Policy.values)
# The policies whose answer depends on the business calendar (provider due dates).
CALENDAR_POLICIES = frozenset(
    {
        Policy.AUTORENEW_60DAY,
        Policy.COOLING_OFF_7DAY,
        Policy.SERVICE_FAILURE_PRORATA,
        Policy.COMPANY_TERMINATION,
        Policy.OVERPAYMENT,
    }
)

_CLAIMS_APP = Path(__file__).resolve().parent
# The engine, the run, the rules' parameters and the statuses and reasons their SQL spells out.
_ENGINE_SOURCES = ("engine/*.py", "services.py", "inputs.py", "models.py", "parameters.py")


@functools.cache
def engine_revision() -> str:
    """A hash of the code that computes claims: a deploy that changes it makes the next run compute."""
    digest = hashlib.sha256()
    for pattern in _ENGINE_SOURCES:
        for path in sorted(_CLAIMS_APP.glob(pattern)):
            digest.update(path.relative_to(_CLAIMS_APP).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


# The cluster's identifier (pg_control_system(), executable by PUBLIC unless a host revoked it: then '').
# A database restored from a dump into another cluster starts a new transaction-id history, in which
# the recorded snapshot means nothing.
CLUSTER = """(CASE WHEN has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE')
            THEN (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) ELSE '' END)"""


# Whether the recorded computation belongs to another database history (then: compute in full).
ANOTHER_HISTORY_SQL = f"""
SELECT %(cluster)s <> {CLUSTER}
-- Transaction ids only grow in one database history: the newest one known (completed, or our own when
-- the recorded run was in this very transaction) below the recorded run's means another history.
OR GREATEST(pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                COALESCE(pg_current_xact_id_if_assigned()::text::bigint, 0)) < %(own_transaction)s
"""

# The keys of every change the recorded computation did not see, into a TEMP table: a change row is seen
# when its transaction is visible in the computation's snapshot (committed before the run started), or
# is the run's own transaction up to the run's last row. PostgreSQL leaves a transaction's own id out of
# its snapshot, hence the second test. Rows older than the snapshot's xmin had all ended by then (the
# index range); the rest are looked up in the snapshot.
UNSEEN_KEYS_SQL = """
DROP TABLE IF EXISTS claims_stage_changed;
CREATE TEMP TABLE claims_stage_changed AS
SELECT DISTINCT k.kind, k.key
  FROM claims_inputchange ch
  JOIN claims_inputchangekey k ON k.change_id = ch.id
 WHERE (ch.transaction_id = %(own_transaction)s AND ch.id > %(own_last_change)s)
    OR (ch.transaction_id >= pg_snapshot_xmin(%(snapshot)s::pg_snapshot)::text::bigint
        AND ch.transaction_id <> %(own_transaction)s
        AND NOT pg_visible_in_snapshot(ch.transaction_id::text::xid8, %(snapshot)s::pg_snapshot));
ANALYZE claims_stage_changed;
"""

SCOPE_TABLE = "claims_stage_scope"

# The changed customers: named by a change, or holding (or paying for) a changed subscription.
_CUSTOMERS = """(SELECT key FROM claims_stage_changed WHERE kind = 'c'
   UNION SELECT s.customer_id FROM customers_subscription s
          WHERE s.subscription_id IN (SELECT key FROM claims_stage_changed WHERE kind = 'b')
   UNION SELECT s.payer_id FROM customers_subscription s
          WHERE s.payer_id IS NOT NULL
            AND s.subscription_id IN (SELECT key FROM claims_stage_changed WHERE kind = 'b'))"""
_RECHECK = "SELECT subject FROM claims_subjectrecheck WHERE program_id = %(program)s AND recheck_on <= %(day)s"
# Per policy: the program's subjects whose inputs the changed keys touch (a superset is harmless: an
# unchanged subject recomputes to the same claim and is not written).
SCOPE_LOGIN_SQL = f"""
SELECT key FROM claims_stage_changed WHERE kind = 's'
UNION SELECT c.customer_id FROM {_CUSTOMERS} c(customer_id)
UNION {_RECHECK}
"""
# A refund's subject is a charge: every charge of a changed customer (or payer, or subscription: a charge
# moved away from it too), and the program's claims naming such a customer or payee (a charge now gone).
SCOPE_REFUND_SQL = f"""
WITH changed_customers AS MATERIALIZED (SELECT * FROM {_CUSTOMERS} c(customer_id) WHERE customer_id IS NOT NULL)
SELECT key FROM claims_stage_changed WHERE kind = 's'
UNION SELECT c.charge_id FROM customers_charge c
       WHERE c.subscription_id IN (SELECT key FROM claims_stage_changed WHERE kind = 'b')
UNION SELECT c.charge_id FROM customers_subscription s JOIN customers_charge c ON c.subscription_id = s.subscription_id
       WHERE s.customer_id IN (SELECT customer_id FROM changed_customers)
UNION SELECT c.charge_id FROM customers_subscription s JOIN customers_charge c ON c.subscription_id = s.subscription_id
       WHERE s.payer_id IN (SELECT customer_id FROM changed_customers)
UNION SELECT cl.subject FROM claims_claim cl
       WHERE cl.program_id = %(program)s
         AND (cl.customer_id IN (SELECT customer_id FROM changed_customers)
              OR cl.payee_id IN (SELECT customer_id FROM changed_customers))
UNION {_RECHECK}
"""
SCOPE_COUPON_SQL = f"""
SELECT key FROM claims_stage_changed WHERE kind IN ('p', 's')
UNION SELECT t.coupon_id FROM customers_coupontransaction t
       WHERE t.transaction_id IN (SELECT key FROM claims_stage_changed WHERE kind = 't')
UNION SELECT inquiry_number FROM customers_coupon WHERE customer_id IN {_CUSTOMERS}
UNION {_RECHECK}
"""
SCOPE_SQL: dict[str, str] = {
    Policy.LOGIN_OUTAGE_2024: SCOPE_LOGIN_SQL,
    Policy.COUPON_OUTAGE_2023: SCOPE_COUPON_SQL,
}


def calendar_revision(program: Program, calendar: BusinessCalendar) -> str:
    """A hash of the business days the run counts with ('' for a policy that does not use them)."""
    if program.policy not in CALENDAR_POLICIES:
        return ""
    return calendar.revision()


def program_scope(*, program: Program, as_of: dt.datetime, calendar: BusinessCalendar) -> int | None:
    """What the next run of the program must recompute (see the module docstring).

    None: everything (no usable computation, other code, calendar or database history, an earlier day, or
    a change not traced to subjects). Otherwise fills the TEMP table `claims_stage_scope` with the subjects
    to recompute and returns their number (0: nothing changed, the run may skip).
    """
    computation = ProgramComputation.objects.filter(program=program).first()
    day = jst_date(as_of)
    if (
        computation is None
        or computation.engine_revision != engine_revision()
        or computation.calendar_revision != calendar_revision(program, calendar)
        or computation.as_of_date is None
        or day < computation.as_of_date
    ):
        return None
    params: dict[str, Any] = {
        "cluster": computation.cluster,
        "snapshot": computation.snapshot,
        "own_transaction": computation.transaction_id,
        "own_last_change": computation.last_change_id,
        "program": program.pk,
        "day": day,
    }
    [(another_history,)] = fetch_all(ANOTHER_HISTORY_SQL, params)
    if another_history:
        return None
    with connection.cursor() as cursor:
        cursor.execute(UNSEEN_KEYS_SQL, params)
        # `*`: a change not traced to subjects; `r`: this program's own row (its parameters, deadline, rules).
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM claims_stage_changed WHERE kind = '*' OR (kind = 'r' AND key = %s))",
            [str(program.pk)],
        )
        [(everything,)] = cursor.fetchall()
        if everything:
            cursor.execute("DROP TABLE claims_stage_changed")
            return None
        cursor.execute(
            f"DROP TABLE IF EXISTS {SCOPE_TABLE}; CREATE TEMP TABLE {SCOPE_TABLE} (subject text PRIMARY KEY);"
            f" INSERT INTO {SCOPE_TABLE} {SCOPE_SQL.get(program.policy, SCOPE_REFUND_SQL)};"
            f" DROP TABLE claims_stage_changed; ANALYZE {SCOPE_TABLE};",
            params,
        )
        cursor.execute(f"SELECT count(*) FROM {SCOPE_TABLE}")
        [(count,)] = cursor.fetchall()
    return int(count)


def drop_scope() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCOPE_TABLE}")


def program_inputs_unchanged(*, program: Program, as_of: dt.datetime, calendar: BusinessCalendar) -> bool:
    """Whether nothing the program's last run read has changed since (and the code is the same)."""
    scope = program_scope(program=program, as_of=as_of, calendar=calendar)
    drop_scope()
    return scope == 0


def input_snapshot() -> str:
    """The snapshot a run starts from (READ COMMITTED: what every later statement sees at least)."""
    [(snapshot,)] = fetch_all("SELECT pg_current_snapshot()::text", {})
    return str(snapshot)


RECORD_SQL = f"""
INSERT INTO claims_programcomputation (program_id, snapshot, transaction_id, last_change_id, engine_revision,
                                       cluster, computed_at, calendar_revision, as_of_date)
SELECT %(program)s, %(snapshot)s, x.id,
       COALESCE((SELECT max(ch.id) FROM claims_inputchange ch WHERE ch.transaction_id = x.id), 0),
       %(revision)s, {CLUSTER}, now(), %(calendar)s, %(day)s
  FROM (SELECT pg_current_xact_id()::text::bigint AS id) x
    ON CONFLICT (program_id) DO UPDATE
   SET snapshot = EXCLUDED.snapshot, transaction_id = EXCLUDED.transaction_id,
       last_change_id = EXCLUDED.last_change_id, engine_revision = EXCLUDED.engine_revision,
       cluster = EXCLUDED.cluster, computed_at = EXCLUDED.computed_at,
       calendar_revision = EXCLUDED.calendar_revision, as_of_date = EXCLUDED.as_of_date
"""

# Change rows (and their keys) no recorded computation can need: older than every kept snapshot's xmin,
# and a day old (a run in progress has not recorded its snapshot yet; runs end within their task time
# limit). Computations of closed programs are dropped first: reopened, such a program computes in full.
PRUNE_SQL = """
DELETE FROM claims_programcomputation pc USING claims_program p WHERE p.id = pc.program_id AND p.status = %(closed)s;
WITH gone AS (
    DELETE FROM claims_inputchange
     WHERE changed_at < now() - interval '1 day'
       AND transaction_id < (SELECT COALESCE(min(pg_snapshot_xmin(snapshot::pg_snapshot)::text::bigint),
                                             pg_snapshot_xmin(pg_current_snapshot())::text::bigint)
                               FROM claims_programcomputation)
    RETURNING id
)
DELETE FROM claims_inputchangekey k USING gone WHERE k.change_id = gone.id;
"""

# The day-dependent subjects: the staged subjects' next date their answer changes (all of them after a
# full run, the scope's after an incremental one).
RECHECK_SQL = """
DELETE FROM claims_subjectrecheck r WHERE r.program_id = %(program)s /*in_scope:r.subject*/;
INSERT INTO claims_subjectrecheck (program_id, subject, recheck_on)
SELECT %(program)s, e.subject, e.changes_on FROM claims_stage_entitlement e WHERE e.changes_on IS NOT NULL;
"""


def subject_rechecks_record(*, program: Program, scoped: bool) -> None:
    with connection.cursor() as cursor:
        cursor.execute(scoped_sql(RECHECK_SQL, scoped=scoped), {"program": program.pk})


def program_computation_record(
    *, program: Program, snapshot: str, as_of: dt.datetime, calendar: BusinessCalendar
) -> None:
    """Records, in the run's transaction, what its computation read (see the module docstring)."""
    with connection.cursor() as cursor:
        cursor.execute(
            RECORD_SQL,
            {
                "program": program.pk,
                "snapshot": snapshot,
                "revision": engine_revision(),
                "calendar": calendar_revision(program, calendar),
                "day": jst_date(as_of),
            },
        )
        cursor.execute(PRUNE_SQL, {"closed": Program.Status.CLOSED})
