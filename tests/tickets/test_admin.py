"""The ticket admin: queue visibility, inboxes, bulk actions, the reply form, merge, saved filters and the
manager dashboard with its CSV."""

import csv
import datetime as dt
import io
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from support_portal.accounts.models import ExportRecord
from support_portal.tickets.models import (
    EventKind,
    MessageKind,
    Queue,
    SavedFilter,
    Status,
    Ticket,
    TicketClaim,
    TicketEvent,
    TicketMessage,
)
from tests.claims.factories import ClaimFactory
from tests.factories import CustomerFactory
from tests.tickets.factories import CannedReplyFactory, QueueFactory, TicketFactory

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]
CHANGELIST = "admin:tickets_ticket_changelist"


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def listed(response: Any) -> set[int]:
    return {obj.pk for obj in response.context["cl"].result_list}


def test_an_agent_sees_only_tickets_of_their_queues_and_a_manager_all(queue: Queue, agent: User, manager: User) -> None:
    mine = TicketFactory.create(queue=queue)
    other = TicketFactory.create(queue=QueueFactory.create())
    agent_client = client_for(agent)
    assert listed(agent_client.get(reverse(CHANGELIST))) == {mine.pk}
    assert agent_client.get(reverse("admin:tickets_ticket_change", args=[other.pk])).status_code == 302  # not found
    assert listed(client_for(manager).get(reverse(CHANGELIST))) == {mine.pk, other.pk}


def test_inbox_filters(queue: Queue, agent: User) -> None:
    now = timezone.now()
    hour = dt.timedelta(hours=1)
    mine = TicketFactory.create(
        queue=queue, assignee=agent, first_response_due_at=now + 5 * hour, resolution_due_at=now + 9 * hour
    )
    unassigned = TicketFactory.create(
        queue=queue, first_response_due_at=now + 5 * hour, resolution_due_at=now + 9 * hour
    )
    soon = TicketFactory.create(
        queue=queue, assignee=agent, first_response_due_at=now + hour, resolution_due_at=now + 9 * hour
    )
    breached = TicketFactory.create(queue=queue, first_response_due_at=now - hour, resolution_due_at=now + 9 * hour)
    TicketFactory.create(queue=queue, status=Status.CLOSED, first_response_due_at=now - hour)
    client = client_for(agent)
    assert listed(client.get(reverse(CHANGELIST), {"inbox": "mine"})) == {mine.pk, soon.pk}
    assert listed(client.get(reverse(CHANGELIST), {"inbox": "unassigned"})) == {unassigned.pk, breached.pk}
    assert listed(client.get(reverse(CHANGELIST), {"inbox": "breaching_soon"})) == {soon.pk}
    assert listed(client.get(reverse(CHANGELIST), {"inbox": "breached"})) == {breached.pk}
    assert listed(client.get(reverse(CHANGELIST), {"q": f"T-{soon.pk}"})) == {soon.pk}


def test_bulk_close_and_assign_go_through_services(queue: Queue, agent: User) -> None:
    first, second = TicketFactory.create_batch(2, queue=queue)
    closed = TicketFactory.create(queue=queue, status=Status.CLOSED)
    client = client_for(agent)
    ids = [first.pk, second.pk, closed.pk]
    client.post(reverse(CHANGELIST), {"action": "assign_to_me", "_selected_action": [first.pk, second.pk]})
    client.post(reverse(CHANGELIST), {"action": "close_tickets", "_selected_action": ids})
    rows = dict(Ticket.objects.values_list("pk", "status"))
    assert rows == {first.pk: Status.CLOSED, second.pk: Status.CLOSED, closed.pk: Status.CLOSED}
    assert set(Ticket.objects.filter(assignee=agent).values_list("pk", flat=True)) == {first.pk, second.pk}
    assert TicketEvent.objects.filter(kind=EventKind.ASSIGNED, actor=agent).count() == 2
    assert TicketEvent.objects.filter(kind=EventKind.STATUS, ticket=closed).count() == 0  # refused, no event


