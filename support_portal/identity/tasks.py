"""Celery tasks of identity recovery. Tasks carry ids only; the case row is the record of what is due."""

import datetime as dt
import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from support_portal.core.enqueue import enqueue_on_commit
from support_portal.core.services import sweep_run_record
from support_portal.identity.gateway import PasswordResetPermanentError, PasswordResetTemporaryError
from support_portal.identity.selectors import case_ids_due_for_reset

logger = logging.getLogger(__name__)


@shared_task(
    name="identity.reset_send",
    autoretry_for=(PasswordResetTemporaryError,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=60,
    time_limit=90,
)
def identity_reset_send_task(case_id: int) -> None:
    """Triggers the password reset of a completed case; a repeat sends nothing new."""
    from support_portal.identity.services import identity_reset_send  # noqa: PLC0415 - services enqueue this task

    try:
        identity_reset_send(case_id=case_id)
    except PasswordResetPermanentError:
        logger.error("password reset refused by the main service", extra={"case_id": case_id})


@shared_task(name="identity.reset_sweep", acks_late=True, soft_time_limit=50, time_limit=60)
def identity_reset_sweep(min_age_seconds: int = 60) -> int:
    """Beat runs this every minute: re-enqueues the reset of completed cases not sent for a minute.

    The database, not the broker, is the record of pending work (SPEC): a task lost with its worker is
    found here again; sending twice is harmless (the gateway is idempotent by key).
    """
    count = len(identity_reset_sweep_enqueue(min_age=dt.timedelta(seconds=min_age_seconds)))
    sweep_run_record(sweep="identity.reset_sweep", reenqueued=count, ran_at=timezone.now())
    return count


def identity_reset_sweep_enqueue(*, min_age: dt.timedelta = dt.timedelta(minutes=1), limit: int = 1_000) -> list[int]:
    with transaction.atomic():
        ids = case_ids_due_for_reset(older_than=timezone.now() - min_age, limit=limit)
        for case_id in ids:
            enqueue_on_commit(identity_reset_send_task, case_id)
    if ids:
        logger.info("identity reset sweep re-enqueued", extra={"count": len(ids)})
    return ids
