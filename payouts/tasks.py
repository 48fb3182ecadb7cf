"""Celery tasks of payouts. Tasks carry ids only; the database is the record of what is due."""

import datetime as dt
import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from payouts.providers.base import ProviderTemporaryError
from payouts.selectors import payout_ids_due_for_issue
from payouts.services import PayoutRefused, payout_issue
from support_portal.core.enqueue import enqueue_on_commit

logger = logging.getLogger(__name__)

ISSUE_MAX_RETRIES = 8


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
    try:
        payout_issue(payout_id=payout_id)
    except PayoutRefused as exc:
        logger.warning("payout not issued", extra={"payout_id": payout_id, "code": exc.code})


@shared_task(name="payouts.sweep", acks_late=True, soft_time_limit=50, time_limit=60)
def payouts_sweep(min_age_seconds: int = 60) -> int:
    """Beat runs this every minute: re-enqueues payouts `created` for more than a minute (0: all of them)."""
    return len(payouts_sweep_enqueue(min_age=dt.timedelta(seconds=min_age_seconds)))


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
