"""Headers every response carries, and the production settings that enforce sign-in security."""

import json
from typing import Any

import pytest

from tests.core.test_settings import PRODUCTION_ENV, _manage

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/admin/login/", "/apply/not-a-token/", "/accounts/two-factor/"])
def test_content_security_policy_on_every_response(client, path):
    response = client.get(path)
    policy = dict(
        directive.strip().split(" ", 1) for directive in response["Content-Security-Policy"].split(";") if directive
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"].startswith("'self'")
    assert policy["style-src"].startswith("'self'")
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "unsafe-eval" not in response["Content-Security-Policy"]
    assert policy["frame-ancestors"] == "'none'"
    assert policy["form-action"] == "'self'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def _production_settings(*names: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    script = (
        "import json; from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n) for n in {list(names)!r}}}, default=str))"
    )
    result = _manage("shell", "-v", "0", "-c", script, env={**PRODUCTION_ENV, **(env or {})})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_enforces_two_factor_secure_cookies_and_hsts():
    values = _production_settings(
        "REQUIRE_2FA",
        "MIDDLEWARE",
        "SESSION_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_NAME",
        "CSRF_COOKIE_SECURE",
        "CSRF_COOKIE_NAME",
        "SESSION_COOKIE_AGE",
        "SESSION_EXPIRE_AT_BROWSER_CLOSE",
        "SESSION_IDLE_TIMEOUT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_SSL_REDIRECT",
        "TRUSTED_PROXY_COUNT",
        "AUTHENTICATION_BACKENDS",
    )
    assert values["REQUIRE_2FA"] is True
    assert "support_portal.core.middleware.TwoFactorRequiredMiddleware" in values["MIDDLEWARE"]
    assert "django.middleware.csp.ContentSecurityPolicyMiddleware" in values["MIDDLEWARE"]
    assert values["AUTHENTICATION_BACKENDS"] == ["support_portal.accounts.backends.LockoutModelBackend"]
    assert values["SESSION_COOKIE_SECURE"] is values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert values["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    assert values["SESSION_COOKIE_AGE"] == 8 * 60 * 60
    assert values["SESSION_EXPIRE_AT_BROWSER_CLOSE"] is True
    assert values["SESSION_IDLE_TIMEOUT"] == 30 * 60
    assert values["SECURE_HSTS_SECONDS"] == 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["TRUSTED_PROXY_COUNT"] == 0  # X-Forwarded-For is believed only when configured


def test_production_refuses_to_turn_two_factor_off():
    result = _manage("check", env={**PRODUCTION_ENV, "DJANGO_REQUIRE_2FA": "false"})
    assert result.returncode != 0
    assert "Production requires two-factor authentication" in result.stderr
