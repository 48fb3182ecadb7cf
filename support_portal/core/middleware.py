import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from pghistory.middleware import HistoryMiddleware


class AuditContextMiddleware(HistoryMiddleware):
    """Attaches the signed-in user and URL to every audit event written during the request.

    Only on PostgreSQL: the audit trail is database triggers there, and pghistory's context SQL breaks
    SQLite's cursor (the zero-config first run, which has no triggers to attach context to).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        super().__init__(get_response)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if connection.vendor != "postgresql":
            return self.get_response(request)
        response: HttpResponse = super().__call__(request)
        return response


class TwoFactorRequiredMiddleware:
    """With REQUIRE_2FA: a signed-in user who has not passed the second factor in this session reaches
    only the two-factor screens, sign-in and sign-out; everything else redirects to enrollment (no device
    yet) or to the code step. Must come after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.REQUIRE_2FA and request.user.is_authenticated and not self._exempt(request.path_info):
            from support_portal.accounts.selectors import confirmed_device  # noqa: PLC0415 - app registry
            from support_portal.accounts.views import session_verified  # noqa: PLC0415

            if not session_verified(request):
                target = "accounts:verify" if confirmed_device(user=request.user) is not None else "accounts:enroll"
                return redirect_to_login(request.get_full_path(), reverse(target), "next")
        return self.get_response(request)

    @staticmethod
    def _exempt(path: str) -> bool:
        exempt = (
            "/accounts/two-factor/",
            reverse("admin:login"),
            reverse("admin:logout"),
            "/" + settings.STATIC_URL.lstrip("/"),
        )
        return path.startswith(exempt)


class SessionIdleTimeoutMiddleware:
    """Signs a user out after SESSION_IDLE_TIMEOUT seconds without a request (on top of the absolute
    SESSION_COOKIE_AGE). The last-seen time is written at most once a minute to spare the session store."""

    SESSION_KEY = "accounts_last_seen"

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timeout = settings.SESSION_IDLE_TIMEOUT
        if timeout and request.user.is_authenticated:
            now = int(time.time())
            last_seen = request.session.get(self.SESSION_KEY)
            if isinstance(last_seen, int) and now - last_seen > timeout:
                from support_portal.accounts.selectors import client_ip  # noqa: PLC0415 - app registry
                from support_portal.accounts.services import idle_logout_record  # noqa: PLC0415

                user = request.user
                logout(request)
                idle_logout_record(user=user, ip=client_ip(request))
                return redirect_to_login(request.get_full_path(), reverse("admin:login"), "next")
            if not isinstance(last_seen, int) or now - last_seen >= 60:
                request.session[self.SESSION_KEY] = now
        return self.get_response(request)
