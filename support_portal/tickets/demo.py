"""Demo ticket desk: queues with SLAs, canned replies and a surge-shaped spread of tickets for the demo
customers (some breached, some merged, every status), written set-based. Safe to run again: queues and
canned replies are upserted by slug/title, and tickets are only generated while the demo queues have none.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from support_portal.core.business_days import JST, business_calendar
from support_portal.customers.models import Customer
from support_portal.tickets.business_hours import OpeningHours, add_business_minutes
from support_portal.tickets.mail import new_message_id
from support_portal.tickets.models import (
    CannedReply,
    Category,
    Channel,
    Direction,
    EventKind,
    MessageKind,
    Priority,
    Queue,
    Status,
    Ticket,
    TicketEvent,
    TicketMessage,
)

QUEUES = [
    # slug, name, first response, resolution (business minutes), open weekends
    ("lead", "リード / Lead", 30, 240, True),
    ("general", "一般 / General", 240, 1440, False),
    ("login", "ログイン / Login help", 120, 960, True),
    ("billing", "請求 / Billing", 240, 1920, False),
]
CATEGORY_QUEUE = {
    Category.LOGIN: "login",
    Category.COMPENSATION: "general",
    Category.REFUND: "billing",
    Category.DOUBLE_CHARGE: "billing",
    Category.OTHER: "general",
}
SUBJECTS = {
    Category.LOGIN: ["ログインできません", "パスワード再設定メールが届かない", "登録メールアドレスが使えない"],
    Category.COMPENSATION: ["補償の対象ですか", "補償額について", "申請期限を教えてください"],
    Category.REFUND: ["返金をお願いします", "解約後の返金について"],
    Category.DOUBLE_CHARGE: ["二重に請求されています", "同じ月に2回引き落とし"],
    Category.OTHER: ["その他のお問い合わせ", "領収書がほしい"],
}
CANNED = [
    (
        "本人確認のお願い",
        "{{ customer_name }} 様\n\nお問い合わせ（{{ ticket_token }}）ありがとうございます。\n"
        "ご本人確認のため、直近のご請求金額とお支払い方法の下4桁をお知らせください。",
        Status.PENDING_CUSTOMER,
        ["login", "lead"],
    ),
    (
        "補償額のご案内",
        "{{ customer_name }} 様\n\n補償額は {{ claim_amount }} です。申請期限は {{ deadline }} です。",
        "",
        [],
    ),
    (
        "解決のご連絡",
        "{{ customer_name }} 様\n\nお問い合わせ（{{ ticket_token }}）の件は解決いたしました。\n担当: {{ agent_name }}",
        Status.RESOLVED,
        [],
    ),
]


@dataclasses.dataclass(frozen=True)
class DemoOutcome:
    queues: int
    canned_replies: int
    tickets_created: int


def _queues() -> dict[str, Queue]:
    queues: dict[str, Queue] = {}
    for slug, name, first, resolution, weekends in QUEUES:
        queue, _created = Queue.objects.update_or_create(
            slug=slug,
            defaults={
                "name": name,
                "first_response_minutes": first,
                "resolution_minutes": resolution,
                "open_weekends": weekends,
            },
        )
        queues[slug] = queue
    for slug, queue in queues.items():
        if slug != "lead" and queue.escalation_queue_id != queues["lead"].pk:
            queue.escalation_queue = queues["lead"]
            queue.save(update_fields=["escalation_queue"])
    users = get_user_model().objects.filter(username__in=["agent", "manager"])
    for user in users:
        for slug in ("general", "login", "billing"):
            queues[slug].members.add(user)
    return queues


def _canned(queues: dict[str, Queue]) -> int:
    for title, body, status, queue_slugs in CANNED:
        canned, _created = CannedReply.objects.update_or_create(
            title=title, defaults={"body": body, "set_status": status}
        )
        canned.queues.set([queues[slug] for slug in queue_slugs])
    return len(CANNED)


def demo_tickets_create(
    *, tickets: int = 600, days: int = 30, seed: int = 7, now: dt.datetime | None = None
) -> DemoOutcome:
    now = now or timezone.now()
    with transaction.atomic():
        queues = _queues()
        canned = _canned(queues)
        if Ticket.objects.filter(queue__in=queues.values()).exists():
            return DemoOutcome(queues=len(queues), canned_replies=canned, tickets_created=0)
        customers = list(Customer.objects.order_by("customer_id").values_list("customer_id", "email")[:5000])
        created = _tickets(queues, customers, count=tickets, days=days, seed=seed, now=now)
    return DemoOutcome(queues=len(queues), canned_replies=canned, tickets_created=created)


def _tickets(
    queues: dict[str, Queue], customers: list[tuple[str, str]], *, count: int, days: int, seed: int, now: dt.datetime
) -> int:
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    calendar = business_calendar()
    hours = {slug: OpeningHours(calendar=calendar, open_weekends=q.open_weekends) for slug, q in queues.items()}
    agent = get_user_model().objects.filter(username="agent").first()
    # A surge: the outage a third of the way in brings ten times the usual daily volume for five days.
    surge_start = days * 2 // 3
    weights = [10 if surge_start >= d > surge_start - 5 else 1 for d in range(days)]
    categories = list(Category)
    category_weights = [5, 3, 2, 1, 1]
    rows: list[Ticket] = []
    for _ in range(count):
        days_ago = rng.choices(range(days), weights=weights)[0]
        created = (
            (now - dt.timedelta(days=days_ago))
            .astimezone(JST)
            .replace(hour=rng.randint(8, 21), minute=rng.randint(0, 59), second=0, microsecond=0)
        )
        created = min(created, now - dt.timedelta(minutes=5))
        category = rng.choices(categories, weights=category_weights)[0]
        slug = CATEGORY_QUEUE[category]
        queue = queues[slug]
        first_due = add_business_minutes(created, queue.first_response_minutes, hours[slug])
        resolution_due = add_business_minutes(created, queue.resolution_minutes, hours[slug])
        customer_id, email = rng.choice(customers) if customers and rng.random() < 0.9 else (None, "")
        roll = rng.random()
        age = now - created
        status = Status.NEW
        responded = resolved = closed = None
        if days_ago > 2 and roll < 0.75:
            status = Status.CLOSED if roll < 0.45 else Status.RESOLVED
        else:
            active_roll = rng.random()
            if active_roll >= 0.35:
                status = Status.OPEN if active_roll < 0.8 else Status.PENDING_CUSTOMER
        if status != Status.NEW:
            # Most first responses on time; during the surge many late.
            late = days_ago in range(surge_start - 4, surge_start + 1) and rng.random() < 0.6
            delay = (first_due - created) * (1.5 if late else rng.uniform(0.1, 0.9))
            responded = min(created + delay, now - dt.timedelta(minutes=1))
        if status in (Status.RESOLVED, Status.CLOSED):
            resolved = min(created + age * rng.uniform(0.2, 0.6), now)
            resolved = max(resolved, responded or created)
            closed = resolved if status == Status.CLOSED else None
        rows.append(
            Ticket(
                queue=queue,
                category=category,
                channel=rng.choices(list(Channel), weights=[3, 4, 2, 1])[0],
                priority=rng.choices(list(Priority), weights=[1, 6, 2, 1])[0],
                status=status,
                subject=rng.choice(SUBJECTS[category]),
                customer_id=customer_id,
                requester_email=email,
                assignee=agent
                if agent and status in (Status.OPEN, Status.PENDING_CUSTOMER) and rng.random() < 0.5
                else None,
                created_at=created,
                updated_at=resolved or responded or created,
                first_response_due_at=first_due,
                resolution_due_at=resolution_due,
                first_responded_at=responded,
                resolved_at=resolved,
                closed_at=closed,
                paused_at=responded if status == Status.PENDING_CUSTOMER else None,
            )
        )
    rows.sort(key=lambda t: t.created_at)
    Ticket.objects.bulk_create(rows, batch_size=1000)

    twins = _merged_twins(rows)
    Ticket.objects.bulk_create(twins, batch_size=1000)
    _messages_and_events([*rows, *twins])
    return len(rows) + len(twins)


def _merged_twins(rows: list[Ticket]) -> list[Ticket]:
    # Duplicates: every 25th ticket with a customer gets a twin merged into it.
    twins: list[Ticket] = []
    for ticket in rows[::25]:
        if ticket.customer_id is None:
            continue
        twins.append(
            Ticket(
                queue=ticket.queue,
                category=ticket.category,
                channel=Channel.EMAIL,
                priority=ticket.priority,
                status=Status.CLOSED,
                subject=ticket.subject,
                customer_id=ticket.customer_id,
                requester_email=ticket.requester_email,
                created_at=ticket.created_at + dt.timedelta(minutes=3),
                updated_at=ticket.created_at + dt.timedelta(minutes=30),
                first_response_due_at=ticket.first_response_due_at,
                resolution_due_at=ticket.resolution_due_at,
                resolved_at=ticket.created_at + dt.timedelta(minutes=30),
                closed_at=ticket.created_at + dt.timedelta(minutes=30),
                merged_into=ticket,
            )
        )
    return twins


def _messages_and_events(tickets: list[Ticket]) -> None:
    messages: list[TicketMessage] = []
    events: list[TicketEvent] = []
    for ticket in tickets:
        messages.append(
            TicketMessage(
                ticket=ticket.merged_into or ticket,
                original_ticket=ticket if ticket.merged_into else None,
                kind=MessageKind.PUBLIC,
                direction=Direction.INBOUND,
                author_customer_id=ticket.customer_id,
                author_email=ticket.requester_email,
                body=f"{ticket.subject}。よろしくお願いします。",
                created_at=ticket.created_at,
            )
        )
        events.append(TicketEvent(ticket=ticket, kind=EventKind.CREATED, at=ticket.created_at, data={"demo": True}))
        if ticket.first_responded_at:
            messages.append(
                TicketMessage(
                    ticket=ticket,
                    kind=MessageKind.PUBLIC,
                    direction=Direction.OUTBOUND,
                    body="お問い合わせありがとうございます。確認いたします。",
                    message_id=new_message_id(),
                    created_at=ticket.first_responded_at,
                    email_sent_at=ticket.first_responded_at,
                )
            )
            events.append(TicketEvent(ticket=ticket, kind=EventKind.REPLIED, at=ticket.first_responded_at))
        if ticket.merged_into:
            events.append(
                TicketEvent(
                    ticket=ticket, kind=EventKind.MERGED, at=ticket.updated_at, data={"into": ticket.merged_into.pk}
                )
            )
    TicketMessage.objects.bulk_create(messages, batch_size=2000)
    TicketEvent.objects.bulk_create(events, batch_size=2000)
