"""Ticket services: open, status transitions with the paused SLA clock, assign, replies by email, notes,
canned replies, merge — each change with its event, refused paths changing nothing."""

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.mail import EmailMultiAlternatives

from support_portal.tickets.models import (
    Direction,
    EventKind,
    MessageKind,
    Priority,
    Queue,
    Status,
    Ticket,
    TicketClaim,
    TicketEvent,
    TicketMessage,
)
from support_portal.tickets.services import (
    RefusalCode,
    TicketRefused,
    canned_reply_render,
    ticket_add_note,
    ticket_assign,
    ticket_link_claim,
    ticket_open,
    ticket_reply,
    ticket_reply_canned,
    ticket_set_status,
    tickets_merge,
)
from tests.claims.factories import ClaimFactory, ReviewProgramFactory
from tests.factories import CustomerFactory
from tests.tickets.factories import CannedReplyFactory, QueueFactory, TicketFactory, TicketMessageFactory, jst

pytestmark = pytest.mark.django_db

Capture = Callable[..., Any]


def events(ticket: Ticket) -> list[tuple[str, int | None]]:
    return list(TicketEvent.objects.filter(ticket=ticket).order_by("pk").values_list("kind", "actor_id"))


# --- open ---------------------------------------------------------------------------------------------


def test_an_agent_opens_a_ticket_with_due_times_in_business_hours(queue: Queue, agent: User) -> None:
    customer = CustomerFactory.create(name="佐藤 花子")
    # given Friday 17:30 JST before the 成人の日 weekend (1/12 Monday holiday)
    ticket = ticket_open(
        actor=agent,
        queue=queue,
        subject="ログインできない",
        body="メールが届きません",
        customer=customer,
        category="login",
        channel="phone",
        now=jst(2026, 1, 9, 17, 30),
    )
    ticket.refresh_from_db()
    # then 30 minutes on Friday + 30 on Tuesday; resolution 480 = 30 Fri + 450 Tue → Tue 17:30
    assert ticket.first_response_due_at == jst(2026, 1, 13, 10, 30)
    assert ticket.resolution_due_at == jst(2026, 1, 13, 17, 30)
    assert (ticket.status, ticket.requester_email, ticket.customer_id) == (Status.NEW, customer.email, customer.pk)
    assert events(ticket) == [(EventKind.CREATED, agent.pk)]
    message = TicketMessage.objects.get(ticket=ticket)
    assert (message.kind, message.direction, message.author_customer_id, message.body) == (
        MessageKind.PUBLIC,
        Direction.INBOUND,
        customer.pk,
        "メールが届きません",
    )


def test_an_agent_outside_the_queue_cannot_open_a_ticket_in_it(queue: Queue, other_agent: User) -> None:
    with pytest.raises(TicketRefused) as refused:
        ticket_open(actor=other_agent, queue=queue, subject="x", body="y")
    assert refused.value.code == RefusalCode.NOT_IN_QUEUE
    assert (Ticket.objects.count(), TicketEvent.objects.count(), TicketMessage.objects.count()) == (0, 0, 0)


def test_a_manager_works_every_queue(queue: Queue, manager: User) -> None:
    ticket = ticket_open(actor=manager, queue=queue, subject="x", now=jst(2026, 1, 15, 10))
    assert ticket.first_response_due_at == jst(2026, 1, 15, 11)
    assert TicketMessage.objects.count() == 0  # no body, no message


def test_open_links_claims(queue: Queue, agent: User) -> None:
    claim = ClaimFactory.create()
    ticket = ticket_open(actor=agent, queue=queue, subject="x", claim_ids=[claim.pk, claim.pk])
    assert list(TicketClaim.objects.filter(ticket=ticket).values_list("claim_id", flat=True)) == [claim.pk]
    assert events(ticket) == [(EventKind.CREATED, agent.pk), (EventKind.CLAIM_LINKED, agent.pk)]
    assert ticket_link_claim(ticket=ticket, actor=agent, claim_id=claim.pk) is False
    assert TicketEvent.objects.filter(ticket=ticket).count() == 2


