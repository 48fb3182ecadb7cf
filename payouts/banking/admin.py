"""Admin of payouts.banking: read-only lists (account numbers masked), and the process screens finance
uses — write a transfer file, download it (audited), import the bank's result and providers' settlement
files, the reconciliation report (page + CSV) — plus the agent form that records a caller's bank account.
Every screen checks its permission explicitly and only adapts input for the services."""

from __future__ import annotations

import io
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _

from claims.models import Claim
from payouts.banking.forms import BankAccountForm, ResultUploadForm, ZenginExportForm
from payouts.banking.models import (
    BankAccount,
    BankingEvent,
    BankResultImport,
    RefundRequest,
    SettlementImport,
    ZenginExport,
    ZenginExportDownload,
    ZenginExportLine,
)
from payouts.banking.selectors import (
    MEASURES,
    finance_report_rows,
    reconciliation_differences,
    refunds_flagged_count,
    report_totals,
)
from payouts.banking.services import (
    MAX_EXPORT_TRANSFERS,
    BankingRefused,
    bank_account_record,
    bank_payouts_ready_for_export,
    bank_results_import,
    settlement_import,
    zengin_export_create,
    zengin_export_download,
)
from support_portal.accounts.services import export_audit_record
from support_portal.core.admin_tools import BigTableAdmin, ReadOnlyAdmin, ReadOnlyInline
from support_portal.core.charts import bar_chart_svg
from support_portal.core.csv_export import CsvWriter
from support_portal.customers.models import Customer

EXPORT_PERMISSION = "banking.export_zengin"
IMPORT_RESULTS_PERMISSION = "banking.import_bank_results"
IMPORT_SETTLEMENT_PERMISSION = "banking.import_settlement"
REPORT_PERMISSION = "banking.view_finance_report"
RECORD_ACCOUNT_PERMISSION = "banking.add_bankaccount"

MEASURE_LABELS = {
    "owed": _("Owed"),
    "sent": _("Sent"),
    "settled": _("Settled"),
    "expired": _("Expired"),
    "unclaimed": _("Unclaimed"),
    "failed": _("Failed / returned"),
}


class AgentAccountForm(BankAccountForm):
    customer_id = forms.CharField(label=_("Customer id"), max_length=64)
    claim_id = forms.IntegerField(label=_("Claim (empty = every payout of the customer)"), required=False)
    field_order = ["customer_id", "claim_id"]

    def clean_customer_id(self) -> Customer:
        customer = Customer.objects.filter(pk=self.cleaned_data["customer_id"].strip()).first()
        if customer is None:
            raise forms.ValidationError(_("No such customer."))
        return customer

    def clean_claim_id(self) -> Claim | None:
        claim_id = self.cleaned_data.get("claim_id")
        if claim_id is None:
            return None
        claim = Claim.objects.filter(pk=claim_id).first()
        if claim is None:
            raise forms.ValidationError(_("No such claim."))
        return claim


@admin.register(BankAccount)
class BankAccountAdmin(ReadOnlyAdmin):
    """Masked everywhere; new accounts only through the agent form (or the customer's application page)."""

    list_display = (
        "customer",
        "claim",
        "bank_code",
        "branch_code",
        "account_type",
        "account_number_masked",
        "holder_kana",
        "status",
        "source",
        "created_at",
    )
    list_filter = ("status", "source")
    list_select_related = ("customer", "claim")
    search_fields = ("=customer__customer_id",)
    fields = readonly_fields = (
        "customer",
        "claim",
        "bank_code",
        "bank_name_kana",
        "branch_code",
        "branch_name_kana",
        "account_type",
        "account_number_masked",
        "holder_kana",
        "status",
        "source",
        "created_at",
        "created_by",
        "closed_at",
        "return_reason",
    )
    change_list_template = "banking/admin/bankaccount_change_list.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path("record/", self.admin_site.admin_view(self.record_view), name="banking_bankaccount_record"),
            *super().get_urls(),
        ]

    def record_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(RECORD_ACCOUNT_PERMISSION):
            raise PermissionDenied
        form = AgentAccountForm(request.POST or None, initial={"customer_id": request.GET.get("customer", "")})
        if request.method == "POST" and form.is_valid():
            try:
                record = bank_account_record(
                    customer=form.cleaned_data["customer_id"],
                    claim=form.cleaned_data["claim_id"],
                    account_input=form.account_input(),
                    actor=request.user,
                    source="agent",
                )
            except BankingRefused as exc:
                for field, message in exc.errors.items():
                    messages.error(request, f"{field}: {message}")
                if not exc.errors:
                    messages.error(request, str(exc))
            else:
                messages.success(request, _("Bank account %(account)s recorded.") % {"account": record})
                return HttpResponseRedirect(reverse("admin:banking_bankaccount_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Record a customer's bank account"),
            "form": form,
        }
        return TemplateResponse(request, "banking/admin/bankaccount_record.html", context)


