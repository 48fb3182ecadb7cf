"""The ticket desk in the admin: inboxes (list filters + saved filters), the ticket page with its thread
and a reply form (canned replies), bulk assign / status / close / merge, and the manager dashboard.

Admin code only adapts input: every change goes through `support_portal.tickets.services`, which
enforce transitions and the queue membership rule again under lock. Agents see the tickets of their
queues only (`get_queryset`); users with `tickets.view_all_queues` (leads, managers) see all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from claims.models import Claim, Fault, PayoutMethod, Program
from support_portal.accounts.services import export_audit_record
from support_portal.core.admin_tools import BigTableAdmin
from support_portal.core.business_days import JST
from support_portal.core.charts import bar_chart_svg, line_chart_svg
from support_portal.core.csv_export import CsvWriter
from support_portal.core.masking import mask_email
from support_portal.tickets.models import (
    CannedReply,
    MessageKind,
    Queue,
    QueueSurge,
    SavedFilter,
    Status,
    Ticket,
    TicketEvent,
    TicketMessage,
)
from support_portal.tickets.selectors import dashboard_numbers, inbox, visible_queues, visible_tickets
from support_portal.tickets.services import (
    TicketRefused,
    canned_replies_for,
    canned_reply_render,
    ticket_add_note,
    ticket_assign,
    ticket_link_claim,
    ticket_link_customer,
    ticket_move,
    ticket_open,
    ticket_reply,
    ticket_reply_canned,
    ticket_request_claims,
    ticket_request_record,
    ticket_set_category,
    ticket_set_priority,
    ticket_set_status,
    tickets_merge,
)

DASHBOARD_PERMISSION = "tickets.view_dashboard"
MERGE_PERMISSION = "tickets.merge_ticket"


# --- configuration ------------------------------------------------------------------------------------


class QueueSurgeInline(admin.TabularInline):
    model = QueueSurge
    extra = 0


@admin.register(Queue)
class QueueAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "slug",
        "first_response_minutes",
        "resolution_minutes",
        "opens_at",
        "closes_at",
        "open_weekends",
        "escalation_queue",
    ]
    list_select_related = ["escalation_queue"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [QueueSurgeInline]


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "set_status", "active"]
    list_filter = ["active", "set_status", "queues"]
    search_fields = ["title"]
    filter_horizontal = ["queues"]


@admin.register(SavedFilter)
class SavedFilterAdmin(admin.ModelAdmin):
    """Each agent's own saved inboxes (plus the shared ones, read-only for others)."""

    list_display = ["name", "owner", "shared", "open_link"]
    fields = ["name", "query", "shared"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SavedFilter]:
        return super().get_queryset(request).filter(owner=request.user.pk) | SavedFilter.objects.filter(shared=True)

    def has_change_permission(self, request: HttpRequest, obj: SavedFilter | None = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or obj.owner_id == request.user.pk)

    def save_model(self, request: HttpRequest, obj: SavedFilter, form: Any, change: bool) -> None:
        if not change:
            obj.owner = request.user  # type: ignore[assignment]
        super().save_model(request, obj, form, change)

    @admin.display(description=_("open"))
    def open_link(self, obj: SavedFilter) -> str:
        url = reverse("admin:tickets_ticket_changelist")
        return format_html('<a href="{}?{}">{}</a>', url, obj.query, _("open"))


# --- inbox filters ------------------------------------------------------------------------------------


class InboxFilter(admin.SimpleListFilter):
    title = _("inbox")
    parameter_name = "inbox"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [
            ("mine", _("My tickets")),
            ("unassigned", _("Unassigned")),
            ("breaching_soon", _("Breaching soon (2 h)")),
            ("breached", _("Breached")),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        if self.value():
            return inbox(queryset, str(self.value()), actor=request.user)
        return queryset


class QueueFilter(admin.SimpleListFilter):
    """Per queue, listing only the queues the user may see (no DISTINCT over the ticket table)."""

    title = _("queue")
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(q.pk), q.name) for q in visible_queues(request.user).order_by("name")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        value = self.value()
        return queryset.filter(queue_id=int(value)) if value and str(value).isdigit() else queryset


