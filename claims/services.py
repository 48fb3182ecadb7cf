"""Writes of the claims app: typed keyword-only services named `<entity>_<action>`.

`program_run` turns the engine's entitlements into Claims, ClaimLines and Grants, set-based and
idempotent: a second run over unchanged data writes nothing (no rows, no audit events); a run over
changed source data updates exactly the claims whose result changed (audit rows give before/after);
a claim someone already decided (approved/rejected) is sent to `needs_rereview` instead of changing
silently, keeping `approved_amount_jpy`.

Locks, always in this order: the program row (serialises runs of one program), then grant keys in
sorted order (INSERT … ON CONFLICT DO NOTHING: between programs the UNIQUE grant_key decides who
compensates a key; the loser's line is excluded in the same transaction), then claim rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from claims.engine import Reason, require_postgresql, staging
from claims.engine.common import STAGE_ENTITLEMENTS, STAGE_LINES, fetch_all, scoped_sql
from claims.engine.staging import EMPTY_LINES_HASH, lines_hash_sql
from claims.inputs import (
    drop_scope,
    input_snapshot,
    program_computation_record,
    program_scope,
    subject_rechecks_record,
)
from claims.models import Claim, ClaimStatus, Policy, Program, ProgramRun
from claims.remedies import coupon_duplicates_detect_locked
from support_portal.core.audit import audit_context
from support_portal.core.business_days import BusinessCalendar, business_calendar

Actor = AbstractBaseUser | AnonymousUser | None


class ProgramNotRunnable(Exception):
    """The program's status does not allow a run (e.g. closed)."""


class ProgramStatusRefused(Exception):
    """A program status change that the transitions do not allow; nothing was changed."""

    def __init__(self, *, program: str, current: str, wanted: str) -> None:
        super().__init__(f"program {program}: cannot go from {current} to {wanted}")
        self.program = program
        self.current = current
        self.wanted = wanted


@dataclasses.dataclass(frozen=True)
class ProgramRunResult:
    total: int
    created: int
    updated: int
    sent_to_rereview: int
    unchanged: int
    # False when no input had changed since the last run and nothing was computed (claims.inputs).
    computed: bool = True
    # An incremental run: how many subjects it recomputed (claims.inputs); None: every subject.
    scope: int | None = None
    # Wall seconds per step of the run (stage, grants, diff, insert, update, …), for the benchmark.
    timings: dict[str, float] = dataclasses.field(default_factory=dict, compare=False)


# --- program_run: the engine's stage tables (claims.engine.staging) turned into rows, set-based ---

S = STAGE_ENTITLEMENTS
L = STAGE_LINES
DECIDED = "(" + ", ".join(f"'{status}'" for status in sorted(ClaimStatus.decided())) + ")"

# Only the subjects whose claim is created or changed (claims_stage_diff): an unchanged claim (same
# eligibility and lines hash) holds exactly the grants its lines need already, written with it.
# The unique index keeps every probe into the wanted keys an index lookup whatever the planner believes
# of claims_grant: in a first run its statistics predate the rows this run just inserted (one row, say,
# for a program that now holds 60,000), and the release step's anti join then scanned the whole stage
# once per grant — quadratic: 146 s of a 3M-customer overpayment run, against 15 s at 1M.
WANTED_GRANTS_SQL = f"""
DROP TABLE IF EXISTS claims_stage_grant;
CREATE TEMP TABLE claims_stage_grant AS
SELECT l.cover_key AS grant_key, min(l.subject) AS subject, sum(l.amount_jpy)::integer AS amount_jpy
  FROM {L} l
  JOIN {S} e ON e.subject = l.subject AND e.eligible
  JOIN claims_stage_diff d ON d.subject = l.subject
 WHERE l.excluded_reason = '' AND l.cover_key <> ''
 GROUP BY l.cover_key;
CREATE UNIQUE INDEX ON claims_stage_grant (grant_key);
ANALYZE claims_stage_grant;
"""

# New keys in sorted order (the lock order); a key another program took meanwhile is not inserted.
INSERT_GRANTS_SQL = """
INSERT INTO claims_grant (grant_key, program_id, subject, amount_jpy, created_at)
SELECT w.grant_key, %(program)s, w.subject, w.amount_jpy, %(now)s
  FROM claims_stage_grant w
 WHERE NOT EXISTS (SELECT 1 FROM claims_grant g WHERE g.grant_key = w.grant_key)
 ORDER BY w.grant_key
    ON CONFLICT (grant_key) DO NOTHING
"""