def test_an_agent_opens_a_ticket_in_the_admin(queue: Queue, agent: User) -> None:
    customer = CustomerFactory.create()
    response = client_for(agent).post(
        reverse("admin:tickets_ticket_add"),
        {
            "queue": queue.pk,
            "customer": customer.pk,
            "subject": "二重請求",
            "category": "double_charge",
            "channel": "phone",
            "priority": 3,
            "body": "9月分が二回請求されている",
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert (ticket.customer_id, ticket.status, ticket.priority, ticket.first_response_due_at is not None) == (
        customer.pk,
        Status.NEW,
        3,
        True,
    )
    assert TicketMessage.objects.get().body == "9月分が二回請求されている"
    assert list(TicketEvent.objects.values_list("kind", "actor_id")) == [(EventKind.CREATED, agent.pk)]


def test_the_reply_form_sends_a_canned_reply_and_notes_stay_internal(
    queue: Queue, agent: User, django_capture_on_commit_callbacks: Capture
) -> None:
    ticket = TicketFactory.create(queue=queue, customer=CustomerFactory.create(name="佐藤"), status=Status.NEW)
    canned = CannedReplyFactory.create(body="{{ customer_name }} 様 ご確認ください", set_status=Status.PENDING_CUSTOMER)
    client = client_for(agent)
    url = reverse("admin:tickets_ticket_reply", args=[ticket.pk])
    preview = client.post(url, {"canned": canned.pk, "body": "", "kind": "public", "preview": "1"})
    change_url = reverse("admin:tickets_ticket_change", args=[ticket.pk])
    assert preview["Location"] == f"{change_url}?canned={canned.pk}"
    page = client.get(preview["Location"])
    assert page.context["reply_form"].initial["body"] == "佐藤 様 ご確認ください"
    assert page.context["errors"] == []  # the ticket form above is untouched
    assert TicketMessage.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"canned": canned.pk, "body": "", "kind": "public", "send": "1"})
        client.post(url, {"body": "社内メモ", "kind": "internal", "send": "1"})
    assert list(TicketMessage.objects.order_by("pk").values_list("kind", "body")) == [
        (MessageKind.PUBLIC, "佐藤 様 ご確認ください"),
        (MessageKind.INTERNAL, "社内メモ"),
    ]
    assert len(mail.outbox) == 1
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING_CUSTOMER


def test_merge_action_asks_which_ticket_to_keep(queue: Queue, agent: User) -> None:
    keep, duplicate = TicketFactory.create_batch(2, queue=queue)
    client = client_for(agent)
    response = client.post(
        reverse(CHANGELIST), {"action": "merge_tickets", "_selected_action": [keep.pk, duplicate.pk]}
    )
    assert response.status_code == 302
    merge_url = response["Location"]
    assert client.get(merge_url).status_code == 200
    client.post(reverse("admin:tickets_ticket_merge"), {"ids": [keep.pk, duplicate.pk], "target": keep.pk})
    duplicate.refresh_from_db()
    assert (duplicate.merged_into_id, duplicate.status) == (keep.pk, Status.CLOSED)


def test_saved_filters_are_per_user(queue: Queue, agent: User, other_agent: User) -> None:
    client_for(agent).post(
        reverse("admin:tickets_ticket_save_filter"), {"name": "私の期限切れ", "query": "inbox=breached"}
    )
    assert list(SavedFilter.objects.values_list("owner_id", "name", "query")) == [
        (agent.pk, "私の期限切れ", "inbox=breached")
    ]
    mine = client_for(agent).get(reverse(CHANGELIST))
    theirs = client_for(other_agent).get(reverse(CHANGELIST))
    assert [f.name for f in mine.context["saved_filters"]] == ["私の期限切れ"]
    assert list(theirs.context["saved_filters"]) == []


def test_the_dashboard_and_csv_for_managers_only(queue: Queue, agent: User, manager: User) -> None:
    now = timezone.now()
    TicketFactory.create(
        queue=queue, status=Status.OPEN, created_at=now, first_response_due_at=now, first_responded_at=now
    )
    TicketFactory.create(
        queue=queue, status=Status.NEW, created_at=now, first_response_due_at=now - dt.timedelta(minutes=1)
    )
    TicketFactory.create(queue=queue, status=Status.RESOLVED, created_at=now, resolved_at=now)
    assert client_for(agent).get(reverse("admin:tickets_ticket_dashboard")).status_code == 403
    client = client_for(manager)
    page = client.get(reverse("admin:tickets_ticket_dashboard"))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-chart="bar"') == 2 and html.count('data-chart="line"') == 1
    numbers = page.context["numbers"]
    assert numbers.open_by_queue[queue.name] == {"new": 1, "open": 1}
    assert (numbers.incoming[-1], numbers.solved[-1], numbers.sla_met[-1], numbers.sla_missed[-1]) == (3, 1, 1, 1)
    daily = client.get(reverse("admin:tickets_ticket_dashboard_csv"), {"days": "7", "part": "daily"})
    rows = list(csv.reader(io.StringIO(daily.content.decode("utf-8-sig"))))
    assert rows[0] == ["day", "incoming", "solved", "first_response_met", "first_response_missed", "attainment_pct"]
    assert rows[-1][1:] == ["3", "1", "1", "1", "50"]
    assert len(rows) == 8
    open_csv = client.get(reverse("admin:tickets_ticket_dashboard_csv"), {"part": "open"})
    open_rows = list(csv.reader(io.StringIO(open_csv.content.decode("utf-8-sig"))))
    assert open_rows[0] == ["queue", "new", "open", "pending_customer"]
    assert [queue.name, "1", "1", "0"] in open_rows


