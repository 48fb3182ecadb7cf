"""SLA breach escalation: exactly once per ticket and breach kind, one notice per run, paused clocks skip."""

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.db import connection
from django.utils import timezone

from support_portal.tickets.escalation import tickets_escalate_breaches
from support_portal.tickets.models import EventKind, MessageKind, Priority, Queue, Status, Ticket, TicketEvent
from support_portal.tickets.tasks import (
    ticket_message_send_task,
    tickets_escalate_breaches_task,
    unsent_replies_enqueue,
)
from tests.factories import CustomerFactory
from tests.tickets.factories import TicketFactory, TicketMessageFactory, jst

Capture = Callable[..., Any]
NOW = jst(2026, 1, 15, 13)


@pytest.mark.django_db
def test_a_breach_escalates_once_and_managers_get_one_notice(
    queue: Queue, lead_queue: Queue, agent: User, manager: User, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a ticket whose first response was due at 11:00 (not answered), resolution due 18:00
    breached = TicketFactory.create(queue=queue, assignee=agent, priority=Priority.NORMAL)
    TicketFactory.create(queue=queue, first_response_due_at=jst(2026, 1, 15, 14))  # not yet due
    TicketFactory.create(queue=queue, status=Status.PENDING_CUSTOMER)  # paused
    TicketFactory.create(queue=queue, first_responded_at=jst(2026, 1, 15, 10, 30))  # answered in time

    # when the sweep runs twice
    with django_capture_on_commit_callbacks(execute=True):
        first = tickets_escalate_breaches(now=NOW)
    with django_capture_on_commit_callbacks(execute=True):
        second = tickets_escalate_breaches(now=NOW)

    # then the ticket is escalated once: priority up, moved to the lead queue, unassigned
    assert (first.first_response, first.resolution) == ([breached.pk], [])
    assert second.total == 0
    breached.refresh_from_db()
    assert (breached.priority, breached.queue_id, breached.assignee_id, breached.first_response_escalated_at) == (
        Priority.HIGH,
        lead_queue.pk,
        None,
        NOW,
    )
    assert breached.resolution_escalated_at is None
    escalation = TicketEvent.objects.get(kind=EventKind.ESCALATED)
    assert (escalation.ticket_id, escalation.actor_id, escalation.data) == (
        breached.pk,
        None,
        {
            "breach": "first_response",
            "priority": [2, 3],
            "queue": [queue.pk, lead_queue.pk],
            "assignee_before": agent.pk,
        },
    )
    assert TicketEvent.objects.count() == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [manager.email]
    assert f"T-{breached.pk}" in mail.outbox[0].body


@pytest.mark.django_db
def test_the_resolution_breach_escalates_separately_and_priority_caps_at_urgent(
    queue: Queue, lead_queue: Queue, manager: User, django_capture_on_commit_callbacks: Capture
) -> None:
    ticket = TicketFactory.create(
        queue=lead_queue, priority=Priority.URGENT, first_responded_at=jst(2026, 1, 15, 10, 30)
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = tickets_escalate_breaches(now=jst(2026, 1, 15, 18, 1))
    assert (result.first_response, result.resolution) == ([], [ticket.pk])
    ticket.refresh_from_db()
    # the lead queue has no escalation queue: it stays; priority stays urgent
    assert (ticket.priority, ticket.queue_id, ticket.resolution_escalated_at) == (
        Priority.URGENT,
        lead_queue.pk,
        jst(2026, 1, 15, 18, 1),
    )
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_nothing_to_escalate_sends_nothing(
    queue: Queue, manager: User, django_capture_on_commit_callbacks: Capture
) -> None:
    TicketFactory.create(queue=queue, status=Status.RESOLVED)
    TicketFactory.create(queue=queue, status=Status.CLOSED)
    with django_capture_on_commit_callbacks(execute=True):
        assert tickets_escalate_breaches_task() == 0
    assert (TicketEvent.objects.count(), len(mail.outbox)) == (0, 0)
    assert Ticket.objects.filter(priority=Priority.NORMAL).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_escalate_each_ticket_once(queue: Queue, manager: User) -> None:
    # given 30 breached tickets and two sweeps started at the same moment in two connections
    tickets = TicketFactory.create_batch(30, queue=queue)
    results = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            results.append(tickets_escalate_breaches(now=NOW))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # then every ticket was escalated by exactly one of them, and each run mailed only its own tickets
    escalated = sorted(pk for result in results for pk in result.first_response)
    assert escalated == sorted(t.pk for t in tickets)
    assert TicketEvent.objects.filter(kind=EventKind.ESCALATED).count() == 30
    assert Ticket.objects.filter(priority=Priority.HIGH).count() == 30
    assert sum(1 for result in results if result.total) == len(mail.outbox)
    assert sum(message.body.count("T-") for message in mail.outbox) == 30


@pytest.mark.django_db
def test_replies_whose_mail_did_not_go_out_are_sent_by_the_sweep(
    queue: Queue, django_capture_on_commit_callbacks: Capture
) -> None:
    # given a reply committed 10 minutes ago whose mail failed, one sent, one too fresh, an internal note
    ticket = TicketFactory.create(queue=queue, customer=CustomerFactory.create(email="c@example.jp"))
    now = timezone.now()
    unsent = TicketMessageFactory.create(ticket=ticket, created_at=now - dt.timedelta(minutes=10), message_id="<u@x>")
    TicketMessageFactory.create(ticket=ticket, created_at=now - dt.timedelta(minutes=10), email_sent_at=now)
    TicketMessageFactory.create(ticket=ticket, created_at=now - dt.timedelta(minutes=1))
    TicketMessageFactory.create(ticket=ticket, created_at=now - dt.timedelta(minutes=10), kind=MessageKind.INTERNAL)

    # when the sweep runs, it enqueues a send for that reply only (after commit)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert unsent_replies_enqueue() == [unsent.pk]
    assert [(cb.func, cb.args) for cb in callbacks] == [(ticket_message_send_task.delay, (unsent.pk,))]

    # and the task sends it once: a second run sends nothing and the sweep no longer finds it
    assert ticket_message_send_task(unsent.pk) is True
    assert ticket_message_send_task(unsent.pk) is False
    assert [m.extra_headers["Message-ID"] for m in mail.outbox] == ["<u@x>"]
    assert unsent_replies_enqueue() == []
