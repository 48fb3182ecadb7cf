"""SLA breach escalation, run every minute by beat (`tickets.escalate_breaches`).

A ticket is escalated at most once per breach kind (first response, resolution): the flag column
(`first_response_escalated_at` / `resolution_escalated_at`) is set by a conditional UPDATE
(`… WHERE flag IS NULL`) and only the run whose UPDATE matched writes the event and names the ticket in
the managers' notice. Candidates are read with `SELECT … FOR UPDATE SKIP LOCKED`, so two runs at the
same moment split the rows instead of waiting, and a run that reads a row another run has just
escalated finds the flag set and skips it. Pending-customer tickets are paused and never escalated.

Escalating: priority +1 (at most urgent), the ticket moves to its queue's escalation (lead) queue and
is unassigned when it moves, and one email per run lists every ticket escalated to the managers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from support_portal.core.audit import audit_context
from support_portal.tickets.models import EventKind, Priority, Status, Ticket, TicketEvent

logger = logging.getLogger(__name__)

MANAGER_GROUP = "manager"
KINDS = {
    "first_response": ("first_response_due_at", "first_response_escalated_at"),
    "resolution": ("resolution_due_at", "resolution_escalated_at"),
}


@dataclasses.dataclass
class EscalationResult:
    first_response: list[int] = dataclasses.field(default_factory=list)
    resolution: list[int] = dataclasses.field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.first_response) + len(self.resolution)


def _candidates(kind: str, now: dt.datetime, limit: int) -> list[Ticket]:
    due_field, flag_field = KINDS[kind]
    filters = {
        "status__in": Status.clock_running(),
        "merged_into__isnull": True,
        f"{flag_field}__isnull": True,
        f"{due_field}__lt": now,
    }
    if kind == "first_response":
        filters["first_responded_at__isnull"] = True
    return list(
        Ticket.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("queue")
        .filter(**filters)
        .order_by("pk")[:limit]
    )


def tickets_escalate_breaches(*, now: dt.datetime | None = None, limit: int = 1000) -> EscalationResult:
    now = now or timezone.now()
    result = EscalationResult()
    with audit_context(actor=None), transaction.atomic():
        for kind, (_due_field, flag_field) in KINDS.items():
            for ticket in _candidates(kind, now, limit):
                new_priority = min(ticket.priority + 1, Priority.URGENT)
                lead_queue_id = ticket.queue.escalation_queue_id or ticket.queue_id
                moved = lead_queue_id != ticket.queue_id
                updates: dict[str, object] = {flag_field: now, "priority": new_priority, "updated_at": now}
                if moved:
                    updates["queue_id"] = lead_queue_id
                    updates["assignee_id"] = None
                # The exactly-once gate: only the UPDATE that finds the flag empty escalates.
                won = Ticket.objects.filter(pk=ticket.pk, **{f"{flag_field}__isnull": True}).update(**updates)
                if not won:
                    continue
                TicketEvent.objects.create(
                    ticket_id=ticket.pk,
                    kind=EventKind.ESCALATED,
                    at=now,
                    data={
                        "breach": kind,
                        "priority": [ticket.priority, new_priority],
                        "queue": [ticket.queue_id, lead_queue_id],
                        "assignee_before": ticket.assignee_id,
                    },
                )
                getattr(result, kind).append(ticket.pk)
        if result.total:
            first, resolution = list(result.first_response), list(result.resolution)
            transaction.on_commit(lambda: _notify_managers(first, resolution), robust=True)
    if result.total:
        logger.info(
            "ticket SLA escalations",
            extra={"first_response": len(result.first_response), "resolution": len(result.resolution)},
        )
    return result


def manager_addresses() -> list[str]:
    users = get_user_model().objects.filter(groups__name=MANAGER_GROUP, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def _notify_managers(first_response: list[int], resolution: list[int]) -> None:
    recipients = manager_addresses()
    if not recipients:
        logger.warning("SLA escalations but no manager with an email address")
        return
    tickets = Ticket.objects.in_bulk([*first_response, *resolution])
    context = {
        "first_response": [tickets[pk] for pk in first_response if pk in tickets],
        "resolution": [tickets[pk] for pk in resolution if pk in tickets],
    }
    count = len(first_response) + len(resolution)
    mail = EmailMultiAlternatives(
        subject=f"[SLA] {count} 件のチケットをエスカレーションしました / {count} ticket(s) escalated",
        body=render_to_string("tickets/email/escalation.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    mail.attach_alternative(render_to_string("tickets/email/escalation.html", context), "text/html")
    mail.send()
