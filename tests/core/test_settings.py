"""Production settings: refuse to start without secrets, and pass Django's deployment checklist."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "support_portal.settings.production",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "backoffice.example.jp",
    "DATABASE_URL": "postgres://portal:secret@db.internal:5432/portal",
    "DJANGO_ADMIN_URL": "ops-7f3a/",
    "PAYOUT_ENCRYPTION_KEY": "x6rn9mV0M0r0mbmqV8Sg2yLqNn7m4k0oJg0gYz6o9bE=",
    "METRICS_TOKEN": secrets.token_urlsafe(32),
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    "missing", ["DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DATABASE_URL", "PAYOUT_ENCRYPTION_KEY"]
)
def test_production_refuses_to_start_without_each_secret(missing):
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert f"Production settings need these environment variables: {missing}" in result.stderr


def test_production_refuses_sqlite_and_weak_secret_key():
    sqlite = _manage("check", env={**PRODUCTION_ENV, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"})
    assert sqlite.returncode != 0
    assert "Production runs on PostgreSQL" in sqlite.stderr
    weak = _manage("check", env={**PRODUCTION_ENV, "DJANGO_SECRET_KEY": "short"})
    assert weak.returncode != 0
    assert "DJANGO_SECRET_KEY must be a random value" in weak.stderr


def test_admin_url_comes_from_the_environment():
    script = "from django.urls import reverse; print(reverse('admin:index'))"
    result = _manage("shell", "-v", "0", "-c", script, env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "/ops-7f3a/"


def test_first_run_defaults_are_embedded(tmp_path):
    # With nothing set: SQLite in the project folder and a broker that needs no server.
    script = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.DATABASES['default']['NAME'], s.CELERY_BROKER_URL)"
    )
    result = _manage(
        "shell",
        "-v",
        "0",
        "-c",
        script,
        env={"DJANGO_SETTINGS_MODULE": "support_portal.settings.base", "REDIS_URL": ""},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", str(ROOT / "db.sqlite3"), "filesystem://"]
