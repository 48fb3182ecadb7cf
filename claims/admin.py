import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from claims.engine import EngineNeedsPostgreSQL
from claims.models import (
    Claim,
    ClaimDecision,
    ClaimLine,
    CouponDuplicatePayment,
    CouponPaymentConfirmation,
    CouponRemedy,
    DuplicatePaymentStatus,
    Grant,
    MergeOffer,
    MergeOutcome,
    PayoutMethod,
    Program,
    ProgramRun,
    RejectReason,
    Submission,
)
from claims.parameters import ParameterError
from claims.remedies import RemedyRefused, coupon_duplicates_decide, coupon_duplicates_detect, coupon_remedies_apply
from claims.report import program_report, program_report_write_csv
from claims.review import (
    MERGE_POLICY,
    MERGE_REASON,
    ClaimDecisionRefused,
    claim_approve,
    claim_merge_offer_record,
    claim_reject,
    claim_reopen,
    claim_request_info,
    claims_bulk_approve,
)
from claims.selectors import program_dry_run_write
from claims.services import (
    ProgramNotRunnable,
    ProgramStatusRefused,
    program_claims_submit_for_review,
    program_run_start,
    program_set_status,
)
from support_portal.accounts.services import export_audit_record
from support_portal.core.admin_tools import BigTableAdmin, ReadOnlyAdmin, ReadOnlyInline
from support_portal.core.audit import audit_context
from support_portal.core.charts import bar_chart_svg, line_chart_svg
from support_portal.core.masking import mask_email, mask_phone
from support_portal.customers.models import Charge, Subscription

