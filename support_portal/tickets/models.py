"""The support desk: queues with business-hours SLAs, tickets, their messages and events.

Field names of `Ticket` are a contract (the customer 360 page and the benchmark read them); see
docs/tickets.md. State changes go through `support_portal.tickets.services`, never through save().
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from support_portal.customers.models import Customer


class Category(models.TextChoices):
    LOGIN = "login", _("Login / password help")
    COMPENSATION = "compensation", _("Compensation question")
    REFUND = "refund", _("Refund request")
    DOUBLE_CHARGE = "double_charge", _("Double charge")
    OTHER = "other", _("Other")


class Channel(models.TextChoices):
    WEB = "web", _("Web")
    EMAIL = "email", _("Email")
    PHONE = "phone", _("Phone")
    CHAT = "chat", _("Chat")


class Priority(models.IntegerChoices):
    LOW = 1, _("Low")
    NORMAL = 2, _("Normal")
    HIGH = 3, _("High")
    URGENT = 4, _("Urgent")


class Status(models.TextChoices):
    NEW = "new", _("New")
    OPEN = "open", _("Open")
    PENDING_CUSTOMER = "pending_customer", _("Pending customer")
    RESOLVED = "resolved", _("Resolved")
    CLOSED = "closed", _("Closed")

    @classmethod
    def active(cls) -> tuple[str, ...]:
        """Statuses whose SLA clock can run (pending customer is active but paused)."""
        return (cls.NEW, cls.OPEN, cls.PENDING_CUSTOMER)

    @classmethod
    def clock_running(cls) -> tuple[str, ...]:
        return (cls.NEW, cls.OPEN)


# status -> statuses it may move to (services enforce it under select_for_update).
TRANSITIONS: dict[str, frozenset[str]] = {
    Status.NEW: frozenset({Status.OPEN, Status.PENDING_CUSTOMER, Status.RESOLVED, Status.CLOSED}),
    Status.OPEN: frozenset({Status.PENDING_CUSTOMER, Status.RESOLVED, Status.CLOSED}),
    Status.PENDING_CUSTOMER: frozenset({Status.OPEN, Status.RESOLVED, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


class Queue(models.Model):
    """A team's inbox with its SLA targets (business minutes) and opening hours (JST)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    slug = models.SlugField(_("slug"), max_length=50, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="ticket_queues", verbose_name=_("members")
    )
    # Breached tickets are reassigned here (the lead queue escalates to nobody when it is its own).
    escalation_queue = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("escalation queue")
    )
    first_response_minutes = models.PositiveIntegerField(_("first response target (business minutes)"), default=240)
    resolution_minutes = models.PositiveIntegerField(_("resolution target (business minutes)"), default=1440)
    opens_at = models.TimeField(_("opens at (JST)"), default=dt.time(10, 0))
    closes_at = models.TimeField(_("closes at (JST)"), default=dt.time(18, 0))
    open_weekends = models.BooleanField(_("open on Saturdays and Sundays"), default=False)

    class Meta:
        verbose_name = _("queue")
        verbose_name_plural = _("queues")
        ordering = ["name"]
        constraints = [models.CheckConstraint(condition=Q(closes_at__gt=models.F("opens_at")), name="queue_hours")]

    def __str__(self) -> str:
        return self.name


class QueueSurge(models.Model):
    """A dated override: every day from `starts_on` to `ends_on` (inclusive) the queue is open its usual
    hours, weekends and holidays included (e.g. the month after an outage)."""

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="surges")
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("surge period")
        verbose_name_plural = _("surge periods")
        ordering = ["starts_on"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=models.F("starts_on")), name="queuesurge_range"),
        ]

    def __str__(self) -> str:
        return f"{self.queue} {self.starts_on}–{self.ends_on}"


