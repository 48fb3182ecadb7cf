"""Ticket mail: outbound replies (text + HTML, stable Message-ID, [#T-123] in the subject) and inbound
threading of customer mail (reference headers, then the subject token, else a new ticket).

Threading rules (docs/tickets.md):
1. a Message-ID already stored → nothing happens (fetching the same mail twice stores it once);
2. In-Reply-To / References naming a stored message → that message's ticket;
3. a `[#T-<id>]` token in the subject, when the sender is the ticket's customer/requester address;
4. otherwise a new ticket in the inbound queue, its customer matched by email (case-insensitive).
A merged ticket forwards to the ticket it was merged into; mail on a closed ticket opens a new one;
mail on a pending or resolved ticket reopens it (status open, clock resumed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.policy
import email.utils
import hashlib
import logging
import re
from email.message import EmailMessage as ParsedMessage

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils import timezone

from support_portal.core.audit import audit_context
from support_portal.customers.models import Customer
from support_portal.tickets.models import (
    Category,
    Channel,
    Direction,
    EventKind,
    MessageKind,
    Queue,
    Status,
    Ticket,
    TicketEvent,
    TicketMessage,
)

logger = logging.getLogger(__name__)

TOKEN_RE = re.compile(r"\[#T-(\d+)\]")
MSGID_RE = re.compile(r"<[^<>\s]+>")
MAX_MERGE_HOPS = 20


def new_message_id() -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"
    return email.utils.make_msgid(idstring="ticket", domain=domain)


def ticket_subject(ticket: Ticket) -> str:
    return f"[#{ticket.token}] {ticket.subject}"


def ticket_message_send(*, message_id: int) -> bool:
    """Mails one public outbound message to the ticket's customer; True when sent now.

    Runs after the reply's commit. Sent once: `email_sent_at` is set by a conditional UPDATE.
    """
    message = (
        TicketMessage.objects.select_related("ticket", "ticket__customer", "author_user")
        .filter(pk=message_id, kind=MessageKind.PUBLIC, direction=Direction.OUTBOUND, email_sent_at__isnull=True)
        .first()
    )
    if message is None:
        return False
    ticket = message.ticket
    recipient = (ticket.customer.email if ticket.customer else "") or ticket.requester_email
    if not recipient:
        logger.info("ticket %s has no address; reply %s kept unsent", ticket.pk, message.pk)
        return False
    context = {"ticket": ticket, "message": message, "token": ticket.token}
    headers = {"Message-ID": message.message_id}
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
    if message.references:
        headers["References"] = message.references
    mail = EmailMultiAlternatives(
        subject=ticket_subject(ticket),
        body=render_to_string("tickets/email/reply.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
        headers=headers,
    )
    mail.attach_alternative(render_to_string("tickets/email/reply.html", context), "text/html")
    mail.send()
    TicketMessage.objects.filter(pk=message.pk, email_sent_at__isnull=True).update(email_sent_at=timezone.now())
    logger.info("ticket reply %s sent for ticket %s", message.pk, ticket.pk)
    return True


# --- inbound ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InboundMail:
    message_id: str
    from_email: str
    subject: str
    body: str
    in_reply_to: str = ""
    references: str = ""
    received_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class InboundResult:
    ticket_id: int
    message_pk: int
    outcome: str  # "duplicate", "threaded_by_header", "threaded_by_token", "new_ticket"


def parse_mail(raw: bytes) -> InboundMail:
    """The fields threading needs from an RFC 5322 message. A mail without Message-ID gets one derived
    from its bytes, so fetching it again is still recognised."""
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, ParsedMessage)
    message_id = str(parsed.get("Message-ID", "")).strip()
    found = MSGID_RE.search(message_id)
    message_id = found.group(0) if found else f"<sha256-{hashlib.sha256(raw).hexdigest()}@inbound.invalid>"
    _name, from_email = email.utils.parseaddr(str(parsed.get("From", "")))
    body_part = parsed.get_body(preferencelist=("plain", "html"))
    body = ""
    if body_part is not None:
        content = body_part.get_content()
        body = content if isinstance(content, str) else content.decode("utf-8", "replace")
    date_header = parsed.get("Date")
    received_at = None
    if date_header:
        try:
            received_at = email.utils.parsedate_to_datetime(str(date_header))
        except (TypeError, ValueError):
            received_at = None
        if received_at is not None and timezone.is_naive(received_at):
            received_at = None
    return InboundMail(
        message_id=message_id,
        from_email=from_email.strip(),
        subject=str(parsed.get("Subject", "")).strip(),
        body=body.strip(),
        in_reply_to=" ".join(MSGID_RE.findall(str(parsed.get("In-Reply-To", "")))),
        references=" ".join(MSGID_RE.findall(str(parsed.get("References", "")))),
        received_at=received_at,
    )


def _inbound_queue() -> Queue:
    queue = Queue.objects.filter(slug=settings.TICKETS_INBOUND_QUEUE).first() or Queue.objects.order_by("pk").first()
    if queue is None:
        raise LookupError("no ticket queue exists to receive mail")
    return queue


def _follow_merges(ticket: Ticket) -> Ticket:
    hops = 0
    while ticket.merged_into_id is not None and hops < MAX_MERGE_HOPS:
        ticket = Ticket.objects.get(pk=ticket.merged_into_id)
        hops += 1
    return ticket


def _thread_target(mail: InboundMail) -> tuple[Ticket | None, str]:
    referenced = [*MSGID_RE.findall(mail.in_reply_to), *reversed(MSGID_RE.findall(mail.references))]
    if referenced:
        known = TicketMessage.objects.filter(message_id__in=referenced).values_list("message_id", "ticket_id")
        by_id = dict(known)
        for ref in referenced:
            if ref in by_id:
                return Ticket.objects.get(pk=by_id[ref]), "threaded_by_header"
    token = TOKEN_RE.search(mail.subject)
    if token:
        ticket = Ticket.objects.select_related("customer").filter(pk=int(token.group(1))).first()
        if ticket is not None:
            addresses = {ticket.requester_email.lower(), (ticket.customer.email if ticket.customer else "").lower()}
            if mail.from_email.lower() in addresses - {""}:
                return ticket, "threaded_by_token"
    return None, "new_ticket"


def _customer_for(address: str) -> Customer | None:
    if not address:
        return None
    return (
        Customer.objects.annotate(email_lower=Lower("email"))
        .filter(email_lower=address.lower())
        .order_by("customer_id")
        .first()
    )


def ticket_receive_mail(*, mail: InboundMail, now: dt.datetime | None = None) -> InboundResult:
    """Stores one inbound mail on its ticket (threading rules in the module docstring); idempotent."""
    from support_portal.tickets.services import _apply_status, ticket_open  # noqa: PLC0415 - cycle

    now = now or timezone.now()
    existing = TicketMessage.objects.filter(message_id=mail.message_id).values_list("pk", "ticket_id").first()
    if existing:
        return InboundResult(ticket_id=existing[1], message_pk=existing[0], outcome="duplicate")
    target, outcome = _thread_target(mail)
    if target is not None:
        target = _follow_merges(target)
        if target.status == Status.CLOSED:
            target, outcome = None, "new_ticket"
    try:
        with audit_context(actor=None), transaction.atomic():
            if target is None:
                customer = _customer_for(mail.from_email)
                ticket = ticket_open(
                    actor=None,
                    queue=_inbound_queue(),
                    subject=" ".join(TOKEN_RE.sub("", mail.subject).split()),
                    body=mail.body or "(empty message)",
                    customer=customer,
                    requester_email=mail.from_email,
                    category=Category.OTHER,
                    channel=Channel.EMAIL,
                    message_id=mail.message_id,
                    in_reply_to=mail.in_reply_to,
                    references=mail.references,
                    now=now,
                )
                message_pk = TicketMessage.objects.get(message_id=mail.message_id).pk
                return InboundResult(ticket_id=ticket.pk, message_pk=message_pk, outcome="new_ticket")
            ticket = Ticket.objects.select_for_update().get(pk=target.pk)
            message = TicketMessage.objects.create(
                ticket=ticket,
                kind=MessageKind.PUBLIC,
                direction=Direction.INBOUND,
                author_customer=ticket.customer,
                author_email=mail.from_email,
                body=mail.body or "(empty message)",
                message_id=mail.message_id,
                in_reply_to=mail.in_reply_to,
                references=mail.references,
                created_at=now,
            )
            changed = ["updated_at"]
            ticket.updated_at = now
            TicketEvent.objects.create(ticket=ticket, kind=EventKind.INBOUND, at=now, data={"message": message.pk})
            if ticket.status in (Status.PENDING_CUSTOMER, Status.RESOLVED):
                changed += _apply_status(ticket, Status.OPEN, now, None)
            ticket.save(update_fields=sorted(set(changed)))
            return InboundResult(ticket_id=ticket.pk, message_pk=message.pk, outcome=outcome)
    except IntegrityError:
        # The same mail stored by a concurrent fetch between our check and insert.
        pk, ticket_id = TicketMessage.objects.filter(message_id=mail.message_id).values_list("pk", "ticket_id").get()
        return InboundResult(ticket_id=ticket_id, message_pk=pk, outcome="duplicate")
