"""Factories for the ticket desk tests."""

import datetime as dt
from zoneinfo import ZoneInfo

import factory

from support_portal.tickets.models import CannedReply, Queue, Status, Ticket, TicketMessage

JST = ZoneInfo("Asia/Tokyo")


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=JST)


class QueueFactory(factory.django.DjangoModelFactory[Queue]):
    class Meta:
        model = Queue
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Queue {n}")
    slug = factory.Sequence(lambda n: f"queue-{n}")
    first_response_minutes = 60
    resolution_minutes = 480


class TicketFactory(factory.django.DjangoModelFactory[Ticket]):
    class Meta:
        model = Ticket

    queue = factory.SubFactory(QueueFactory)
    subject = factory.Sequence(lambda n: f"ログインできません {n}")
    status = Status.OPEN
    created_at = jst(2026, 1, 15, 10)
    updated_at = factory.SelfAttribute("created_at")
    first_response_due_at = jst(2026, 1, 15, 11)
    resolution_due_at = jst(2026, 1, 15, 18)


class TicketMessageFactory(factory.django.DjangoModelFactory[TicketMessage]):
    class Meta:
        model = TicketMessage

    ticket = factory.SubFactory(TicketFactory)
    body = "本文"
    created_at = jst(2026, 1, 15, 10)


class CannedReplyFactory(factory.django.DjangoModelFactory[CannedReply]):
    class Meta:
        model = CannedReply

    title = factory.Sequence(lambda n: f"定型文 {n}")
    body = "{{ customer_name }} 様\nお問い合わせ {{ ticket_token }} を承りました。"
