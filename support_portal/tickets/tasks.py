"""Celery tasks of the ticket desk. Tasks carry ids only; the database is the record of what is due."""

import datetime as dt
import logging

from celery import shared_task
from django.db import OperationalError, transaction
from django.utils import timezone

from support_portal.core.enqueue import enqueue_on_commit
from support_portal.core.services import sweep_run_record
from support_portal.tickets.escalation import tickets_escalate_breaches
from support_portal.tickets.mail import ticket_message_send
from support_portal.tickets.models import Direction, MessageKind, TicketMessage

logger = logging.getLogger(__name__)


@shared_task(name="tickets.escalate_breaches", acks_late=True, soft_time_limit=50, time_limit=60)
def tickets_escalate_breaches_task() -> int:
    """Beat runs this every minute: escalates SLA breaches (a second run at the same time escalates
    nothing twice) and re-sends replies whose mail did not go out after commit."""
    resent = unsent_replies_enqueue()
    sweep_run_record(sweep="tickets.escalate_breaches", reenqueued=len(resent), ran_at=timezone.now())
    return tickets_escalate_breaches().total


def unsent_replies_enqueue(
    *, min_age: dt.timedelta = dt.timedelta(minutes=5), max_age: dt.timedelta = dt.timedelta(days=2), limit: int = 500
) -> list[int]:
    """Enqueues a send for public replies still without `email_sent_at` (e.g. SMTP was down at commit).
    Replies to tickets with no address stay unsent and age out after `max_age`. Returns the ids."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            TicketMessage.objects.filter(
                kind=MessageKind.PUBLIC,
                direction=Direction.OUTBOUND,
                email_sent_at__isnull=True,
                created_at__gte=now - max_age,
                created_at__lte=now - min_age,
            )
            .order_by("created_at")
            .values_list("pk", flat=True)[:limit]
        )
        for message_id in ids:
            enqueue_on_commit(ticket_message_send_task, message_id)
    return ids


@shared_task(
    name="tickets.send_message",
    autoretry_for=(OSError, OperationalError),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
    acks_late=True,
)
def ticket_message_send_task(message_id: int) -> bool:
    """Mails one reply again (e.g. after an SMTP failure); a sent or missing message does nothing."""
    return ticket_message_send(message_id=message_id)
