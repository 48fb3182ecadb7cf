"""Payouts in the admin.

- Payouts: read-only; codes appear masked only. The one place a code is shown in clear is the reveal
  screen (`<id>/reveal/`): a finance user with `payouts.reveal_payout_secret` gives a reason, and the
  reveal is recorded (PayoutSecretReveal) before the code is shown.
- Batches: build one (`build/`), start / pause / cancel (actions with permissions), and a progress screen
  (`<id>/progress/`) whose static script polls `<id>/progress.json`.
- Notices: the outbox, read-only, with recipients masked; re-send is an explicit, audited action; the
  templates page (`templates/`) lists the notice templates with a rendered sample.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template import loader
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from claims.models import PayoutMethod, Program
from payouts.batches import (
    BatchRefused,
    payout_batch_cancel,
    payout_batch_create,
    payout_batch_pause,
    payout_batch_start,
)
from payouts.models import (
    NoticeChannel,
    NoticeKind,
    NoticeLanguage,
    Payout,
    PayoutBatch,
    PayoutBatchTransition,
    PayoutNotice,
    PayoutNoticeAttempt,
    PayoutNoticeTransition,
    PayoutSecretReveal,
    PayoutTransition,
    ProgramPayoutPolicy,
)
from payouts.notices import NoticeRefused, payout_notice_resend, payout_notice_resolve, sample_notice, template_names
from payouts.providers import registered_methods
from payouts.services import PayoutRefused, payout_secret_reveal
from support_portal.core.admin_tools import BigTableAdmin, ReadOnlyAdmin, ReadOnlyInline
from support_portal.core.masking import mask_email, mask_phone

START_PERMISSION = "payouts.start_payoutbatch"
PAUSE_PERMISSION = "payouts.pause_payoutbatch"
CANCEL_PERMISSION = "payouts.cancel_payoutbatch"
RESEND_PERMISSION = "payouts.resend_payoutnotice"
RESOLVE_PERMISSION = "payouts.resolve_payoutnotice"
REVEAL_PERMISSION = "payouts.reveal_payout_secret"
VIEW_NOTICE_PERMISSION = "payouts.view_payoutnotice"
VIEW_BATCH_PERMISSION = "payouts.view_payoutbatch"


class PayoutTransitionInline(ReadOnlyInline):
    model = PayoutTransition
    fields = readonly_fields = ("at", "actor", "status_before", "status_after", "note")
    ordering = ["at", "id"]


class PayoutNoticeInline(ReadOnlyInline):
    model = PayoutNotice
    fields = readonly_fields = ("kind", "sequence", "channel", "status", "sent_at", "created_by", "last_error")
    ordering = ["kind", "sequence"]


class PayoutNoticeAttemptInline(ReadOnlyInline):
    """Each hand-over to the provider: who claimed it, how it ended and why (what it cost the notice)."""

    model = PayoutNoticeAttempt
    fields = readonly_fields = (
        "number",
        "attempt_id",
        "channel",
        "status",
        "not_sent_reason",
        "claimed_by",
        "claimed_at",
        "finished_at",
        "provider_id",
        "error",
        "resolved_by",
    )
    ordering = ["number"]


class PayoutNoticeTransitionInline(ReadOnlyInline):
    model = PayoutNoticeTransition
    fields = readonly_fields = ("at", "actor_label", "status_before", "status_after", "attempt", "note")
    ordering = ["at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PayoutNoticeTransition]:
        return super().get_queryset(request).select_related("attempt")


class PayoutSecretRevealInline(ReadOnlyInline):
    model = PayoutSecretReveal
    fields = readonly_fields = ("at", "actor", "reason")


class RevealForm(forms.Form):
    reason = forms.CharField(label=_("Why do you need the code?"), max_length=500)


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = [
        "id",
        "claim",
        "program",
        "method",
        "amount_jpy",
        "status",
        "offer",
        "batch",
        "attempts",
        "expires_at",
        "updated_at",
    ]
    list_filter = ["status", "method", "program"]
    list_select_related = ["claim", "program"]
    search_fields = ["=idempotency_key", "=provider_reference"]
    inlines = [PayoutTransitionInline, PayoutNoticeInline, PayoutSecretRevealInline]
    fields = readonly_fields = (
        "claim",
        "program",
        "payee",
        "method",
        "amount_jpy",
        "status",
        "offer",
        "batch",
        "idempotency_key",
        "expires_at",
        "provider",
        "provider_reference",
        "masked_code",
        "attempts",
        "last_error",
        "created_at",
        "updated_at",
        "issued_at",
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("secret")

    @admin.display(description=_("code (masked)"))
    def masked_code(self, obj: Payout) -> str:
        secret = getattr(obj, "secret", None)
        if secret is None:
            return "—"
        return format_html(
            '{} <a class="button" href="{}">{}</a>',
            secret.masked,
            reverse("admin:payouts_payout_reveal", args=[obj.pk]),
            _("Reveal (audited)"),
        )

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<int:pk>/reveal/", self.admin_site.admin_view(self.reveal_view), name="payouts_payout_reveal"),
            *super().get_urls(),
        ]

    def reveal_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """GET: the reason form. POST: records the reveal, then shows the code once (never cached)."""
        if not request.user.has_perm(REVEAL_PERMISSION):
            raise PermissionDenied
        payout = get_object_or_404(Payout.objects.select_related("program", "claim"), pk=pk)
        revealed = None
        form = RevealForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                revealed = payout_secret_reveal(payout=payout, actor=request.user, reason=form.cleaned_data["reason"])
            except PayoutRefused as exc:
                messages.error(request, str(exc))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Reveal the code of payout %(id)s") % {"id": payout.pk},
            "payout": payout,
            "form": form,
            "revealed": revealed,
            "payout_url": reverse("admin:payouts_payout_change", args=[payout.pk]),
        }
        response = TemplateResponse(request, "payouts/admin/reveal.html", context)
        response["Cache-Control"] = "no-store"
        return response


class PayoutBatchTransitionInline(ReadOnlyInline):
    model = PayoutBatchTransition
    fields = readonly_fields = ("at", "actor", "status_before", "status_after", "note")
    ordering = ["at", "id"]


class BuildBatchForm(forms.Form):
    program = forms.ModelChoiceField(label=_("program"), queryset=Program.objects.order_by("slug"))
    method = forms.ChoiceField(label=_("method (empty = every method with a provider)"), required=False)
    start = forms.BooleanField(label=_("start at once"), required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        methods = registered_methods()
        method_field: Any = self.fields["method"]
        method_field.choices = [("", "---------")] + [
            (value, label) for value, label in PayoutMethod.choices if value in methods
        ]


def batch_progress(batch: PayoutBatch) -> dict[str, Any]:
    return {
        "id": batch.pk,
        "status": batch.status,
        "status_label": str(batch.get_status_display()),
        "total": batch.total_count,
        "issued": batch.issued_count,
        "failed": batch.failed_count,
        "expired": batch.expired_count,
        "cancelled": batch.cancelled_count,
        "done": batch.done_count,
        "percent": batch.percent(),
        "last_progress_at": batch.last_progress_at.isoformat() if batch.last_progress_at else None,
        "finished": batch.status in ("completed", "cancelled"),
    }


@admin.register(PayoutBatch)
class PayoutBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "program",
        "method",
        "status",
        "total_count",
        "issued_count",
        "failed_count",
        "progress_link",
        "created_by",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "program"]
    list_select_related = ["program", "created_by"]
    inlines = [PayoutBatchTransitionInline]
    actions = ["start_batches", "pause_batches", "cancel_batches"]
    fields = readonly_fields = (
        "program",
        "method",
        "status",
        "total_count",
        "issued_count",
        "failed_count",
        "expired_count",
        "cancelled_count",
        "progress_link",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
        "last_progress_at",
        "note",
    )
    change_list_template = "payouts/admin/batch_change_list.html"

    def has_start_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(START_PERMISSION)

    def has_pause_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PAUSE_PERMISSION)

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CANCEL_PERMISSION)

    @admin.display(description=_("progress"))
    def progress_link(self, obj: PayoutBatch) -> str:
        return format_html(
            '<a href="{}">{}%</a>', reverse("admin:payouts_payoutbatch_progress", args=[obj.pk]), obj.percent()
        )

    def _each(self, request: HttpRequest, queryset: QuerySet[PayoutBatch], done: str, step: Any) -> None:
        succeeded = 0
        for batch in queryset.order_by("pk"):
            try:
                step(batch)
            except BatchRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            succeeded += 1
        if succeeded:
            self.message_user(request, _("%(n)d batch(es) %(done)s.") % {"n": succeeded, "done": done})

    @admin.action(description=_("Start / resume selected batches"), permissions=["start"])
    def start_batches(self, request: HttpRequest, queryset: QuerySet[PayoutBatch]) -> None:
        self._each(request, queryset, str(_("started")), lambda b: payout_batch_start(batch=b, actor=request.user))

    @admin.action(description=_("Pause selected batches"), permissions=["pause"])
    def pause_batches(self, request: HttpRequest, queryset: QuerySet[PayoutBatch]) -> None:
        self._each(request, queryset, str(_("paused")), lambda b: payout_batch_pause(batch=b, actor=request.user))

    @admin.action(
        description=_("Cancel selected batches (payouts not issued yet are cancelled)"), permissions=["cancel"]
    )
    def cancel_batches(self, request: HttpRequest, queryset: QuerySet[PayoutBatch]) -> None:
        self._each(request, queryset, str(_("cancelled")), lambda b: payout_batch_cancel(batch=b, actor=request.user))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("build/", view(self.build_view), name="payouts_payoutbatch_build"),
            path("<int:pk>/progress/", view(self.progress_view), name="payouts_payoutbatch_progress"),
            path("<int:pk>/progress.json", view(self.progress_json), name="payouts_payoutbatch_progress_json"),
            path("<int:pk>/control/", view(self.control_view), name="payouts_payoutbatch_control"),
            *super().get_urls(),
        ]

    def build_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(START_PERMISSION):
            raise PermissionDenied
        form = BuildBatchForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                batch = payout_batch_create(
                    program=data["program"], method=data["method"], actor=request.user, start=data["start"]
                )
            except BatchRefused as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request, _("Batch %(id)s built with %(n)d payouts.") % {"id": batch.pk, "n": batch.total_count}
                )
                return HttpResponseRedirect(reverse("admin:payouts_payoutbatch_progress", args=[batch.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Build a payout batch"),
            "form": form,
        }
        return TemplateResponse(request, "payouts/admin/batch_build.html", context)

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(VIEW_BATCH_PERMISSION):
            raise PermissionDenied
        batch = get_object_or_404(PayoutBatch.objects.select_related("program"), pk=pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Payout batch %(id)s") % {"id": batch.pk},
            "batch": batch,
            "progress": batch_progress(batch),
            "json_url": reverse("admin:payouts_payoutbatch_progress_json", args=[batch.pk]),
            "control_url": reverse("admin:payouts_payoutbatch_control", args=[batch.pk]),
            "can_start": batch.can_start() and request.user.has_perm(START_PERMISSION),
            "can_pause": batch.can_pause() and request.user.has_perm(PAUSE_PERMISSION),
            "can_cancel": batch.can_cancel() and request.user.has_perm(CANCEL_PERMISSION),
        }
        return TemplateResponse(request, "payouts/admin/batch_progress.html", context)

    def progress_json(self, request: HttpRequest, pk: int) -> JsonResponse:
        if not request.user.has_perm(VIEW_BATCH_PERMISSION):
            raise PermissionDenied
        batch = get_object_or_404(PayoutBatch, pk=pk)
        response = JsonResponse(batch_progress(batch))
        response["Cache-Control"] = "no-store"
        return response

    def control_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """POST start / pause / cancel from the progress screen (each with its permission)."""
        if not request.user.has_perm(VIEW_BATCH_PERMISSION):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:payouts_payoutbatch_progress", args=[pk]))
        batch = get_object_or_404(PayoutBatch, pk=pk)
        step = request.POST.get("step", "")
        steps = {
            "start": (START_PERMISSION, payout_batch_start),
            "pause": (PAUSE_PERMISSION, payout_batch_pause),
            "cancel": (CANCEL_PERMISSION, payout_batch_cancel),
        }
        if step not in steps:
            raise PermissionDenied
        permission, service = steps[step]
        if not request.user.has_perm(permission):
            raise PermissionDenied
        try:
            service(batch=batch, actor=request.user)
        except BatchRefused as exc:
            messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:payouts_payoutbatch_progress", args=[pk]))


@admin.register(PayoutNotice)
class PayoutNoticeAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = [
        "id",
        "payout",
        "kind",
        "sequence",
        "channel",
        "language",
        "masked_recipient",
        "status",
        "send_attempts",
        "sent_at",
        "created_by",
    ]
    list_filter = ["status", "kind", "channel", "language"]
    list_select_related = ["payout", "created_by"]
    search_fields = ["=payout__id", "=message_id"]
    actions = ["resend_notices", "resolve_delivered", "resolve_not_delivered"]
    fields = readonly_fields = (
        "payout",
        "kind",
        "sequence",
        "channel",
        "language",
        "masked_recipient",
        "status",
        "lease_until",
        "send_attempts",
        "message_id",
        "provider_id",
        "last_error",
        "created_by",
        "created_at",
        "sent_at",
        "bounced_at",
    )
    change_list_template = "payouts/admin/notice_change_list.html"
    inlines = [PayoutNoticeAttemptInline, PayoutNoticeTransitionInline]

    @admin.display(description=_("recipient"))
    def masked_recipient(self, obj: PayoutNotice) -> str:
        return mask_email(obj.recipient) if obj.channel == NoticeChannel.EMAIL else mask_phone(obj.recipient)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RESEND_PERMISSION)

    @admin.action(
        description=_("Re-send selected notices (a new notice, recorded with your name)"), permissions=["resend"]
    )
    def resend_notices(self, request: HttpRequest, queryset: QuerySet[PayoutNotice]) -> None:
        done = 0
        for notice in queryset.order_by("pk"):
            try:
                payout_notice_resend(notice=notice, actor=request.user)
            except NoticeRefused as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            done += 1
        if done:
            self.message_user(request, _("%(n)d notice(s) queued for re-sending.") % {"n": done})

    def has_resolve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RESOLVE_PERMISSION)

    def _resolve(self, request: HttpRequest, queryset: QuerySet[PayoutNotice], *, delivered: bool) -> None:
        done = 0
        for notice in queryset.order_by("pk"):
            try:
                payout_notice_resolve(notice=notice, delivered=delivered, actor=request.user)
            except NoticeRefused as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            done += 1
        if done:
            self.message_user(request, _("%(n)d uncertain notice(s) resolved.") % {"n": done})

    @admin.action(description=_("Uncertain: the provider shows it delivered (mark sent)"), permissions=["resolve"])
    def resolve_delivered(self, request: HttpRequest, queryset: QuerySet[PayoutNotice]) -> None:
        self._resolve(request, queryset, delivered=True)

    @admin.action(description=_("Uncertain: the provider never received it (send again)"), permissions=["resolve"])
    def resolve_not_delivered(self, request: HttpRequest, queryset: QuerySet[PayoutNotice]) -> None:
        self._resolve(request, queryset, delivered=False)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "templates/",
                self.admin_site.admin_view(self.templates_view),
                name="payouts_payoutnotice_templates",
            ),
            *super().get_urls(),
        ]

    def templates_view(self, request: HttpRequest) -> HttpResponse:
        """Read-only: every notice template's source and a sample rendering (made-up code)."""
        if not request.user.has_perm(VIEW_NOTICE_PERMISSION):
            raise PermissionDenied
        sources = {}
        for name in template_names():
            template = loader.get_template(name)
            origin = template.origin.name  # type: ignore[attr-defined]
            with open(origin, encoding="utf-8") as handle:
                sources[name] = handle.read()
        samples = []
        for kind in NoticeKind:
            for language in NoticeLanguage:
                rendered = sample_notice(kind.value, language.value)
                names = [n for n in template_names() if f"/{kind.value}.{language.value}." in n]
                samples.append(
                    {
                        "kind": kind.label,
                        "language": language.label,
                        "rendered": rendered,
                        "sources": [(n, sources[n]) for n in names],
                    }
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Payout notice templates"),
            "samples": samples,
        }
        return TemplateResponse(request, "payouts/admin/notice_templates.html", context)


@admin.register(ProgramPayoutPolicy)
class ProgramPayoutPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "program",
        "notice_language",
        "reminder_days_before",
        "reoffer_on_expiry",
        "reoffer_receipt_days",
        "max_offers",
    ]
    autocomplete_fields = ["program"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PayoutSecretReveal)
class PayoutSecretRevealAdmin(ReadOnlyAdmin):
    list_display = ["at", "payout", "actor", "reason"]
    list_select_related = ["payout", "actor"]
    fields = readonly_fields = ("at", "payout", "actor", "reason")
