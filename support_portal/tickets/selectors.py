"""Reads of the ticket desk: who sees which tickets, inbox querysets, the manager dashboard's numbers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from support_portal.core.business_days import JST
from support_portal.tickets.models import Queue, Status, Ticket
from support_portal.tickets.services import Actor, sees_all_queues

BREACHING_SOON = dt.timedelta(hours=2)


def visible_tickets(actor: Actor, queryset: QuerySet[Ticket] | None = None) -> QuerySet[Ticket]:
    """Tickets the actor may see: leads/managers every queue, agents the queues they are members of."""
    queryset = Ticket.objects.all() if queryset is None else queryset
    if sees_all_queues(actor):
        return queryset
    if actor is None or not actor.is_authenticated:
        return queryset.none()
    # A literal list (a handful of ids) lets the planner use the queue indexes; a subquery made it
    # hash-join a sequential scan for the changelist's capped count at 300k tickets.
    member_of = list(Queue.members.through.objects.filter(user_id=actor.pk).values_list("queue_id", flat=True))
    return queryset.filter(queue_id__in=member_of)


def visible_queues(actor: Actor) -> QuerySet[Queue]:
    if sees_all_queues(actor):
        return Queue.objects.all()
    if actor is None or not actor.is_authenticated:
        return Queue.objects.none()
    return Queue.objects.filter(members=actor.pk)


def _due_before(now: dt.datetime) -> Q:
    """Active, clock running, and a due time passed (first response still unanswered, or resolution)."""
    return Q(status__in=Status.clock_running()) & (
        Q(first_responded_at__isnull=True, first_response_due_at__lt=now) | Q(resolution_due_at__lt=now)
    )


def inbox(queryset: QuerySet[Ticket], name: str, *, actor: Actor, now: dt.datetime | None = None) -> QuerySet[Ticket]:
    """The named inbox: mine, unassigned, breaching_soon, breached (each on the visible queryset)."""
    now = now or timezone.now()
    if name == "mine":
        user_id = actor.pk if actor is not None else None
        return queryset.filter(assignee_id=user_id, status__in=Status.active())
    if name == "unassigned":
        return queryset.filter(assignee__isnull=True, status__in=Status.active())
    if name == "breached":
        return queryset.filter(_due_before(now))
    if name == "breaching_soon":
        return queryset.filter(_due_before(now + BREACHING_SOON)).exclude(_due_before(now))
    return queryset


# --- the dashboard ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Dashboard:
    queues: list[str]
    statuses: list[tuple[str, str]]
    open_by_queue: dict[str, dict[str, int]]  # queue name -> status -> count
    days: list[dt.date]
    sla_met: list[int]
    sla_missed: list[int]
    incoming: list[int]
    solved: list[int]

    @property
    def sla_percent(self) -> list[int | None]:
        return [
            round(100 * met / (met + missed)) if met + missed else None
            for met, missed in zip(self.sla_met, self.sla_missed, strict=True)
        ]

    def open_series(self) -> list[tuple[str, list[int]]]:
        return [
            (str(label), [self.open_by_queue[q].get(value, 0) for q in self.queues]) for value, label in self.statuses
        ]

    def daily_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "day": day,
                "incoming": self.incoming[i],
                "solved": self.solved[i],
                "sla_met": self.sla_met[i],
                "sla_missed": self.sla_missed[i],
                "sla_percent": self.sla_percent[i],
            }
            for i, day in enumerate(self.days)
        ]


def dashboard_numbers(*, days: int = 30, now: dt.datetime | None = None) -> Dashboard:
    """Open tickets by queue and status; per JST day of the last `days` days: tickets created,
    tickets resolved, and first-response SLA met/missed among the tickets whose first response fell due
    that day (met = answered by the due time; missed = answered late, or unanswered and now past due).
    Merged duplicates are left out of every count. Five grouped queries, each on an index."""
    now = now or timezone.now()
    today = now.astimezone(JST).date()
    first_day = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first_day, dt.time(0), tzinfo=JST)
    day_list = [first_day + dt.timedelta(days=i) for i in range(days)]
    live = Ticket.objects.filter(merged_into__isnull=True)

    statuses = [(s.value, str(s.label)) for s in Status if s.value in Status.active()]
    open_by_queue: dict[str, dict[str, int]] = {q.name: {} for q in Queue.objects.order_by("name")}
    for row in (
        live.filter(status__in=Status.active()).values("queue__name", "status").annotate(n=Count("id")).order_by()
    ):
        open_by_queue.setdefault(row["queue__name"], {})[row["status"]] = row["n"]

    def per_day(queryset: QuerySet[Ticket], field: str) -> dict[dt.date, int]:
        rows = (
            queryset.filter(**{f"{field}__gte": since, f"{field}__lte": now})
            .annotate(day=TruncDate(field, tzinfo=JST))
            .values("day")
            .annotate(n=Count("id"))
            .order_by()
        )
        return {row["day"]: row["n"] for row in rows}

    incoming = per_day(live, "created_at")
    solved = per_day(live.filter(resolved_at__isnull=False), "resolved_at")
    met = per_day(live.filter(first_responded_at__lte=F("first_response_due_at")), "first_response_due_at")
    missed = per_day(
        live.filter(Q(first_responded_at__gt=F("first_response_due_at")) | Q(first_responded_at__isnull=True)),
        "first_response_due_at",
    )
    return Dashboard(
        queues=list(open_by_queue),
        statuses=statuses,
        open_by_queue=open_by_queue,
        days=day_list,
        sla_met=[met.get(d, 0) for d in day_list],
        sla_missed=[missed.get(d, 0) for d in day_list],
        incoming=[incoming.get(d, 0) for d in day_list],
        solved=[solved.get(d, 0) for d in day_list],
    )
