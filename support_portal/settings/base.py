"""Settings for every environment, read from the environment (12-factor, django-environ).

With nothing set, the back office runs on embedded defaults for a first run: a SQLite file in the
project folder and a Celery broker on the local filesystem. DATABASE_URL selects PostgreSQL and
REDIS_URL selects Redis (broker and cache). Production adds its requirements in `production.py`.
"""

from pathlib import Path

import environ
import pghistory
from django.utils.csp import CSP
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="dev-only-insecure-key-never-used-in-production")
# Old keys during a rotation: sessions, signed values and TOTP secrets made under them still verify.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The admin lives under a path taken from the environment so production can move it off /admin/.
ADMIN_URL_PATH = env.str("DJANGO_ADMIN_URL", default="admin/").strip("/") + "/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    # django-ninja: the API's docs page takes its Swagger UI files from this app's static folder.
    "ninja",
    "support_portal.core",
    "support_portal.api",
    "support_portal.accounts",
    "support_portal.customers",
    "claims",
    "payouts",
    "payouts.banking",
    "support_portal.tickets",
    "support_portal.identity",
]

MIDDLEWARE = [
    # Request id (X-Request-ID) on every log line, request latency into /metrics.
    "support_portal.core.monitoring.middleware.RequestContextMiddleware",
    # /healthz, /readyz, /metrics: answered before host checks, HTTPS redirect, sessions, sign-in and 2FA.
    "support_portal.core.monitoring.middleware.MonitoringEndpointsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy from SECURE_CSP (below); templates get {{ csp_nonce }}.
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Idle sessions end; with REQUIRE_2FA nothing but the two-factor screens until the code step is passed.
    "support_portal.core.middleware.SessionIdleTimeoutMiddleware",
    "support_portal.core.middleware.TwoFactorRequiredMiddleware",
    # Attaches the signed-in user and the URL to every audit event written during the request.
    "support_portal.core.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "support_portal.urls"
WSGI_APPLICATION = "support_portal.wsgi.application"
ASGI_APPLICATION = "support_portal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
if DATABASES["default"].get("ENGINE", "").endswith("sqlite3"):
    # First-run SQLite cannot build the bank-account "one active account" constraint (NULLS NOT DISTINCT);
    # the payout features that rely on it need PostgreSQL anyway.
    SILENCED_SYSTEM_CHECKS = ["models.W047"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Japanese first, English available. Instants are stored in UTC and shown in Asia/Tokyo.
LANGUAGE_CODE = "ja"
LANGUAGES = [("ja", _("Japanese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Tokyo"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "var" / "static")
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=BASE_DIR / "var" / "media")

EMAIL_BACKEND = env.str("DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="support@example.jp")
# Support tickets: mail fetched by `fetch_ticket_mail` that threads onto no ticket opens one in this queue.
TICKETS_INBOUND_QUEUE = env.str("TICKETS_INBOUND_QUEUE", default="general")

# Celery. Tasks carry ids only (JSON), are acknowledged after they finish, and are re-delivered when a
# worker dies; the database stays the record of pending work (periodic sweeps re-enqueue what is due).
if REDIS_URL:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    # An unreachable broker host fails a publish within seconds instead of the OS connect timeout.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"socket_connect_timeout": 3}
else:
    # No server needed for a first run: messages are files under var/celery.
    _broker_dir = VAR_DIR / "celery" / "broker"
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
# Publishing gives up quickly when the broker is down (one retry, then support_portal.core.enqueue counts
# the failure and the database sweeps enqueue the work later): a bulk admin action must not wait seconds
# per row for a broker that is not there.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(task_id)s] %(message)s"},
        # One JSON object per line (production.py uses it): support_portal/core/monitoring/logging.py.
        "json": {"()": "support_portal.core.monitoring.logging.JsonFormatter"},
    },
    # Emails, phone numbers and codes are masked in every record (support_portal/accounts/logging.py);
    # request_id / task_id / task_name come from the running request or Celery task.
    "filters": {
        "mask_personal_data": {"()": "support_portal.accounts.logging.PersonalDataMaskingFilter"},
        "request_context": {"()": "support_portal.core.monitoring.logging.RequestContextFilter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": env.str("LOG_FORMAT", default="plain"),
            "filters": ["request_context", "mask_personal_data"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Monitoring (docs/operations.md "Monitor") ---
# /readyz fails when the newest worker heartbeat (beat sends `core.heartbeat` every minute) is older.
HEALTH_HEARTBEAT_MAX_AGE_MINUTES = env.int("HEALTH_HEARTBEAT_MAX_AGE_MINUTES", default=5)
# /readyz fails when a sweep whose schedule is enabled has not run for this long (they run every minute).
HEALTH_SWEEP_OVERDUE_MINUTES = env.int("HEALTH_SWEEP_OVERDUE_MINUTES", default=10)
# /metrics: a bearer token (compared in constant time) and/or client networks (CIDR, comma-separated).
# Neither set: there is no /metrics (404). Production warns at `check --deploy` until one is set.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# The Operations health page charts backlog samples of the last 24 hours; older ones are pruned.
BACKLOG_SAMPLE_RETENTION_DAYS = env.int("BACKLOG_SAMPLE_RETENTION_DAYS", default=7)

# Audit tables are append-only: triggers refuse UPDATE and DELETE on them.
PGHISTORY_APPEND_ONLY = True
# The foreign keys an event row copies (claim, payee, program, …) are not indexed: history is read by
# its object (pgh_obj, indexed) and context, never by a copied key, and each such index cost every
# set-based write its share (1M payouts: 8 indexes on the event table).
PGHISTORY_FOREIGN_KEY_FIELD = pghistory.ForeignKey(db_index=False)
PGHISTORY_OBJ_FIELD = pghistory.ObjForeignKey(db_index=True)
PGHISTORY_CONTEXT_FIELD = pghistory.ContextForeignKey(db_index=True)

SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=8 * 60 * 60)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- Sign-in security (support_portal/accounts, docs/security.md) ---
# TOTP two-factor for every signed-in user. Off by default here so `make run` and the tests sign in with a
# password only; production.py turns it on (DJANGO_REQUIRE_2FA=false there is refused).
REQUIRE_2FA = env.bool("DJANGO_REQUIRE_2FA", default=False)
AUTHENTICATION_BACKENDS = ["support_portal.accounts.backends.LockoutModelBackend"]
LOGIN_URL = "admin:login"
# Lockout: this many failed sign-ins (password or code) in the window lock the name / the address.
LOGIN_LOCKOUT_USER_FAILURES = env.int("LOGIN_LOCKOUT_USER_FAILURES", default=5)
LOGIN_LOCKOUT_IP_FAILURES = env.int("LOGIN_LOCKOUT_IP_FAILURES", default=20)
LOGIN_LOCKOUT_WINDOW_SECONDS = env.int("LOGIN_LOCKOUT_WINDOW_SECONDS", default=15 * 60)
# How long a signed application link works after it was made (days, not months: a leaked link expires).
APPLICATION_LINK_MAX_AGE_DAYS = env.int("APPLICATION_LINK_MAX_AGE_DAYS", default=14)
# How many proxies of ours stand in front and append to X-Forwarded-For (0: none, the header is ignored;
# 1: one TLS proxy). The client address (lockout, security events) is the hop the outermost one wrote.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Signed out after this many seconds without a request (0: only SESSION_COOKIE_AGE applies).
SESSION_IDLE_TIMEOUT = env.int("DJANGO_SESSION_IDLE_TIMEOUT", default=30 * 60)

# --- The API (/api/v1/, support_portal/api, docs/operations.md "API") ---
# Requests per API key (django-ninja's throttle, in the cache: Redis under production settings).
API_RATE_LIMIT = env.str("API_RATE_LIMIT", default="600/m")
# Payout providers' callback signing secrets, comma-separated for rotation (the first signs the
# simulators' callbacks; any verifies). Development has fixed ones; production takes them from the
# environment only and refuses every callback of a provider without one.
PAYOUT_WEBHOOK_SECRETS = {
    "sevenbank-atm": [
        secret
        for secret in env.list("PAYOUT_WEBHOOK_SECRET_SEVENBANK_ATM", default=["dev-only-sevenbank-atm-webhook-secret"])
        if secret
    ],
    "point-codes": [
        secret
        for secret in env.list("PAYOUT_WEBHOOK_SECRET_POINT_CODES", default=["dev-only-point-codes-webhook-secret"])
        if secret
    ],
}
PAYOUT_WEBHOOK_TOLERANCE_SECONDS = 5 * 60
# Where the provider simulators POST their signed callbacks (…/api/v1/webhooks/); empty: in process.
PAYOUT_PROVIDER_CALLBACK_URL = env.str("PAYOUT_PROVIDER_CALLBACK_URL", default="")

# Content-Security-Policy (Django's own middleware): same-origin scripts, styles, images and forms only;
# no inline script or style. An unavoidable inline <script>/<style> carries nonce="{{ csp_nonce }}".
SECURE_CSP = {
    "default-src": [CSP.NONE],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}