# --- status and the SLA clock -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (Status.CLOSED, Status.OPEN),
        (Status.CLOSED, Status.RESOLVED),
        (Status.RESOLVED, Status.PENDING_CUSTOMER),
        (Status.OPEN, Status.NEW),
        (Status.OPEN, Status.OPEN),
    ],
)
def test_refused_transitions_change_nothing(queue: Queue, agent: User, before: str, after: str) -> None:
    ticket = TicketFactory.create(queue=queue, status=before)
    with pytest.raises(TicketRefused) as refused:
        ticket_set_status(ticket=ticket, actor=agent, status=after)
    assert refused.value.code == RefusalCode.STATUS
    ticket.refresh_from_db()
    assert ticket.status == before
    assert TicketEvent.objects.count() == 0


def test_pending_customer_pauses_the_clock_and_pushes_due_times_by_business_time_paused(
    queue: Queue, agent: User
) -> None:
    # given an open ticket, first response due Thu 12:00, resolution due Thu 18:00
    ticket = TicketFactory.create(
        queue=queue, first_response_due_at=jst(2026, 1, 15, 12), resolution_due_at=jst(2026, 1, 15, 18)
    )
    # when it waits on the customer from Thu 11:00 to Mon 11:00 (Thu 7h + Fri 8h + Mon 1h = 960 min)
    ticket_set_status(ticket=ticket, actor=agent, status=Status.PENDING_CUSTOMER, now=jst(2026, 1, 15, 11))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.paused_at) == (Status.PENDING_CUSTOMER, jst(2026, 1, 15, 11))
    ticket_set_status(ticket=ticket, actor=agent, status=Status.OPEN, now=jst(2026, 1, 19, 11))
    # then both due times move by 960 business minutes
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == jst(2026, 1, 19, 12)
    assert ticket.resolution_due_at == jst(2026, 1, 19, 18)
    assert ticket.paused_at is None
    assert events(ticket) == [
        (EventKind.CLOCK_PAUSED, agent.pk),
        (EventKind.STATUS, agent.pk),
        (EventKind.CLOCK_RESUMED, agent.pk),
        (EventKind.STATUS, agent.pk),
    ]
    resumed = TicketEvent.objects.get(ticket=ticket, kind=EventKind.CLOCK_RESUMED)
    assert resumed.data == {"paused_business_seconds": 960 * 60}


def test_a_paused_ticket_after_first_response_only_moves_the_resolution_due(queue: Queue, agent: User) -> None:
    ticket = TicketFactory.create(
        queue=queue,
        first_responded_at=jst(2026, 1, 15, 10, 30),
        first_response_due_at=jst(2026, 1, 15, 11),
        resolution_due_at=jst(2026, 1, 15, 18),
    )
    ticket_set_status(ticket=ticket, actor=agent, status=Status.PENDING_CUSTOMER, now=jst(2026, 1, 15, 17))
    ticket_set_status(ticket=ticket, actor=agent, status=Status.RESOLVED, now=jst(2026, 1, 15, 19))
    ticket.refresh_from_db()
    assert ticket.first_response_due_at == jst(2026, 1, 15, 11)
    assert ticket.resolution_due_at == jst(2026, 1, 16, 11)  # 60 business minutes paused
    assert ticket.resolved_at == jst(2026, 1, 15, 19)


def test_resolve_reopen_close(queue: Queue, agent: User) -> None:
    ticket = TicketFactory.create(queue=queue)
    ticket_set_status(ticket=ticket, actor=agent, status=Status.RESOLVED, now=jst(2026, 1, 15, 12))
    ticket_set_status(ticket=ticket, actor=agent, status=Status.OPEN, now=jst(2026, 1, 15, 13))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.resolved_at) == (Status.OPEN, None)
    ticket_set_status(ticket=ticket, actor=agent, status=Status.CLOSED, now=jst(2026, 1, 15, 14))
    ticket.refresh_from_db()
    assert (ticket.status, ticket.closed_at, ticket.resolved_at) == (
        Status.CLOSED,
        jst(2026, 1, 15, 14),
        jst(2026, 1, 15, 14),
    )
    statuses = list(TicketEvent.objects.filter(ticket=ticket, kind=EventKind.STATUS).values_list("data", flat=True))
    assert statuses == [
        {"before": "open", "after": "resolved"},
        {"before": "resolved", "after": "open"},
        {"before": "open", "after": "closed"},
    ]


