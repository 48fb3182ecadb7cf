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
    """The caller's address. X-Forwarded-For is believed only as far as our own proxies wrote it.

    With `TRUSTED_PROXY_COUNT` = N proxies in front (default 0: none), each appends the address it saw, so
    the client is the N-th hop from the right; anything further left was sent by the client and is ignored.
    A request that did not come through all N (fewer hops) is keyed on REMOTE_ADDR.
    """
    if request is None:
        return None
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR") or None


def login_failures_for_user(*, username: str, ip: str | None) -> int:
    """Failed sign-ins (password or second factor) for this name from this address in the window since
    its last success. Keyed on name + address so that no one can lock a colleague out from elsewhere."""
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
        ip=ip,
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
        login_failures_for_user(username=username, ip=ip) >= settings.LOGIN_LOCKOUT_USER_FAILURES
        or login_failures_for_ip(ip=ip) >= settings.LOGIN_LOCKOUT_IP_FAILURES
    )


def confirmed_device(*, user: AbstractBaseUser | AnonymousUser) -> TOTPDevice | None:
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user_id=user.pk, confirmed_at__isnull=False).first()
