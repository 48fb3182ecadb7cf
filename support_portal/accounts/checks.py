"""Says at start-up (runserver, `make run`) when two-factor sign-in is off, so nobody mistakes dev for prod."""

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security)
def two_factor_off_notice(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.REQUIRE_2FA or not settings.DEBUG:
        return []
    return [
        checks.Info(
            "Two-factor authentication is OFF (development): staff sign in with a password only.",
            hint="Production settings turn it on; set DJANGO_REQUIRE_2FA=true to try enrollment locally.",
            id="accounts.I001",
        )
    ]