def test_an_agent_cannot_change_a_ticket_of_another_queue(other_agent: User) -> None:
    ticket = TicketFactory.create()
    with pytest.raises(TicketRefused) as refused:
        ticket_set_status(ticket=ticket, actor=other_agent, status=Status.RESOLVED)
    assert refused.value.code == RefusalCode.NOT_IN_QUEUE
    assert Ticket.objects.get().status == Status.OPEN
    assert TicketEvent.objects.count() == 0


# --- assign -------------------------------------------------------------------------------------------


def test_assign_to_a_queue_member_and_refuse_a_non_member(queue: Queue, agent: User, other_agent: User) -> None:
    ticket = TicketFactory.create(queue=queue)
    ticket_assign(ticket=ticket, actor=agent, assignee=agent)
    assert Ticket.objects.get().assignee_id == agent.pk
    with pytest.raises(TicketRefused) as refused:
        ticket_assign(ticket=ticket, actor=agent, assignee=other_agent)
    assert refused.value.code == RefusalCode.NOT_A_MEMBER
    assert Ticket.objects.get().assignee_id == agent.pk
    assert [e.data for e in TicketEvent.objects.all()] == [{"before": None, "after": agent.pk}]


# --- replies and notes --------------------------------------------------------------------------------


def test_a_reply_is_mailed_with_text_html_message_id_and_token(
    queue: Queue, agent: User, django_capture_on_commit_callbacks: Capture
) -> None:
    customer = CustomerFactory.create(email="Hanako@Example.jp")
    ticket = TicketFactory.create(queue=queue, customer=customer, status=Status.NEW, subject="返金について")
    inbound = TicketMessageFactory.create(
        ticket=ticket, direction=Direction.INBOUND, message_id="<c1@mail.example.jp>", references="<c0@mail.example.jp>"
    )
    with django_capture_on_commit_callbacks(execute=True):
        message = ticket_reply(
            ticket=ticket, actor=agent, body="ご連絡ありがとうございます。", now=jst(2026, 1, 15, 10, 20)
        )

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.subject == f"[#T-{ticket.pk}] 返金について"
    assert sent.to == ["Hanako@Example.jp"]
    assert sent.extra_headers["Message-ID"] == message.message_id
    assert sent.extra_headers["In-Reply-To"] == inbound.message_id
    assert sent.extra_headers["References"] == "<c0@mail.example.jp> <c1@mail.example.jp>"
    assert "ご連絡ありがとうございます。" in sent.body
    assert isinstance(sent, EmailMultiAlternatives)
    ((html, mimetype),) = sent.alternatives
    assert mimetype == "text/html"
    assert "<p>ご連絡ありがとうございます。</p>" in str(html)
    assert message.message_id.startswith("<") and message.message_id.endswith("@example.jp>")
    message.refresh_from_db()
    assert message.email_sent_at is not None
    ticket.refresh_from_db()
    assert (ticket.status, ticket.first_responded_at) == (Status.OPEN, jst(2026, 1, 15, 10, 20))
    assert events(ticket) == [(EventKind.REPLIED, agent.pk), (EventKind.STATUS, agent.pk)]


def test_a_second_reply_keeps_the_first_response_time(queue: Queue, agent: User) -> None:
    ticket = TicketFactory.create(queue=queue, first_responded_at=jst(2026, 1, 15, 10, 5))
    ticket_reply(ticket=ticket, actor=agent, body="追記", now=jst(2026, 1, 15, 12))
    ticket.refresh_from_db()
    assert (ticket.first_responded_at, ticket.status) == (jst(2026, 1, 15, 10, 5), Status.OPEN)