class Ticket(models.Model):
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="tickets", verbose_name=_("queue"))
    category = models.CharField(_("category"), max_length=16, choices=Category.choices, default=Category.OTHER)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices, default=Channel.WEB)
    priority = models.PositiveSmallIntegerField(_("priority"), choices=Priority.choices, default=Priority.NORMAL)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.NEW)
    subject = models.CharField(_("subject"), max_length=200)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="tickets", verbose_name=_("customer")
    )
    # Where replies go when there is no customer record (a mail from an unknown address).
    requester_email = models.EmailField(_("requester email"), blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_tickets",
        verbose_name=_("assignee"),
        db_index=False,  # ticket_assignee_status_idx leads with assignee
    )
    claims = models.ManyToManyField(
        "claims.Claim", through="TicketClaim", blank=True, related_name="tickets", verbose_name=_("claims")
    )
    created_at = models.DateTimeField(_("created at"))
    updated_at = models.DateTimeField(_("updated at"))
    first_response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    first_responded_at = models.DateTimeField(_("first responded at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    # Set while pending customer: the SLA clock is paused from this instant.
    paused_at = models.DateTimeField(_("clock paused at"), null=True, blank=True)
    # Exactly-once escalation flags, set by a conditional UPDATE (… WHERE escalated_at IS NULL).
    first_response_escalated_at = models.DateTimeField(_("first response escalated at"), null=True, blank=True)
    resolution_escalated_at = models.DateTimeField(_("resolution escalated at"), null=True, blank=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_tickets",
        verbose_name=_("merged into"),
    )

    class Meta:
        verbose_name = _("ticket")
        verbose_name_plural = _("tickets")
        permissions = [
            ("merge_ticket", _("Can merge duplicate tickets")),
            ("view_all_queues", _("Can see tickets of every queue")),
            ("view_dashboard", _("Can see the support dashboard")),
        ]
        indexes = [
            # Inbox hot paths: per queue by due time, my tickets, newest per queue, the escalation sweep.
            models.Index(fields=["status", "queue", "resolution_due_at"], name="ticket_status_queue_due_idx"),
            models.Index(fields=["assignee", "status"], name="ticket_assignee_status_idx"),
            models.Index(fields=["queue", "-created_at"], name="ticket_queue_created_idx"),
            models.Index(fields=["status", "resolution_due_at"], name="ticket_status_due_idx"),
            models.Index(fields=["-created_at"], name="ticket_created_idx"),
            models.Index(
                fields=["first_response_due_at"],
                name="ticket_fr_escalation_idx",
                condition=Q(first_responded_at__isnull=True, first_response_escalated_at__isnull=True),
            ),
            models.Index(fields=["resolved_at"], name="ticket_resolved_idx", condition=Q(resolved_at__isnull=False)),
            # The dashboard's first-response attainment per day of the due time.
            models.Index(fields=["first_response_due_at"], name="ticket_fr_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.token} {self.subject}"

    @property
    def token(self) -> str:
        return f"T-{self.pk}"

    def can_transition(self, status: str) -> bool:
        return status in TRANSITIONS.get(self.status, frozenset()) and self.merged_into_id is None

    def can_reply(self) -> bool:
        return self.status != Status.CLOSED

    def can_merge(self) -> bool:
        return self.status != Status.CLOSED and self.merged_into_id is None


class TicketClaim(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="claim_links")
    claim = models.ForeignKey("claims.Claim", on_delete=models.PROTECT, related_name="ticket_links")

    class Meta:
        verbose_name = _("linked claim")
        verbose_name_plural = _("linked claims")
        constraints = [models.UniqueConstraint(fields=["ticket", "claim"], name="ticketclaim_unique")]

    def __str__(self) -> str:
        return f"{self.ticket_id} ↔ {self.claim_id}"


class TicketSubmission(models.Model):
    """A caller's request (application) an agent recorded from this ticket: the ticket starts the claim."""

    ticket = models.ForeignKey(Ticket, on_delete=models.PROTECT, related_name="submission_links")
    submission = models.OneToOneField(
        "claims.Submission", on_delete=models.PROTECT, related_name="ticket_link", verbose_name=_("submission")
    )
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("request recorded from a ticket")
        verbose_name_plural = _("requests recorded from tickets")

    def __str__(self) -> str:
        return f"{self.ticket_id} → {self.submission_id}"


class MessageKind(models.TextChoices):
    PUBLIC = "public", _("Public reply")
    INTERNAL = "internal", _("Internal note")


class Direction(models.TextChoices):
    INBOUND = "inbound", _("From the customer")
    OUTBOUND = "outbound", _("From support")


class TicketMessage(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="messages", db_index=False)
    kind = models.CharField(_("kind"), max_length=8, choices=MessageKind.choices, default=MessageKind.PUBLIC)
    direction = models.CharField(_("direction"), max_length=8, choices=Direction.choices, default=Direction.OUTBOUND)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    author_customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    author_email = models.EmailField(_("author email"), blank=True)
    body = models.TextField(_("body"))
    # RFC 5322 Message-ID with angle brackets; unique so a mail fetched twice is stored once.
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    in_reply_to = models.CharField(_("In-Reply-To"), max_length=255, blank=True)
    references = models.TextField(_("References"), blank=True)
    created_at = models.DateTimeField(_("created at"))
    # Outbound public replies: when the mail was handed to the email backend (empty: not sent yet).
    email_sent_at = models.DateTimeField(_("email sent at"), null=True, blank=True)
    # Kept when a ticket is merged: the message then lives on the target and remembers where it came from.
    original_ticket = models.ForeignKey(Ticket, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("ticket message")
        verbose_name_plural = _("ticket messages")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(fields=["ticket", "created_at"], name="ticketmessage_ticket_idx"),
            # The resend sweep: public replies not handed to the mail backend yet.
            models.Index(
                fields=["created_at"],
                name="ticketmessage_unsent_idx",
                condition=Q(kind="public", direction="outbound", email_sent_at__isnull=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], condition=~Q(message_id=""), name="ticketmessage_msgid"),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.get_kind_display()} {self.created_at:%Y-%m-%d %H:%M}"


class EventKind(models.TextChoices):
    CREATED = "created", _("Created")
    STATUS = "status", _("Status changed")
    ASSIGNED = "assigned", _("Assigned")
    QUEUE = "queue", _("Queue changed")
    PRIORITY = "priority", _("Priority changed")
    REPLIED = "replied", _("Public reply")
    NOTE = "note", _("Internal note")
    INBOUND = "inbound", _("Customer message")
    CLAIM_LINKED = "claim_linked", _("Claim linked")
    REQUEST_RECORDED = "request_recorded", _("Caller's request recorded")
    CUSTOMER_LINKED = "customer_linked", _("Customer linked")
    CATEGORY = "category", _("Category changed")
    MERGED = "merged", _("Merged into another ticket")
    MERGED_IN = "merged_in", _("Tickets merged in")
    ESCALATED = "escalated", _("SLA breach escalated")
    CLOCK_PAUSED = "clock_paused", _("SLA clock paused")
    CLOCK_RESUMED = "clock_resumed", _("SLA clock resumed")


class TicketEvent(models.Model):
    """Append-only history of a ticket: who did what, when, with the before/after values in `data`."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events", db_index=False)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=EventKind.choices)
    at = models.DateTimeField(_("at"))
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("ticket event")
        verbose_name_plural = _("ticket events")
        ordering = ["at", "pk"]
        indexes = [models.Index(fields=["ticket", "at"], name="ticketevent_ticket_idx")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind} {self.at:%Y-%m-%d %H:%M}"


class CannedReply(models.Model):
    """A reply template. Variables: {{ customer_name }}, {{ ticket_token }}, {{ claim_amount }},
    {{ deadline }}, {{ agent_name }} (rendered with only these, autoescape off for the text part)."""

    title = models.CharField(_("title"), max_length=100)
    body = models.TextField(_("body"))
    # Empty: every queue may use it.
    queues = models.ManyToManyField(Queue, blank=True, related_name="canned_replies", verbose_name=_("queues"))
    set_status = models.CharField(_("then set status"), max_length=16, choices=Status.choices, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        ordering = ["title"]
        constraints = [models.UniqueConstraint(fields=["title"], name="cannedreply_title_unique")]

    def __str__(self) -> str:
        return self.title


class SavedFilter(models.Model):
    """An agent's saved inbox: the ticket changelist query string, reusable from the admin."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="ticket_filters")
    name = models.CharField(_("name"), max_length=100)
    query = models.CharField(_("query string"), max_length=500, blank=True)
    shared = models.BooleanField(_("visible to everyone"), default=False)

    class Meta:
        verbose_name = _("saved filter")
        verbose_name_plural = _("saved filters")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="savedfilter_owner_name")]

    def __str__(self) -> str:
        return self.name
