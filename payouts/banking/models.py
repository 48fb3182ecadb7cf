"""Bank transfers, original-method refunds and reconciliation imports (the money side of payouts).

- `BankAccount` — a payee's account for Zengin transfers, per customer (claim empty) or per claim. The
  account number is Fernet-encrypted (payouts.crypto, like PayoutSecret) and only its masked form is ever
  listed. At most one *active* account per (customer, claim); recording a new one replaces the old, a
  returned transfer marks the account `returned` so it is never used again.
- `ZenginExport` / `ZenginExportLine` — one 総合振込 file (the bytes, Fernet-encrypted like the account
  numbers it carries; the sha256 of the clear file; totals) and the payouts it carries (one line per
  payout, ever: UNIQUE payout). Downloads are audited (`ZenginExportDownload`).
- `BankResultImport` — one imported bank result file, encrypted (sha256 UNIQUE: the same file twice
  changes nothing).
- `SettlementImport` — one imported provider settlement file, encrypted (sha256 UNIQUE).
- `RefundRequest` — the refund to the original payment method of one payout: when the customer asked,
  when it is due (3 business days), when it was sent, the delay interest, the provider's answer.
- `BankingEvent` — who did what (recorded / replaced an account, exported, downloaded, imported,
  re-offered), one row per action.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from claims.models import Claim
from payouts import crypto
from payouts.models import Payout
from payouts.zengin import ACCOUNT_TYPE_LABELS
from support_portal.core.audit import decision_history
from support_portal.customers.models import Customer


def mask_account_number(number: str) -> str:
    """***4567 — the only form an account number is shown in."""
    return "***" + number[-4:]


class AccountType(models.TextChoices):
    ORDINARY = "1", "普通"
    CURRENT = "2", "当座"
    SAVINGS = "4", "貯蓄"
    OTHER = "9", "その他"


assert set(AccountType.values) == set(ACCOUNT_TYPE_LABELS)


class BankAccountStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    REPLACED = "replaced", _("Replaced by a newer account")
    RETURNED = "returned", _("Returned by the bank (not usable)")


@decision_history()
class BankAccount(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+", verbose_name=_("customer"))
    # Empty: the customer's account for every payout; set: only for this claim's payouts (preferred).
    claim = models.ForeignKey(
        Claim, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("claim")
    )
    bank_code = models.CharField(_("bank code"), max_length=4)
    bank_name_kana = models.CharField(_("bank name (kana)"), max_length=15, blank=True)
    branch_code = models.CharField(_("branch code"), max_length=3)
    branch_name_kana = models.CharField(_("branch name (kana)"), max_length=15, blank=True)
    account_type = models.CharField(_("account type"), max_length=1, choices=AccountType.choices)
    account_number_ciphertext = models.TextField(_("account number (encrypted)"))
    account_number_masked = models.CharField(_("account number"), max_length=16)
    holder_kana = models.CharField(_("holder name (half-width kana)"), max_length=30)
    status = models.CharField(
        _("status"), max_length=16, choices=BankAccountStatus.choices, default=BankAccountStatus.ACTIVE
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # "customer" (the application page) or "agent" (the agent form in the admin).
    source = models.CharField(_("entered through"), max_length=16)
    closed_at = models.DateTimeField(_("replaced / returned at"), null=True, blank=True)
    return_reason = models.CharField(_("return reason"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("bank account")
        verbose_name_plural = _("bank accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "claim"],
                condition=models.Q(status="active"),
                nulls_distinct=False,
                name="bank_account_one_active",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=BankAccountStatus.values), name="bank_account_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(account_type__in=AccountType.values), name="bank_account_type_valid"
            ),
        ]
        indexes = [models.Index(fields=["customer", "status"], name="bank_account_customer_idx")]

    def __str__(self) -> str:
        return f"{self.bank_code}-{self.branch_code} {self.account_number_masked} {self.holder_kana}"

    def account_number(self) -> str:
        """The decrypted account number, for writing the transfer file only (never shown)."""
        return crypto.decrypt(self.account_number_ciphertext)


class ExportStatus(models.TextChoices):
    WRITTEN = "written", _("Written (waiting for the bank's result)")
    RESULTS_IMPORTED = "results_imported", _("Bank result imported")


class ZenginExport(models.Model):
    """One 総合振込 file. The bytes are kept (the file sent to the bank is evidence); sha256 identifies it.

    Not under decision_history (the snapshots would copy the file): written once (append-only: database
    triggers refuse any change but its status, and every delete), its status moves only when results are
    imported, and every action on it is a BankingEvent."""

    transfer_date = models.DateField(_("transfer date (取組日)"))
    sender_key = models.CharField(_("sender account"), max_length=32)
    sender_label = models.CharField(_("sender account (masked)"), max_length=120)
    file_name = models.CharField(_("file name"), max_length=100)
    # The file's bytes as a Fernet token (payouts.crypto): it holds every payee's account number.
    content_ciphertext = models.TextField(_("file (encrypted)"), editable=False)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    total_count = models.PositiveIntegerField(_("transfers"))
    total_amount_jpy = models.PositiveBigIntegerField(_("total (JPY)"))
    status = models.CharField(_("status"), max_length=20, choices=ExportStatus.choices, default=ExportStatus.WRITTEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("Zengin transfer export")
        verbose_name_plural = _("Zengin transfer exports")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("export_zengin", _("Can create and download Zengin transfer files (audited)")),
            ("import_bank_results", _("Can import the bank's transfer result files")),
            ("import_settlement", _("Can import providers' settlement files")),
            ("view_finance_report", _("Can see the payout reconciliation report")),
        ]
        constraints = [models.UniqueConstraint(fields=["sha256"], name="zengin_export_sha256_unique")]
        # Append-only: the file sent to the bank is evidence. Only its status may move (when the bank's
        # result is imported, itself a BankingEvent) and its ciphertext under key rotation (the sha256 of
        # the clear file pins what it says); any other change and any delete is refused.
        triggers = [
            pgtrigger.Protect(name="append_only_delete", operation=pgtrigger.Delete),
            pgtrigger.Protect(
                name="append_only_update",
                operation=pgtrigger.Update,
                condition=pgtrigger.AnyChange(exclude=["status", "content_ciphertext"]),
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} ({self.transfer_date}, {self.total_count} transfers, ¥{self.total_amount_jpy:,})"

    def file_bytes(self) -> bytes:
        """The decrypted file, for the audited download only (zengin_export_download)."""
        return crypto.decrypt_bytes(self.content_ciphertext)


class LineResult(models.TextChoices):
    PENDING = "pending", _("Waiting for the bank")
    SETTLED = "settled", _("Settled")
    RETURNED = "returned", _("Returned (振込不能)")


@decision_history()
class ZenginExportLine(models.Model):
    export = models.ForeignKey(ZenginExport, on_delete=models.PROTECT, related_name="lines")
    # A payout is written to one file, ever (a returned transfer is re-offered as a new payout).
    payout = models.OneToOneField(Payout, on_delete=models.PROTECT, related_name="zengin_line")
    bank_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, related_name="+")
    customer_code = models.CharField(_("customer code"), max_length=10)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    result = models.CharField(_("result"), max_length=16, choices=LineResult.choices, default=LineResult.PENDING)
    reason_code = models.CharField(_("result code"), max_length=1, blank=True)
    result_import = models.ForeignKey(
        "banking.BankResultImport", on_delete=models.PROTECT, null=True, blank=True, related_name="lines"
    )

    class Meta:
        verbose_name = _("Zengin transfer line")
        verbose_name_plural = _("Zengin transfer lines")
        constraints = [
            models.UniqueConstraint(fields=["export", "customer_code"], name="zengin_line_code_unique"),
        ]

    def __str__(self) -> str:
        return f"line {self.customer_code} of export {self.export_id}"


class ZenginExportDownload(models.Model):
    """Who downloaded which transfer file, when (the file holds account numbers)."""

    export = models.ForeignKey(ZenginExport, on_delete=models.PROTECT, related_name="downloads")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("transfer file download")
        verbose_name_plural = _("transfer file downloads")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"export {self.export_id} downloaded by {self.actor_id}"


class ImportOutcome(models.TextChoices):
    CLEAN = "clean", _("Clean (no difference)")
    DIFFERENCES = "differences", _("Differences found")


class _FileImport(models.Model):
    file_name = models.CharField(_("file name"), max_length=200)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    # The imported file as a Fernet token (payouts.crypto): a bank result echoes the account numbers.
    content_ciphertext = models.TextField(_("file (encrypted)"), editable=False)
    imported_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    imported_at = models.DateTimeField(_("imported at"))
    rows = models.PositiveIntegerField(_("rows"), default=0)
    settled_count = models.PositiveIntegerField(_("settled"), default=0)
    failed_count = models.PositiveIntegerField(_("returned / failed"), default=0)
    expired_count = models.PositiveIntegerField(_("expired"), default=0)
    unchanged_count = models.PositiveIntegerField(_("already in that state"), default=0)
    reoffered_count = models.PositiveIntegerField(_("re-offered"), default=0)
    outcome = models.CharField(_("outcome"), max_length=16, choices=ImportOutcome.choices)
    # reconcile() differences: {"missing": [...], "unexpected": [...], "amount_mismatches": [...], ...}
    differences = models.JSONField(_("differences"), default=dict)

    class Meta:
        abstract = True

    def file_bytes(self) -> bytes:
        """The decrypted imported file (never shown in the admin)."""
        return crypto.decrypt_bytes(self.content_ciphertext)


class BankResultImport(_FileImport):
    export = models.ForeignKey(ZenginExport, on_delete=models.PROTECT, related_name="result_imports")

    class Meta:
        verbose_name = _("bank result import")
        verbose_name_plural = _("bank result imports")
        ordering = ["-imported_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["sha256"], name="bank_result_sha256_unique")]

    def __str__(self) -> str:
        return f"bank result {self.file_name} ({self.imported_at:%Y-%m-%d})"


class SettlementImport(_FileImport):
    class Meta:
        verbose_name = _("settlement import")
        verbose_name_plural = _("settlement imports")
        ordering = ["-imported_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["sha256"], name="settlement_sha256_unique")]

    def __str__(self) -> str:
        return f"settlement {self.file_name} ({self.imported_at:%Y-%m-%d})"


class RefundOutcomeChoice(models.TextChoices):
    PENDING = "pending", _("Not sent yet")
    REQUESTED = "requested", _("Sent to the payment provider")
    ASK_STORE = "ask_store", _("App-store purchase: the customer asks the store (no money moved)")
    NEEDS_BANK_ACCOUNT = "needs_bank_account", _("No account to refund to: re-offered as a bank transfer")
    FAILED = "failed", _("Refused by the provider")


@decision_history()
class RefundRequest(models.Model):
    payout = models.OneToOneField(Payout, on_delete=models.PROTECT, related_name="refund_request")
    charge_id = models.CharField(_("charge"), max_length=64)
    amount_jpy = models.PositiveIntegerField(_("refund (JPY)"))
    # The customer's request: the official submission's submitted_at (else when the claim was computed).
    requested_at = models.DateTimeField(_("requested at"))
    due_at = models.DateTimeField(_("due at (3 business days)"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # Fixed at the first send attempt so a retry with the same idempotency key asks for the same total.
    interest_jpy = models.PositiveIntegerField(_("delay interest (JPY)"), default=0)
    outcome = models.CharField(
        _("outcome"), max_length=24, choices=RefundOutcomeChoice.choices, default=RefundOutcomeChoice.PENDING
    )
    reference = models.CharField(_("provider reference"), max_length=128, blank=True)
    instructions = models.TextField(_("instructions to the customer"), blank=True)
    # Set by the beat task when the request is not sent and its due date is near (or passed).
    flagged_at = models.DateTimeField(_("flagged (due soon) at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("refund request")
        verbose_name_plural = _("refund requests")
        indexes = [models.Index(fields=["outcome", "due_at"], name="refund_request_due_idx")]

    def __str__(self) -> str:
        return f"refund of payout {self.payout_id} ({self.outcome})"

    @property
    def is_late(self) -> bool:
        return self.sent_at is not None and self.sent_at > self.due_at


class EventAction(models.TextChoices):
    ACCOUNT_RECORDED = "account_recorded", _("Bank account recorded")
    ACCOUNT_RETURNED = "account_returned", _("Bank account returned by the bank")
    EXPORT_CREATED = "export_created", _("Transfer file written")
    EXPORT_DOWNLOADED = "export_downloaded", _("Transfer file downloaded")
    RESULT_IMPORTED = "result_imported", _("Bank result imported")
    SETTLEMENT_IMPORTED = "settlement_imported", _("Settlement file imported")
    REOFFERED = "reoffered", _("Payout re-offered")
    REFUND_FLAGGED = "refund_flagged", _("Refund request due soon")


class BankingEvent(models.Model):
    at = models.DateTimeField(_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(_("action"), max_length=32, choices=EventAction.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    bank_account = models.ForeignKey(BankAccount, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    export = models.ForeignKey(ZenginExport, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("banking event")
        verbose_name_plural = _("banking events")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.action} at {self.at:%Y-%m-%d %H:%M}"