def test_bulk_assign_to_a_colleague_who_works_the_queue(queue: Queue, agent: User, other_agent: User) -> None:
    colleague = User.objects.create_user(username="colleague", password="x" * 16, is_staff=True)
    queue.members.add(colleague)
    first, second = TicketFactory.create_batch(2, queue=queue)
    client = client_for(agent)
    response = client.post(reverse(CHANGELIST), {"action": "assign_to", "_selected_action": [first.pk, second.pk]})
    page = client.get(response["Location"])
    # other_agent does not work the queue, so cannot be chosen
    assert {u.username for u in page.context["form"].fields["assignee"].queryset} == {"agent-a", "colleague"}
    client.post(reverse("admin:tickets_ticket_assign"), {"ids": [first.pk, second.pk], "assignee": colleague.pk})
    assert set(Ticket.objects.values_list("assignee_id", flat=True)) == {colleague.pk}
    assert TicketEvent.objects.filter(kind=EventKind.ASSIGNED, actor=agent).count() == 2


def test_an_agent_links_a_claim_on_the_ticket_page(queue: Queue, agent: User) -> None:
    ticket = TicketFactory.create(queue=queue)
    claim = ClaimFactory.create()
    client = client_for(agent)
    url = reverse("admin:tickets_ticket_link_claim", args=[ticket.pk])
    client.post(url, {"claim": str(claim.pk)})
    client.post(url, {"claim": str(claim.pk)})  # again: no second link, no second event
    client.post(url, {"claim": "999999"})
    assert list(TicketClaim.objects.values_list("ticket_id", "claim_id")) == [(ticket.pk, claim.pk)]
    assert TicketEvent.objects.filter(kind=EventKind.CLAIM_LINKED).count() == 1
    page = client.get(reverse("admin:tickets_ticket_change", args=[ticket.pk]))
    assert [c.pk for c in page.context["linked_claims"]] == [claim.pk]


@pytest.mark.parametrize("role", ["reviewer", "finance"])
def test_reviewers_and_finance_have_no_ticket_desk(queue: Queue, role: str) -> None:
    from tests.tickets.conftest import staff  # noqa: PLC0415

    TicketFactory.create(queue=queue)
    client = client_for(staff(f"{role}-x", role))
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse("admin:tickets_ticket_dashboard")).status_code == 403
    assert client.get(reverse("admin:tickets_queue_changelist")).status_code == 403


def test_agents_read_but_do_not_edit_queues_and_canned_replies(queue: Queue, agent: User) -> None:
    canned = CannedReplyFactory.create()
    client = client_for(agent)
    assert client.get(reverse("admin:tickets_queue_changelist")).status_code == 200
    client.post(reverse("admin:tickets_cannedreply_change", args=[canned.pk]), {"title": "changed", "body": "x"})
    canned.refresh_from_db()
    assert canned.title != "changed"
    assert client.get(reverse("admin:tickets_queue_add")).status_code == 403


def test_the_dashboard_csv_neutralises_formula_cells_and_is_recorded_as_an_export(manager: User) -> None:
    # Given a queue whose name a spreadsheet would run as a formula, with an open ticket
    hostile = QueueFactory.create(name='=HYPERLINK("https://evil.example","x")', slug="hostile")
    TicketFactory.create(queue=hostile, status=Status.OPEN)
    client = client_for(manager)
    # When a manager downloads both parts of the dashboard CSV
    open_csv = client.get(reverse("admin:tickets_ticket_dashboard_csv"), {"part": "open"})
    daily = client.get(reverse("admin:tickets_ticket_dashboard_csv"), {"days": "7", "part": "daily"})
    # Then the cell is written as text, and each download is in the export log with who and how many rows
    open_rows = list(csv.reader(io.StringIO(open_csv.content.decode("utf-8-sig"))))
    assert ["'" + hostile.name, "0", "1", "0"] in open_rows
    assert not any(cell.startswith("=") for row in open_rows for cell in row)
    records = list(ExportRecord.objects.order_by("pk").values_list("actor_id", "what", "row_count"))
    assert records == [
        (manager.pk, "support dashboard, open tickets by queue (CSV)", len(open_rows) - 1),
        (manager.pk, "support dashboard, daily figures (CSV)", 7),
    ]
    assert daily.status_code == 200
