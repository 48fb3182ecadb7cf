"""Payout batches: build set-based, run chunk by chunk, resumable, pausable, cancellable.

- `payout_batch_create` — one batch row plus ONE `INSERT … SELECT` of the payouts of every approved claim
  of the program (optionally one method) that has none, pointing at the batch.
- `payout_batch_process_chunk` — claims the next chunk of the batch's `created` payouts by locking their
  CLAIM rows with `FOR UPDATE SKIP LOCKED` (lock order claim → payout, as everywhere in payouts), asks the
  provider for each (with the payout's idempotency key) and then records the chunk set-based: secrets
  (one bulk INSERT), payouts → issued (one UPDATE … FROM unnest), transitions and notice outbox rows (one
  INSERT … SELECT each) and the batch counters — all in the one transaction. Two workers on the same
  batch skip each other's rows; a worker killed mid-chunk rolls the chunk back and the next run (the
  sweep re-enqueues running batches whose progress stalled) does it again; the provider sees the same
  keys and issues nothing twice.
- Pause and cancel are honoured between chunks (each chunk re-reads the batch status). Cancelling moves
  the batch's not-yet-issued payouts to `cancelled` (nothing more is paid for them until someone acts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from claims.models import Claim, ClaimStatus, PayoutMethod, Program
from payouts import crypto
from payouts.models import (
    BatchStatus,
    Payout,
    PayoutBatch,
    PayoutBatchTransition,
    PayoutSecret,
    PayoutStatus,
    PayoutTransition,
)
from payouts.notices import enqueue_send_on_commit, notices_queue_for_payouts
from payouts.providers import provider_for, registered_methods
from payouts.providers.base import ProviderNotRegistered, ProviderPermanentError, ProviderTemporaryError
from payouts.services import ERROR_MAX_LENGTH, _actor_id, _insert_payouts
from support_portal.core.audit import audit_context
from support_portal.core.enqueue import enqueue_on_commit

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None

CHUNK_SIZE = 200
ANALYZE_AFTER = 50_000


class BatchRefused(Exception):
    """A batch step that is not allowed; nothing was changed."""

    def __init__(self, *, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


def _move(batch: PayoutBatch, *, to: str, actor: Actor, now: dt.datetime, note: str = "") -> None:
    if not batch.can_transition(to):
        raise BatchRefused(
            code="status_not_allowed", message=f"batch {batch.pk}: cannot move from {batch.status} to {to}"
        )
    before = batch.status
    batch.status = to
    fields = ["status"]
    if to == BatchStatus.RUNNING and batch.started_at is None:
        batch.started_at = now
        fields.append("started_at")
    if to in (BatchStatus.RUNNING, BatchStatus.COMPLETED, BatchStatus.CANCELLED):
        batch.last_progress_at = now
        fields.append("last_progress_at")
    if to in (BatchStatus.COMPLETED, BatchStatus.CANCELLED):
        batch.finished_at = now
        fields.append("finished_at")
    batch.save(update_fields=fields)
    PayoutBatchTransition.objects.create(
        batch=batch, at=now, actor_id=_actor_id(actor), status_before=before, status_after=to, note=note[:500]
    )


def _enqueue_run(batch_id: int) -> None:
    from payouts.tasks import payout_batch_run_task  # noqa: PLC0415 - cycle (tasks import this module)

    enqueue_on_commit(payout_batch_run_task, batch_id)


def payout_batch_create(
    *, program: Program, actor: Actor, method: str = "", note: str = "", start: bool = False
) -> PayoutBatch:
    """A new batch with the payouts of the program's approved claims that have none (one INSERT … SELECT);
    `start` also starts it (the run task is sent after commit). Refused (`nothing_to_pay`, nothing
    written) when there is none: a second build of the same program at the same time (beat delivered
    twice, beat and a person) waits for the first on the program row and then finds nothing, so
    building is idempotent per program and no empty batch is left behind."""
    if method and (method not in registered_methods() or method == PayoutMethod.BANK_TRANSFER):
        raise BatchRefused(code="method_not_supported", message=f"no provider issues {method!r} in a batch")
    with audit_context(actor=actor, action="payout_batch_create"), transaction.atomic():
        Program.objects.select_for_update().filter(pk=program.pk).first()
        now = timezone.now()
        batch = PayoutBatch.objects.create(
            program=program, method=method, created_by_id=_actor_id(actor), created_at=now, note=note[:200]
        )
        PayoutBatchTransition.objects.create(
            batch=batch, at=now, actor_id=_actor_id(actor), status_before="", status_after=BatchStatus.SCHEDULED
        )
        created = _insert_payouts(program=program, actor=actor, method=method, batch_id=batch.pk)
        if created == 0:  # raised inside the transaction: the batch row and its transition roll back
            raise BatchRefused(
                code="nothing_to_pay", message=f"program {program.pk}: no approved claim without a payout"
            )
        if created >= ANALYZE_AFTER:
            # Fresh statistics before the run plans its chunk queries (autovacuum would come later).
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {Payout._meta.db_table}")
        batch.total_count = created
        batch.save(update_fields=["total_count"])
        if start:
            _move(batch, to=BatchStatus.RUNNING, actor=actor, now=now)
            _enqueue_run(batch.pk)
    logger.info("payout batch created", extra={"batch_id": batch.pk, "payouts": created})
    return batch


def _locked(batch: PayoutBatch) -> PayoutBatch:
    locked = PayoutBatch.objects.select_for_update().filter(pk=batch.pk).first()
    if locked is None:
        raise BatchRefused(code="not_found", message=f"batch {batch.pk} does not exist")
    return locked


def payout_batch_start(*, batch: PayoutBatch, actor: Actor) -> PayoutBatch:
    """Starts (or resumes) a scheduled or paused batch; the run task is sent after commit."""
    with audit_context(actor=actor, action="payout_batch_start"), transaction.atomic():
        locked = _locked(batch)
        _move(locked, to=BatchStatus.RUNNING, actor=actor, now=timezone.now())
        _enqueue_run(locked.pk)
        return locked


def payout_batch_pause(*, batch: PayoutBatch, actor: Actor) -> PayoutBatch:
    """Pauses a batch: the worker stops after the chunk it is on; start resumes where it stopped."""
    with audit_context(actor=actor, action="payout_batch_pause"), transaction.atomic():
        locked = _locked(batch)
        _move(locked, to=BatchStatus.PAUSED, actor=actor, now=timezone.now())
        return locked


def payout_batch_cancel(*, batch: PayoutBatch, actor: Actor) -> PayoutBatch:
    """Cancels a batch: the worker stops after its chunk; the payouts not issued yet are cancelled."""
    with audit_context(actor=actor, action="payout_batch_cancel"), transaction.atomic():
        locked = _locked(batch)
        now = timezone.now()
        _move(locked, to=BatchStatus.CANCELLED, actor=actor, now=now)
        # Claims before payouts (the fixed lock order); a worker holding a chunk finishes it first.
        claim_ids = list(
            Payout.objects.filter(batch=locked, status=PayoutStatus.CREATED).values_list("claim_id", flat=True)
        )
        list(Claim.objects.select_for_update().filter(pk__in=claim_ids).order_by("pk").values_list("pk"))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH moved AS (
                    UPDATE {Payout._meta.db_table} SET status = 'cancelled', updated_at = %(now)s
                    WHERE batch_id = %(batch)s AND status = 'created'
                    RETURNING id
                )
                INSERT INTO {PayoutTransition._meta.db_table}
                    (payout_id, at, actor_id, status_before, status_after, note)
                SELECT id, %(now)s, %(actor)s, 'created', 'cancelled', 'batch cancelled' FROM moved
                """,
                {"now": now, "batch": locked.pk, "actor": _actor_id(actor)},
            )
            cancelled = cursor.rowcount
        PayoutBatch.objects.filter(pk=locked.pk).update(cancelled_count=F("cancelled_count") + cancelled)
        locked.refresh_from_db()
        return locked


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    state: str  # "processed", "empty" (nothing left after after_id) or the batch status when not running
    last_id: int = 0
    issued: int = 0


