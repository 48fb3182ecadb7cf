"""The password step of sign-in, with lockout per user name and per address."""

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from support_portal.accounts.selectors import client_ip, login_locked_out
from support_portal.accounts.services import login_failure_record, login_locked_record, login_success_record


class LockoutModelBackend(ModelBackend):
    """Django's ModelBackend, refusing (PermissionDenied stops every backend) while locked out.

    The sign-in form shows the same message for a lockout and a wrong password, so the lockout does not
    tell an attacker which names exist.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> User | None:
        if username is None or password is None:
            return None
        ip = client_ip(request)
        if login_locked_out(username=username, ip=ip):
            login_locked_record(username=username, ip=ip)
            raise PermissionDenied
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(username=username, ip=ip)
        else:
            login_success_record(user=user, ip=ip)
        return user
