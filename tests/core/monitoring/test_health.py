"""/healthz and /readyz: what a load balancer sees, with a JSON reason when not ready."""

import datetime as dt
import json

import pytest
from django.db import OperationalError
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from support_portal.core.models import SweepRun, WorkerHeartbeat
from support_portal.core.monitoring import health
from support_portal.core.services import sweep_run_record, worker_heartbeat_record


def _ready_state(now: dt.datetime) -> None:
    worker_heartbeat_record(hostname="worker-1", seen_at=now - dt.timedelta(seconds=30))
    for sweep in ("payouts.sweep", "identity.reset_sweep", "tickets.escalate_breaches"):
        sweep_run_record(sweep=sweep, reenqueued=0, ran_at=now - dt.timedelta(minutes=1))


def test_healthz_answers_without_the_database_or_a_session():
    # Given no database access at all (no django_db mark: pytest-django refuses every query)
    # When a probe with an unknown Host, plain HTTP and no cookie asks
    response = Client(HTTP_HOST="10.0.0.7").get("/healthz")

    # Then the process answers 200 with a small JSON body and nothing personal
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


@pytest.mark.django_db
def test_readyz_is_200_when_everything_is_ready(client, django_assert_max_num_queries):
    _ready_state(timezone.now())

    with django_assert_max_num_queries(4):
        response = client.get("/readyz", HTTP_HOST="10.0.0.7")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "redis": "ok", "heartbeat": "ok", "sweeps": "ok"},
    }


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_is_down(client, monkeypatch):
    class DownConnection:
        def cursor(self):
            raise OperationalError("connection to server at 10.1.2.3 failed: password for user portal")

    monkeypatch.setattr(health, "connection", DownConnection())

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"] == {"database": "failed", "redis": "ok"}
    assert body["reason"] == "database unreachable (OperationalError)"
    assert "10.1.2.3" not in response.content.decode() and "portal" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_is_503_when_a_migration_is_not_applied(client):
    _ready_state(timezone.now())
    MigrationRecorder.Migration.objects.filter(app="core", name="0010_monitoring").delete()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "failed", "redis": "ok"}
    assert response.json()["reason"] == "1 migration(s) not applied: core.0010_monitoring"


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_down(client, settings):
    _ready_state(timezone.now())
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "failed"
    assert response.json()["reason"] == "Redis unreachable (ConnectionError)"
    assert [name for name, state in response.json()["checks"].items() if state == "failed"] == ["redis"]


@pytest.mark.django_db
def test_readyz_is_503_when_the_heartbeat_is_stale_or_missing(client, settings):
    now = timezone.now()
    _ready_state(now)
    settings.HEALTH_HEARTBEAT_MAX_AGE_MINUTES = 5
    WorkerHeartbeat.objects.update(seen_at=now - dt.timedelta(minutes=7))

    stale = client.get("/readyz")
    WorkerHeartbeat.objects.all().delete()
    missing = client.get("/readyz")

    assert stale.status_code == 503
    assert stale.json()["checks"]["heartbeat"] == "failed"
    assert stale.json()["reason"] == "newest worker heartbeat is 7 min old (limit 5 min)"
    assert missing.status_code == 503
    assert missing.json()["reason"] == "no worker heartbeat yet (are beat and a worker running?)"


@pytest.mark.django_db
def test_readyz_is_503_when_an_enabled_sweep_is_overdue_and_not_when_its_schedule_is_off(client, settings):
    now = timezone.now()
    _ready_state(now)
    settings.HEALTH_SWEEP_OVERDUE_MINUTES = 10
    SweepRun.objects.filter(sweep="payouts.sweep").update(last_run_at=now - dt.timedelta(minutes=11))

    overdue = client.get("/readyz")
    PeriodicTask.objects.filter(task="payouts.sweep").update(enabled=False)
    disabled = client.get("/readyz")

    assert overdue.status_code == 503
    assert overdue.json()["checks"]["sweeps"] == "failed"
    assert overdue.json()["reason"] == "sweep(s) overdue (no run for 10 min): payouts.sweep"
    assert disabled.status_code == 200


@pytest.mark.django_db
def test_monitoring_endpoints_skip_sign_in_two_factor_and_the_https_redirect(client, settings, django_user_model):
    # Given production's HTTPS redirect and 2FA, and a signed-in user who has not passed the second factor
    settings.SECURE_SSL_REDIRECT = True
    settings.REQUIRE_2FA = True
    _ready_state(timezone.now())
    user = django_user_model.objects.create_user("half-signed-in", password="x" * 16, is_staff=True)
    client.force_login(user)

    # When the probes ask over plain HTTP
    healthz, readyz = client.get("/healthz"), client.get("/readyz")
    admin = client.get("/admin/")

    # Then they answer, while everything else is redirected
    assert (healthz.status_code, readyz.status_code) == (200, 200)
    assert admin.status_code == 301


def test_request_ids_are_accepted_when_safe_and_replaced_otherwise():
    client = Client()

    kept = client.get("/healthz", HTTP_X_REQUEST_ID="lb-3f2a9c1d-0001")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID='bad id"\n{injected}')
    generated = client.get("/healthz")

    assert kept["X-Request-ID"] == "lb-3f2a9c1d-0001"
    assert len(replaced["X-Request-ID"]) == 32 and replaced["X-Request-ID"].isalnum()
    assert len(generated["X-Request-ID"]) == 32
    assert json.loads(kept.content) == {"status": "ok"}
