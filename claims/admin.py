import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse

from claims.engine import EngineNeedsPostgreSQL
from claims.models import (
    Claim,
    ClaimDecision,
    ClaimLine,
    CouponPaymentConfirmation,
    Grant,
    PayoutMethod,
    Program,
    ProgramRun,
    RejectReason,
    Submission,
)
from claims.parameters import ParameterError
from claims.review import (
    ClaimDecisionRefused,
    claim_approve,
    claim_reject,
    claim_reopen,
    claim_request_info,
    claims_bulk_approve,
)
from claims.selectors import dry_run_write_csv, program_preview
from claims.services import ProgramNotRunnable, ProgramStatusRefused, program_run_start, program_set_status
from support_portal.core.admin_tools import BigTableAdmin
from support_portal.core.audit import audit_context
from support_portal.core.masking import mask_email

RUN_PERMISSION = "claims.run_program"
APPROVE_PERMISSION = "claims.approve_claim"
REJECT_PERMISSION = "claims.reject_claim"
REQUEST_INFO_PERMISSION = "claims.request_info_claim"
REOPEN_PERMISSION = "claims.reopen_claim"


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
    # Status changes only through program_set_status (the actions), which enforces the transitions.
    readonly_fields = ["status"]
    actions = ["preview_csv", "run_programs", "move_to_preview", "open_for_applications", "close_applications"]
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

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Program], status: str) -> None:
        """One status change per selected program (ascending id); each refusal is its own error message."""
        for program in queryset.order_by("pk"):
            try:
                program_set_status(program=program, status=status, actor=request.user)
            except ProgramStatusRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            self.message_user(request, f"{program.slug}: {program.get_status_display()}.", messages.SUCCESS)

    @admin.action(description="Move to preview (from draft)", permissions=["change"])
    def move_to_preview(self, request: HttpRequest, queryset: QuerySet[Program]) -> None:
        self._set_status(request, queryset, Program.Status.PREVIEW)

    @admin.action(description="Open for applications (from preview)", permissions=["change"])
    def open_for_applications(self, request: HttpRequest, queryset: QuerySet[Program]) -> None:
        self._set_status(request, queryset, Program.Status.OPEN)

    @admin.action(description="Close applications (from open)", permissions=["change"])
    def close_applications(self, request: HttpRequest, queryset: QuerySet[Program]) -> None:
        self._set_status(request, queryset, Program.Status.CLOSED)


class ClaimLineInline(admin.TabularInline):
    model = ClaimLine
    extra = 0
    can_delete = False
    fields = readonly_fields = ("position", "label", "amount_jpy", "rule", "grant_key", "excluded_reason")
    max_num = 0


class ClaimDecisionInline(admin.TabularInline):
    """The claim's review history, read-only (decisions are only made through the actions)."""

    model = ClaimDecision
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "at",
        "actor",
        "action",
        "status_before",
        "status_after",
        "amount_jpy",
        "reason_code",
        "note",
    )
    ordering = ["at", "id"]
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AmountBandFilter(admin.SimpleListFilter):
    """The review bands of each claim's own program (auto-approve limit, second-approval threshold)."""

    title = "amount band"
    parameter_name = "band"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("lowest", "Lowest band (bulk approval)"),
            ("middle", "One approval"),
            ("second", "Above the second-approval threshold"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Claim]) -> QuerySet[Claim] | None:
        lowest = Q(amount_jpy__lte=F("program__auto_approve_max_jpy"))
        second = Q(
            program__second_approval_above_jpy__isnull=False, amount_jpy__gt=F("program__second_approval_above_jpy")
        )
        if self.value() == "lowest":
            return queryset.filter(lowest).exclude(second)
        if self.value() == "middle":
            return queryset.exclude(lowest).exclude(second)
        if self.value() == "second":
            return queryset.filter(second)
        return None


class ReviewActionForm(ActionForm):
    """The changelist's action bar, plus what a rejection or an information request needs."""

    reason_code = forms.ChoiceField(label="reason", choices=[("", "---------"), *RejectReason.choices], required=False)
    note = forms.CharField(label="note", required=False, max_length=2000)


@admin.register(Claim)
class ClaimAdmin(BigTableAdmin):
    list_display = [
        "subject",
        "program",
        "status",
        "eligible",
        "amount_jpy",
        "approved_amount_jpy",
        "qa_review",
        "reason",
        "payee",
        "computed_at",
    ]
    list_filter = ["program", "status", AmountBandFilter, "qa_review", "eligible"]
    list_select_related = ["program", "payee"]
    search_fields = ["=subject"]
    inlines = [ClaimLineInline, ClaimDecisionInline]
    action_form = ReviewActionForm
    actions = ["approve_claims", "bulk_approve_claims", "reject_claims", "request_info_claims", "reopen_claims"]
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
        "qa_review",
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

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE_PERMISSION)

    def has_reject_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REJECT_PERMISSION)

    def has_request_info_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REQUEST_INFO_PERMISSION)

    def has_reopen_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REOPEN_PERMISSION)

    def _each(self, request: HttpRequest, queryset: QuerySet[Claim], done: str, step: Any) -> None:
        """Runs one review step per selected claim (ascending id); each refusal is its own error message."""
        succeeded = 0
        for claim in queryset.select_related("program").order_by("pk"):
            try:
                step(claim)
            except ClaimDecisionRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                continue
            succeeded += 1
        if succeeded:
            self.message_user(request, f"{succeeded} claim(s) {done}.", messages.SUCCESS)

    def _form_value(self, request: HttpRequest, name: str) -> str:
        return str(request.POST.get(name, "")).strip()

    @admin.action(description="Approve selected claims (second approval above the threshold)", permissions=["approve"])
    def approve_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        note = self._form_value(request, "note")
        self._each(
            request, queryset, "approved", lambda claim: claim_approve(claim=claim, actor=request.user, note=note)
        )

    @admin.action(description="Bulk-approve selected claims (lowest band only)", permissions=["approve"])
    def bulk_approve_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        result = claims_bulk_approve(claim_ids=list(queryset.values_list("pk", flat=True)), actor=request.user)
        for refusal in result.refused:
            self.message_user(request, f"{refusal.message} ({refusal.code})", messages.ERROR)
        if result.approved:
            self.message_user(
                request,
                f"{len(result.approved)} claim(s) approved, {len(result.qa_flagged)} drawn into the QA sample.",
                messages.SUCCESS,
            )

    @admin.action(description="Reject selected claims (choose a reason)", permissions=["reject"])
    def reject_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        reason = self._form_value(request, "reason_code")
        note = self._form_value(request, "note")
        self._each(
            request,
            queryset,
            "rejected",
            lambda claim: claim_reject(claim=claim, actor=request.user, reason_code=reason, note=note),
        )

    @admin.action(description="Request information (say what in the note)", permissions=["request_info"])
    def request_info_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        note = self._form_value(request, "note")
        self._each(
            request,
            queryset,
            "put on hold",
            lambda claim: claim_request_info(claim=claim, actor=request.user, note=note),
        )

    @admin.action(description="Reopen selected claims for review (say why in the note)", permissions=["reopen"])
    def reopen_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        note = self._form_value(request, "note")
        self._each(
            request, queryset, "reopened", lambda claim: claim_reopen(claim=claim, actor=request.user, note=note)
        )


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