# After our insert (a new snapshot: READ COMMITTED), whether another program holds a key we want: it
# committed it before our insert read the table, or while our insert waited on its uncommitted row.
HELD_ELSEWHERE_SQL = """
SELECT EXISTS (
    SELECT 1 FROM claims_stage_grant w JOIN claims_grant g ON g.grant_key = w.grant_key
     WHERE g.program_id <> %(program)s
)
"""

SETTLE_GRANTS_SQL = """
UPDATE claims_grant g SET subject = w.subject, amount_jpy = w.amount_jpy
  FROM claims_stage_grant w
 WHERE g.grant_key = w.grant_key AND g.program_id = %(program)s
   AND (g.subject, g.amount_jpy) IS DISTINCT FROM (w.subject, w.amount_jpy);
DELETE FROM claims_grant g
 USING claims_stage_diff d
 WHERE g.program_id = %(program)s AND g.subject = d.subject
   AND NOT EXISTS (SELECT 1 FROM claims_stage_grant w WHERE w.grant_key = g.grant_key);
DROP TABLE claims_stage_grant;
"""
# An incremental run's changed subjects are few: their grants are looked up by (program, subject), one
# index descent per subject (`= ANY(ARRAY(…))` is an index condition the planner cannot turn into a
# hash of the program's grants). With a join, statistics taken before the program's first run (one grant,
# say, where it now holds 1M) made a hash join read every grant of the program: 0.36 s of a
# one-submission run at 3M. A full run keeps the join: there every subject may have changed.
SCOPED_SETTLE_GRANTS_SQL = SETTLE_GRANTS_SQL.replace(
    """ USING claims_stage_diff d
 WHERE g.program_id = %(program)s AND g.subject = d.subject""",
    """ WHERE g.program_id = %(program)s AND g.subject = ANY(ARRAY(SELECT subject FROM claims_stage_diff))""",
)
assert SCOPED_SETTLE_GRANTS_SQL != SETTLE_GRANTS_SQL

SUMMARISE_SQL = f"""
UPDATE {S} e SET amount_jpy = CASE WHEN e.eligible THEN x.total ELSE 0 END, lines_hash = x.lines_hash
  FROM (SELECT l.subject, sum(l.amount_jpy) AS total, {lines_hash_sql("l")} AS lines_hash
          FROM {L} l GROUP BY l.subject) x
 WHERE e.subject = x.subject;
"""

CLAIM_COLUMNS = (
    "customer_id",
    "payee_id",
    "eligible",
    "reason",
    "amount_jpy",
    "official_submission_id",
    "payout_method",
    "provider_request_due_on",
    "note",
    "lines_hash",
)
# What a subject no longer produced by the engine becomes (source data changed): not eligible, no lines.
VANISHED_VALUES = {
    "eligible": "false",
    "reason": f"'{Reason.NOT_COVERED}'",
    "amount_jpy": "0",
    "payout_method": "''",
    "note": "''",
    "lines_hash": f"'{EMPTY_LINES_HASH}'",
}


def _new_value(column: str) -> str:
    default = VANISHED_VALUES.get(column)
    return f"COALESCE(e.{column}, {default})" if default else f"e.{column}"


# Every subject whose claim must be created or changed, with its new values: one FULL JOIN of the
# program's claims and the stage (unchanged claims, the usual case on a re-run, drop out here). An
# incremental run compares the claims of its scope only (SCOPED_DIFF_SQL).
DIFF_SQL = f"""
DROP TABLE IF EXISTS claims_stage_diff, claims_stage_updated;
CREATE TEMP TABLE claims_stage_diff AS
SELECT c.id AS claim_id, c.status AS old_status, COALESCE(e.subject, c.subject) AS subject,
       c.lines_hash IS DISTINCT FROM {_new_value("lines_hash")} AS lines_changed,
       {", ".join(f"{_new_value(column)} AS {column}" for column in CLAIM_COLUMNS)}
  FROM (SELECT * FROM claims_claim WHERE program_id = %(program)s /*in_scope:subject*/) c
  FULL JOIN {S} e ON e.subject = c.subject
 WHERE c.id IS NULL
    OR ({", ".join(f"c.{column}" for column in CLAIM_COLUMNS)})
       IS DISTINCT FROM ({", ".join(_new_value(column) for column in CLAIM_COLUMNS)});
CREATE TEMP TABLE claims_stage_updated (claim_id bigint, subject text, lines_changed boolean, rereview boolean);
"""
SCOPED_DIFF_SQL = scoped_sql(DIFF_SQL, scoped=True)
DIFF_SQL = scoped_sql(DIFF_SQL, scoped=False)