RUN_PERMISSION = "claims.run_program"
APPROVE_PERMISSION = "claims.approve_claim"
REJECT_PERMISSION = "claims.reject_claim"
REQUEST_INFO_PERMISSION = "claims.request_info_claim"
REOPEN_PERMISSION = "claims.reopen_claim"
MERGE_OFFER_PERMISSION = "claims.record_merge_offer"
CONFIRM_DUPLICATE_PERMISSION = "claims.confirm_couponduplicatepayment"
# The program report shows aggregated claims of a program: who may see both may see the report.
REPORT_PERMISSIONS = ("claims.view_program", "claims.view_claim")
REPORT_SECTIONS = (
    ("plan", _("Amount by plan"), _("Plan")),
    ("class", _("Amount by class (rule)"), _("Rule")),
    ("month", _("Amount by month"), _("Month")),
)


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

    def clean_parameters(self) -> Any:
        """Empty or `null` is a form error (the column is NOT NULL); `{}` takes every SPEC default.

        Any other value is checked by Program.clean against the policy's parameter class.
        """
        value = self.cleaned_data.get("parameters")
        if value is None:
            raise forms.ValidationError(
                _("Enter the parameters as a JSON object; {} keeps every default."), code="required"
            )
        return value


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
        "inputs_unchanged",
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
    list_display = ["slug", "name", "policy", "status", "application_deadline", "report_link"]
    list_filter = ["policy", "status"]
    search_fields = ["slug", "name"]
    # Status changes only through program_set_status (the actions), which enforces the transitions.
    readonly_fields = ["status"]
    actions = [
        "preview_csv",
        "run_programs",
        "submit_for_review",
        "detect_coupon_duplicates",
        "move_to_preview",
        "open_for_applications",
        "close_applications",
    ]
    inlines = [ProgramRunInline]

    def has_run_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(RUN_PERMISSION)

    @admin.action(description="Preview (download the dry-run CSV)", permissions=["run"])
    def preview_csv(self, request: HttpRequest, queryset: QuerySet[Program]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one program to preview.", messages.WARNING)
            return None
        program = queryset.get()
        buffer = io.StringIO()
        try:
            totals = program_dry_run_write(program=program, out=buffer)
        except ParameterError as exc:
            self.message_user(request, f"{program.slug}: invalid parameters: {exc}", messages.ERROR)
            return None
        except EngineNeedsPostgreSQL as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        # Per-customer rows (subjects, payees, amounts): a data export, recorded with who and when.
        export_audit_record(
            actor=request.user, what=f"dry-run preview of {program.slug} (CSV)", row_count=totals.subjects
        )
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

    @admin.action(description="Send computed eligible claims to review", permissions=["run"])
    def submit_for_review(self, request: HttpRequest, queryset: QuerySet[Program]) -> None:
        for program in queryset.order_by("pk"):
            count = program_claims_submit_for_review(program=program, actor=request.user)
            self.message_user(request, f"{program.slug}: {count} claims sent to review.", messages.SUCCESS)

    @admin.action(description="Detect duplicate coupon payments (queue them for agents)", permissions=["run"])
    def detect_coupon_duplicates(self, request: HttpRequest, queryset: QuerySet[Program]) -> None:
        for program in queryset.order_by("pk"):
            try:
                count = coupon_duplicates_detect(program=program, actor=request.user)
            except (RemedyRefused, ParameterError) as exc:
                self.message_user(request, f"{program.slug}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request, f"{program.slug}: {count} new duplicate payment(s) to confirm.", messages.SUCCESS
            )

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

    # -- Program report (issue 4 item 9): a page with charts + tables, and the same numbers as CSV --

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:program_id>/report/",
                self.admin_site.admin_view(self.report_view),
                name="claims_program_report",
            ),
            path(
                "<int:program_id>/report.csv",
                self.admin_site.admin_view(self.report_csv_view),
                name="claims_program_report_csv",
            ),
            *super().get_urls(),
        ]

    def _report_program(self, request: HttpRequest, program_id: int) -> Program:
        if not request.user.has_perms(REPORT_PERMISSIONS):
            raise PermissionDenied
        return get_object_or_404(Program, pk=program_id)

    def report_view(self, request: HttpRequest, program_id: int) -> HttpResponse:
        program = self._report_program(request, program_id)
        report = program_report(program=program)
        totals = report.totals
        sections = []
        for name, title, heading in REPORT_SECTIONS:
            rows = report.breakdowns[name]
            labels = [row.value for row in rows]
            series = [
                (gettext("Eligible amount"), [row.eligible_amount_jpy for row in rows]),
                (gettext("Approved amount"), [row.approved_amount_jpy for row in rows]),
            ]
            chart_function = line_chart_svg if name == "month" and len(rows) > 1 else bar_chart_svg
            chart = chart_function(title=str(title), labels=labels, series=series, unit="¥") if rows else ""
            sections.append({"name": name, "title": title, "heading": heading, "rows": rows, "chart": chart})
        totals_chart = bar_chart_svg(
            title=gettext("Claims"),
            labels=[gettext("Population"), gettext("Eligible"), gettext("Applied"), gettext("Approved")],
            series=[(gettext("Claims"), [totals.population, totals.eligible, totals.applied, totals.approved])],
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Program report: %(slug)s") % {"slug": program.slug},
            "program": program,
            "report": report,
            "totals_chart": totals_chart,
            "sections": sections,
        }
        return TemplateResponse(request, "claims/program_report.html", context)

    def report_csv_view(self, request: HttpRequest, program_id: int) -> HttpResponse:
        """The report's numbers as CSV; every download is recorded (who, what, how many rows, when)."""
        program = self._report_program(request, program_id)
        buffer = io.StringIO()
        row_count = program_report_write_csv(program_report(program=program), buffer)
        export_audit_record(
            actor=request.user,
            what=f"claims program report {program.slug}",
            row_count=row_count,
        )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{program.slug}-report.csv"'
        return response

    @admin.display(description=_("report"))
    def report_link(self, program: Program) -> str:
        url = reverse("admin:claims_program_report", args=[program.pk])
        return format_html('<a href="{}">{}</a>', url, gettext("Report"))


class ClaimLineInline(admin.TabularInline):
    model = ClaimLine
    extra = 0
    can_delete = False
    fields = readonly_fields = ("position", "label", "amount_jpy", "rule", "grant_key", "excluded_reason")
    max_num = 0


class ClaimDecisionInline(ReadOnlyInline):
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


class CouponRemedyInline(ReadOnlyInline):
    """Ledger remedies written for an approved coupon-outage claim (read-only; claims.remedies)."""

    model = CouponRemedy
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "kind",
        "coupon",
        "restored_payment",
        "ledger_entry",
        "amount_jpy",
        "applied_by",
        "applied_at",
        "reversed_by",
        "reversed_at",
    )
    max_num = 0


