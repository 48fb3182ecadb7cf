"""Staff sign-in security: TOTP devices, one-time recovery codes, security events, audited data exports.

SecurityEvent and ExportRecord are append-only (database triggers refuse UPDATE and DELETE).
"""

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class TOTPDevice(models.Model):
    """The authenticator app of one staff user; usable once confirmed with a first code."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device")
    # The shared secret, encrypted (Fernet, key derived from SECRET_KEY; see support_portal/accounts/crypto.py).
    encrypted_secret = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The time step of the last accepted code: a code is never accepted twice (replay).
    last_step = models.BigIntegerField(null=True, blank=True)

    class Meta:
        verbose_name = _("two-factor device")
        verbose_name_plural = _("two-factor devices")

    def __str__(self) -> str:
        return f"TOTP device of user {self.user_id}"

    @property
    def confirmed(self) -> bool:
        return self.confirmed_at is not None


class RecoveryCode(models.Model):
    """A one-time code for when the phone is lost; only a keyed hash is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes")
    code_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")

    def __str__(self) -> str:
        return f"recovery code {self.pk} of user {self.user_id}"


class SecurityEvent(models.Model):
    """Sign-in and two-factor events; failed sign-ins here are also the lockout counters."""

    class Kind(models.TextChoices):
        LOGIN_SUCCEEDED = "login_succeeded", _("signed in (password)")
        LOGIN_FAILED = "login_failed", _("sign-in failed")
        LOCKED_OUT = "locked_out", _("sign-in refused: locked out")
        DEVICE_ENROLLED = "device_enrolled", _("two-factor device enrolled")
        DEVICE_RESET = "device_reset", _("two-factor device reset")
        OTP_VERIFIED = "otp_verified", _("two-factor code accepted")
        OTP_FAILED = "otp_failed", _("two-factor code refused")
        RECOVERY_CODE_USED = "recovery_code_used", _("recovery code used")
        RECOVERY_CODES_GENERATED = "recovery_codes_generated", _("recovery codes generated")
        IDLE_LOGOUT = "idle_logout", _("signed out after inactivity")

    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # As typed at the sign-in form (may name no user); lowercased for counting.
    username = models.CharField(max_length=150, blank=True, default="")
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        indexes = [
            models.Index(fields=["kind", "username", "at"], name="accounts_event_user_idx"),
            models.Index(fields=["kind", "ip", "at"], name="accounts_event_ip_idx"),
        ]
        permissions = [("view_audit_trail", "Can view and export the audit trail of claims and payouts")]
        triggers = [
            pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.username}"


class ExportRecord(models.Model):
    """One data export (CSV download, report file): who took which data, how many rows, when."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    what = models.CharField(max_length=200)
    row_count = models.PositiveIntegerField()
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("data export")
        verbose_name_plural = _("data exports")
        triggers = [
            pgtrigger.Protect(name="append_only", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.what} ({self.row_count})"
