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
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.utils import timezone

from claims.engine import Entitlement, Reason, compute_entitlements, finalize, require_postgresql
from claims.engine.common import fetch_all
from claims.models import ClaimLine, ClaimStatus, Program, ProgramRun
from support_portal.core.audit import audit_context
from support_portal.core.business_days import BusinessCalendar, business_calendar

Actor = AbstractBaseUser | AnonymousUser | None
BATCH_SIZE = 5000


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


# A claim as compared between runs: the engine's output, lines included.
ClaimSignature = tuple[Any, ...]


def _signature(entitlement: Entitlement) -> ClaimSignature:
    return (
        entitlement.customer_id,
        entitlement.payee_id,
        entitlement.eligible,
        entitlement.reason,
        entitlement.amount_jpy,
        entitlement.official_submission_id,
        entitlement.payout_method,
        entitlement.provider_request_due_on,
        entitlement.note,
        tuple(
            (line.label, line.amount_jpy, line.rule, line.grant_key, line.excluded_reason) for line in entitlement.lines
        ),
    )


EXISTING_CLAIMS_SQL = """
SELECT c.id, c.subject, c.status, c.customer_id, c.payee_id, c.eligible, c.reason, c.amount_jpy,
       c.official_submission_id, c.payout_method, c.provider_request_due_on, c.note,
       COALESCE(array_agg(l.label ORDER BY l.position) FILTER (WHERE l.id IS NOT NULL), '{}'),
       COALESCE(array_agg(l.amount_jpy ORDER BY l.position) FILTER (WHERE l.id IS NOT NULL), '{}'),
       COALESCE(array_agg(l.rule ORDER BY l.position) FILTER (WHERE l.id IS NOT NULL), '{}'),
       COALESCE(array_agg(l.grant_key ORDER BY l.position) FILTER (WHERE l.id IS NOT NULL), '{}'),
       COALESCE(array_agg(l.excluded_reason ORDER BY l.position) FILTER (WHERE l.id IS NOT NULL), '{}')
  FROM claims_claim c
  LEFT JOIN claims_claimline l ON l.claim_id = c.id
 WHERE c.program_id = %(program)s
 GROUP BY c.id
"""


def _existing_claims(program: Program) -> dict[str, tuple[int, str, ClaimSignature]]:
    """subject -> (claim id, status, signature) for every claim of the program, in one query.

    Not row-locked (FOR UPDATE of a million claims would rewrite every tuple): runs of one program are
    serialised by the program row lock, and the UPDATE only applies where the status is still the one
    read here, so a decision taken meanwhile is never overwritten (the next run sees it).
    """
    result = {}
    for row in fetch_all(EXISTING_CLAIMS_SQL, {"program": program.pk}):
        lines = tuple(zip(*row[12:17], strict=True))
        result[row[1]] = (row[0], row[2], (*row[3:12], lines))
    return result


INSERT_GRANTS_SQL = """
INSERT INTO claims_grant (grant_key, program_id, subject, amount_jpy, created_at)
SELECT k, %(program)s, s, a, %(now)s
  FROM unnest(%(keys)s::text[], %(subjects)s::text[], %(amounts)s::int[]) AS t(k, s, a)
 ORDER BY k
ON CONFLICT (grant_key) DO NOTHING
RETURNING grant_key
"""

UPDATE_GRANTS_SQL = """
UPDATE claims_grant g SET subject = t.s, amount_jpy = t.a
  FROM unnest(%(keys)s::text[], %(subjects)s::text[], %(amounts)s::int[]) AS t(k, s, a)
 WHERE g.grant_key = t.k AND g.program_id = %(program)s
   AND (g.subject, g.amount_jpy) IS DISTINCT FROM (t.s, t.a)
"""


def _wanted_grants(entitlements: Iterable[Entitlement]) -> dict[str, tuple[str, int]]:
    return {
        key: (entitlement.subject, amount)
        for entitlement in entitlements
        for key, amount in entitlement.paid_grant_keys().items()
    }