class MergeOfferForm(forms.Form):
    """The agent's record of the merge offer made to the customer (autorenew-60day, duplicate purchase)."""

    outcome = forms.ChoiceField(label=_("outcome"), choices=MergeOutcome.choices, widget=forms.RadioSelect)
    other_subscription = forms.ModelChoiceField(
        label=_("other licence (for a merge)"), queryset=Subscription.objects.none(), required=False
    )
    note = forms.CharField(label=_("note"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, claim: Claim, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        charge = Charge.objects.select_related("subscription").filter(pk=claim.subject).first()
        field = self.fields["other_subscription"]
        assert isinstance(field, forms.ModelChoiceField)
        if charge is not None:
            # The same customer's other fixed-term licences (a merge extends one's end date).
            field.queryset = (
                Subscription.objects.filter(customer_id=charge.subscription.customer_id, ended_at__isnull=False)
                .exclude(pk=charge.subscription_id)
                .select_related("plan")
                .order_by("ended_at", "pk")
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("outcome") == MergeOutcome.MERGED and not cleaned.get("other_subscription"):
            self.add_error("other_subscription", _("Choose the licence the remaining days are added to."))
        return cleaned


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
    inlines = [ClaimLineInline, ClaimDecisionInline, CouponRemedyInline]
    action_form = ReviewActionForm
    actions = [
        "approve_claims",
        "approve_and_pay_claims",
        "bulk_approve_claims",
        "reject_claims",
        "request_info_claims",
        "reopen_claims",
        "apply_coupon_remedies",
    ]
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
        "merge_offer_link",
    ]
    raw_id_fields = ["customer", "payee", "official_submission", "prepared_by", "decided_by"]

    @admin.display(description=_("merge offer"))
    def merge_offer_link(self, claim: Claim) -> str:
        """autorenew-60day duplicate purchases: the recorded outcome, or the link to record it."""
        offer = MergeOffer.objects.filter(claim=claim).first()
        if offer is not None:
            return f"{offer.get_outcome_display()} ({offer.recorded_at:%Y-%m-%d %H:%M})"
        if not _merge_offer_applies(claim):
            return "-"
        url = reverse("admin:claims_claim_merge_offer", args=[claim.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, gettext("Record the merge offer"))

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:claim_id>/merge-offer/",
                self.admin_site.admin_view(self.merge_offer_view),
                name="claims_claim_merge_offer",
            ),
            *super().get_urls(),
        ]

    def merge_offer_view(self, request: HttpRequest, claim_id: int) -> HttpResponse:
        """Process screen: the agent records refunded / merged (with the other licence) / declined."""
        if not (request.user.has_perm(MERGE_OFFER_PERMISSION) and request.user.has_perm("claims.view_claim")):
            raise PermissionDenied
        claim = get_object_or_404(Claim.objects.select_related("program", "official_submission"), pk=claim_id)
        form = MergeOfferForm(request.POST or None, claim=claim)
        if request.method == "POST" and form.is_valid():
            try:
                offer = claim_merge_offer_record(
                    claim=claim,
                    actor=request.user,
                    outcome=form.cleaned_data["outcome"],
                    other_subscription=form.cleaned_data.get("other_subscription"),
                    note=form.cleaned_data.get("note", ""),
                )
            except ClaimDecisionRefused as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    gettext("Merge offer recorded: %(outcome)s.") % {"outcome": offer.get_outcome_display()},
                    messages.SUCCESS,
                )
                return redirect("admin:claims_claim_change", claim.pk)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": gettext("Merge offer: %(claim)s") % {"claim": claim},
            "claim": claim,
            "form": form,
            "applies": _merge_offer_applies(claim),
        }
        return TemplateResponse(request, "claims/merge_offer.html", context)

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

    @admin.action(description="Approve and pay selected claims (payout issued after commit)", permissions=["approve"])
    def approve_and_pay_claims(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        from payouts.services import claim_approve_and_pay  # noqa: PLC0415 - payouts depends on claims

        note = self._form_value(request, "note")
        self._each(
            request,
            queryset,
            "approved (payout queued when fully approved)",
            lambda claim: claim_approve_and_pay(claim=claim, actor=request.user, note=note),
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

    @admin.action(description="Apply coupon remedies (approved coupon-outage claims)", permissions=["approve"])
    def apply_coupon_remedies(self, request: HttpRequest, queryset: QuerySet[Claim]) -> None:
        written = 0
        for claim in queryset.select_related("program").order_by("pk"):
            try:
                written += len(coupon_remedies_apply(claim=claim, actor=request.user))
            except RemedyRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
        self.message_user(request, f"{written} ledger remedy row(s) written.", messages.SUCCESS)


def _merge_offer_applies(claim: Claim) -> bool:
    submission = claim.official_submission
    return claim.program.policy == MERGE_POLICY and submission is not None and submission.reason == MERGE_REASON


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


class DuplicateDecisionForm(ActionForm):
    note = forms.CharField(label="note", required=False, max_length=2000)


@admin.register(CouponDuplicatePayment)
class CouponDuplicatePaymentAdmin(ReadOnlyAdmin):
    """The queue "duplicates to confirm": class-B2 payments found by the detection (claims.remedies)."""

    list_display = [
        "transaction",
        "coupon",
        "amount_jpy",
        "previous_payment",
        "status",
        "detected_at",
        "decided_by",
        "decided_at",
        "note",
    ]
    list_filter = ["status", "program"]
    list_select_related = ["transaction", "previous_payment", "decided_by"]
    search_fields = ["=transaction__transaction_id", "=coupon__inquiry_number"]
    ordering = ["status", "coupon", "transaction"]
    action_form = DuplicateDecisionForm
    actions = ["confirm_duplicates", "reject_duplicates"]
    readonly_fields = [
        "transaction",
        "previous_payment",
        "program",
        "coupon",
        "amount_jpy",
        "status",
        "detected_at",
        "decided_by",
        "decided_at",
        "note",
    ]

    def has_confirm_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(CONFIRM_DUPLICATE_PERMISSION)

    def _decide(self, request: HttpRequest, queryset: QuerySet[CouponDuplicatePayment], status: str) -> None:
        try:
            result = coupon_duplicates_decide(
                duplicate_ids=list(queryset.values_list("pk", flat=True)),
                actor=request.user,
                status=status,
                note=str(request.POST.get("note", "")).strip(),
            )
        except RemedyRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        for _pk, message in result.refused:
            self.message_user(request, message, messages.ERROR)
        if result.decided:
            self.message_user(request, f"{len(result.decided)} payment(s) {status}.", messages.SUCCESS)

    @admin.action(description="Confirm: a duplicate (checked against the store's records)", permissions=["confirm"])
    def confirm_duplicates(self, request: HttpRequest, queryset: QuerySet[CouponDuplicatePayment]) -> None:
        self._decide(request, queryset, DuplicatePaymentStatus.CONFIRMED)

    @admin.action(description="Reject: a genuine payment, not restored (say why in the note)", permissions=["confirm"])
    def reject_duplicates(self, request: HttpRequest, queryset: QuerySet[CouponDuplicatePayment]) -> None:
        self._decide(request, queryset, DuplicatePaymentStatus.REJECTED)


@admin.register(CouponRemedy)
class CouponRemedyAdmin(ReadOnlyAdmin):
    """Coupon remedies written to the ledger (read-only: written by claims.remedies on approval)."""

    list_display = [
        "claim",
        "kind",
        "coupon",
        "restored_payment",
        "amount_jpy",
        "applied_by",
        "applied_at",
        "reversed_at",
    ]
    list_filter = ["kind", ("reversed_at", admin.EmptyFieldListFilter)]
    list_select_related = ["claim", "applied_by"]
    search_fields = ["=coupon__inquiry_number", "=restored_payment__transaction_id"]
    readonly_fields = [
        "claim",
        "kind",
        "coupon",
        "restored_payment",
        "ledger_entry",
        "amount_jpy",
        "applied_by",
        "applied_at",
        "reversal_entry",
        "reversed_by",
        "reversed_at",
    ]


@admin.register(Submission)
class SubmissionAdmin(BigTableAdmin):
    list_display = ["submission_id", "program", "subject", "submitted_at", "channel", "masked_contact", "payout_method"]
    list_filter = ["program", "channel", "payout_method"]
    list_select_related = ["program"]
    search_fields = ["=submission_id", "=subject"]

    @admin.display(description=_("contact email"))
    def masked_contact(self, obj: Submission) -> str:
        return mask_email(obj.contact_email)

    @admin.display(description=_("contact phone"))
    def masked_phone(self, obj: Submission) -> str:
        return mask_phone(obj.contact_phone)

    def get_fields(self, request: HttpRequest, obj: Submission | None = None) -> list[Any]:
        """A recorded submission shows its contact masked, whatever the URL or the user's rights: it is a
        record as received (nobody changes it here), and the clear address is for the notice, not for staff."""
        fields = list(super().get_fields(request, obj))
        if obj is None:
            return fields
        masked = {"contact_email": "masked_contact", "contact_phone": "masked_phone"}
        return [masked.get(name, name) if isinstance(name, str) else name for name in fields]

    def get_readonly_fields(self, request: HttpRequest, obj: Submission | None = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        return readonly if obj is None else [*readonly, "masked_contact", "masked_phone"]


@admin.register(MergeOffer)
class MergeOfferAdmin(admin.ModelAdmin):
    """autorenew-60day merge offers, read-only here: recorded on the claim's "merge offer" screen."""

    list_display = ["claim", "outcome", "other_subscription", "days_added", "recorded_by", "recorded_at"]
    list_filter = ["outcome"]
    list_select_related = ["claim", "other_subscription", "recorded_by"]
    readonly_fields = ["claim", "outcome", "other_subscription", "days_added", "note", "recorded_by", "recorded_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