INSERT_CLAIMS_SQL = f"""
WITH created AS (
    INSERT INTO claims_claim (program_id, subject, status, approved_amount_jpy, computed_at, prepared_by_id,
                              decided_by_id, qa_review, {", ".join(CLAIM_COLUMNS)})
    SELECT %(program)s, d.subject, '{ClaimStatus.COMPUTED}', NULL, %(now)s, %(prepared_by)s, NULL, false,
           {", ".join(f"d.{column}" for column in CLAIM_COLUMNS)}
      FROM claims_stage_diff d
     WHERE d.claim_id IS NULL
     ORDER BY d.subject
    RETURNING id, subject
)
INSERT INTO claims_claimline (claim_id, position, label, amount_jpy, rule, grant_key, excluded_reason)
SELECT created.id, l.position, l.label, l.amount_jpy, l.rule, l.grant_key, l.excluded_reason
  FROM created JOIN {L} l ON l.subject = created.subject
"""

# The status guard: a claim decided while the run computed keeps that decision (the next run sees it).
UPDATE_CLAIMS_SQL = f"""
WITH changed AS (
    UPDATE claims_claim c
       SET {", ".join(f"{column} = d.{column}" for column in CLAIM_COLUMNS)},
           status = CASE WHEN c.status IN {DECIDED} THEN '{ClaimStatus.NEEDS_REREVIEW}' ELSE c.status END,
           computed_at = %(now)s
      FROM claims_stage_diff d
     WHERE c.id = d.claim_id AND c.status = d.old_status
    RETURNING c.id, d.subject, d.lines_changed, d.old_status IN {DECIDED}
)
INSERT INTO claims_stage_updated SELECT * FROM changed;
DELETE FROM claims_claimline l USING claims_stage_updated u WHERE l.claim_id = u.claim_id AND u.lines_changed;
INSERT INTO claims_claimline (claim_id, position, label, amount_jpy, rule, grant_key, excluded_reason)
SELECT u.claim_id, l.position, l.label, l.amount_jpy, l.rule, l.grant_key, l.excluded_reason
  FROM claims_stage_updated u JOIN {L} l ON l.subject = u.subject
 WHERE u.lines_changed;
"""

COUNTS_SQL = f"""
SELECT CASE WHEN %(scoped)s THEN (SELECT count(*) FROM claims_claim WHERE program_id = %(program)s)
            ELSE (SELECT count(*) FROM {S}) + (SELECT count(*) FROM claims_stage_diff d WHERE NOT EXISTS (
                  SELECT 1 FROM {S} e WHERE e.subject = d.subject)) END,
       (SELECT count(*) FROM claims_stage_diff WHERE claim_id IS NULL),
       (SELECT count(*) FROM claims_stage_updated),
       (SELECT count(*) FROM claims_stage_updated WHERE rereview)
"""