def _take_grants(*, program: Program, entitlements: list[Entitlement], now: dt.datetime) -> None:
    """Makes the program's grants match its eligible lines; lines whose key another program won are excluded."""
    wanted = _wanted_grants(entitlements)
    own = {
        key: (subject, amount)
        for key, subject, amount in fetch_all(
            "SELECT grant_key, subject, amount_jpy FROM claims_grant WHERE program_id = %s", [program.pk]
        )
    }
    new_keys = sorted(set(wanted) - set(own))
    if new_keys:
        inserted = {
            row[0]
            for row in fetch_all(
                INSERT_GRANTS_SQL,
                {
                    "program": program.pk,
                    "now": now,
                    "keys": new_keys,
                    "subjects": [wanted[k][0] for k in new_keys],
                    "amounts": [wanted[k][1] for k in new_keys],
                },
            )
        }
        lost = [key for key in new_keys if key not in inserted]
        if lost:
            # Another program's run committed these keys after our preview: the database decided.
            owners = dict(
                fetch_all(
                    "SELECT g.grant_key, p.slug FROM claims_grant g JOIN claims_program p ON p.id = g.program_id"
                    " WHERE g.grant_key = ANY(%s)",
                    [lost],
                )
            )
            for entitlement in entitlements:
                entitlement.exclude_keys(owners)
                finalize(entitlement)
            wanted = _wanted_grants(entitlements)
    changed = sorted(key for key in set(wanted) & set(own) if own[key] != wanted[key])
    if changed:
        with connection.cursor() as cursor:
            cursor.execute(
                UPDATE_GRANTS_SQL,
                {
                    "program": program.pk,
                    "keys": changed,
                    "subjects": [wanted[k][0] for k in changed],
                    "amounts": [wanted[k][1] for k in changed],
                },
            )
    # Keys the program holds (or just tried to take) that no eligible line needs any more.
    stale = sorted((set(own) | set(new_keys)) - set(wanted))
    if stale:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM claims_grant WHERE program_id = %s AND grant_key = ANY(%s)", [program.pk, stale]
            )


def _vanished(subject: str) -> Entitlement:
    """A subject that had a claim but is no longer produced by the engine (source data changed)."""
    return Entitlement(subject=subject, customer_id=None, payee_id=None, eligible=False, reason=Reason.NOT_COVERED)


def _claim_values(entitlement: Entitlement) -> dict[str, Any]:
    return {
        "customer_id": entitlement.customer_id,
        "payee_id": entitlement.payee_id,
        "eligible": entitlement.eligible,
        "reason": entitlement.reason,
        "amount_jpy": entitlement.amount_jpy,
        "official_submission_id": entitlement.official_submission_id,
        "payout_method": entitlement.payout_method,
        "provider_request_due_on": entitlement.provider_request_due_on,
        "note": entitlement.note,
    }


INSERT_CLAIMS_SQL = """
INSERT INTO claims_claim (program_id, subject, customer_id, payee_id, status, eligible, reason, amount_jpy,
                          approved_amount_jpy, official_submission_id, payout_method, provider_request_due_on,
                          note, computed_at, prepared_by_id, decided_by_id, qa_review)
SELECT %(program)s, t.subject, t.customer_id, t.payee_id, %(status)s, t.eligible, t.reason, t.amount_jpy,
       NULL, t.official_submission_id, t.payout_method, t.provider_request_due_on,
       t.note, %(now)s, %(prepared_by)s, NULL, false
  FROM unnest(%(subjects)s::text[], %(customers)s::text[], %(payees)s::text[], %(eligible)s::boolean[],
              %(reasons)s::text[], %(amounts)s::int[], %(submissions)s::text[], %(payout_methods)s::text[],
              %(due)s::date[], %(notes)s::text[])
       WITH ORDINALITY AS t(subject, customer_id, payee_id, eligible, reason, amount_jpy, official_submission_id,
                            payout_method, provider_request_due_on, note, n)
 ORDER BY t.n
RETURNING id, subject
"""

INSERT_LINES_SQL = """
INSERT INTO claims_claimline (claim_id, position, label, amount_jpy, rule, grant_key, excluded_reason)
SELECT * FROM unnest(%(claims)s::bigint[], %(positions)s::int[], %(labels)s::text[], %(amounts)s::int[],
                     %(rules)s::text[], %(keys)s::text[], %(excluded)s::text[])
"""


