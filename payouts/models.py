"""Payouts: one payment of an approved claim's amount through one payout method.

- `Payout` — one per (claim, method) and one per idempotency key, both enforced by UNIQUE constraints; its
  status moves only along `PAYOUT_STATUS_TRANSITIONS` (created → issued → notified → settled, with
  expired / failed / cancelled as ends). Every move writes a `PayoutTransition` (who, when, from, to) and
  the row itself is under `decision_history()` (database triggers).
- `PayoutSecret` — what the customer needs to receive the money (ATM voucher code + PIN, or a receive URL),
  Fernet-encrypted at rest (payouts.crypto). Kept in its own table so the audit snapshots of `Payout`
  never copy it, and never printed: `__str__`/`repr` name the payout only, `masked()` shows the last digits.
- `SimulatorIssuance` — what the local provider simulators issued, one row per idempotency key (UNIQUE):
  the proof that a provider saw one issuance however often it was asked.
"""

from __future__ import annotations

import dataclasses
import json

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from claims.models import Claim, PayoutMethod, Program
from payouts import crypto
from support_portal.core.audit import decision_history
from support_portal.core.masking import mask_secret
from support_portal.customers.models import Customer


class PayoutStatus(models.TextChoices):
    CREATED = "created", _("Created")
    ISSUED = "issued", _("Issued (code or URL obtained)")
    NOTIFIED = "notified", _("Notified to the customer")
    SETTLED = "settled", _("Settled (received)")
    EXPIRED = "expired", _("Expired (not received by the deadline)")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


PAYOUT_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    PayoutStatus.CREATED: frozenset(
        {PayoutStatus.ISSUED, PayoutStatus.EXPIRED, PayoutStatus.FAILED, PayoutStatus.CANCELLED}
    ),
    PayoutStatus.ISSUED: frozenset(
        {PayoutStatus.NOTIFIED, PayoutStatus.SETTLED, PayoutStatus.EXPIRED, PayoutStatus.FAILED}
    ),
    PayoutStatus.NOTIFIED: frozenset({PayoutStatus.SETTLED, PayoutStatus.EXPIRED, PayoutStatus.FAILED}),
    PayoutStatus.SETTLED: frozenset(),
    PayoutStatus.EXPIRED: frozenset(),
    PayoutStatus.FAILED: frozenset(),
    PayoutStatus.CANCELLED: frozenset(),
}


def payout_idempotency_key(*, claim_id: int, method: str) -> str:
    """The key sent to the provider; the same payout always gets the same key (SQL in services mirrors it)."""
    return f"payout:{claim_id}:{method}"


@decision_history()
class Payout(models.Model):
    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="payouts")
    # The claim's program, copied so the admin and the sweep filter without joining claims.
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="payouts")
    method = models.CharField(_("method"), max_length=32, choices=PayoutMethod.choices)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    payee = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=PayoutStatus.choices, default=PayoutStatus.CREATED)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    # The program's receipt deadline, 23:59:59.999999 JST; empty when the program has none.
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    provider = models.CharField(_("provider"), max_length=64, blank=True)
    provider_reference = models.CharField(_("provider reference"), max_length=128, blank=True)
    attempts = models.PositiveIntegerField(_("issue attempts"), default=0)
    # Provider error text only (never a code or URL).
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payout")
        verbose_name_plural = _("payouts")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="payout_idempotency_key_unique"),
            models.UniqueConstraint(fields=["claim", "method"], name="payout_claim_method_unique"),
            models.CheckConstraint(condition=models.Q(amount_jpy__gt=0), name="payout_amount_positive"),
            models.CheckConstraint(condition=models.Q(status__in=PayoutStatus.values), name="payout_status_valid"),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="payout_status_updated_idx"),
            models.Index(fields=["program", "status"], name="payout_program_status_idx"),
        ]

    def __str__(self) -> str:
        return f"payout {self.pk} ({self.method}, ¥{self.amount_jpy}, {self.status})"

    def can_transition(self, status: str) -> bool:
        return status in PAYOUT_STATUS_TRANSITIONS.get(self.status, frozenset())

    def can_issue(self) -> bool:
        return self.status == PayoutStatus.CREATED

    def can_notify(self) -> bool:
        return self.can_transition(PayoutStatus.NOTIFIED)

    def can_settle(self) -> bool:
        return self.can_transition(PayoutStatus.SETTLED)

    def can_expire(self) -> bool:
        return self.can_transition(PayoutStatus.EXPIRED)

    def can_fail(self) -> bool:
        return self.can_transition(PayoutStatus.FAILED)

    def can_cancel(self) -> bool:
        return self.can_transition(PayoutStatus.CANCELLED)


