"""Ticket services: open, change status, assign, move, reply, note, link claims, canned replies, merge.

Every service is keyword-only, runs in one transaction under `audit_context(actor=…)`, locks the
ticket rows it changes (`select_for_update`, ascending id when several) before reading their state,
checks the transition with the model's `can_*` guards and the actor's right to work the queue, and
writes one `TicketEvent` per change in that same transaction — or raises `TicketRefused` having
changed nothing. Emails are sent after commit (`transaction.on_commit`), never for a rolled-back reply.

The SLA clock (docs/tickets.md): due times are set on open from the queue's targets in business minutes;
"pending customer" pauses it (`paused_at`); leaving pending pushes both due times by the business time
spent paused.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.db.models import F, Q
from django.template import Context, Engine
from django.utils import timezone

from claims.models import Channel as SubmissionChannel
from claims.models import Claim, Policy, Program, Submission
from support_portal.core.audit import audit_context
from support_portal.core.business_days import BusinessCalendar, business_calendar
from support_portal.customers.models import Charge, Coupon, Customer
from support_portal.tickets.business_hours import (
    OpeningHours,
    add_business_minutes,
    add_business_time,
    business_time_between,
)
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
    TicketClaim,
    TicketEvent,
    TicketMessage,
    TicketSubmission,
)

Actor = AbstractBaseUser | AnonymousUser | None

SUBJECT_MAX = 200


class RefusalCode:
    """Stable codes of `TicketRefused` (tests and admin messages match on them)."""

    NOT_IN_QUEUE = "not_in_queue"
    STATUS = "status_not_allowed"
    CLOSED = "ticket_closed"
    MERGED = "ticket_merged"
    EMPTY_BODY = "empty_body"
    NO_PERMISSION = "no_permission"
    MERGE_NEEDS_TWO = "merge_needs_two"
    CANNED_NOT_FOR_QUEUE = "canned_not_for_queue"
    CANNED_TEMPLATE = "canned_template_error"
    NOT_A_MEMBER = "assignee_not_in_queue"
    NOT_A_CATEGORY = "not_a_category"
    NO_CUSTOMER = "no_customer"
    PROGRAM_CLOSED = "program_closed"
    SUBJECT_NOT_THE_CUSTOMERS = "subject_not_the_customers"
    PAYOUT_METHOD = "payout_method_not_offered"


class TicketRefused(Exception):
    """A ticket change that is not allowed; nothing was changed."""

    def __init__(self, *, code: str, message: str, ticket_id: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.ticket_id = ticket_id

    def __str__(self) -> str:
        return f"{self.message} ({self.code})"


# --- who may work which queue -----------------------------------------------------------------------


def _user(actor: Actor) -> User | None:
    """The acting user, or None for the system (the project uses Django's default User model)."""
    if actor is None or not actor.is_authenticated:
        return None
    return cast("User", actor)


def sees_all_queues(actor: Actor) -> bool:
    user = _user(actor)
    return user is not None and (bool(getattr(user, "is_superuser", False)) or user.has_perm("tickets.view_all_queues"))


def can_work_queue(actor: Actor, queue_id: int) -> bool:
    """The object-level rule: agents work tickets of queues they are members of; leads/managers all.
    `actor=None` is the system (inbound mail, beat tasks)."""
    if actor is None:
        return True
    user = _user(actor)
    if user is None:
        return False
    if sees_all_queues(user):
        return True
    return Queue.members.through.objects.filter(queue_id=queue_id, user_id=user.pk).exists()


def _check_queue(actor: Actor, ticket: Ticket) -> None:
    if not can_work_queue(actor, ticket.queue_id):
        raise TicketRefused(
            code=RefusalCode.NOT_IN_QUEUE, message="You do not work this ticket's queue.", ticket_id=ticket.pk
        )


def _lock(ticket: Ticket | int) -> Ticket:
    pk = ticket if isinstance(ticket, int) else ticket.pk
    return Ticket.objects.select_for_update().get(pk=pk)


def _event(ticket: Ticket, actor: Actor, kind: str, at: dt.datetime, **data: Any) -> TicketEvent:
    user = _user(actor)
    return TicketEvent.objects.create(ticket=ticket, actor=user, kind=kind, at=at, data=data)


def _change(locked: Ticket, actor: Actor, now: dt.datetime, *, field: str, value: Any, kind: str) -> None:
    """Sets one field of the locked ticket and records it as an event with before/after (nothing when
    the value is unchanged: no write, no event)."""
    before = getattr(locked, field)
    if before == value:
        return
    setattr(locked, field, value)
    locked.updated_at = now
    locked.save(update_fields=[field, "updated_at"])
    _event(locked, actor, kind, now, before=before, after=value)


# --- SLA ----------------------------------------------------------------------------------------------


def opening_hours_for(queue: Queue, *, calendar: BusinessCalendar | None = None) -> OpeningHours:
    """The queue's opening hours with its surge periods (one query) on the business calendar."""
    surges = tuple(queue.surges.values_list("starts_on", "ends_on"))
    return OpeningHours(
        calendar=calendar or business_calendar(),
        opens_at=queue.opens_at,
        closes_at=queue.closes_at,
        open_weekends=queue.open_weekends,
        surges=surges,
    )


def sla_due_times(
    *, queue: Queue, start: dt.datetime, hours: OpeningHours | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """(first response due, resolution due) for a ticket created at `start` in `queue`."""
    hours = hours or opening_hours_for(queue)
    return (
        add_business_minutes(start, queue.first_response_minutes, hours),
        add_business_minutes(start, queue.resolution_minutes, hours),
    )


def _apply_status(ticket: Ticket, status: str, now: dt.datetime, actor: Actor) -> list[str]:
    """Sets the status with its clock side effects on the locked ticket; returns the fields changed."""
    before = ticket.status
    changed = ["status", "updated_at"]
    if status == Status.PENDING_CUSTOMER and before != Status.PENDING_CUSTOMER:
        ticket.paused_at = now
        changed.append("paused_at")
        _event(ticket, actor, EventKind.CLOCK_PAUSED, now)
    if before == Status.PENDING_CUSTOMER and status != Status.PENDING_CUSTOMER and ticket.paused_at is not None:
        hours = opening_hours_for(ticket.queue)
        paused = max(business_time_between(ticket.paused_at, now, hours), dt.timedelta(0))
        if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
            ticket.first_response_due_at = add_business_time(ticket.first_response_due_at, paused, hours)
        if ticket.resolution_due_at is not None:
            ticket.resolution_due_at = add_business_time(ticket.resolution_due_at, paused, hours)
        ticket.paused_at = None
        changed += ["paused_at", "first_response_due_at", "resolution_due_at"]
        _event(ticket, actor, EventKind.CLOCK_RESUMED, now, paused_business_seconds=int(paused.total_seconds()))
    if status == Status.RESOLVED:
        ticket.resolved_at = now
        changed.append("resolved_at")
    elif status == Status.OPEN and before == Status.RESOLVED:
        ticket.resolved_at = None
        changed.append("resolved_at")
    if status == Status.CLOSED:
        ticket.closed_at = now
        if ticket.resolved_at is None:
            ticket.resolved_at = now
        changed += ["closed_at", "resolved_at"]
    ticket.status = status
    ticket.updated_at = now
    _event(ticket, actor, EventKind.STATUS, now, before=before, after=status)
    return changed


def _transition(ticket: Ticket, status: str, now: dt.datetime, actor: Actor) -> list[str]:
    if ticket.merged_into_id is not None:
        raise TicketRefused(code=RefusalCode.MERGED, message="The ticket was merged.", ticket_id=ticket.pk)
    if not ticket.can_transition(status):
        raise TicketRefused(
            code=RefusalCode.STATUS,
            message=f"A ticket in status {ticket.status} cannot move to {status}.",
            ticket_id=ticket.pk,
        )
    return _apply_status(ticket, status, now, actor)


# --- services -----------------------------------------------------------------------------------------


def ticket_open(
    *,
    actor: Actor,
    queue: Queue,
    subject: str,
    body: str = "",
    customer: Customer | None = None,
    requester_email: str = "",
    category: str = Category.OTHER,
    channel: str = Channel.PHONE,
    priority: int = Priority.NORMAL,
    claim_ids: Iterable[int] = (),
    message_id: str = "",
    in_reply_to: str = "",
    references: str = "",
    now: dt.datetime | None = None,
) -> Ticket:
    """Opens a ticket with its SLA due times; `body` becomes the customer's first message."""
    now = now or timezone.now()
    if actor is not None and not can_work_queue(actor, queue.pk):
        raise TicketRefused(code=RefusalCode.NOT_IN_QUEUE, message="You do not work this queue.")
    first_due, resolution_due = sla_due_times(queue=queue, start=now)
    with audit_context(actor=actor), transaction.atomic():
        ticket = Ticket.objects.create(
            queue=queue,
            subject=subject.strip()[:SUBJECT_MAX] or "(no subject)",
            customer=customer,
            requester_email=requester_email or (customer.email if customer else ""),
            category=category,
            channel=channel,
            priority=priority,
            status=Status.NEW,
            created_at=now,
            updated_at=now,
            first_response_due_at=first_due,
            resolution_due_at=resolution_due,
        )
        _event(ticket, actor, EventKind.CREATED, now, queue=queue.pk, channel=channel, category=category)
        if body.strip():
            TicketMessage.objects.create(
                ticket=ticket,
                kind=MessageKind.PUBLIC,
                direction=Direction.INBOUND,
                author_user=_user(actor),
                author_customer=customer,
                author_email=ticket.requester_email,
                body=body,
                message_id=message_id,
                in_reply_to=in_reply_to,
                references=references,
                created_at=now,
            )
        for claim_id in sorted(set(claim_ids)):
            TicketClaim.objects.create(ticket=ticket, claim_id=claim_id)
            _event(ticket, actor, EventKind.CLAIM_LINKED, now, claim=claim_id)
    return ticket


def ticket_set_status(*, ticket: Ticket, actor: Actor, status: str, now: dt.datetime | None = None) -> Ticket:
    now = now or timezone.now()
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        changed = _transition(locked, status, now, actor)
        locked.save(update_fields=sorted(set(changed)))
    return locked


def ticket_assign(
    *, ticket: Ticket, actor: Actor, assignee: AbstractBaseUser | None, now: dt.datetime | None = None
) -> Ticket:
    """Assigns (or unassigns with None). The assignee must work the ticket's queue."""
    now = now or timezone.now()
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        if locked.status == Status.CLOSED:
            raise TicketRefused(code=RefusalCode.CLOSED, message="The ticket is closed.", ticket_id=locked.pk)
        if assignee is not None and not can_work_queue(assignee, locked.queue_id):
            raise TicketRefused(
                code=RefusalCode.NOT_A_MEMBER, message="The assignee does not work this queue.", ticket_id=locked.pk
            )
        new_id = assignee.pk if assignee is not None else None
        if locked.assignee_id == new_id:
            return locked
        before = locked.assignee_id
        locked.assignee_id = new_id
        locked.updated_at = now
        locked.save(update_fields=["assignee", "updated_at"])
        _event(locked, actor, EventKind.ASSIGNED, now, before=before, after=new_id)
    return locked


def ticket_move(*, ticket: Ticket, actor: Actor, queue: Queue, now: dt.datetime | None = None) -> Ticket:
    """Moves to another queue (the actor must work both); due times stay (the customer waited already)."""
    now = now or timezone.now()
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        if actor is not None and not can_work_queue(actor, queue.pk):
            raise TicketRefused(
                code=RefusalCode.NOT_IN_QUEUE, message="You do not work that queue.", ticket_id=locked.pk
            )
        if locked.queue_id == queue.pk:
            return locked
        before = locked.queue_id
        locked.queue = queue
        locked.updated_at = now
        locked.save(update_fields=["queue", "updated_at"])
        _event(locked, actor, EventKind.QUEUE, now, before=before, after=queue.pk)
    return locked


def ticket_set_priority(*, ticket: Ticket, actor: Actor, priority: int, now: dt.datetime | None = None) -> Ticket:
    now = now or timezone.now()
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        _change(locked, actor, now, field="priority", value=priority, kind=EventKind.PRIORITY)
    return locked


def ticket_link_customer(*, ticket: Ticket, actor: Actor, customer: Customer, now: dt.datetime | None = None) -> Ticket:
    """Links (or corrects) the ticket's customer — e.g. mail from an address no customer has, once the
    agent has found who wrote. Writes an event with before/after; unchanged when it is the same customer."""
    now = now or timezone.now()
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        if locked.status == Status.CLOSED:
            raise TicketRefused(code=RefusalCode.CLOSED, message="The ticket is closed.", ticket_id=locked.pk)
        _change(locked, actor, now, field="customer_id", value=customer.pk, kind=EventKind.CUSTOMER_LINKED)
    return locked


def ticket_set_category(*, ticket: Ticket, actor: Actor, category: str, now: dt.datetime | None = None) -> Ticket:
    """Re-files the ticket under another category (a "compensation question" that is really a refund
    request); an event records before/after."""
    now = now or timezone.now()
    if category not in Category.values:
        raise TicketRefused(
            code=RefusalCode.NOT_A_CATEGORY, message=f"{category!r} is not a category.", ticket_id=ticket.pk
        )
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        _change(locked, actor, now, field="category", value=category, kind=EventKind.CATEGORY)
    return locked


def ticket_reply(
    *,
    ticket: Ticket,
    actor: Actor,
    body: str,
    set_status: str = "",
    canned_reply_id: int | None = None,
    now: dt.datetime | None = None,
) -> TicketMessage:
    """A public reply: stored with a stable Message-ID, mailed (text + HTML) after commit. The first reply
    records `first_responded_at`; a new ticket becomes open unless `set_status` says otherwise."""
    from support_portal.tickets.mail import new_message_id, ticket_message_send  # noqa: PLC0415 - cycle

    now = now or timezone.now()
    if not body.strip():
        raise TicketRefused(code=RefusalCode.EMPTY_BODY, message="The reply is empty.", ticket_id=ticket.pk)
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        if locked.merged_into_id is not None:
            raise TicketRefused(code=RefusalCode.MERGED, message="The ticket was merged.", ticket_id=locked.pk)
        if not locked.can_reply():
            raise TicketRefused(code=RefusalCode.CLOSED, message="The ticket is closed.", ticket_id=locked.pk)
        target_status = set_status or (Status.OPEN if locked.status == Status.NEW else "")
        if target_status == locked.status:
            target_status = ""
        if target_status and not locked.can_transition(target_status):
            raise TicketRefused(
                code=RefusalCode.STATUS,
                message=f"A ticket in status {locked.status} cannot move to {target_status}.",
                ticket_id=locked.pk,
            )
        last_inbound = (
            TicketMessage.objects.filter(ticket=locked, direction=Direction.INBOUND)
            .exclude(message_id="")
            .order_by("-created_at", "-pk")
            .values_list("message_id", "references")
            .first()
        )
        in_reply_to, references = "", ""
        if last_inbound:
            in_reply_to = last_inbound[0]
            references = " ".join(filter(None, [last_inbound[1], last_inbound[0]]))
        message = TicketMessage.objects.create(
            ticket=locked,
            kind=MessageKind.PUBLIC,
            direction=Direction.OUTBOUND,
            author_user=_user(actor),
            body=body,
            message_id=new_message_id(),
            in_reply_to=in_reply_to,
            references=references,
            created_at=now,
        )
        changed = ["updated_at"]
        locked.updated_at = now
        if locked.first_responded_at is None:
            locked.first_responded_at = now
            changed.append("first_responded_at")
        _event(locked, actor, EventKind.REPLIED, now, message=message.pk, canned_reply=canned_reply_id)
        if target_status:
            changed += _transition(locked, target_status, now, actor)
        locked.save(update_fields=sorted(set(changed)))
        message_pk = message.pk
        transaction.on_commit(lambda: ticket_message_send(message_id=message_pk), robust=True)
    return message


def ticket_add_note(*, ticket: Ticket, actor: Actor, body: str, now: dt.datetime | None = None) -> TicketMessage:
    """An internal note: never mailed, never counts as a response."""
    now = now or timezone.now()
    if not body.strip():
        raise TicketRefused(code=RefusalCode.EMPTY_BODY, message="The note is empty.", ticket_id=ticket.pk)
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        message = TicketMessage.objects.create(
            ticket=locked,
            kind=MessageKind.INTERNAL,
            direction=Direction.OUTBOUND,
            author_user=_user(actor),
            body=body,
            created_at=now,
        )
        locked.updated_at = now
        locked.save(update_fields=["updated_at"])
        _event(locked, actor, EventKind.NOTE, now, message=message.pk)
    return message


def ticket_link_claim(*, ticket: Ticket, actor: Actor, claim_id: int, now: dt.datetime | None = None) -> bool:
    """Links a claim; False (and no event) when it was linked already."""
    now = now or timezone.now()
    with audit_context(actor=actor), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        _link, created = TicketClaim.objects.get_or_create(ticket=locked, claim_id=claim_id)
        if created:
            _event(locked, actor, EventKind.CLAIM_LINKED, now, claim=claim_id)
    return created


# --- a caller's request -------------------------------------------------------------------------------

_SUBMISSION_CHANNEL = {
    Channel.WEB: SubmissionChannel.WEB,
    Channel.EMAIL: SubmissionChannel.EMAIL,
    Channel.PHONE: SubmissionChannel.PHONE,
    Channel.CHAT: SubmissionChannel.CHAT,
}


def _subject_belongs_to(*, kind: str, subject: str, customer_id: str) -> bool:
    """Whether `subject` (a customer id, charge id or coupon inquiry number) is the ticket customer's.

    A charge belongs to its subscriber and to its payer (a payer asking for a refund of what they paid)."""
    if kind == "customer":
        return subject == customer_id
    if kind == "charge":
        return (
            Charge.objects.filter(pk=subject)
            .filter(Q(subscription__customer_id=customer_id) | Q(subscription__payer_id=customer_id))
            .exists()
        )
    if kind == "coupon":
        return Coupon.objects.filter(pk=subject, customer_id=customer_id).exists()
    return False


def ticket_request_record(
    *,
    ticket: Ticket,
    actor: Actor,
    program: Program,
    subject: str = "",
    payout_method: str = "",
    reason: str = "",
    fault: str = "",
    effective_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Submission:
    """Records the caller's request (an application, or a refund request) as a Submission from this ticket.

    The submission is the official one when it is the latest (claims: latest submission wins); the next
    program run turns it into a claim, which the ticket then shows (`ticket_request_claims`). `subject`
    defaults to the ticket's customer; a charge or coupon must be the customer's own. Refused (nothing
    written) when the agent does not work the queue or may not record submissions, the ticket has no
    customer, the program takes no applications now, or the payout method is not one the program offers.
    """
    now = now or timezone.now()
    user = _user(actor)
    if user is None or not user.has_perm("claims.add_submission"):
        raise TicketRefused(code=RefusalCode.NO_PERMISSION, message="You may not record requests.", ticket_id=ticket.pk)
    with audit_context(actor=actor, ticket=ticket.pk), transaction.atomic():
        locked = _lock(ticket)
        _check_queue(actor, locked)
        if locked.customer_id is None:
            raise TicketRefused(
                code=RefusalCode.NO_CUSTOMER, message="Link the ticket to a customer first.", ticket_id=locked.pk
            )
        fresh = Program.objects.get(pk=program.pk)
        if not fresh.accepts_applications(at=now):
            raise TicketRefused(
                code=RefusalCode.PROGRAM_CLOSED,
                message=f"Program {fresh.slug} does not take applications now.",
                ticket_id=locked.pk,
            )
        subject = subject.strip() or locked.customer_id
        kind = Policy.subject_kind(fresh.policy)
        if not _subject_belongs_to(kind=kind, subject=subject, customer_id=locked.customer_id):
            raise TicketRefused(
                code=RefusalCode.SUBJECT_NOT_THE_CUSTOMERS,
                message=f"{subject} is not a {kind} id of this ticket's customer.",
                ticket_id=locked.pk,
            )
        if payout_method and payout_method not in (fresh.payout_methods or []):
            raise TicketRefused(
                code=RefusalCode.PAYOUT_METHOD,
                message=f"{payout_method} is not offered by {fresh.slug}.",
                ticket_id=locked.pk,
            )
        customer = Customer.objects.only("email", "phone").get(pk=locked.customer_id)
        submission = Submission.objects.create(
            # T marks a request taken by support; the rest is unguessable like the web form's ids.
            submission_id=f"T{secrets.token_hex(12).upper()}",
            program=fresh,
            subject=subject,
            submitted_at=now,
            channel=_SUBMISSION_CHANNEL[Channel(locked.channel)],
            contact_email=customer.email,
            contact_phone=customer.phone,
            payout_method=payout_method,
            reason=reason,
            fault=fault,
            effective_at=effective_at,
        )
        TicketSubmission.objects.create(ticket=locked, submission=submission, created_at=now)
        _event(
            locked,
            actor,
            EventKind.REQUEST_RECORDED,
            now,
            submission=submission.submission_id,
            program=fresh.slug,
            subject=subject,
        )
    return submission


def ticket_request_claims(*, ticket: Ticket) -> list[tuple[Submission, Claim | None]]:
    """The requests recorded from the ticket, newest first, each with its claim once a run has made one."""
    submissions = list(
        Submission.objects.filter(ticket_link__ticket=ticket).select_related("program").order_by("-submitted_at")
    )
    claims = (
        {
            (claim.program.slug, claim.subject): claim
            for claim in Claim.objects.filter(
                Q(*[Q(program__slug=s.program_id, subject=s.subject) for s in submissions], _connector=Q.OR)
            ).select_related("program")
        }
        if submissions
        else {}
    )
    return [(submission, claims.get((submission.program_id, submission.subject))) for submission in submissions]


# --- canned replies -----------------------------------------------------------------------------------

# Canned replies are written by managers but rendered with a limited engine: no custom tags or loaders,
# and a context of plain strings only.
_CANNED_ENGINE = Engine(autoescape=False, libraries={}, builtins=["django.template.defaultfilters"])


def canned_reply_context(*, ticket: Ticket, actor: Actor) -> dict[str, str]:
    """The only variables a canned reply sees."""
    customer = ticket.customer
    claim = ticket.claims.select_related("program").order_by("-pk").first() if ticket.pk else None
    deadline = ""
    amount = ""
    if claim is not None:
        amount = f"{(claim.approved_amount_jpy or claim.amount_jpy):,}円"
        if claim.program.application_deadline:
            deadline = f"{claim.program.application_deadline:%Y年%m月%d日}"
    user = _user(actor)
    agent_name = ""
    if user is not None:
        agent_name = getattr(user, "get_full_name", lambda: "")() or user.get_username()
    return {
        "customer_name": (customer.name if customer else "") or "お客様",
        "ticket_token": ticket.token,
        "ticket_subject": ticket.subject,
        "claim_amount": amount,
        "deadline": deadline,
        "agent_name": agent_name,
    }


def canned_reply_render(*, canned: CannedReply, ticket: Ticket, actor: Actor) -> str:
    try:
        template = _CANNED_ENGINE.from_string(canned.body)
        return template.render(Context(canned_reply_context(ticket=ticket, actor=actor)))
    except Exception as exc:  # TemplateSyntaxError and friends: refuse rather than mail a broken reply
        raise TicketRefused(
            code=RefusalCode.CANNED_TEMPLATE, message=f"The canned reply does not render: {exc}", ticket_id=ticket.pk
        ) from exc


def canned_replies_for(queue_id: int) -> Any:
    """Active canned replies usable in the queue (scoped to it, or to every queue)."""
    return (
        CannedReply.objects.filter(active=True)
        .filter(Q(queues__isnull=True) | Q(queues=queue_id))
        .distinct()
        .order_by("title")
    )


def ticket_reply_canned(
    *, ticket: Ticket, actor: Actor, canned: CannedReply, now: dt.datetime | None = None
) -> TicketMessage:
    """Renders the canned reply for the ticket, sends it, and applies its status if it sets one."""
    if not canned.active or not canned_replies_for(ticket.queue_id).filter(pk=canned.pk).exists():
        raise TicketRefused(
            code=RefusalCode.CANNED_NOT_FOR_QUEUE,
            message="This canned reply is not available for the ticket's queue.",
            ticket_id=ticket.pk,
        )
    body = canned_reply_render(canned=canned, ticket=ticket, actor=actor)
    return ticket_reply(
        ticket=ticket, actor=actor, body=body, set_status=canned.set_status, canned_reply_id=canned.pk, now=now
    )


# --- merge --------------------------------------------------------------------------------------------


def tickets_merge(
    *, target: Ticket, duplicates: Sequence[Ticket], actor: Actor, now: dt.datetime | None = None
) -> Ticket:
    """Merges duplicates into `target`: their messages move to the target (remembering `original_ticket`),
    their claims are linked to it, each duplicate is closed with `merged_into` = target; events on all."""
    now = now or timezone.now()
    user = _user(actor)
    if actor is not None and (user is None or not user.has_perm("tickets.merge_ticket")):
        raise TicketRefused(code=RefusalCode.NO_PERMISSION, message="You may not merge tickets.", ticket_id=target.pk)
    duplicate_ids = sorted({t.pk for t in duplicates} - {target.pk})
    if not duplicate_ids:
        raise TicketRefused(
            code=RefusalCode.MERGE_NEEDS_TWO, message="Choose at least one other ticket to merge.", ticket_id=target.pk
        )
    with audit_context(actor=actor), transaction.atomic():
        locked = {
            t.pk: t
            for t in Ticket.objects.select_for_update().filter(pk__in=[target.pk, *duplicate_ids]).order_by("pk")
        }
        if len(locked) != len(duplicate_ids) + 1:
            raise TicketRefused(
                code=RefusalCode.STATUS, message="A ticket to merge no longer exists.", ticket_id=target.pk
            )
        for ticket in locked.values():
            _check_queue(actor, ticket)
            if not ticket.can_merge():
                raise TicketRefused(
                    code=RefusalCode.CLOSED if ticket.status == Status.CLOSED else RefusalCode.MERGED,
                    message=f"Ticket {ticket.token} is closed or merged already.",
                    ticket_id=ticket.pk,
                )
        main = locked[target.pk]
        TicketMessage.objects.filter(ticket_id__in=duplicate_ids, original_ticket__isnull=True).update(
            original_ticket_id=F("ticket_id")
        )
        moved = TicketMessage.objects.filter(ticket_id__in=duplicate_ids).update(ticket_id=main.pk)
        existing_claims = set(TicketClaim.objects.filter(ticket=main).values_list("claim_id", flat=True))
        duplicate_claims = set(
            TicketClaim.objects.filter(ticket_id__in=duplicate_ids).values_list("claim_id", flat=True)
        )
        TicketClaim.objects.bulk_create(
            [TicketClaim(ticket=main, claim_id=claim_id) for claim_id in sorted(duplicate_claims - existing_claims)]
        )
        for pk in duplicate_ids:
            duplicate = locked[pk]
            changed = _apply_status(duplicate, Status.CLOSED, now, actor)
            duplicate.merged_into = main
            duplicate.paused_at = None
            duplicate.save(update_fields=sorted({*changed, "merged_into", "paused_at"}))
            _event(duplicate, actor, EventKind.MERGED, now, into=main.pk)
        if main.customer_id is None:
            customer_id = next((locked[pk].customer_id for pk in duplicate_ids if locked[pk].customer_id), None)
            if customer_id:
                main.customer_id = customer_id
        main.updated_at = now
        main.save(update_fields=["updated_at", "customer"])
        _event(main, actor, EventKind.MERGED_IN, now, tickets=duplicate_ids, messages_moved=moved)
    return main
