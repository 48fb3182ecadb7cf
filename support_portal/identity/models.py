"""Identity recovery for accounts with no working email (SPEC, `000`).

- `IdentityRecoveryCase` — one caller's case: the customer, the agent who opened it, its status
  (open → completed, open → locked after two failed verifications, locked → open when a lead unlocks it
  with a reason). Under `decision_history()` (database triggers); every move also writes an
  `IdentityRecoveryEvent` with its actor.
- `IdentityVerificationAttempt` — one verification: which checks passed or failed. What the agent typed is
  never stored in clear: only a keyed hash (HMAC with the SECRET_KEY) per check, so a later dispute can
  confirm "the caller said X" without the table revealing X.
- `PasswordResetSimulation` — what the local simulator of the main service's password-reset endpoint
  received, one row per idempotency key (UNIQUE): proof that one case triggers one reset however often
  the request is retried.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from support_portal.core.audit import decision_history
from support_portal.customers.models import Customer

# Two failed verifications lock a case until a lead unlocks it.
MAX_FAILED_ATTEMPTS = 2


class RecoveryStatus(models.TextChoices):
    OPEN = "open", _("Open (verifying)")
    LOCKED = "locked", _("Locked (lead review)")
    COMPLETED = "completed", _("Completed (new contact set, reset sent)")
    CANCELLED = "cancelled", _("Cancelled")


class CheckResult(models.TextChoices):
    PASS = "pass", _("Pass")
    FAIL = "fail", _("Fail")
    # We hold no data to compare with (e.g. no charge, no phone on file): it neither passes nor fails.
    UNAVAILABLE = "unavailable", _("No data to compare")


@decision_history()
class IdentityRecoveryCase(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="+")
    # The support ticket the call came in on, when there is one.
    ticket = models.ForeignKey(
        "tickets.Ticket", on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("ticket")
    )
    agent = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=RecoveryStatus.choices, default=RecoveryStatus.OPEN)
    # Failed verifications since the case was opened or last unlocked.
    failed_attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # The new contact address; set only when a verification passed.
    new_email = models.EmailField(_("new contact email"), blank=True)
    reset_idempotency_key = models.CharField(_("reset idempotency key"), max_length=128, blank=True)
    reset_reference = models.CharField(_("reset reference"), max_length=128, blank=True)
    reset_sent_at = models.DateTimeField(_("reset sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("identity recovery case")
        verbose_name_plural = _("identity recovery cases")
        permissions = [
            ("unlock_identityrecoverycase", _("Can review and unlock locked identity recovery cases")),
            # Leads see a customer's full email and phone on the customer 360 page; agents see them masked.
            ("view_unmasked_contact", _("Can see customers' full contact data")),
        ]
        indexes = [
            models.Index(fields=["customer", "-created_at"], name="identity_case_customer_idx"),
            models.Index(fields=["status", "-updated_at"], name="identity_case_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=RecoveryStatus.values), name="identity_case_status_valid"
            ),
            models.UniqueConstraint(
                fields=["reset_idempotency_key"],
                condition=~models.Q(reset_idempotency_key=""),
                name="identity_case_reset_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer_id} ({self.status})"

    def can_verify(self) -> bool:
        return self.status == RecoveryStatus.OPEN

    def can_unlock(self) -> bool:
        return self.status == RecoveryStatus.LOCKED

    def can_cancel(self) -> bool:
        return self.status in {RecoveryStatus.OPEN, RecoveryStatus.LOCKED}


class IdentityVerificationAttempt(models.Model):
    case = models.ForeignKey(IdentityRecoveryCase, on_delete=models.PROTECT, related_name="verification_attempts")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(_("at"), default=timezone.now)
    passed = models.BooleanField(_("passed"))
    # [{"check": "charge_amount", "result": "pass", "provided": true, "digest": "<hmac hex>"}, …]
    checks = models.JSONField(_("checks"), default=list)

    class Meta:
        verbose_name = _("identity verification attempt")
        verbose_name_plural = _("identity verification attempts")
        ordering = ["case", "at", "id"]

    def __str__(self) -> str:
        return f"case {self.case_id} attempt {self.pk} ({'pass' if self.passed else 'fail'})"


class RecoveryEventKind(models.TextChoices):
    OPENED = "opened", _("Opened")
    VERIFICATION_FAILED = "verification_failed", _("Verification failed")
    VERIFICATION_PASSED = "verification_passed", _("Verification passed")
    LOCKED = "locked", _("Locked")
    UNLOCKED = "unlocked", _("Unlocked")
    CONTACT_CHANGED = "contact_changed", _("Contact address changed")
    RESET_REQUESTED = "reset_requested", _("Password reset requested")
    RESET_SENT = "reset_sent", _("Password reset accepted by the main service")
    CANCELLED = "cancelled", _("Cancelled")


class IdentityRecoveryEvent(models.Model):
    """One thing that happened to a case: who (None = the system), when, what, status before and after."""

    case = models.ForeignKey(IdentityRecoveryCase, on_delete=models.PROTECT, related_name="recovery_events")
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=32, choices=RecoveryEventKind.choices)
    status_before = models.CharField(_("status before"), max_length=16, choices=RecoveryStatus.choices, blank=True)
    status_after = models.CharField(_("status after"), max_length=16, choices=RecoveryStatus.choices)
    # Free text from a person (unlock / cancel reason) or a masked summary; never a typed evidence value.
    note = models.CharField(_("note"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("identity recovery event")
        verbose_name_plural = _("identity recovery events")
        ordering = ["case", "at", "id"]

    def __str__(self) -> str:
        return f"case {self.case_id}: {self.kind}"


class PasswordResetSimulation(models.Model):
    """The local simulator's record of reset requests it received (one per idempotency key)."""

    idempotency_key = models.CharField(_("idempotency key"), max_length=128)
    customer_id = models.CharField(_("customer id"), max_length=64)
    email = models.EmailField(_("email"))
    reference = models.CharField(_("reference"), max_length=128)
    requests = models.PositiveIntegerField(_("requests"), default=1)
    created_at = models.DateTimeField(_("created at"))
    last_requested_at = models.DateTimeField(_("last requested at"))

    class Meta:
        verbose_name = _("simulated password reset")
        verbose_name_plural = _("simulated password resets")
        constraints = [
            models.UniqueConstraint(fields=["idempotency_key"], name="password_reset_sim_key_unique"),
        ]

    def __str__(self) -> str:
        return self.reference
