"""Production: refuses to start without its secrets, PostgreSQL only, every deploy check satisfied.

PAYOUT_ENCRYPTION_KEY: Fernet key(s), comma-separated for rotation; payout codes are encrypted with it.

Required: DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL (postgres), PAYOUT_ENCRYPTION_KEY
(Fernet key(s), comma-separated for rotation: payout codes are encrypted at rest with it). Recommended: REDIS_URL,
DJANGO_ADMIN_URL (a path that is not /admin/), DJANGO_CSRF_TRUSTED_ORIGINS.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, env

_REQUIRED = ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "PAYOUT_ENCRYPTION_KEY")
_missing = [name for name in _REQUIRED if not env.str(name, default="")]
if _missing:
    raise ImproperlyConfigured(f"Production settings need these environment variables: {', '.join(_missing)}")

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
if len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be a random value of at least 50 characters")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Production runs on PostgreSQL: DATABASE_URL must be a postgres:// URL")

DEBUG = False
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# Sign-in security: two-factor is mandatory.
REQUIRE_2FA = env.bool("DJANGO_REQUIRE_2FA", default=True)
if not REQUIRE_2FA:
    raise ImproperlyConfigured("Production requires two-factor authentication: unset DJANGO_REQUIRE_2FA")
# The client address: set TRUSTED_PROXY_COUNT=1 behind one TLS proxy that appends to X-Forwarded-For
# (base.py reads it; default 0, the header is ignored and REMOTE_ADDR is the client).
SESSION_COOKIE_NAME = "__Host-sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken"

# Provider callbacks: the signing secrets come from the environment only (no development default); a
# provider without one has every callback refused.
PAYOUT_WEBHOOK_SECRETS = {
    provider: [secret for secret in env.list(variable, default=[]) if secret]
    for provider, variable in (
        ("sevenbank-atm", "PAYOUT_WEBHOOK_SECRET_SEVENBANK_ATM"),
        ("point-codes", "PAYOUT_WEBHOOK_SECRET_POINT_CODES"),
    )
}

# Static files: WhiteNoise serves the collected files (hashed, compressed names) straight from gunicorn.
MIDDLEWARE = [*MIDDLEWARE]  # noqa: F405
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "whitenoise.middleware.WhiteNoiseMiddleware"
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# /healthz and /readyz are answered before the HTTPS redirect (MonitoringEndpointsMiddleware): a load
# balancer probes plain HTTP. Logs: one JSON object per line with request and task ids, personal data masked.
LOGGING = {**LOGGING}  # noqa: F405
LOGGING["handlers"] = {
    "console": {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "filters": ["request_context", "mask_personal_data"],
    }
}
