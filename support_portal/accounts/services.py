"""Writes for sign-in security. Every change records its SecurityEvent in the same transaction."""

import secrets
from typing import Any

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from support_portal.accounts import totp
from support_portal.accounts.crypto import secret_decrypt, secret_encrypt
from support_portal.accounts.models import ExportRecord, RecoveryCode, SecurityEvent, TOTPDevice

RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


class TwoFactorRefused(Exception):
    """The code was wrong, already used, or the device is not in the state the step needs."""


class DeviceUnreadable(TwoFactorRefused):
    """The device's secret was encrypted under a SECRET_KEY that is neither current nor a fallback."""


def _event(
    kind: str, *, user: User | None = None, username: str = "", ip: str | None = None, **detail: Any
) -> SecurityEvent:
    name = (username or (user.get_username() if user is not None else "")).strip().lower()
    return SecurityEvent.objects.create(kind=kind, user=user, username=name[:150], ip=ip, detail=detail)


def login_failure_record(*, username: str, ip: str | None) -> None:
    """A wrong password (or unknown name); the failures in the window are the lockout counters."""
    _event(SecurityEvent.Kind.LOGIN_FAILED, username=username, ip=ip)


def login_locked_record(*, username: str, ip: str | None) -> None:
    _event(SecurityEvent.Kind.LOCKED_OUT, username=username, ip=ip)


def login_success_record(*, user: User, ip: str | None) -> None:
    _event(SecurityEvent.Kind.LOGIN_SUCCEEDED, user=user, ip=ip)


def idle_logout_record(*, user: User, ip: str | None) -> None:
    _event(SecurityEvent.Kind.IDLE_LOGOUT, user=user, ip=ip)


def _recovery_hash(code: str, *, secret: str | None = None) -> str:
    normalized = "".join(ch for ch in code.lower() if ch.isalnum())
    return salted_hmac("accounts.recovery_code", normalized, secret=secret, algorithm="sha256").hexdigest()


def _recovery_hashes(code: str) -> list[str]:
    """The code's hash under the current key and each fallback: codes keep working across a rotation."""
    keys = [settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS]
    return [_recovery_hash(code, secret=key) for key in keys]


def _recovery_codes_replace(*, user: User) -> list[str]:
    codes = [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(5)) for _ in range(2))
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    RecoveryCode.objects.filter(user_id=user.pk).delete()
    RecoveryCode.objects.bulk_create([RecoveryCode(user_id=user.pk, code_hash=_recovery_hash(code)) for code in codes])
    return codes


@transaction.atomic
def device_enroll_start(*, user: User) -> TOTPDevice:
    """A fresh unconfirmed device (replacing an unconfirmed one); refused once a device is confirmed."""
    device = TOTPDevice.objects.select_for_update().filter(user_id=user.pk).first()
    if device is not None and device.confirmed:
        raise TwoFactorRefused(_("A two-factor device is already enrolled; ask a manager to reset it."))
    if device is None:
        device = TOTPDevice(user_id=user.pk)
    device.encrypted_secret = secret_encrypt(totp.secret_generate())
    device.last_step = None
    device.save()
    return device


def device_secret(*, device: TOTPDevice) -> str:
    """The TOTP secret; DeviceUnreadable once the key it was encrypted under is gone (rotated out)."""
    try:
        return secret_decrypt(device.encrypted_secret)
    except InvalidToken as exc:
        raise DeviceUnreadable(
            _(
                "Your two-factor device can no longer be checked because the server's keys changed. "
                "Sign in with a recovery code, or ask a manager to reset two-factor for you."
            )
        ) from exc


