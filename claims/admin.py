import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from claims.engine import EngineNeedsPostgreSQL
from claims.models import (
    Claim,
    ClaimLine,
    CouponPaymentConfirmation,
    Grant,
    PayoutMethod,
    Program,
    ProgramRun,
    Submission,
)
from claims.parameters import ParameterError
from claims.selectors import dry_run_write_csv, program_preview
from claims.services import ProgramNotRunnable, program_run_start
from support_portal.core.admin_tools import BigTableAdmin
from support_portal.core.audit import audit_context
from support_portal.core.masking import mask_email

RUN_PERMISSION = "claims.run_program"


class ProgramForm(forms.ModelForm):
    """Program set-up; parameters are validated per policy by Program.clean (field-named errors)."""

    payout_methods = forms.TypedMultipleChoiceField(
        choices=PayoutMethod.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Program
        fields = [
            "slug",
            "name",
            "policy",
            "status",
            "parameters",
            "opens_at",
            "application_deadline",
            "receipt_deadline",
            "application_rule",
            "payout_methods",
            "default_payout_method",
            "second_approval_above_jpy",
            "auto_approve_max_jpy",
            "qa_sample_percent",
        ]


class ProgramRunInline(admin.TabularInline):
    model = ProgramRun
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "status",
        "actor",
        "total",
        "processed",
        "created",
        "updated",
        "sent_to_rereview",
        "queued_at",
        "started_at",
        "finished_at",
        "error",
    )
    ordering = ["-queued_at"]
    max_num = 0


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    form = ProgramForm
    list_display = ["slug", "name", "policy", "status", "application_deadline"]
    list_filter = ["policy", "status"]
    search_fields = ["slug", "name"]
    actions = ["preview_csv", "run_programs"]
    inlines = [ProgramRunInline]

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    @admin.action(description="Preview (download the dry-run CSV)", permissions=["run"])
    def preview_csv(self, request: HttpRequest, queryset: QuerySet[Program]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one program to preview.", messages.WARNING)
            return None
        program = queryset.get()
        try:
            entitlements = program_preview(program=program)
        except ParameterError as exc:
            self.message_user(request, f"{program.slug}: invalid parameters: {exc}", messages.ERROR)
            return None
        except EngineNeedsPostgreSQL as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        buffer = io.StringIO()
        dry_run_write_csv(entitlements, buffer)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{program.slug}-preview.csv"'
        return response

    @admin.action(description="Run (compute and store claims)", permissions=["run"])
    def run_programs(self, request: HttpRequest, queryset: QuerySet[Program]) -> None:
        for program in queryset:
            try:
                program.typed_parameters()
                run = program_run_start(program=program, actor=request.user)
            except (ParameterError, ProgramNotRunnable, EngineNeedsPostgreSQL) as exc:
                self.message_user(request, f"{program.slug}: {exc}", messages.ERROR)
                continue
            self.message_user(request, f"{program.slug}: run {run.pk} queued.", messages.SUCCESS)


class ClaimLineInline(admin.TabularInline):
    model = ClaimLine
    extra = 0
    can_delete = False
    fields = readonly_fields = ("position", "label", "amount_jpy", "rule", "grant_key", "excluded_reason")
    max_num = 0


@admin.register(Claim)
class ClaimAdmin(BigTableAdmin):
    list_display = ["subject", "program", "status", "eligible", "amount_jpy", "reason", "payee", "computed_at"]
    list_filter = ["program", "status", "eligible"]
    list_select_related = ["program", "payee"]
    search_fields = ["=subject"]
    inlines = [ClaimLineInline]
    readonly_fields = [
        "program",
        "subject",
        "customer",
        "payee",
        "status",
        "eligible",
        "reason",
        "amount_jpy",
        "approved_amount_jpy",
        "official_submission",
        "payout_method",
        "provider_request_due_on",
        "note",
        "computed_at",
        "prepared_by",
        "decided_by",
    ]
    raw_id_fields = ["customer", "payee", "official_submission", "prepared_by", "decided_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Grant)
class GrantAdmin(BigTableAdmin):
    list_display = ["grant_key", "program", "subject", "amount_jpy", "created_at"]
    list_filter = ["program"]
    list_select_related = ["program"]
    search_fields = ["=grant_key", "=subject"]
    readonly_fields = ["grant_key", "program", "subject", "amount_jpy", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CouponPaymentConfirmation)
class CouponPaymentConfirmationAdmin(admin.ModelAdmin):
    list_display = ["transaction", "confirmed_by", "confirmed_at", "store_contact"]
    raw_id_fields = ["transaction"]
    readonly_fields = ["confirmed_by"]

    def save_model(self, request: HttpRequest, obj: CouponPaymentConfirmation, form: Any, change: bool) -> None:
        # The agent recording the store's confirmation is the one signed in.
        if not change:
            obj.confirmed_by = request.user  # type: ignore[assignment]
        with audit_context(actor=request.user):
            super().save_model(request, obj, form, change)


@admin.register(Submission)
class SubmissionAdmin(BigTableAdmin):
    list_display = ["submission_id", "program", "subject", "submitted_at", "channel", "masked_contact", "payout_method"]
    list_filter = ["program", "channel", "payout_method"]
    list_select_related = ["program"]
    search_fields = ["=submission_id", "=subject"]

    @admin.display(description="contact")
    def masked_contact(self, obj: Submission) -> str:
        return mask_email(obj.contact_email)
