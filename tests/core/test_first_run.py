"""The zero-config first run (SQLite, filesystem broker): migrate, demo users, every role signs in.

The rest of the suite runs on PostgreSQL; this guards the embedded defaults `make run` starts with.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SIGN_IN_EVERY_ROLE = """
from django.test import Client
from support_portal.core.demo_users import DEMO_PASSWORD
for role in ("agent", "reviewer", "manager", "finance", "admin"):
    client = Client()
    response = client.post("/admin/login/?next=/admin/", {"username": role, "password": DEMO_PASSWORD})
    index = client.get("/admin/")
    print(role, response.status_code, response.headers.get("Location"), index.status_code)
"""


def _manage(*args: str, database: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}},
        "DJANGO_SETTINGS_MODULE": "support_portal.settings.base",
        "DATABASE_URL": f"sqlite:///{database}",
        "DJANGO_ALLOWED_HOSTS": "testserver",
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_first_run_on_sqlite_every_demo_role_signs_in(tmp_path):
    database = tmp_path / "first-run.sqlite3"
    migrated = _manage("migrate", "--noinput", "-v", "0", database=database)
    assert migrated.returncode == 0, migrated.stderr
    users = _manage("create_demo_users", database=database)
    assert users.returncode == 0, users.stderr

    signed_in = _manage("shell", "-v", "0", "-c", SIGN_IN_EVERY_ROLE, database=database)

    assert signed_in.returncode == 0, signed_in.stderr
    assert signed_in.stdout.splitlines() == [
        f"{role} 302 /admin/ 200" for role in ("agent", "reviewer", "manager", "finance", "admin")
    ]


def test_program_dry_run_on_sqlite_refuses_clearly_and_writes_nothing(tmp_path):
    database = tmp_path / "first-run.sqlite3"
    assert _manage("migrate", "--noinput", "-v", "0", database=database).returncode == 0
    out = tmp_path / "preview.csv"

    result = _manage("program_dry_run", "login-outage-2024", "--out", str(out), database=database)

    assert result.returncode == 1
    assert "program previews and runs need PostgreSQL: set DATABASE_URL=postgres://" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
