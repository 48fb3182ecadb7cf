"""Identity recovery in the admin: open a case, the guided verification screen, a lead's unlock screen.

Agents (identity.add_identityrecoverycase) open cases and verify; leads (identity.unlock_identityrecoverycase)
review locked cases and unlock them with a reason. Every write goes through support_portal.identity.services.
"""

from typing import Any, cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from support_portal.core.admin_tools import ReadOnlyInline
from support_portal.core.masking import mask_email
from support_portal.identity.forms import OpenCaseForm, ReasonForm, VerifyForm
from support_portal.identity.models import (
    MAX_FAILED_ATTEMPTS,
    CheckResult,
    IdentityRecoveryCase,
    IdentityRecoveryEvent,
    IdentityVerificationAttempt,
)
from support_portal.identity.services import (
    UNLOCK_PERMISSION,
    Check,
    Evidence,
    IdentityRecoveryRefused,
    identity_case_open,
    identity_case_unlock,
    identity_case_verify,
)

WORK_PERMISSION = "identity.add_identityrecoverycase"

CHECK_LABELS = {
    Check.CHARGE_AMOUNT: _("Last charge amount"),
    Check.CHARGE_DATE: _("Last charge date"),
    Check.PAYMENT_METHOD: _("Payment method"),
    Check.PHONE: _("Phone number"),
}


