"""Celery tasks of payouts.banking: the refund run (beat). The database is the record of what is due."""

import logging

from celery import shared_task

from payouts.banking.services import refund_requests_send

logger = logging.getLogger(__name__)


@shared_task(name="banking.refunds_send", acks_late=True, soft_time_limit=600, time_limit=660)
def refund_requests_send_task() -> dict[str, int]:
    """Beat (every 15 minutes): sends pending refund requests to the payment providers, earliest due
    first, re-offers refunds with no account to go back to as bank transfers, flags the ones due soon.
    Safe to run twice at once: each send is `payout_issue` (row locks, idempotency key)."""
    run = refund_requests_send()
    return {"sent": run.sent, "failed": run.failed, "flagged": run.flagged, "reoffered": run.reoffered}