def _insert_claims(
    batch: list[Entitlement], *, program: Program, prepared_by_id: Any, now: dt.datetime
) -> dict[str, int]:
    """One INSERT … SELECT FROM unnest(…) per batch (what bulk_create wrote, without building models)."""
    values = [_claim_values(e) for e in batch]
    rows = fetch_all(
        INSERT_CLAIMS_SQL,
        {
            "program": program.pk,
            "status": ClaimStatus.COMPUTED,
            "now": now,
            "prepared_by": prepared_by_id,
            "subjects": [e.subject for e in batch],
            "customers": [v["customer_id"] for v in values],
            "payees": [v["payee_id"] for v in values],
            "eligible": [v["eligible"] for v in values],
            "reasons": [v["reason"] for v in values],
            "amounts": [v["amount_jpy"] for v in values],
            "submissions": [v["official_submission_id"] for v in values],
            "payout_methods": [v["payout_method"] for v in values],
            "due": [v["provider_request_due_on"] for v in values],
            "notes": [v["note"] for v in values],
        },
    )
    return {subject: claim_id for claim_id, subject in rows}


def _insert_lines(claims: list[tuple[int, Entitlement]]) -> None:
    """The lines of the given claims, numbered from 1 in the entitlement's order, in one INSERT."""
    rows = [
        (claim_id, position, line)
        for claim_id, entitlement in claims
        for position, line in enumerate(entitlement.lines, start=1)
    ]
    if not rows:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            INSERT_LINES_SQL,
            {
                "claims": [claim_id for claim_id, _p, _l in rows],
                "positions": [position for _c, position, _l in rows],
                "labels": [line.label for _c, _p, line in rows],
                "amounts": [line.amount_jpy for _c, _p, line in rows],
                "rules": [line.rule for _c, _p, line in rows],
                "keys": [line.grant_key for _c, _p, line in rows],
                "excluded": [line.excluded_reason for _c, _p, line in rows],
            },
        )


def _known_customers(entitlements: list[Entitlement]) -> set[str]:
    ids = sorted({i for e in entitlements for i in (e.customer_id, e.payee_id) if i})
    if not ids:
        return set()
    return {
        row[0] for row in fetch_all("SELECT customer_id FROM customers_customer WHERE customer_id = ANY(%s)", [ids])
    }


def program_run(
    *,
    program: Program,
    actor: Actor,
    as_of: dt.datetime | None = None,
    calendar: BusinessCalendar | None = None,
    run: ProgramRun | None = None,
) -> ProgramRunResult:
    """Computes every claim of the program and writes Claims, ClaimLines and Grants (idempotent)."""
    require_postgresql()
    as_of = as_of or timezone.now()
    calendar = calendar or business_calendar()  # loaded once per run
    with audit_context(actor=actor, job="program_run", program=program.slug), transaction.atomic():
        # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: in one transaction that inserts
        # hundreds of thousands of rows, PostgreSQL re-walks the growing queue of deferred checks at
        # every statement, which made a run quadratic (20k claims: 36 s deferred vs 6 s immediate).
        # Every row here is written after the rows it references, so immediate checks are correct.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        # Lock order: program, grants (sorted keys), claims.
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if not locked.can_run():
            raise ProgramNotRunnable(f"program {locked.slug} is {locked.status}")
        entitlements = compute_entitlements(program=locked, as_of=as_of, calendar=calendar)
        if run is not None:
            ProgramRun.objects.filter(pk=run.pk).update(total=len(entitlements))
        _take_grants(program=locked, entitlements=entitlements, now=as_of)
        existing = _existing_claims(locked)
        produced = {e.subject for e in entitlements}
        entitlements += [_vanished(subject) for subject in sorted(set(existing) - produced)]
        # Payees/customers that are not (or no longer) in the customer table are kept as None.
        known = _known_customers(entitlements)
        for entitlement in entitlements:
            entitlement.customer_id = entitlement.customer_id if entitlement.customer_id in known else None
            entitlement.payee_id = entitlement.payee_id if entitlement.payee_id in known else None
        return _write_claims(program=locked, actor=actor, entitlements=entitlements, existing=existing, now=as_of)