class PayoutTransition(models.Model):
    """One status move of a payout: who (None = the system), when, from what to what, and why."""

    payout = models.ForeignKey(Payout, on_delete=models.PROTECT, related_name="transitions")
    at = models.DateTimeField(_("at"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    status_before = models.CharField(_("status before"), max_length=16, choices=PayoutStatus.choices, blank=True)
    status_after = models.CharField(_("status after"), max_length=16, choices=PayoutStatus.choices)
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("payout transition")
        verbose_name_plural = _("payout transitions")
        ordering = ["payout", "at", "id"]

    def __str__(self) -> str:
        return f"payout {self.payout_id}: {self.status_before or '—'} → {self.status_after}"


def mask_payout_secret(value: str) -> str:
    """mask_secret (last 4 characters), at most 16 characters long so long receive URLs fit lists."""
    return mask_secret(value)[-16:]


@dataclasses.dataclass(frozen=True)
class RevealedSecret:
    """A decrypted secret; its repr never shows the values."""

    code: str = dataclasses.field(default="", repr=False)
    pin: str = dataclasses.field(default="", repr=False)
    url: str = dataclasses.field(default="", repr=False)

    def masked(self) -> str:
        return mask_payout_secret(self.code or self.url)


class PayoutSecret(models.Model):
    """The voucher code / PIN / receive URL of an issued payout, encrypted (Fernet token, never plaintext)."""

    payout = models.OneToOneField(Payout, on_delete=models.PROTECT, primary_key=True, related_name="secret")
    ciphertext = models.TextField(_("ciphertext"))
    # mask_secret of the code or URL, computed at issue time so lists never decrypt.
    masked = models.CharField(_("masked code"), max_length=64)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("payout secret")
        verbose_name_plural = _("payout secrets")

    def __str__(self) -> str:
        return f"secret of payout {self.payout_id}"

    @classmethod
    def seal(cls, *, code: str = "", pin: str = "", url: str = "") -> tuple[str, str]:
        """(ciphertext, masked) for a secret."""
        payload = json.dumps({"code": code, "pin": pin, "url": url}, separators=(",", ":"))
        return crypto.encrypt(payload), mask_payout_secret(code or url)

    def reveal(self) -> RevealedSecret:
        data = json.loads(crypto.decrypt(self.ciphertext))
        return RevealedSecret(code=data.get("code", ""), pin=data.get("pin", ""), url=data.get("url", ""))


class SimulatorIssuance(models.Model):
    """What a local provider simulator issued: one row per idempotency key, `requests` counts the asks."""

    provider = models.CharField(_("provider"), max_length=64)
    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    payee_ref = models.CharField(_("payee reference"), max_length=64)
    reference = models.CharField(_("reference"), max_length=128)
    requests = models.PositiveIntegerField(_("requests"), default=1)
    created_at = models.DateTimeField(_("created at"))
    last_requested_at = models.DateTimeField(_("last requested at"))

    class Meta:
        verbose_name = _("simulator issuance")
        verbose_name_plural = _("simulator issuances")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="simulator_issuance_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.reference}"
