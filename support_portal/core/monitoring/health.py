"""The checks behind `/healthz` (the process answers) and `/readyz` (it can do its work).

`/readyz` is ready when: the database answers, every migration on disk is applied, Redis answers (when
REDIS_URL is set), the newest worker heartbeat (written by the `core.heartbeat` task that beat sends
every minute, so it proves beat, broker and a worker) is younger than HEALTH_HEARTBEAT_MAX_AGE_MINUTES,
and no sweep with an enabled schedule is overdue (last run older than HEALTH_SWEEP_OVERDUE_MINUTES).
Reasons name checks, counts and task names only: never an address, a user or personal data.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Max
from django.utils import timezone

from support_portal.core.monitoring.tasks import redis_client

type MigrationKey = tuple[str, str]


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    reason: str = ""


@functools.cache
def _migrations_on_disk() -> tuple[frozenset[MigrationKey], dict[MigrationKey, frozenset[MigrationKey]]]:
    """Every migration of the code base (read once per process) and what each squashed one replaces."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    replacements = {key: frozenset(migration.replaces) for key, migration in loader.replacements.items()}
    return frozenset(loader.graph.nodes), replacements


def migrations_unapplied() -> list[str]:
    """'app.name' of the migrations on disk that the database has not recorded (one small query)."""
    expected, replacements = _migrations_on_disk()
    applied = set(MigrationRecorder.Migration.objects.values_list("app", "name"))
    missing = [
        key for key in expected if key not in applied and not (key in replacements and replacements[key] <= applied)
    ]
    return sorted(f"{app}.{name}" for app, name in missing)


def _database() -> CheckResult:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return CheckResult("database", False, f"database unreachable ({type(exc).__name__})")
    return CheckResult("database", True)


def _migrations() -> CheckResult:
    missing = migrations_unapplied()
    if missing:
        shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
        return CheckResult("migrations", False, f"{len(missing)} migration(s) not applied: {shown}")
    return CheckResult("migrations", True)


def _redis() -> CheckResult:
    client = redis_client()
    if client is None:
        return CheckResult("redis", True, "not configured")
    try:
        client.ping()
    except redis.RedisError as exc:
        return CheckResult("redis", False, f"Redis unreachable ({type(exc).__name__})")
    return CheckResult("redis", True)


def heartbeat_age(now: dt.datetime) -> dt.timedelta | None:
    from support_portal.core.models import WorkerHeartbeat  # noqa: PLC0415 - app registry

    newest = WorkerHeartbeat.objects.aggregate(newest=Max("seen_at"))["newest"]
    return None if newest is None else now - newest


def _heartbeat(now: dt.datetime) -> CheckResult:
    limit = settings.HEALTH_HEARTBEAT_MAX_AGE_MINUTES
    age = heartbeat_age(now)
    if age is None:
        return CheckResult("heartbeat", False, "no worker heartbeat yet (are beat and a worker running?)")
    if age > dt.timedelta(minutes=limit):
        minutes = int(age.total_seconds() // 60)
        return CheckResult("heartbeat", False, f"newest worker heartbeat is {minutes} min old (limit {limit} min)")
    return CheckResult("heartbeat", True)


def sweeps_overdue(now: dt.datetime) -> list[str]:
    """Task names of sweeps whose beat schedule is enabled and whose last run is older than the limit."""
    from django_celery_beat.models import PeriodicTask  # noqa: PLC0415 - app registry

    from support_portal.core.models import SweepRun  # noqa: PLC0415

    limit = now - dt.timedelta(minutes=settings.HEALTH_SWEEP_OVERDUE_MINUTES)
    enabled = PeriodicTask.objects.filter(enabled=True).values("task")
    return sorted(SweepRun.objects.filter(last_run_at__lt=limit, sweep__in=enabled).values_list("sweep", flat=True))


def _sweeps(now: dt.datetime) -> CheckResult:
    overdue = sweeps_overdue(now)
    if overdue:
        limit = settings.HEALTH_SWEEP_OVERDUE_MINUTES
        return CheckResult("sweeps", False, f"sweep(s) overdue (no run for {limit} min): {', '.join(overdue)}")
    return CheckResult("sweeps", True)


def readiness_checks(now: dt.datetime | None = None) -> list[CheckResult]:
    """Every readiness check in order; with the database down, the checks that need it are not run."""
    now = now or timezone.now()
    database = _database()
    if not database.ok:
        return [database, _redis()]
    try:
        migrations = _migrations()
        if not migrations.ok:  # the tables the next checks read may not exist yet
            return [database, migrations, _redis()]
        return [database, migrations, _redis(), _heartbeat(now), _sweeps(now)]
    except DatabaseError as exc:
        return [database, CheckResult("schema", False, f"database query failed ({type(exc).__name__})"), _redis()]