def check_rows(checks: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Attempt checks for display: label and result only (never the stored digests)."""
    rows = []
    for item in checks:
        check = Check(item["check"])
        rows.append(
            {
                "check": check.value,
                "label": str(CHECK_LABELS[check]),
                "result": item["result"],
                "result_label": str(CheckResult(item["result"]).label),
            }
        )
    return rows


class EventInline(ReadOnlyInline):
    model = IdentityRecoveryEvent
    extra = 0
    fields = readonly_fields = ("at", "actor", "kind", "status_before", "status_after", "note")
    can_delete = False


class AttemptInline(ReadOnlyInline):
    model = IdentityVerificationAttempt
    extra = 0
    fields = readonly_fields = ("at", "actor", "passed", "check_results")
    can_delete = False

    @admin.display(description=_("checks"))
    def check_results(self, obj: IdentityVerificationAttempt) -> str:
        return ", ".join(f"{row['label']}: {row['result_label']}" for row in check_rows(obj.checks))


@admin.register(IdentityRecoveryCase)
class IdentityRecoveryCaseAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "agent", "status", "attempts", "failed_attempts", "created_at"]
    list_filter = ["status"]
    list_select_related = ["customer", "agent"]
    search_fields = ["=customer__customer_id"]
    autocomplete_fields = ["customer"]
    raw_id_fields = ["ticket"]
    fields = readonly_fields = (
        "customer",
        "ticket",
        "agent",
        "status",
        "attempts",
        "failed_attempts",
        "masked_new_email",
        "reset_reference",
        "reset_sent_at",
        "created_at",
        "next_step",
    )
    inlines = [AttemptInline, EventInline]
    form = OpenCaseForm

    def get_fields(self, request: HttpRequest, obj: IdentityRecoveryCase | None = None) -> Any:
        return ["customer", "ticket"] if obj is None else list(self.fields)

    def get_readonly_fields(self, request: HttpRequest, obj: IdentityRecoveryCase | None = None) -> Any:
        return [] if obj is None else list(self.readonly_fields)

    def get_inlines(self, request: HttpRequest, obj: IdentityRecoveryCase | None) -> Any:
        return [] if obj is None else self.inlines

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        return {"customer": request.GET.get("customer", ""), "ticket": request.GET.get("ticket", "")}

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("new contact email"))
    def masked_new_email(self, obj: IdentityRecoveryCase) -> str:
        return mask_email(obj.new_email)

    @admin.display(description=_("next step"))
    def next_step(self, obj: IdentityRecoveryCase) -> str:
        if obj.can_verify():
            return format_html('<a class="button" href="{}">{}</a>', self._url("verify", obj.pk), _("Verify identity"))
        if obj.can_unlock():
            return format_html(
                '<a class="button" href="{}">{}</a>', self._url("unlock", obj.pk), _("Review and unlock (lead)")
            )
        return "—"

    def _url(self, step: str, pk: int) -> str:
        return reverse(f"admin:identity_identityrecoverycase_{step}", args=[pk])

    def save_model(self, request: HttpRequest, obj: IdentityRecoveryCase, form: Any, change: bool) -> None:
        case = identity_case_open(customer=obj.customer, actor=request.user, ticket=obj.ticket)
        obj.pk = case.pk
        obj.refresh_from_db()

    def response_add(
        self, request: HttpRequest, obj: IdentityRecoveryCase, post_url_continue: str | None = None
    ) -> HttpResponse:
        return HttpResponseRedirect(self._url("verify", obj.pk))

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("<int:pk>/verify/", self.admin_site.admin_view(self.verify_view), name=f"{info}_verify"),
            path("<int:pk>/unlock/", self.admin_site.admin_view(self.unlock_view), name=f"{info}_unlock"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, case: IdentityRecoveryCase, title: Any, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "case": case,
            "case_url": reverse("admin:identity_identityrecoverycase_change", args=[case.pk]),
            **extra,
        }

    def verify_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(WORK_PERMISSION):
            raise PermissionDenied
        case = get_object_or_404(IdentityRecoveryCase.objects.select_related("customer"), pk=pk)
        results: list[dict[str, str]] = []
        if request.method == "POST" and case.can_verify():
            form = VerifyForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                evidence = Evidence(
                    charge_amount_jpy=data["charge_amount_jpy"],
                    charge_date=data["charge_date"],
                    payment_method=data["payment_method"],
                    phone=data["phone"],
                )
                try:
                    outcome = identity_case_verify(
                        case_id=case.pk, actor=request.user, evidence=evidence, new_email=data["new_email"]
                    )
                except IdentityRecoveryRefused as exc:
                    messages.error(request, _("Refused: %(reason)s") % {"reason": exc})
                    return HttpResponseRedirect(self._url("verify", case.pk))
                if outcome.passed:
                    messages.success(
                        request,
                        _("Identity verified: the new contact address is set and the password reset was requested."),
                    )
                    return HttpResponseRedirect(reverse("admin:identity_identityrecoverycase_change", args=[case.pk]))
                case = outcome.case
                results = check_rows(outcome.attempt.checks)
                form = VerifyForm(initial={"new_email": data["new_email"]})
        else:
            form = VerifyForm()
        context = self._context(
            request,
            case,
            _("Verify identity"),
            form=form,
            results=results,
            attempts_left=max(MAX_FAILED_ATTEMPTS - case.failed_attempts, 0),
        )
        return TemplateResponse(request, "identity/admin/verify.html", context)

    def unlock_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(UNLOCK_PERMISSION):
            raise PermissionDenied
        case = get_object_or_404(IdentityRecoveryCase.objects.select_related("customer"), pk=pk)
        attempts = [
            {"attempt": attempt, "rows": check_rows(attempt.checks)}
            for attempt in IdentityVerificationAttempt.objects.filter(case=case).select_related("actor")
        ]
        if request.method == "POST":
            form = ReasonForm(request.POST)
            if form.is_valid():
                try:
                    identity_case_unlock(case_id=case.pk, actor=request.user, reason=form.cleaned_data["reason"])
                except IdentityRecoveryRefused as exc:
                    messages.error(request, _("Refused: %(reason)s") % {"reason": exc})
                else:
                    messages.success(request, _("The case is open again for verification."))
                return HttpResponseRedirect(reverse("admin:identity_identityrecoverycase_change", args=[case.pk]))
        else:
            form = ReasonForm()
        context = self._context(request, case, _("Review and unlock"), form=form, attempts=attempts)
        return TemplateResponse(request, "identity/admin/unlock.html", context)

    def get_queryset(self, request: HttpRequest) -> QuerySet[IdentityRecoveryCase]:
        return cast(QuerySet[IdentityRecoveryCase], super().get_queryset(request))