_CANDIDATES_SQL = """
SELECT id, claim_id FROM {payout}
WHERE batch_id = %(batch)s AND status = 'created' AND id > %(after)s
ORDER BY id LIMIT %(limit)s
"""


def payout_batch_process_chunk(*, batch_id: int, after_id: int = 0, chunk_size: int = CHUNK_SIZE) -> ChunkResult:
    """Issues the next chunk (payouts with id > after_id that no other worker holds); see the module doc."""
    crypto.require_key()
    with audit_context(actor=None, action="payout_batch_chunk"), transaction.atomic():
        batch = PayoutBatch.objects.filter(pk=batch_id).first()
        if batch is None:
            return ChunkResult(state="gone")
        if batch.status != BatchStatus.RUNNING:
            return ChunkResult(state=batch.status)
        with connection.cursor() as cursor:
            cursor.execute(
                _CANDIDATES_SQL.format(payout=Payout._meta.db_table),
                {"batch": batch_id, "after": after_id, "limit": chunk_size},
            )
            candidates = cursor.fetchall()
        if not candidates:
            return ChunkResult(state="empty")
        last_id = max(row[0] for row in candidates)
        claim_ids = sorted({row[1] for row in candidates})
        claims = {
            c.pk: c
            for c in Claim.objects.select_for_update(skip_locked=True)
            .filter(pk__in=claim_ids)
            .order_by("pk")
            .only("pk", "status", "approved_amount_jpy")
        }
        payouts = list(
            Payout.objects.select_for_update()
            .filter(pk__in=[row[0] for row in candidates], claim_id__in=list(claims), status=PayoutStatus.CREATED)
            .order_by("pk")
        )
        issued = _issue_chunk(batch, payouts, claims)
        return ChunkResult(state="processed", last_id=last_id, issued=issued)