def test_refused_replies_store_and_send_nothing(
    queue: Queue, agent: User, other_agent: User, django_capture_on_commit_callbacks: Capture
) -> None:
    ticket = TicketFactory.create(queue=queue, customer=CustomerFactory.create())
    closed = TicketFactory.create(queue=queue, status=Status.CLOSED, customer=CustomerFactory.create())
    with django_capture_on_commit_callbacks(execute=True):
        cases: list[tuple[dict[str, Any], str]] = [
            ({"ticket": ticket, "actor": other_agent, "body": "x"}, RefusalCode.NOT_IN_QUEUE),
            ({"ticket": ticket, "actor": agent, "body": "  "}, RefusalCode.EMPTY_BODY),
            ({"ticket": closed, "actor": agent, "body": "x"}, RefusalCode.CLOSED),
            ({"ticket": ticket, "actor": agent, "body": "x", "set_status": Status.NEW}, RefusalCode.STATUS),
        ]
        for kwargs, code in cases:
            with pytest.raises(TicketRefused) as refused:
                ticket_reply(**kwargs)
            assert refused.value.code == code
    assert (TicketMessage.objects.count(), TicketEvent.objects.count(), len(mail.outbox)) == (0, 0, 0)


def test_an_internal_note_is_not_mailed_and_is_no_response(
    queue: Queue, agent: User, django_capture_on_commit_callbacks: Capture
) -> None:
    ticket = TicketFactory.create(queue=queue, customer=CustomerFactory.create(), status=Status.NEW)
    with django_capture_on_commit_callbacks(execute=True):
        note = ticket_add_note(ticket=ticket, actor=agent, body="本人確認済み")
    ticket.refresh_from_db()
    assert (note.kind, note.message_id, ticket.first_responded_at, ticket.status) == (
        MessageKind.INTERNAL,
        "",
        None,
        Status.NEW,
    )
    assert len(mail.outbox) == 0
    assert events(ticket) == [(EventKind.NOTE, agent.pk)]


# --- canned replies -----------------------------------------------------------------------------------


def test_a_canned_reply_renders_its_variables_and_sets_status(
    queue: Queue, agent: User, django_capture_on_commit_callbacks: Capture
) -> None:
    program = ReviewProgramFactory.create(application_deadline=dt.date(2026, 3, 31))
    claim = ClaimFactory.create(program=program, amount_jpy=12000)
    ticket = TicketFactory.create(queue=queue, customer=CustomerFactory.create(name="佐藤 花子"))
    TicketClaim.objects.create(ticket=ticket, claim=claim)
    canned = CannedReplyFactory.create(
        body=(
            "{{ customer_name }} 様\n補償額は {{ claim_amount }} です。"
            "申請期限は {{ deadline }} です。({{ ticket_token }})"
        ),
        set_status=Status.PENDING_CUSTOMER,
    )
    canned.queues.add(queue)
    with django_capture_on_commit_callbacks(execute=True):
        message = ticket_reply_canned(ticket=ticket, actor=agent, canned=canned, now=jst(2026, 1, 15, 11))
    assert message.body == f"佐藤 花子 様\n補償額は 12,000円 です。申請期限は 2026年03月31日 です。(T-{ticket.pk})"
    ticket.refresh_from_db()
    assert (ticket.status, ticket.paused_at) == (Status.PENDING_CUSTOMER, jst(2026, 1, 15, 11))
    assert len(mail.outbox) == 1
    replied = TicketEvent.objects.get(ticket=ticket, kind=EventKind.REPLIED)
    assert replied.data == {"message": message.pk, "canned_reply": canned.pk}


def test_a_canned_reply_of_another_queue_is_refused(queue: Queue, agent: User) -> None:
    ticket = TicketFactory.create(queue=queue)
    canned = CannedReplyFactory.create()
    canned.queues.add(QueueFactory.create())
    with pytest.raises(TicketRefused) as refused:
        ticket_reply_canned(ticket=ticket, actor=agent, canned=canned)
    assert refused.value.code == RefusalCode.CANNED_NOT_FOR_QUEUE
    assert (TicketMessage.objects.count(), TicketEvent.objects.count()) == (0, 0)