def device_confirm(*, user: User, code: str, ip: str | None) -> list[str]:
    """Confirms the unconfirmed device with its first code; returns the new recovery codes (shown once).

    Raises TwoFactorRefused; a wrong code is recorded (outside the refused transaction) and counts
    towards the lockout.
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user_id=user.pk, confirmed_at__isnull=True).first()
        if device is None:
            raise TwoFactorRefused(_("There is no enrollment in progress."))
        step = totp.matching_step(device_secret(device=device), code)  # DeviceUnreadable: the view restarts
        if step is not None:
            device.confirmed_at = timezone.now()
            device.last_step = step
            device.save(update_fields=["confirmed_at", "last_step"])
            codes = _recovery_codes_replace(user=user)
            _event(SecurityEvent.Kind.DEVICE_ENROLLED, user=user, ip=ip)
            _event(SecurityEvent.Kind.OTP_VERIFIED, user=user, ip=ip, method="totp")
            return codes
    _event(SecurityEvent.Kind.OTP_FAILED, user=user, ip=ip, during="enrollment")
    raise TwoFactorRefused(_("The code is not valid. Check the time on your phone and try again."))


def otp_verify(*, user: User, code: str, ip: str | None) -> str:
    """Accepts a current TOTP code (each at most once) or an unused recovery code; returns which.

    Raises TwoFactorRefused; the failure is recorded and counts towards the lockout.
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user_id=user.pk, confirmed_at__isnull=False).first()
        if device is None:
            raise TwoFactorRefused(_("No two-factor device is enrolled."))
        unreadable: DeviceUnreadable | None = None
        try:
            step = totp.matching_step(device_secret(device=device), code)
        except DeviceUnreadable as exc:
            # Recovery codes are still checked (their hashes follow SECRET_KEY_FALLBACKS); a TOTP code cannot be.
            step, unreadable = None, exc
        if step is not None and (device.last_step is None or step > device.last_step):
            device.last_step = step
            device.save(update_fields=["last_step"])
            _event(SecurityEvent.Kind.OTP_VERIFIED, user=user, ip=ip, method="totp")
            return "totp"
        if step is None:
            recovery = (
                RecoveryCode.objects.select_for_update()
                .filter(user_id=user.pk, code_hash__in=_recovery_hashes(code), used_at__isnull=True)
                .first()
            )
            if recovery is not None:
                recovery.used_at = timezone.now()
                recovery.save(update_fields=["used_at"])
                left = RecoveryCode.objects.filter(user_id=user.pk, used_at__isnull=True).count()
                _event(SecurityEvent.Kind.RECOVERY_CODE_USED, user=user, ip=ip, left=left)
                _event(SecurityEvent.Kind.OTP_VERIFIED, user=user, ip=ip, method="recovery_code")
                return "recovery_code"
    if unreadable is not None:
        _event(SecurityEvent.Kind.OTP_FAILED, user=user, ip=ip, replay=False, unreadable=True)
        raise unreadable
    _event(SecurityEvent.Kind.OTP_FAILED, user=user, ip=ip, replay=step is not None)
    raise TwoFactorRefused(_("The code is not valid."))


@transaction.atomic
def recovery_codes_regenerate(*, user: User, ip: str | None) -> list[str]:
    """New recovery codes; the old ones stop working."""
    codes = _recovery_codes_replace(user=user)
    _event(SecurityEvent.Kind.RECOVERY_CODES_GENERATED, user=user, ip=ip)
    return codes


@transaction.atomic
def device_reset(*, user: User, actor: User | None) -> None:
    """Removes a user's device and recovery codes (lost phone); they enroll again at next sign-in."""
    TOTPDevice.objects.filter(user_id=user.pk).delete()
    RecoveryCode.objects.filter(user_id=user.pk).delete()
    _event(
        SecurityEvent.Kind.DEVICE_RESET,
        user=user,
        actor=actor.get_username() if actor is not None else "system",
    )


def export_audit_record(*, actor: AbstractBaseUser | AnonymousUser | None, what: str, row_count: int) -> ExportRecord:
    """Records a data export (call it where the export is produced, in the same request; the request's
    user as `actor` — an anonymous one is recorded as no one).

    `what`: a short description naming the data, e.g. "claims of login-outage-2024 (CSV)".
    """
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    return ExportRecord.objects.create(actor_id=actor_id, what=what[:200], row_count=row_count)