def _write_claims(
    *,
    program: Program,
    actor: Actor,
    entitlements: list[Entitlement],
    existing: dict[str, tuple[int, str, ClaimSignature]],
    now: dt.datetime,
) -> ProgramRunResult:
    to_create: list[Entitlement] = []
    to_update: list[tuple[int, str, str, Entitlement, bool]] = []  # id, old/new status, entitlement, lines changed
    rereview = 0
    for entitlement in entitlements:
        current = existing.get(entitlement.subject)
        if current is None:
            to_create.append(entitlement)
            continue
        claim_id, status, old = current
        new = _signature(entitlement)
        if new == old:
            continue
        new_status = status
        if status in ClaimStatus.decided():
            # Never change a decided amount silently: the decision must be made again.
            new_status = ClaimStatus.NEEDS_REREVIEW
            rereview += 1
        to_update.append((claim_id, status, new_status, entitlement, new[-1] != old[-1]))

    prepared_by = actor if actor is not None and actor.is_authenticated else None
    for start in range(0, len(to_create), BATCH_SIZE):
        batch = to_create[start : start + BATCH_SIZE]
        ids = _insert_claims(batch, program=program, prepared_by_id=prepared_by.pk if prepared_by else None, now=now)
        _insert_lines([(ids[e.subject], e) for e in batch])
    for start in range(0, len(to_update), BATCH_SIZE):
        batch_updates = to_update[start : start + BATCH_SIZE]
        updated_ids = _update_claims(batch_updates, now=now)
        relined = [
            (claim_id, e)
            for claim_id, _old, _new, e, lines_changed in batch_updates
            if lines_changed and claim_id in updated_ids
        ]
        if relined:
            ClaimLine.objects.filter(claim_id__in=[claim_id for claim_id, _e in relined]).delete()
            _insert_lines(relined)
    return ProgramRunResult(
        total=len(entitlements),
        created=len(to_create),
        updated=len(to_update),
        sent_to_rereview=rereview,
        unchanged=len(entitlements) - len(to_create) - len(to_update),
    )


UPDATE_CLAIMS_SQL = """
UPDATE claims_claim c
   SET status = t.status, customer_id = t.customer_id, payee_id = t.payee_id, eligible = t.eligible,
       reason = t.reason, amount_jpy = t.amount_jpy, official_submission_id = t.official_submission_id,
       payout_method = t.payout_method, provider_request_due_on = t.provider_request_due_on, note = t.note,
       computed_at = %(now)s
  FROM unnest(%(ids)s::bigint[], %(old_statuses)s::text[], %(statuses)s::text[],
              %(customers)s::text[], %(payees)s::text[],
              %(eligible)s::boolean[], %(reasons)s::text[], %(amounts)s::int[], %(submissions)s::text[],
              %(payout_methods)s::text[], %(due)s::date[], %(notes)s::text[])
       AS t(id, old_status, status, customer_id, payee_id, eligible, reason, amount_jpy, official_submission_id,
            payout_method, provider_request_due_on, note)
 WHERE c.id = t.id AND c.status = t.old_status
RETURNING c.id
"""


def _update_claims(updates: list[tuple[int, str, str, Entitlement, bool]], *, now: dt.datetime) -> set[int]:
    """One UPDATE … FROM unnest(…) per batch: set-based, and the audit trigger records each row."""
    values = [(_claim_values(e), claim_id, status) for claim_id, _old, status, e, _lines in updates]
    with connection.cursor() as cursor:
        cursor.execute(
            UPDATE_CLAIMS_SQL,
            {
                "now": now,
                "ids": [claim_id for _v, claim_id, _s in values],
                "old_statuses": [old for _c, old, _n, _e, _l in updates],
                "statuses": [status for _v, _c, status in values],
                "customers": [v["customer_id"] for v, _c, _s in values],
                "payees": [v["payee_id"] for v, _c, _s in values],
                "eligible": [v["eligible"] for v, _c, _s in values],
                "reasons": [v["reason"] for v, _c, _s in values],
                "amounts": [v["amount_jpy"] for v, _c, _s in values],
                "submissions": [v["official_submission_id"] for v, _c, _s in values],
                "payout_methods": [v["payout_method"] for v, _c, _s in values],
                "due": [v["provider_request_due_on"] for v, _c, _s in values],
                "notes": [v["note"] for v, _c, _s in values],
            },
        )
        return {row[0] for row in cursor.fetchall()}


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
    )
    return result
