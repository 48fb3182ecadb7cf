"""`fetch_ticket_mail --maildir`: a real maildir in tmp_path; threading by headers, then subject token,
else a new ticket; the same mail fetched twice is stored once."""

import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from support_portal.tickets.models import (
    Channel,
    Direction,
    EventKind,
    Queue,
    Status,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from tests.factories import CustomerFactory
from tests.tickets.factories import QueueFactory, TicketFactory, TicketMessageFactory, jst

pytestmark = pytest.mark.django_db


def make_mail(
    *, message_id: str, sender: str, subject: str, body: str, in_reply_to: str = "", references: str = ""
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"顧客 <{sender}>"
    message["To"] = "support@example.jp"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Date"] = "Thu, 15 Jan 2026 12:00:00 +0900"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    message.set_content(body)
    return message


@pytest.fixture
def maildir(tmp_path: Path) -> mailbox.Maildir:
    return mailbox.Maildir(tmp_path / "support", create=True)


@pytest.fixture
def inbound_queue() -> Queue:
    return QueueFactory.create(name="一般", slug="general")


def fetch(box: mailbox.Maildir) -> None:
    call_command("fetch_ticket_mail", "--maildir", box._path)


def test_mail_threads_by_headers_then_token_else_opens_a_ticket_and_twice_stores_once(
    maildir: mailbox.Maildir, inbound_queue: Queue, queue: Queue
) -> None:
    customer = CustomerFactory.create(email="Hanako@Example.jp", name="佐藤 花子")
    by_header = TicketFactory.create(
        queue=queue, customer=customer, status=Status.PENDING_CUSTOMER, paused_at=jst(2026, 1, 15, 11)
    )
    TicketMessageFactory.create(ticket=by_header, direction=Direction.OUTBOUND, message_id="<reply-1@example.jp>")
    by_token = TicketFactory.create(
        queue=queue, customer=customer, status=Status.RESOLVED, resolved_at=jst(2026, 1, 15, 11)
    )

    maildir.add(
        make_mail(
            message_id="<a@mail.example.jp>",
            sender="hanako@example.jp",
            subject="Re: 何か",  # no token: the header decides
            body="ヘッダーで紐づく返信",
            in_reply_to="<reply-1@example.jp>",
            references="<other@x> <reply-1@example.jp>",
        )
    )
    maildir.add(
        make_mail(
            message_id="<b@mail.example.jp>",
            sender="HANAKO@example.jp",
            subject=f"Re: [#T-{by_token.pk}] 返金",
            body="件名の番号で紐づく返信",
        )
    )
    maildir.add(
        make_mail(message_id="<c@mail.example.jp>", sender="hanako@example.jp", subject="新しい質問", body="新規")
    )
    maildir.add(
        make_mail(
            message_id="<d@mail.example.jp>",
            sender="stranger@example.com",
            subject=f"[#T-{by_token.pk}] 他人の番号",  # someone else's token: not threaded onto that ticket
            body="なりすまし",
        )
    )

    fetch(maildir)
    fetch(maildir)  # the same mail again (now in cur/)

    assert TicketMessage.objects.filter(direction=Direction.INBOUND).count() == 4
    assert TicketMessage.objects.get(message_id="<a@mail.example.jp>").ticket_id == by_header.pk
    assert TicketMessage.objects.get(message_id="<b@mail.example.jp>").ticket_id == by_token.pk
    by_header.refresh_from_db()
    by_token.refresh_from_db()
    # a customer's reply reopens: pending → open (clock resumed), resolved → open
    assert (by_header.status, by_header.paused_at) == (Status.OPEN, None)
    assert (by_token.status, by_token.resolved_at) == (Status.OPEN, None)

    new_tickets = Ticket.objects.exclude(pk__in=[by_header.pk, by_token.pk]).order_by("pk")
    assert [(t.subject, t.queue_id, t.channel, t.customer_id, t.requester_email) for t in new_tickets] == [
        ("新しい質問", inbound_queue.pk, Channel.EMAIL, customer.pk, "hanako@example.jp"),
        ("他人の番号", inbound_queue.pk, Channel.EMAIL, None, "stranger@example.com"),
    ]
    assert TicketEvent.objects.filter(kind=EventKind.INBOUND).count() == 2
    assert TicketEvent.objects.filter(kind=EventKind.CREATED).count() == 2
    # every message moved to cur/ and flagged seen
    assert [message.get_subdir() for message in maildir] == ["cur"] * 4
    assert all("S" in message.get_flags() for message in maildir)


def test_a_reply_to_a_merged_ticket_lands_on_its_target_and_to_a_closed_one_opens_a_new_ticket(
    maildir: mailbox.Maildir, inbound_queue: Queue, queue: Queue
) -> None:
    customer = CustomerFactory.create(email="taro@example.jp")
    target = TicketFactory.create(queue=queue, customer=customer)
    merged = TicketFactory.create(queue=queue, customer=customer, status=Status.CLOSED, merged_into=target)
    closed = TicketFactory.create(queue=queue, customer=customer, status=Status.CLOSED)
    maildir.add(make_mail(message_id="<m1@x>", sender="taro@example.jp", subject=f"Re: [#T-{merged.pk}] a", body="1"))
    maildir.add(make_mail(message_id="<m2@x>", sender="taro@example.jp", subject=f"Re: [#T-{closed.pk}] b", body="2"))

    fetch(maildir)

    assert TicketMessage.objects.get(message_id="<m1@x>").ticket_id == target.pk
    follow_up = TicketMessage.objects.get(message_id="<m2@x>").ticket
    assert follow_up.pk not in {target.pk, merged.pk, closed.pk}
    assert (follow_up.subject, follow_up.customer_id, follow_up.status) == ("Re: b", customer.pk, Status.NEW)


def test_a_mail_without_message_id_is_still_stored_once(maildir: mailbox.Maildir, inbound_queue: Queue) -> None:
    message = make_mail(message_id="<x@x>", sender="a@example.jp", subject="no id", body="本文")
    del message["Message-ID"]
    maildir.add(message)
    fetch(maildir)
    fetch(maildir)
    stored = TicketMessage.objects.get()
    assert stored.message_id.startswith("<sha256-") and stored.body == "本文"


@override_settings(TICKETS_INBOUND_QUEUE="missing")
def test_without_the_configured_queue_mail_goes_to_the_first_queue(maildir: mailbox.Maildir, queue: Queue) -> None:
    maildir.add(make_mail(message_id="<y@x>", sender="a@example.jp", subject="s", body="b"))
    fetch(maildir)
    assert Ticket.objects.get().queue_id == Queue.objects.order_by("pk").first().pk  # type: ignore[union-attr]


def test_a_path_that_is_not_a_maildir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a maildir"):
        call_command("fetch_ticket_mail", "--maildir", str(tmp_path))
    assert Ticket.objects.count() == 0