class ZenginExportLineInline(ReadOnlyInline):
    model = ZenginExportLine
    fields = readonly_fields = ("payout", "customer_code", "amount_jpy", "result", "reason_code", "result_import")
    extra = 0
    can_delete = False
    show_change_link = False


class ZenginExportDownloadInline(ReadOnlyInline):
    model = ZenginExportDownload
    fields = readonly_fields = ("actor", "at")
    extra = 0
    can_delete = False


@admin.register(ZenginExport)
class ZenginExportAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "transfer_date",
        "total_count",
        "total_amount_jpy",
        "status",
        "sender_label",
        "created_by",
        "created_at",
    )
    list_filter = ("status",)
    list_select_related = ("created_by",)
    fields = readonly_fields = (
        "transfer_date",
        "sender_label",
        "file_name",
        "sha256",
        "total_count",
        "total_amount_jpy",
        "status",
        "created_by",
        "created_at",
    )
    inlines = [ZenginExportDownloadInline, ZenginExportLineInline]
    change_list_template = "banking/admin/export_change_list.html"
    change_form_template = "banking/admin/export_change_form.html"

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("content_ciphertext")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("create/", view(self.create_view), name="banking_zenginexport_create"),
            path("<int:pk>/download/", view(self.download_view), name="banking_zenginexport_download"),
            path("import-result/", view(self.import_result_view), name="banking_zenginexport_import_result"),
            path(
                "import-settlement/", view(self.import_settlement_view), name="banking_zenginexport_import_settlement"
            ),
            path("report/", view(self.report_view), name="banking_zenginexport_report"),
            path("report.csv", view(self.report_csv), name="banking_zenginexport_report_csv"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {**self.admin_site.each_context(request), "opts": self.opts, **extra}

    def create_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        form = ZenginExportForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            program = data["program"]
            try:
                export = zengin_export_create(
                    actor=request.user,
                    transfer_date=data["transfer_date"],
                    sender_key=data["sender"],
                    program_id=program.pk if program else None,
                )
            except BankingRefused as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request,
                    _("Transfer file written: %(n)d transfers, ¥%(total)s.")
                    % {"n": export.total_count, "total": f"{export.total_amount_jpy:,}"},
                )
                return HttpResponseRedirect(reverse("admin:banking_zenginexport_change", args=[export.pk]))
        ready = bank_payouts_ready_for_export()
        context = self._context(
            request,
            title=_("Write a Zengin transfer file"),
            form=form,
            ready_count=len(ready),
            max_per_file=MAX_EXPORT_TRANSFERS,
            ready_total=sum(row[2] for row in ready),
        )
        return TemplateResponse(request, "banking/admin/export_create.html", context)

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        export = get_object_or_404(ZenginExport.objects.defer("content_ciphertext"), pk=pk)
        if request.method != "POST":  # the download is recorded: only on the page's button
            return HttpResponseRedirect(reverse("admin:banking_zenginexport_change", args=[pk]))
        content = zengin_export_download(export=export, actor=request.user)
        response = HttpResponse(content, content_type="text/plain; charset=shift_jis")
        response["Content-Disposition"] = f'attachment; filename="{export.file_name}"'
        response["Cache-Control"] = "no-store"
        return response

    def _import_view(self, request: HttpRequest, *, permission: str, title: Any, kind: str) -> HttpResponse:
        if not request.user.has_perm(permission):
            raise PermissionDenied
        form = ResultUploadForm(request.POST or None, request.FILES or None)
        record: BankResultImport | SettlementImport | None = None
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            data = upload.read()
            service = bank_results_import if kind == "bank" else settlement_import
            try:
                record = service(actor=request.user, data=data, file_name=upload.name)
            except BankingRefused as exc:
                messages.error(request, str(exc))
            else:
                level = messages.WARNING if record.outcome == "differences" else messages.SUCCESS
                messages.add_message(
                    request, level, _("Imported: %(outcome)s.") % {"outcome": record.get_outcome_display()}
                )
        context = self._context(request, title=title, form=form, record=record, kind=kind)
        return TemplateResponse(request, "banking/admin/import.html", context)

    def import_result_view(self, request: HttpRequest) -> HttpResponse:
        return self._import_view(
            request, permission=IMPORT_RESULTS_PERMISSION, title=_("Import the bank's transfer result"), kind="bank"
        )

    def import_settlement_view(self, request: HttpRequest) -> HttpResponse:
        return self._import_view(
            request, permission=IMPORT_SETTLEMENT_PERMISSION, title=_("Import a settlement file"), kind="settlement"
        )

    def report_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(REPORT_PERMISSION):
            raise PermissionDenied
        rows = finance_report_rows()
        totals = report_totals(rows)
        labels = [f"{row.program} · {row.method_label}" for row in rows]
        chart = (
            bar_chart_svg(
                title=str(_("Payouts per program and method (JPY)")),
                labels=labels,
                series=[
                    (str(MEASURE_LABELS[m]), [row.amounts[m] for row in rows])
                    for m in ("owed", "settled", "expired", "unclaimed")
                ],
                unit="円",
            )
            if rows
            else ""
        )
        count_chart = (
            bar_chart_svg(
                title=str(_("Payouts per program and method (count)")),
                labels=labels,
                series=[
                    (str(MEASURE_LABELS[m]), [row.counts[m] for row in rows])
                    for m in ("owed", "settled", "expired", "unclaimed")
                ],
            )
            if rows
            else ""
        )
        context = self._context(
            request,
            title=_("Payout reconciliation"),
            table_rows=[(row, [(row.counts[m], row.amounts[m]) for m in MEASURES]) for row in rows],
            total_cells=[(totals["counts"][m], totals["amounts"][m]) for m in MEASURES],
            rows=rows,
            measures=[(m, MEASURE_LABELS[m]) for m in MEASURES],
            chart=chart,
            count_chart=count_chart,
            differences=reconciliation_differences(),
            refunds_flagged=refunds_flagged_count(),
        )
        return TemplateResponse(request, "banking/admin/report.html", context)

    def report_csv(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(REPORT_PERMISSION):
            raise PermissionDenied
        rows = finance_report_rows()
        out = io.StringIO()
        writer = CsvWriter(out)
        writer.writerow(["program", "method", *(f"{m}_{unit}" for m in MEASURES for unit in ("count", "jpy"))])
        for row in rows:
            writer.writerow(
                [row.program, row.method, *(value for m in MEASURES for value in (row.counts[m], row.amounts[m]))]
            )
        export_audit_record(actor=request.user, what="payout reconciliation report (CSV)", row_count=len(rows))
        response = HttpResponse("\ufeff" + out.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="payout_reconciliation.csv"'
        return response


@admin.register(ZenginExportLine)
class ZenginExportLineAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("customer_code", "export", "payout", "amount_jpy", "result", "reason_code")
    list_filter = ("result",)
    list_select_related = ("export", "payout")
    search_fields = ("=customer_code",)
    fields = readonly_fields = (
        "export",
        "payout",
        "customer_code",
        "amount_jpy",
        "result",
        "reason_code",
        "result_import",
    )


class _ImportAdmin(ReadOnlyAdmin):
    list_display = ("file_name", "imported_at", "imported_by", "rows", "settled_count", "failed_count", "outcome")
    list_filter = ("outcome",)
    list_select_related = ("imported_by",)
    exclude = ("content_ciphertext",)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).defer("content_ciphertext")

    readonly_fields = (
        "file_name",
        "sha256",
        "imported_by",
        "imported_at",
        "rows",
        "settled_count",
        "failed_count",
        "expired_count",
        "unchanged_count",
        "reoffered_count",
        "outcome",
        "differences",
    )


@admin.register(BankResultImport)
class BankResultImportAdmin(_ImportAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("export", *super().get_readonly_fields(request, obj))


@admin.register(SettlementImport)
class SettlementImportAdmin(_ImportAdmin):
    pass


@admin.register(RefundRequest)
class RefundRequestAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = (
        "payout",
        "charge_id",
        "amount_jpy",
        "requested_at",
        "due_at",
        "sent_at",
        "interest_jpy",
        "outcome",
        "flagged_at",
    )
    list_filter = ("outcome", ("flagged_at", admin.EmptyFieldListFilter))
    list_select_related = ("payout",)
    search_fields = ("=charge_id",)
    fields = readonly_fields = (
        "payout",
        "charge_id",
        "amount_jpy",
        "requested_at",
        "due_at",
        "sent_at",
        "interest_jpy",
        "outcome",
        "reference",
        "instructions",
        "flagged_at",
        "created_at",
    )


@admin.register(BankingEvent)
class BankingEventAdmin(ReadOnlyAdmin, BigTableAdmin):
    list_display = ("at", "action", "actor", "customer", "payout", "export", "note")
    list_filter = ("action",)
    list_select_related = ("actor", "customer", "payout", "export")
    fields = readonly_fields = ("at", "action", "actor", "customer", "payout", "bank_account", "export", "note")