# --- the ticket page ----------------------------------------------------------------------------------


class TicketForm(forms.ModelForm):
    body = forms.CharField(label=_("customer's request"), widget=forms.Textarea(attrs={"rows": 5}), required=False)

    class Meta:
        model = Ticket
        fields = ["queue", "customer", "subject", "category", "channel", "priority", "status", "assignee"]


class ReplyForm(forms.Form):
    canned = forms.ModelChoiceField(label=_("canned reply"), queryset=CannedReply.objects.none(), required=False)
    body = forms.CharField(label=_("message"), widget=forms.Textarea(attrs={"rows": 6}), required=False)
    kind = forms.ChoiceField(label=_("kind"), choices=MessageKind.choices, initial=MessageKind.PUBLIC)
    set_status = forms.ChoiceField(
        label=_("then set status"), choices=[("", "---------"), *Status.choices], required=False
    )

    def __init__(self, *args: Any, ticket: Ticket, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["canned"].queryset = canned_replies_for(ticket.queue_id)  # type: ignore[attr-defined]

    def clean_body(self) -> str:
        # Browsers submit textarea line breaks as CRLF; messages are stored with LF.
        return str(self.cleaned_data.get("body") or "").replace("\r\n", "\n")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("body") or "").strip() and not data.get("canned"):
            raise forms.ValidationError(_("Write a message or choose a canned reply."))
        if data.get("kind") == MessageKind.INTERNAL and not (data.get("body") or "").strip():
            raise forms.ValidationError(_("An internal note needs a text."))
        return data


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(label=_("assignee"), queryset=User.objects.none())


class RecordRequestForm(forms.Form):
    """A caller's request taken on the phone (or by mail / chat): becomes a Submission of the program."""

    program = forms.ModelChoiceField(
        label=_("Program"), queryset=Program.objects.filter(status=Program.Status.OPEN).order_by("name")
    )
    subject = forms.CharField(
        label=_("Subject"),
        required=False,
        max_length=64,
        help_text=_(
            "Empty: the ticket's customer. Refund requests name the charge id; coupon remedies the inquiry number."
        ),
    )
    payout_method = forms.ChoiceField(
        label=_("Payout method"), required=False, choices=[("", _("Program default")), *PayoutMethod.choices]
    )
    reason = forms.CharField(label=_("Reason"), required=False, max_length=64)
    fault = forms.ChoiceField(label=_("Fault"), required=False, choices=[("", "—"), *Fault.choices])
    effective_on = forms.DateField(
        label=_("Effective date"), required=False, help_text=_("When the service stopped (service-failure refunds).")
    )


class MergeForm(forms.Form):
    target = forms.ModelChoiceField(label=_("keep this ticket"), queryset=Ticket.objects.none())


