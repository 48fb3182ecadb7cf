"""`demo_tickets`: queues with SLAs, canned replies, a spread of tickets; running it again adds nothing."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from support_portal.tickets.models import CannedReply, Queue, Status, Ticket, TicketMessage
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_demo_tickets_is_idempotent_and_has_every_state() -> None:
    CustomerFactory.create_batch(20)
    out = io.StringIO()
    call_command("demo_tickets", "--tickets", "300", stdout=out)
    assert "Created" in out.getvalue()
    tickets = Ticket.objects.count()
    messages = TicketMessage.objects.count()
    assert tickets > 300  # plus the merged twins
    assert set(Ticket.objects.values_list("status", flat=True)) == set(Status.values)
    assert Ticket.objects.filter(merged_into__isnull=False, status=Status.CLOSED).exists()
    now = timezone.now()
    assert Ticket.objects.filter(
        status__in=Status.clock_running(), first_responded_at__isnull=True, first_response_due_at__lt=now
    ).exists()
    assert Queue.objects.count() == 4 and CannedReply.objects.count() == 3
    assert Queue.objects.filter(escalation_queue__slug="lead").count() == 3

    call_command("demo_tickets", stdout=io.StringIO())
    assert (Ticket.objects.count(), TicketMessage.objects.count()) == (tickets, messages)
    assert Queue.objects.count() == 4 and CannedReply.objects.count() == 3