def _issue_chunk(batch: PayoutBatch, payouts: list[Payout], claims: dict[int, Claim]) -> int:
    now = timezone.now()
    issued: list[tuple[Payout, str, str]] = []  # payout, provider name, reference
    secrets: list[PayoutSecret] = []
    detached: list[int] = []
    expired = failed = 0
    for payout in payouts:
        claim = claims[payout.claim_id]
        if claim.status != ClaimStatus.APPROVED or claim.approved_amount_jpy != payout.amount_jpy:
            detached.append(payout.pk)  # left to the sweep, which issues it once the claim is approved again
            continue
        if payout.expires_at is not None and now > payout.expires_at:
            _payout_move(payout, PayoutStatus.EXPIRED, now, "receipt deadline passed before issue")
            expired += 1
            continue
        try:
            provider = provider_for(payout.method)
        except ProviderNotRegistered:
            detached.append(payout.pk)
            continue
        try:
            result = provider.issue(
                idempotency_key=payout.idempotency_key,
                amount_jpy=payout.amount_jpy,
                expires_at=payout.expires_at,
                payee_ref=str(payout.payee_id),
            )
        except ProviderTemporaryError as exc:
            Payout.objects.filter(pk=payout.pk).update(
                attempts=F("attempts") + 1,
                provider=provider.name,
                last_error=f"temporary: {exc}"[:ERROR_MAX_LENGTH],
                updated_at=now,
            )
            continue
        except ProviderPermanentError as exc:
            payout.attempts += 1
            payout.provider = provider.name
            payout.last_error = f"permanent: {exc}"[:ERROR_MAX_LENGTH]
            _payout_move(payout, PayoutStatus.FAILED, now, payout.last_error, ("attempts", "provider", "last_error"))
            failed += 1
            continue
        ciphertext, masked = PayoutSecret.seal(code=result.code, pin=result.pin, url=result.url)
        secrets.append(PayoutSecret(payout_id=payout.pk, ciphertext=ciphertext, masked=masked, created_at=now))
        issued.append((payout, provider.name, result.reference))

    ids = [payout.pk for payout, _, _ in issued]
    if issued:
        PayoutSecret.objects.bulk_create(secrets)
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH moved AS (
                    UPDATE {Payout._meta.db_table} p
                    SET status = 'issued', provider = v.provider, provider_reference = v.reference,
                        issued_at = %(now)s, updated_at = %(now)s, attempts = p.attempts + 1, last_error = ''
                    FROM unnest(%(ids)s::bigint[], %(providers)s::text[], %(references)s::text[])
                         AS v(id, provider, reference)
                    WHERE p.id = v.id AND p.status = 'created'
                    RETURNING p.id
                )
                INSERT INTO {PayoutTransition._meta.db_table}
                    (payout_id, at, actor_id, status_before, status_after, note)
                SELECT id, %(now)s, NULL, 'created', 'issued', %(note)s FROM moved
                """,
                {
                    "now": now,
                    "ids": ids,
                    "providers": [name for _, name, _ in issued],
                    "references": [reference for _, _, reference in issued],
                    "note": f"batch {batch.pk}",
                },
            )
        notices_queue_for_payouts(payout_ids=ids, now=now)
        enqueue_send_on_commit()
    if detached:
        Payout.objects.filter(pk__in=detached).update(batch=None)
    PayoutBatch.objects.filter(pk=batch.pk).update(
        issued_count=F("issued_count") + len(ids),
        failed_count=F("failed_count") + failed,
        expired_count=F("expired_count") + expired,
        total_count=F("total_count") - len(detached),
        last_progress_at=now,
    )
    return len(ids)


def _payout_move(payout: Payout, to: str, now: dt.datetime, note: str, fields: tuple[str, ...] = ()) -> None:
    before = payout.status
    payout.status = to
    payout.updated_at = now
    payout.save(update_fields=["status", "updated_at", *fields])
    PayoutTransition.objects.create(
        payout=payout, at=now, actor_id=None, status_before=before, status_after=to, note=note[:ERROR_MAX_LENGTH]
    )


def payout_batch_complete_if_done(*, batch_id: int) -> bool:
    """Marks a running batch completed when none of its payouts is `created` any more (conditional)."""
    with audit_context(actor=None, action="payout_batch_complete"), transaction.atomic():
        batch = PayoutBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.status != BatchStatus.RUNNING:
            return False
        if Payout.objects.filter(batch_id=batch_id, status=PayoutStatus.CREATED).exists():
            return False
        _move(batch, to=BatchStatus.COMPLETED, actor=None, now=timezone.now())
        return True


def payout_batch_run(*, batch_id: int, chunk_size: int = CHUNK_SIZE) -> str:
    """Works through the batch chunk by chunk until it is done, paused, cancelled or only rows held by
    another worker (or waiting for a provider retry) are left; returns the final state."""
    after = 0
    while True:
        result = payout_batch_process_chunk(batch_id=batch_id, after_id=after, chunk_size=chunk_size)
        if result.state == "processed":
            after = result.last_id
            continue
        if result.state == "empty":
            return "completed" if payout_batch_complete_if_done(batch_id=batch_id) else "waiting"
        return result.state


def programs_with_unpaid_approved_claims() -> list[Program]:
    """Programs with at least one approved claim (positive amount) that has no payout (one query)."""
    return list(
        Program.objects.filter(
            pk__in=Claim.objects.filter(status=ClaimStatus.APPROVED, approved_amount_jpy__gt=0)
            .exclude(payouts__isnull=False)
            .values("program_id")
        ).order_by("pk")
    )


def payout_batches_build_scheduled() -> list[int]:
    """The beat job: one started batch per program that has approved claims without payouts. A program
    another build took meanwhile (it waited on the program row) is skipped, leaving no empty batch."""
    ids = []
    for program in programs_with_unpaid_approved_claims():
        try:
            batch = payout_batch_create(program=program, actor=None, note="scheduled (beat)", start=True)
        except BatchRefused as exc:
            if exc.code != "nothing_to_pay":
                raise
            continue
        ids.append(batch.pk)
    return ids


def batch_ids_stalled(*, older_than: dt.datetime) -> list[int]:
    """Running batches without progress since `older_than` (their worker died or is waiting on retries)."""
    return list(
        PayoutBatch.objects.filter(status=BatchStatus.RUNNING, last_progress_at__lte=older_than)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
