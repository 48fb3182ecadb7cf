"""Celery tasks of payouts. Tasks carry ids only; the database is the record of what is due."""

import datetime as dt
import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from payouts.batches import batch_ids_stalled, payout_batch_run, payout_batches_build_scheduled
from payouts.models import NoticeStatus, PayoutNotice
from payouts.notices import payout_notice_attempts_recover, payout_notices_send, payout_reminders_queue
from payouts.providers.base import ProviderTemporaryError
from payouts.selectors import payout_held_by_batch, payout_ids_due_for_issue
from payouts.services import PayoutRefused, payout_issue, payouts_expire_unclaimed
from support_portal.core.enqueue import enqueue_on_commit
from support_portal.core.services import sweep_run_record

logger = logging.getLogger(__name__)

ISSUE_MAX_RETRIES = 8
BATCH_STALL_SECONDS = 120
BATCH_RECHECK_SECONDS = 30


@shared_task(
    name="payouts.issue",
    autoretry_for=(ProviderTemporaryError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=ISSUE_MAX_RETRIES,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
)
def payout_issue_task(payout_id: int) -> None:
    """Issues one payout; a repeat or a payout past `created` does nothing. After the last retry the
    payout stays `created` with its error recorded, and the sweep sends it again later."""
    if payout_held_by_batch(payout_id=payout_id):  # a paused batch's payout waits (the service refuses too)
        logger.info("payout held by its batch", extra={"payout_id": payout_id})
        return
    try:
        payout_issue(payout_id=payout_id)
    except PayoutRefused as exc:
        logger.warning("payout not issued", extra={"payout_id": payout_id, "code": exc.code})


@shared_task(name="payouts.sweep", acks_late=True, soft_time_limit=50, time_limit=60)
def payouts_sweep(min_age_seconds: int = 60, batch_stall_seconds: int = BATCH_STALL_SECONDS) -> int:
    """Beat runs this every minute: re-enqueues payouts `created` for more than a minute (0: all of them),
    running batches without progress for `batch_stall_seconds`, recovers notice attempts whose sender died
    (payout_notice_attempts_recover), and the notice sender when notices wait."""
    count = len(payouts_sweep_enqueue(min_age=dt.timedelta(seconds=min_age_seconds)))
    stalled = batches_sweep_enqueue(stalled_for=dt.timedelta(seconds=batch_stall_seconds))
    # Send attempts whose sender never came back become uncertain (not sent again blindly); the provider
    # check settles those it can, the rest wait for a person.
    payout_notice_attempts_recover()
    if PayoutNotice.objects.filter(status=NoticeStatus.PENDING).exists():
        enqueue_on_commit(payout_notices_send_task)
    sweep_run_record(sweep="payouts.sweep", reenqueued=count + len(stalled), ran_at=timezone.now())
    return count + len(stalled)


def batches_sweep_enqueue(*, stalled_for: dt.timedelta) -> list[int]:
    """Sends the run task again for every running batch whose progress stalled (a killed worker's batch)."""
    with transaction.atomic():
        ids = batch_ids_stalled(older_than=timezone.now() - stalled_for)
        for batch_id in ids:
            enqueue_on_commit(payout_batch_run_task, batch_id)
    if ids:
        logger.info("payout sweep re-enqueued batches", extra={"batches": ids})
    return ids


@shared_task(
    name="payouts.batch_run", acks_late=True, reject_on_worker_lost=True, soft_time_limit=3000, time_limit=3600
)
def payout_batch_run_task(batch_id: int) -> str:
    """Runs a batch until done / paused / cancelled; safe to deliver twice or to run on two workers."""
    state = payout_batch_run(batch_id=batch_id)
    if state == "waiting":
        # Rows held by another worker or waiting for a provider retry: look again shortly (a countdown,
        # which enqueue_on_commit has not; no transaction is open here, the sweep is the safety net).
        payout_batch_run_task.apply_async(args=(batch_id,), countdown=BATCH_RECHECK_SECONDS)
    return state


@shared_task(name="payouts.build_batches", acks_late=True, soft_time_limit=300, time_limit=360)
def payout_batches_build_task() -> list[int]:
    """Beat: builds and starts one batch per program with approved claims that have no payout yet."""
    return payout_batches_build_scheduled()


@shared_task(
    name="payouts.send_notices",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=300,
    time_limit=360,
)
def payout_notices_send_task(max_chunks: int = 20) -> int:
    """Sends due outbox notices, chunk by chunk (leases make a second sender skip what this one holds)."""
    sent = 0
    lease = dt.timedelta(seconds=getattr(settings, "PAYOUT_NOTICE_LEASE_SECONDS", 300))
    for _ in range(max_chunks):
        result = payout_notices_send(lease=lease)
        sent += result.sent
        if result.claimed == 0:
            break
    else:
        enqueue_on_commit(payout_notices_send_task, max_chunks)  # more left: carry on in a fresh task
    return sent


@shared_task(name="payouts.reminders", acks_late=True, soft_time_limit=300, time_limit=360)
def payout_reminders_task() -> int:
    """Beat (daily): queues the reminders due before receipt deadlines."""
    return payout_reminders_queue()


@shared_task(name="payouts.expire", acks_late=True, soft_time_limit=300, time_limit=360)
def payouts_expire_task() -> int:
    """Beat (daily): expires unclaimed payouts after their deadline and re-offers where the program says so."""
    expired, _reoffered = payouts_expire_unclaimed()
    return expired


def payouts_sweep_enqueue(*, min_age: dt.timedelta = dt.timedelta(minutes=1), limit: int = 10_000) -> list[int]:
    """Re-enqueues an issue task for every payout the database says is due and not done; returns the ids.

    The database, not the broker, is the record of pending work (SPEC): a task lost with its worker is
    found here again. Sending a payout twice is harmless (payout_issue is idempotent).
    """
    with transaction.atomic():
        ids = payout_ids_due_for_issue(older_than=timezone.now() - min_age, limit=limit)
        for payout_id in ids:
            enqueue_on_commit(payout_issue_task, payout_id)
    if ids:
        logger.info("payout sweep re-enqueued", extra={"count": len(ids)})
    return ids