@admin.register(Ticket)
class TicketAdmin(BigTableAdmin):
    form = TicketForm
    list_display = [
        "token_link",
        "subject",
        "status",
        "priority",
        "queue",
        "assignee",
        "customer",
        "created_at",
        "first_response_due_at",
        "resolution_due_at",
        "sla",
    ]
    list_display_links = None
    list_filter = [InboxFilter, QueueFilter, "status", "priority", "category", "channel"]
    list_select_related = ["queue", "assignee", "customer"]
    search_fields = ["=customer__customer_id", "=requester_email"]
    ordering = ["-pk"]
    autocomplete_fields = ["customer"]
    raw_id_fields = ["assignee"]
    actions = [
        "assign_to_me",
        "assign_to",
        "unassign",
        "mark_open",
        "mark_pending",
        "mark_resolved",
        "close_tickets",
        "merge_tickets",
    ]
    change_form_template = "admin/tickets/ticket/change_form.html"
    change_list_template = "admin/tickets/ticket/change_list.html"

    # -- lists --

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        return visible_tickets(request.user, super().get_queryset(request))

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Ticket], search_term: str) -> Any:
        term = search_term.strip().upper().removeprefix("#").removeprefix("T-")
        if term.isdigit():
            return queryset.filter(pk=int(term)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("ticket"), ordering="pk")
    def token_link(self, obj: Ticket) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:tickets_ticket_change", args=[obj.pk]), obj.token)

    @admin.display(description=_("SLA"))
    def sla(self, obj: Ticket) -> str:
        if obj.status not in Status.clock_running():
            return "—" if obj.status != Status.PENDING_CUSTOMER else str(_("paused"))
        now = timezone.now()
        due = [obj.resolution_due_at]
        if obj.first_responded_at is None:
            due.append(obj.first_response_due_at)
        nearest = min((d for d in due if d is not None), default=None)
        if nearest is None:
            return "—"
        if nearest < now:
            return str(_("breached"))
        if nearest < now + dt.timedelta(hours=2):
            return str(_("breaching soon"))
        return str(_("on track"))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        saved = SavedFilter.objects.filter(owner=request.user.pk) | SavedFilter.objects.filter(shared=True)
        extra = {
            "saved_filters": saved.order_by("name"),
            "save_filter_url": reverse("admin:tickets_ticket_save_filter"),
            "can_save_filter": request.user.has_perm("tickets.add_savedfilter"),
            "dashboard_url": reverse("admin:tickets_ticket_dashboard")
            if request.user.has_perm(DASHBOARD_PERMISSION)
            else "",
            "current_query": request.GET.urlencode(),
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    @admin.display(description=_("requester email"))
    def masked_requester_email(self, obj: Ticket) -> str:
        # Replies go out through the desk; nobody needs the address in clear here.
        return mask_email(obj.requester_email)

    # -- the form --

    def get_readonly_fields(self, request: HttpRequest, obj: Ticket | None = None) -> list[str]:
        if obj is None:
            return ["status", "assignee"]
        return [
            "subject",
            "channel",
            "created_at",
            "first_response_due_at",
            "resolution_due_at",
            "first_responded_at",
            "resolved_at",
            "closed_at",
            "merged_into",
            "masked_requester_email",
        ]

    def get_fields(self, request: HttpRequest, obj: Ticket | None = None) -> list[str]:  # type: ignore[override]
        if obj is None:
            return ["queue", "customer", "subject", "category", "channel", "priority", "body"]
        return [
            "subject",
            "customer",
            "masked_requester_email",
            "queue",
            "status",
            "priority",
            "assignee",
            "category",
            "channel",
            "created_at",
            "first_response_due_at",
            "resolution_due_at",
            "first_responded_at",
            "resolved_at",
            "closed_at",
            "merged_into",
        ]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "queue":
            kwargs["queryset"] = visible_queues(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        """Adapts the form to services: open on add; status / assignee / queue / priority / customer /
        category on change (a customer once linked is corrected, never removed)."""
        user = request.user
        if not change:
            data = form.cleaned_data
            ticket = ticket_open(
                actor=user,
                queue=data["queue"],
                subject=data["subject"],
                body=data.get("body") or "",
                customer=data.get("customer"),
                category=data["category"],
                channel=data["channel"],
                priority=data["priority"],
            )
            obj.__dict__.update({k: v for k, v in ticket.__dict__.items() if k != "_state"})
            obj._state.adding = False
            return
        changed = set(form.changed_data)
        steps: list[Callable[[], Any]] = []
        if "queue" in changed:
            steps.append(lambda: ticket_move(ticket=obj, actor=user, queue=form.cleaned_data["queue"]))
        if "priority" in changed:
            steps.append(lambda: ticket_set_priority(ticket=obj, actor=user, priority=form.cleaned_data["priority"]))
        if "assignee" in changed:
            steps.append(lambda: ticket_assign(ticket=obj, actor=user, assignee=form.cleaned_data["assignee"]))
        if "status" in changed:
            steps.append(lambda: ticket_set_status(ticket=obj, actor=user, status=form.cleaned_data["status"]))
        if "customer" in changed and form.cleaned_data.get("customer") is not None:
            steps.append(lambda: ticket_link_customer(ticket=obj, actor=user, customer=form.cleaned_data["customer"]))
        if "category" in changed:
            steps.append(lambda: ticket_set_category(ticket=obj, actor=user, category=form.cleaned_data["category"]))
        for step in steps:
            try:
                step()
            except TicketRefused as exc:
                messages.error(request, exc.message)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Nothing to save: the ticket has no inlines and services wrote what changed."""

    def has_merge_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MERGE_PERMISSION)

    def has_delete_permission(self, request: HttpRequest, obj: Ticket | None = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        ticket = self.get_object(request, object_id)
        extra: dict[str, Any] = {}
        if ticket is not None:
            extra = self._thread_context(request, ticket, self._reply_form(request, ticket))
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def _reply_form(self, request: HttpRequest, ticket: Ticket) -> ReplyForm:
        """An empty reply form, or with `?canned=<id>` the canned reply rendered into the text box to edit."""
        canned_id = request.GET.get("canned", "") if request.method == "GET" else ""
        canned = canned_replies_for(ticket.queue_id).filter(pk=int(canned_id)).first() if canned_id.isdigit() else None
        if canned is None:
            return ReplyForm(ticket=ticket)
        try:
            rendered = canned_reply_render(canned=canned, ticket=ticket, actor=request.user)
        except TicketRefused as exc:
            messages.error(request, exc.message)
            return ReplyForm(ticket=ticket)
        initial = {"canned": canned.pk, "body": rendered, "set_status": canned.set_status}
        return ReplyForm(initial=initial, ticket=ticket)

    def _thread_context(self, request: HttpRequest, ticket: Ticket, reply_form: ReplyForm) -> dict[str, Any]:
        return {
            "thread": TicketMessage.objects.filter(ticket=ticket).select_related("author_user", "original_ticket"),
            "ticket_events": TicketEvent.objects.filter(ticket=ticket)
            .select_related("actor")
            .order_by("-at", "-pk")[:50],
            "merged_tickets": Ticket.objects.filter(merged_into=ticket).only("pk", "subject"),
            "reply_form": reply_form,
            "reply_url": reverse("admin:tickets_ticket_reply", args=[ticket.pk]),
            "can_reply": request.user.has_perm("tickets.add_ticketmessage") and ticket.can_reply(),
            "linked_claims": Claim.objects.filter(ticket_links__ticket=ticket).select_related("program").order_by("pk"),
            "link_claim_url": reverse("admin:tickets_ticket_link_claim", args=[ticket.pk]),
            "can_link_claim": request.user.has_perm("tickets.add_ticketclaim"),
            "recorded_requests": ticket_request_claims(ticket=ticket),
            "record_request_url": reverse("admin:tickets_ticket_record_request", args=[ticket.pk]),
            "can_record_request": request.user.has_perm("claims.add_submission") and ticket.customer_id is not None,
        }

    def link_claim_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST claim=<id>: links a claim to the ticket (through ticket_link_claim)."""
        if not request.user.has_perm("tickets.add_ticketclaim"):
            raise PermissionDenied
        ticket = get_object_or_404(self.get_queryset(request), pk=pk)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[pk]))
        claim_id = request.POST.get("claim", "").strip()
        if not claim_id.isdigit() or not Claim.objects.filter(pk=int(claim_id)).exists():
            messages.error(request, _("No claim with that id."))
        else:
            try:
                if ticket_link_claim(ticket=ticket, actor=request.user, claim_id=int(claim_id)):
                    messages.success(request, _("Claim linked."))
            except TicketRefused as exc:
                messages.error(request, exc.message)
        return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[pk]))

    # -- process screens --

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="tickets_ticket_dashboard"),
            path("dashboard.csv", view(self.dashboard_csv), name="tickets_ticket_dashboard_csv"),
            path("save-filter/", view(self.save_filter_view), name="tickets_ticket_save_filter"),
            path("merge/", view(self.merge_view), name="tickets_ticket_merge"),
            path("assign/", view(self.assign_view), name="tickets_ticket_assign"),
            path("<int:pk>/reply/", view(self.reply_view), name="tickets_ticket_reply"),
            path("<int:pk>/link-claim/", view(self.link_claim_view), name="tickets_ticket_link_claim"),
            path("<int:pk>/record-request/", view(self.record_request_view), name="tickets_ticket_record_request"),
            *super().get_urls(),
        ]

    def record_request_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the form; POST: records the caller's request through ticket_request_record."""
        if not request.user.has_perm("claims.add_submission"):
            raise PermissionDenied
        ticket = get_object_or_404(self.get_queryset(request), pk=pk)
        change_url = reverse("admin:tickets_ticket_change", args=[pk])
        form = RecordRequestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            effective_on: dt.date | None = data.get("effective_on")
            try:
                submission = ticket_request_record(
                    ticket=ticket,
                    actor=request.user,
                    program=data["program"],
                    subject=data.get("subject") or "",
                    payout_method=data.get("payout_method") or "",
                    reason=data.get("reason") or "",
                    fault=data.get("fault") or "",
                    effective_at=dt.datetime.combine(effective_on, dt.time(), tzinfo=JST) if effective_on else None,
                )
            except TicketRefused as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, _("Request recorded as %(id)s.") % {"id": submission.submission_id})
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Record the caller's request"),
            "opts": self.model._meta,
            "original": ticket,
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/tickets/ticket/record_request.html", context)

    def reply_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST: a public reply (typed or canned) or an internal note; `preview` fills the text box with
        the rendered canned reply so the agent can edit it before sending."""
        if not request.user.has_perm("tickets.add_ticketmessage"):
            raise PermissionDenied
        ticket = get_object_or_404(self.get_queryset(request), pk=pk)
        change_url = reverse("admin:tickets_ticket_change", args=[pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form = ReplyForm(request.POST, ticket=ticket)
        if form.is_valid():
            data = form.cleaned_data
            canned: CannedReply | None = data.get("canned")
            body = (data.get("body") or "").strip()
            try:
                if "preview" in request.POST and canned is not None:
                    return HttpResponseRedirect(f"{change_url}?{urlencode({'canned': canned.pk})}")
                if data["kind"] == MessageKind.INTERNAL:
                    ticket_add_note(ticket=ticket, actor=request.user, body=body)
                    messages.success(request, _("Internal note added."))
                elif body:
                    ticket_reply(
                        ticket=ticket,
                        actor=request.user,
                        body=body,
                        set_status=data.get("set_status") or (canned.set_status if canned else ""),
                        canned_reply_id=canned.pk if canned else None,
                    )
                    messages.success(request, _("Reply sent."))
                else:
                    assert canned is not None  # ReplyForm.clean
                    ticket_reply_canned(ticket=ticket, actor=request.user, canned=canned)
                    messages.success(request, _("Reply sent."))
            except TicketRefused as exc:
                messages.error(request, exc.message)
            return HttpResponseRedirect(change_url)
        for error in form.non_field_errors():
            messages.error(request, str(error))
        return HttpResponseRedirect(change_url)

    def save_filter_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm("tickets.add_savedfilter"):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:tickets_ticket_changelist"))
        name = request.POST.get("name", "").strip()[:100]
        query = request.POST.get("query", "")[:500]
        if name:
            SavedFilter.objects.update_or_create(owner_id=request.user.pk, name=name, defaults={"query": query})
            messages.success(request, _("Filter saved."))
        url = reverse("admin:tickets_ticket_changelist")
        return HttpResponseRedirect(f"{url}?{query}" if query else url)

    # -- bulk actions --

    def _each(self, request: HttpRequest, queryset: QuerySet[Ticket], step: Callable[[Ticket], Any]) -> None:
        done, refused = 0, 0
        for ticket in queryset.order_by("pk"):
            try:
                step(ticket)
                done += 1
            except TicketRefused as exc:
                refused += 1
                messages.warning(request, f"{ticket.token}: {exc.message}")
        if done:
            self.message_user(request, _("%(n)d ticket(s) updated.") % {"n": done}, messages.SUCCESS)

    @admin.action(description=_("Assign selected tickets to me"), permissions=["change"])
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._each(request, queryset, lambda t: ticket_assign(ticket=t, actor=request.user, assignee=request.user))  # type: ignore[arg-type]

    @admin.action(description=_("Assign selected tickets to…"), permissions=["change"])
    def assign_to(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:500])
        return HttpResponseRedirect(
            f"{reverse('admin:tickets_ticket_assign')}?{urlencode([('ids', pk) for pk in ids])}"
        )

    def assign_view(self, request: HttpRequest) -> HttpResponse:
        """Bulk assign to one user; each ticket through ticket_assign (the assignee must work its queue)."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        ids = [int(i) for i in source.getlist("ids") if i.isdigit()]
        tickets = self.get_queryset(request).filter(pk__in=ids).select_related("customer").order_by("pk")
        queue_ids = set(tickets.values_list("queue_id", flat=True))
        form = AssignForm(request.POST or None)
        form.fields["assignee"].queryset = (  # type: ignore[attr-defined]
            User.objects.filter(is_active=True, is_staff=True, ticket_queues__in=queue_ids)
            .distinct()
            .order_by("username")
        )
        if request.method == "POST" and form.is_valid():
            assignee = form.cleaned_data["assignee"]
            self._each(request, tickets, lambda t: ticket_assign(ticket=t, actor=request.user, assignee=assignee))
            return HttpResponseRedirect(reverse("admin:tickets_ticket_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Assign tickets"),
            "form": form,
            "tickets": tickets,
        }
        return TemplateResponse(request, "tickets/admin/assign.html", context)

    @admin.action(description=_("Unassign selected tickets"), permissions=["change"])
    def unassign(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._each(request, queryset, lambda t: ticket_assign(ticket=t, actor=request.user, assignee=None))

    def _status_action(self, request: HttpRequest, queryset: QuerySet[Ticket], status: str) -> None:
        self._each(request, queryset, lambda t: ticket_set_status(ticket=t, actor=request.user, status=status))

    @admin.action(description=_("Mark selected tickets open"), permissions=["change"])
    def mark_open(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._status_action(request, queryset, Status.OPEN)

    @admin.action(description=_("Mark selected tickets pending customer"), permissions=["change"])
    def mark_pending(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._status_action(request, queryset, Status.PENDING_CUSTOMER)

    @admin.action(description=_("Mark selected tickets resolved"), permissions=["change"])
    def mark_resolved(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        self._status_action(request, queryset, Status.RESOLVED)

    @admin.action(description=_("Close selected tickets"), permissions=["change"])
    def close_tickets(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        self._status_action(request, queryset, Status.CLOSED)
        return None

    @admin.action(description=_("Merge selected duplicate tickets"), permissions=["merge"])
    def merge_tickets(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> HttpResponse | None:
        """Asks which ticket to keep (default: the oldest), then merges the others into it."""
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[:100])
        if len(ids) < 2:
            self.message_user(request, _("Select at least two tickets to merge."), messages.WARNING)
            return None
        query = urlencode([("ids", pk) for pk in ids])
        return HttpResponseRedirect(f"{reverse('admin:tickets_ticket_merge')}?{query}")

    def merge_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_merge_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        ids = [int(i) for i in source.getlist("ids") if i.isdigit()]
        tickets = list(self.get_queryset(request).filter(pk__in=ids).select_related("customer").order_by("pk"))
        form = MergeForm(request.POST or None, initial={"target": tickets[0].pk if tickets else None})
        form.fields["target"].queryset = self.get_queryset(request).filter(pk__in=ids)  # type: ignore[attr-defined]
        if request.method == "POST" and form.is_valid():
            target = form.cleaned_data["target"]
            try:
                tickets_merge(target=target, duplicates=tickets, actor=request.user)
            except TicketRefused as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    _("%(n)d ticket(s) merged into %(token)s.") % {"n": len(tickets) - 1, "token": target.token},
                )
                return HttpResponseRedirect(reverse("admin:tickets_ticket_change", args=[target.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Merge duplicate tickets"),
            "form": form,
            "tickets": tickets,
        }
        return TemplateResponse(request, "tickets/admin/merge.html", context)

    # -- the dashboard --

    def _days(self, request: HttpRequest) -> int:
        try:
            return max(7, min(int(request.GET.get("days", 30)), 120))
        except ValueError:
            return 30

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(DASHBOARD_PERMISSION):
            raise PermissionDenied
        days = self._days(request)
        numbers = dashboard_numbers(days=days)
        day_labels = [f"{d:%m/%d}" for d in numbers.days]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Support dashboard"),
            "numbers": numbers,
            "days": days,
            "open_rows": [
                (queue, [numbers.open_by_queue[queue].get(value, 0) for value, _label in numbers.statuses])
                for queue in numbers.queues
            ],
            "open_chart": bar_chart_svg(
                title=str(_("Open tickets by queue and status")),
                labels=numbers.queues,
                series=numbers.open_series(),
            ),
            "sla_chart": bar_chart_svg(
                title=str(_("First response SLA per day (met / missed)")),
                labels=day_labels,
                series=[(str(_("met")), numbers.sla_met), (str(_("missed")), numbers.sla_missed)],
            ),
            "flow_chart": line_chart_svg(
                title=str(_("Incoming vs solved per day")),
                labels=day_labels,
                series=[(str(_("incoming")), numbers.incoming), (str(_("solved")), numbers.solved)],
            ),
            "csv_url": reverse("admin:tickets_ticket_dashboard_csv") + f"?days={days}",
        }
        return TemplateResponse(request, "tickets/admin/dashboard.html", context)

    def dashboard_csv(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(DASHBOARD_PERMISSION):
            raise PermissionDenied
        numbers = dashboard_numbers(days=self._days(request))
        part = "open" if request.GET.get("part") == "open" else "daily"
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="tickets-{part}.csv"'
        response.write("\ufeff")  # Excel opens UTF-8 with a BOM
        writer = CsvWriter(response, lineterminator="\r\n")
        if part == "open":
            writer.writerow(["queue", *(value for value, _label in numbers.statuses)])
            for queue in numbers.queues:
                writer.writerow(
                    [queue, *(numbers.open_by_queue[queue].get(value, 0) for value, _l in numbers.statuses)]
                )
            export_audit_record(
                actor=request.user, what="support dashboard, open tickets by queue (CSV)", row_count=len(numbers.queues)
            )
            return response
        writer.writerow(["day", "incoming", "solved", "first_response_met", "first_response_missed", "attainment_pct"])
        daily_rows = numbers.daily_rows()
        for row in daily_rows:
            percent = "" if row["sla_percent"] is None else row["sla_percent"]
            writer.writerow(
                [row["day"].isoformat(), row["incoming"], row["solved"], row["sla_met"], row["sla_missed"], percent]
            )
        export_audit_record(
            actor=request.user, what="support dashboard, daily figures (CSV)", row_count=len(daily_rows)
        )
        return response
