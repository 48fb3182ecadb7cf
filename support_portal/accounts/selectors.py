"""Reads for sign-in security: lockout state and two-factor status."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from support_portal.accounts.models import SecurityEvent, TOTPDevice


def lockout_window() -> timedelta:
    return timedelta(seconds=settings.LOGIN_LOCKOUT_WINDOW_SECONDS)


def client_ip(request: HttpRequest | None) -> str | None:
    """The caller's address; behind the TLS proxy (production) the last X-Forwarded-For hop it added."""
    if request is None:
        return None
    if settings.LOGIN_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.META.get("REMOTE_ADDR") or None


def login_failures_for_user(*, username: str) -> int:
    """Failed sign-ins (password or second factor) for this name in the window since its last success."""
    username = username.strip().lower()
    since = timezone.now() - lockout_window()
    last_success = SecurityEvent.objects.filter(
        kind=SecurityEvent.Kind.OTP_VERIFIED if settings.REQUIRE_2FA else SecurityEvent.Kind.LOGIN_SUCCEEDED,
        username=username,
        at__gte=since,
    ).aggregate(last=Max("at"))["last"]
    return SecurityEvent.objects.filter(
        kind__in=[SecurityEvent.Kind.LOGIN_FAILED, SecurityEvent.Kind.OTP_FAILED],
        username=username,
        at__gte=max(since, last_success) if last_success else since,
    ).count()


def login_failures_for_ip(*, ip: str | None) -> int:
    """Failed sign-ins from this address in the window, whatever the name (password spraying)."""
    if not ip:
        return 0
    since = timezone.now() - lockout_window()
    return SecurityEvent.objects.filter(
        kind__in=[SecurityEvent.Kind.LOGIN_FAILED, SecurityEvent.Kind.OTP_FAILED], ip=ip, at__gte=since
    ).count()


def login_locked_out(*, username: str, ip: str | None) -> bool:
    return (
        login_failures_for_user(username=username) >= settings.LOGIN_LOCKOUT_USER_FAILURES
        or login_failures_for_ip(ip=ip) >= settings.LOGIN_LOCKOUT_IP_FAILURES
    )


def confirmed_device(*, user: AbstractBaseUser | AnonymousUser) -> TOTPDevice | None:
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed_at__isnull=False).first()