def test_canned_replies_see_only_their_limited_context(queue: Queue, agent: User) -> None:
    ticket = TicketFactory.create(queue=queue, customer=CustomerFactory.create(email="secret@example.jp"))
    leaky = CannedReplyFactory.create(body="[{{ ticket.customer.email }}][{{ settings.SECRET_KEY }}]")
    assert canned_reply_render(canned=leaky, ticket=ticket, actor=agent) == "[][]"
    tagged = CannedReplyFactory.create(body="{% load static %}{% static 'x' %}")
    with pytest.raises(TicketRefused) as refused:
        canned_reply_render(canned=tagged, ticket=ticket, actor=agent)
    assert refused.value.code == RefusalCode.CANNED_TEMPLATE


# --- merge --------------------------------------------------------------------------------------------


def test_merge_moves_messages_and_claims_and_closes_duplicates_with_a_pointer(queue: Queue, agent: User) -> None:
    customer = CustomerFactory.create()
    target = TicketFactory.create(queue=queue, customer=customer)
    first = TicketFactory.create(queue=queue, customer=customer)
    second = TicketFactory.create(queue=queue, status=Status.PENDING_CUSTOMER, paused_at=jst(2026, 1, 15, 12))
    TicketMessageFactory.create(ticket=target, body="t")
    moved_a = TicketMessageFactory.create(ticket=first, body="a")
    moved_b = TicketMessageFactory.create(ticket=second, body="b", kind=MessageKind.INTERNAL)
    claim = ClaimFactory.create()
    TicketClaim.objects.create(ticket=second, claim=claim)

    tickets_merge(target=target, duplicates=[first, second, target], actor=agent, now=jst(2026, 1, 15, 13))

    assert sorted(TicketMessage.objects.filter(ticket=target).values_list("body", flat=True)) == ["a", "b", "t"]
    moved_a.refresh_from_db()
    moved_b.refresh_from_db()
    assert (moved_a.original_ticket_id, moved_b.original_ticket_id) == (first.pk, second.pk)
    assert set(TicketClaim.objects.filter(ticket=target).values_list("claim_id", flat=True)) == {claim.pk}
    for duplicate in (first, second):
        duplicate.refresh_from_db()
        assert (duplicate.status, duplicate.merged_into_id, duplicate.closed_at, duplicate.paused_at) == (
            Status.CLOSED,
            target.pk,
            jst(2026, 1, 15, 13),
            None,
        )
        assert (
            TicketEvent.objects.filter(ticket=duplicate, kind=EventKind.MERGED, data={"into": target.pk}).count() == 1
        )
    merged_in = TicketEvent.objects.get(ticket=target, kind=EventKind.MERGED_IN)
    assert (merged_in.actor_id, merged_in.data) == (agent.pk, {"tickets": [first.pk, second.pk], "messages_moved": 2})
    target.refresh_from_db()
    assert target.status == Status.OPEN


@pytest.mark.parametrize("case", ["no_permission", "needs_two", "closed", "other_queue"])
def test_refused_merges_change_nothing(queue: Queue, agent: User, case: str) -> None:
    target = TicketFactory.create(queue=queue)
    duplicate = TicketFactory.create(queue=queue)
    actor: User | None = agent
    expected = {
        "no_permission": RefusalCode.NO_PERMISSION,
        "needs_two": RefusalCode.MERGE_NEEDS_TWO,
        "closed": RefusalCode.CLOSED,
        "other_queue": RefusalCode.NOT_IN_QUEUE,
    }[case]
    duplicates = [duplicate]
    if case == "no_permission":
        actor = User.objects.create_user(username="nobody", password="x" * 16, is_staff=True)
        queue.members.add(actor)
    elif case == "needs_two":
        duplicates = [target]
    elif case == "closed":
        Ticket.objects.filter(pk=duplicate.pk).update(status=Status.CLOSED)
    else:
        Ticket.objects.filter(pk=duplicate.pk).update(queue=QueueFactory.create())
    TicketMessageFactory.create(ticket=duplicate)
    with pytest.raises(TicketRefused) as refused:
        tickets_merge(target=target, duplicates=duplicates, actor=actor)
    assert refused.value.code == expected
    assert TicketEvent.objects.count() == 0
    assert Ticket.objects.filter(merged_into__isnull=False).count() == 0
    assert TicketMessage.objects.get().ticket_id == duplicate.pk


def test_priority_choices_are_ordered() -> None:
    assert [p.value for p in Priority] == [1, 2, 3, 4]
