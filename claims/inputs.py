"""What a program run read, so that a run over unchanged inputs knows it without recomputing.

Every statement that writes one of the engine's input tables (`INPUT_TABLES`) leaves one row in
`claims_inputchange`, written by a statement-level trigger (migration 0015): whoever wrote — the
import, the admin, a service, raw SQL — and however many rows the statement touched (even none). A
full run of a program records, in the same transaction as its claims, the snapshot it started from
(`pg_current_snapshot()`) and its own transaction id (`ProgramComputation`). The next run skips the
computation when, for a policy whose result depends on its input tables only (`INCREMENTAL_POLICIES`):

- the engine's code is the same (`engine_revision`: a hash of the modules that compute it), the
  database the same cluster (`CLUSTER`: PostgreSQL's system identifier) and its transaction ids have
  not gone back, and
- every change row is visible in that snapshot (committed before the run started), or is the run's
  own (same transaction id, written no later than the run's last one).

A change committed while the previous run was computing is not visible in its snapshot, so it makes
the next run compute (even if that run had in fact read it): the test errs on recomputing, never on
skipping. A transaction still open now is invisible to a full run too, so skipping is what a full run
would have concluded. `program_run(recompute=True)` (`manage.py program_run --recompute`) always
computes.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from django.db import connection

from claims.engine.common import fetch_all
from claims.models import Policy, Program, ProgramComputation

# What the login-outage-2024 engine and program_run read (claims.engine.login_outage STAGE_SQL, the
# exclusion by other programs' grants, the diff against the program's claims). tests/claims/
# test_inputs.py checks that every table those statements name is in this list.
INPUT_TABLES = (
    "customers_customer",
    "customers_subscription",
    "customers_charge",
    "customers_login",
    "claims_program",
    "claims_submission",
    "claims_grant",
    "claims_claim",
    "claims_claimline",
)

# Policies whose claims depend on the input tables only. Not the refunds (delay interest and due
# dates move with the day of the run) nor coupon-outage-2023 (it also reads the coupon ledger and
# the agents' duplicate confirmations): they always compute.
INCREMENTAL_POLICIES = frozenset({Policy.LOGIN_OUTAGE_2024})

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


CHANGED_SINCE_SQL = f"""
SELECT %(cluster)s <> {CLUSTER}
-- Transaction ids only grow in one database history: the newest one known (completed, or our own when
-- the recorded run was in this very transaction) below the recorded run's means another history.
OR GREATEST(pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                COALESCE(pg_current_xact_id_if_assigned()::text::bigint, 0)) < %(own_transaction)s
OR EXISTS (
    -- The run's own transaction: PostgreSQL leaves a transaction's own id out of its snapshot, so the
    -- snapshot cannot tell; its change rows after the run's last one are changes.
    SELECT 1 FROM claims_inputchange ch
     WHERE ch.transaction_id = %(own_transaction)s AND ch.id > %(own_last_change)s
) OR EXISTS (
    -- Any other transaction: a change unless committed when the snapshot was taken. Those older than the
    -- snapshot's xmin had all ended by then (the index range); the rest are looked up in the snapshot.
    SELECT 1 FROM claims_inputchange ch
     WHERE ch.transaction_id >= pg_snapshot_xmin(%(snapshot)s::pg_snapshot)::text::bigint
       AND ch.transaction_id <> %(own_transaction)s
       AND NOT pg_visible_in_snapshot(ch.transaction_id::text::xid8, %(snapshot)s::pg_snapshot)
)
"""


def program_inputs_unchanged(*, program: Program) -> bool:
    """Whether nothing the program's last full run read has changed since (and the code is the same)."""
    if program.policy not in INCREMENTAL_POLICIES:
        return False
    computation = ProgramComputation.objects.filter(program=program).first()
    if computation is None or computation.engine_revision != engine_revision():
        return False
    [(changed,)] = fetch_all(
        CHANGED_SINCE_SQL,
        {
            "cluster": computation.cluster,
            "snapshot": computation.snapshot,
            "own_transaction": computation.transaction_id,
            "own_last_change": computation.last_change_id,
        },
    )
    return not changed


def input_snapshot() -> str:
    """The snapshot a full run starts from (READ COMMITTED: what every later statement sees at least)."""
    [(snapshot,)] = fetch_all("SELECT pg_current_snapshot()::text", {})
    return str(snapshot)


RECORD_SQL = f"""
INSERT INTO claims_programcomputation (program_id, snapshot, transaction_id, last_change_id, engine_revision,
                                       cluster, computed_at)
SELECT %(program)s, %(snapshot)s, x.id,
       COALESCE((SELECT max(ch.id) FROM claims_inputchange ch WHERE ch.transaction_id = x.id), 0),
       %(revision)s, {CLUSTER}, now()
  FROM (SELECT pg_current_xact_id()::text::bigint AS id) x
    ON CONFLICT (program_id) DO UPDATE
   SET snapshot = EXCLUDED.snapshot, transaction_id = EXCLUDED.transaction_id,
       last_change_id = EXCLUDED.last_change_id, engine_revision = EXCLUDED.engine_revision,
       cluster = EXCLUDED.cluster, computed_at = EXCLUDED.computed_at
"""

# Change rows no recorded computation can need: older than every kept snapshot's xmin, and a day old
# (a run in progress has not recorded its snapshot yet; runs end within their task time limit).
# Computations of closed programs are dropped first: reopened, such a program computes in full.
PRUNE_SQL = """
DELETE FROM claims_programcomputation pc USING claims_program p WHERE p.id = pc.program_id AND p.status = %(closed)s;
DELETE FROM claims_inputchange
 WHERE changed_at < now() - interval '1 day'
   AND transaction_id < (SELECT COALESCE(min(pg_snapshot_xmin(snapshot::pg_snapshot)::text::bigint),
                                         pg_snapshot_xmin(pg_current_snapshot())::text::bigint)
                           FROM claims_programcomputation);
"""


def program_computation_record(*, program: Program, snapshot: str) -> None:
    """Records, in the run's transaction, what its computation read (see the module docstring)."""
    if program.policy not in INCREMENTAL_POLICIES:
        return
    with connection.cursor() as cursor:
        cursor.execute(RECORD_SQL, {"program": program.pk, "snapshot": snapshot, "revision": engine_revision()})
        cursor.execute(PRUNE_SQL, {"closed": Program.Status.CLOSED})