def _execute(sql: str, params: dict[str, Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _summarise_and_diff(params: dict[str, Any]) -> None:
    _execute(SUMMARISE_SQL)
    _execute(SCOPED_DIFF_SQL if params["scoped"] else DIFF_SQL, params)


def _take_grants(*, program: Program, params: dict[str, Any]) -> None:
    """Makes the grants of the changed claims match their eligible lines; keys another program won are
    excluded (and the summary and diff recomputed)."""
    _execute(WANTED_GRANTS_SQL)
    _execute(INSERT_GRANTS_SQL, params)
    # Not "fewer rows inserted than wanted": a key another run committed between our exclusion step and
    # our insert is not wanted as new at all, yet it is theirs. Ask the table who holds what we want.
    if fetch_all(HELD_ELSEWHERE_SQL, params)[0][0]:
        # The database decided: exclude those lines (and what follows from it) before settling our keys.
        staging.exclude_held_elsewhere(program)
        _summarise_and_diff(params)
        _execute(WANTED_GRANTS_SQL)
    # Keys the program holds (or just took) that no eligible line needs any more are released.
    _execute(SCOPED_SETTLE_GRANTS_SQL if params["scoped"] else SETTLE_GRANTS_SQL, params)


def _compute_and_write(
    *,
    program: Program,
    as_of: dt.datetime,
    calendar: BusinessCalendar,
    params: dict[str, Any],
    step: Callable[[str], None],
) -> None:
    """Stage (every subject, or the scope's), exclude, summarise, diff, then write grants, claims, lines."""
    staging.stage(program=program, as_of=as_of, calendar=calendar, scoped=params["scoped"])
    step("stage")
    staging.exclude_held_elsewhere(program)
    step("exclude")
    _execute(SUMMARISE_SQL)
    step("summarise")
    _execute(SCOPED_DIFF_SQL if params["scoped"] else DIFF_SQL, params)
    step("diff")
    _take_grants(program=program, params=params)
    step("grants")
    _execute(INSERT_CLAIMS_SQL, params)
    step("insert_claims_lines")
    _execute(UPDATE_CLAIMS_SQL, params)
    step("update_claims_lines")


def program_run(
    *,
    program: Program,
    actor: Actor,
    as_of: dt.datetime | None = None,
    calendar: BusinessCalendar | None = None,
    run: ProgramRun | None = None,
    recompute: bool = False,
) -> ProgramRunResult:
    """Computes every claim of the program and writes Claims, ClaimLines and Grants (idempotent).

    Set-based end to end: the engine fills TEMP tables (claims.engine.staging); grants, claims and lines
    are written by INSERT … SELECT / UPDATE … FROM statements; no per-subject Python object is built
    (login-outage-2024) and unchanged claims are not touched (no audit events).

    Incremental (claims.inputs): only the subjects whose inputs changed since the program's last run (and
    those whose answer changes with the day) are computed and compared; when there are none the run
    writes nothing and reports every claim unchanged. `recompute=True` computes every subject.
    """
    require_postgresql()
    as_of = as_of or timezone.now()
    calendar = calendar or business_calendar()  # loaded once per run
    prepared_by = actor.pk if actor is not None and actor.is_authenticated else None
    with audit_context(actor=actor, job="program_run", program=program.slug), transaction.atomic():
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: in one transaction that inserts
        # hundreds of thousands of rows, PostgreSQL re-walks the growing queue of deferred checks at
        # every statement, which made a run quadratic (20k claims: 36 s deferred vs 6 s immediate).
        # Every row here is written after the rows it references, so immediate checks are correct.
        _execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Single-pass statements over the whole population: JIT compilation costs more than it saves
        # (as in the import); SET LOCAL ends with this transaction.
        _execute("SET LOCAL jit = off")
        # Lock order: program, grants (sorted keys), claims.
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if not locked.can_run():
            raise ProgramNotRunnable(f"program {locked.slug} is {locked.status}")
        timings: dict[str, float] = {}
        clock = time.monotonic()

        def step(name: str) -> None:
            nonlocal clock
            now = time.monotonic()
            timings[name] = round(now - clock, 3)
            clock = now

        # The run's own claims and lines are its output: their statements leave no change keys
        # (claims.inputs); reset below, and undone with the transaction if the run fails.
        _execute("SELECT set_config('claims.program_run', 'on', true)")
        snapshot = input_snapshot()
        scope = None if recompute else program_scope(program=locked, as_of=as_of, calendar=calendar)
        step("scope")
        if scope == 0:
            drop_scope()
            _execute("SELECT set_config('claims.program_run', '', true)")
            total = Claim.objects.filter(program=locked).count()
            step("inputs_unchanged")
            if run is not None:
                ProgramRun.objects.filter(pk=run.pk).update(total=total)
            return ProgramRunResult(
                total=total,
                created=0,
                updated=0,
                sent_to_rereview=0,
                unchanged=total,
                computed=False,
                scope=0,
                timings=timings,
            )
        if locked.policy == Policy.COUPON_OUTAGE_2023:
            # Class-B2 duplicates found now are queued for agents (claims.remedies); the engine reads the queue.
            # Those this run queues are changes this run has not seen yet: the scope is read again.
            if coupon_duplicates_detect_locked(locked) and scope is not None:
                scope = program_scope(program=locked, as_of=as_of, calendar=calendar)
            step("detect_duplicates")
        scoped = scope is not None
        params = {"program": locked.pk, "now": as_of, "prepared_by": prepared_by, "scoped": scoped}
        _compute_and_write(program=locked, as_of=as_of, calendar=calendar, params=params, step=step)
        total, created, updated, rereview = fetch_all(COUNTS_SQL, params)[0]
        if run is not None:
            ProgramRun.objects.filter(pk=run.pk).update(total=total)
        subject_rechecks_record(program=locked, scoped=scoped)
        _execute("DROP TABLE claims_stage_diff, claims_stage_updated")
        staging.drop_tables()
        drop_scope()
        _execute("SELECT set_config('claims.program_run', '', true)")
        program_computation_record(program=locked, snapshot=snapshot, as_of=as_of, calendar=calendar)
    step("counts_commit")
    return ProgramRunResult(
        total=total,
        created=created,
        updated=updated,
        sent_to_rereview=rereview,
        unchanged=total - created - updated,
        scope=scope,
        timings=timings,
    )


def program_claims_submit_for_review(*, program: Program, actor: Actor) -> int:
    """Sends the program's eligible `computed` claims to review (`pending_review`), in one UPDATE.

    The step between a run and the review queues: the manager looks at the run's result, then releases
    it. Ineligible claims stay `computed` (nothing to pay; the breakdown explains why). Locks the program
    row first (the lock order of program_run), so it never interleaves with a run of the same program;
    the statement-level history trigger records every claim changed, with the actor. Returns the count.
    """
    with audit_context(actor=actor, action="program_claims_submit_for_review"), transaction.atomic():
        Program.objects.select_for_update().get(pk=program.pk)
        return _execute(
            "UPDATE claims_claim SET status = %(pending)s"
            " WHERE program_id = %(program)s AND status = %(computed)s AND eligible",
            {"program": program.pk, "pending": ClaimStatus.PENDING_REVIEW, "computed": ClaimStatus.COMPUTED},
        )


def program_set_status(*, program: Program, status: str, actor: Actor) -> Program:
    """Moves a program along draft → preview → open → closed (or preview back to draft); audited.

    The program row is locked first (the lock order of `program_run`), then the transition is checked
    on the fresh row: two managers clicking at once get one change and one refusal.
    """
    if status not in Program.Status.values:
        raise ProgramStatusRefused(program=program.slug, current=program.status, wanted=status)
    with audit_context(actor=actor, action="program_set_status"), transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if not locked.can_set_status(status):
            raise ProgramStatusRefused(program=locked.slug, current=locked.status, wanted=status)
        locked.status = status
        locked.save(update_fields=["status"])
    program.status = status
    return locked


def program_run_start(*, program: Program, actor: Actor) -> ProgramRun:
    """Records a queued run and sends the task after commit (the admin's "Run" button)."""
    from claims.tasks import program_run_task  # noqa: PLC0415 - tasks import this module
    from support_portal.core.enqueue import enqueue_on_commit  # noqa: PLC0415

    require_postgresql()
    if not program.can_run():
        raise ProgramNotRunnable(f"program {program.slug} is {program.status}")
    with audit_context(actor=actor), transaction.atomic():
        run = ProgramRun.objects.create(
            program=program, actor_id=actor.pk if actor is not None and actor.is_authenticated else None
        )
        enqueue_on_commit(program_run_task, run.pk)
    return run


def program_run_execute(*, run: ProgramRun) -> ProgramRunResult | None:
    """Executes a recorded run, keeping its progress row up to date (status, counts, times)."""
    ProgramRun.objects.filter(pk=run.pk).update(status=ProgramRun.Status.RUNNING, started_at=timezone.now())
    try:
        result = program_run(program=run.program, actor=run.actor, run=run)
    except Exception as exc:
        ProgramRun.objects.filter(pk=run.pk).update(
            status=ProgramRun.Status.FAILED, finished_at=timezone.now(), error=repr(exc)[:2000]
        )
        raise
    ProgramRun.objects.filter(pk=run.pk).update(
        status=ProgramRun.Status.SUCCEEDED,
        finished_at=timezone.now(),
        total=result.total,
        processed=result.total,
        created=result.created,
        updated=result.updated,
        sent_to_rereview=result.sent_to_rereview,
        inputs_unchanged=not result.computed,
    )
    return result
