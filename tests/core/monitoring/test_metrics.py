"""/metrics: protected by a bearer token or an allow-list, exact figures for a known data set."""

import datetime as dt

import pytest
from celery import shared_task
from django.utils import timezone
from prometheus_client import REGISTRY, Counter
from prometheus_client.parser import text_string_to_metric_families

from claims.models import ClaimStatus
from payouts.models import PayoutNotice
from payouts.services import payout_issue, payouts_create_for_approved_claims
from support_portal.core.models import ImportRun
from support_portal.core.monitoring.tasks import HASH_KEY, redis_client
from support_portal.core.services import sweep_run_record, worker_heartbeat_record
from support_portal.core.tasks import heartbeat
from tests.claims.factories import ClaimFactory
from tests.factories import CustomerFactory
from tests.payouts.conftest import approved_claim, make_program

TOKEN = "t0ken-for-tests-0123456789abcdefghijkl"
NOW = dt.datetime(2026, 12, 6, 3, 0, tzinfo=dt.UTC)


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}", **headers)
    assert response.status_code == 200, response.content
    samples: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def portal(samples: dict, prefix: str) -> dict[tuple[str, frozenset], float]:
    return {key: value for key, value in samples.items() if key[0].startswith(prefix)}


@shared_task(name="tests.monitoring.boom")
def boom() -> None:
    raise ValueError("boom")


@shared_task(name="tests.monitoring.flaky", bind=True, max_retries=1)
def flaky(self) -> None:
    raise self.retry(countdown=0, exc=OSError("flaky"))


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("configured", "header", "remote", "status"),
    [
        ({}, f"Bearer {TOKEN}", "127.0.0.1", 404),  # nothing configured: no endpoint
        ({"METRICS_TOKEN": TOKEN}, "", "127.0.0.1", 403),
        ({"METRICS_TOKEN": TOKEN}, "Bearer wrong", "127.0.0.1", 403),
        ({"METRICS_TOKEN": TOKEN}, f"Basic {TOKEN}", "127.0.0.1", 403),
        ({"METRICS_TOKEN": TOKEN}, f"Bearer {TOKEN}", "127.0.0.1", 200),
        ({"METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"]}, "", "127.0.0.1", 403),
        ({"METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"]}, "", "10.1.2.3", 200),
        ({"METRICS_TOKEN": TOKEN, "METRICS_ALLOWED_NETWORKS": ["10.0.0.0/8"]}, f"Bearer {TOKEN}", "127.0.0.1", 403),
    ],
)
def test_metrics_needs_the_token_or_an_allowed_address(client, settings, configured, header, remote, status):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = []
    for name, value in configured.items():
        setattr(settings, name, value)

    response = client.get("/metrics", HTTP_AUTHORIZATION=header, REMOTE_ADDR=remote)

    assert response.status_code == status
    if status != 200:
        assert b"portal_" not in response.content


@pytest.mark.django_db
def test_metrics_show_exact_figures_for_a_known_data_set(client, settings, monkeypatch):
    settings.METRICS_TOKEN = TOKEN
    redis = redis_client()
    assert redis is not None
    redis.delete(HASH_KEY)
    # Given one program with: 2 claims pending review, 1 awaiting a second approval, 1 computed (not waiting)
    program = make_program(slug="outage-2026")
    for hours in (5, 2):
        ClaimFactory.create(program=program, computed_at=NOW - dt.timedelta(hours=hours))
    ClaimFactory.create(
        program=program, status=ClaimStatus.AWAITING_SECOND_APPROVAL, computed_at=NOW - dt.timedelta(hours=1)
    )
    ClaimFactory.create(program=program, status=ClaimStatus.COMPUTED, computed_at=NOW - dt.timedelta(days=9))
    # three approved claims with payouts: one issued (its notice is pending), two still to issue
    for _ in range(3):
        approved_claim(program, payee=CustomerFactory.create(email="payee@example.jp"))
    payouts_create_for_approved_claims(program=program, actor=None)
    first = program.payouts.order_by("pk")[0]
    payout_issue(payout_id=first.pk)
    PayoutNotice.objects.update(created_at=NOW - dt.timedelta(minutes=3))
    program.payouts.exclude(pk=first.pk).update(updated_at=NOW - dt.timedelta(minutes=4))
    # two import runs (one refused with 3 bad rows), a sweep that ran twice, a worker heartbeat
    ImportRun.objects.create(source="command", file_name="customers.csv", sha256="a" * 64, status="succeeded")
    ImportRun.objects.create(
        source="command", file_name="charges.csv", sha256="b" * 64, status="rejected", error_count=3
    )
    ImportRun.objects.update(finished_at=NOW - dt.timedelta(hours=1))
    sweep_run_record(sweep="payouts.sweep", reenqueued=4, ran_at=NOW - dt.timedelta(minutes=2))
    sweep_run_record(sweep="payouts.sweep", reenqueued=1, ran_at=NOW - dt.timedelta(minutes=1))
    worker_heartbeat_record(hostname="worker-1", seen_at=NOW - dt.timedelta(seconds=30))
    # and task outcomes counted through the Celery signals: 2 successes, 1 failure, 1 retry then a failure
    heartbeat.apply(kwargs={"hostname": "worker-1"})
    heartbeat.apply(kwargs={"hostname": "worker-1"})
    boom.apply()
    flaky.apply()
    worker_heartbeat_record(hostname="worker-1", seen_at=NOW - dt.timedelta(seconds=30))

    # When Prometheus scrapes at NOW
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    samples = scrape(client)

    # Then every figure is exact
    def labels(**kw):
        return frozenset(kw.items())

    assert portal(samples, "portal_claims") == {
        ("portal_claims_awaiting_review", labels(program="outage-2026", status="pending_review")): 2.0,
        ("portal_claims_awaiting_review", labels(program="outage-2026", status="awaiting_second_approval")): 1.0,
        (
            "portal_claims_awaiting_review_oldest_age_seconds",
            labels(program="outage-2026", status="pending_review"),
        ): 5 * 3600.0,
        (
            "portal_claims_awaiting_review_oldest_age_seconds",
            labels(program="outage-2026", status="awaiting_second_approval"),
        ): 3600.0,
    }
    assert portal(samples, "portal_payout") == {
        **{("portal_payouts", labels(status=s)): 0.0 for s in ("notified", "settled", "expired", "failed")},
        ("portal_payouts", labels(status="cancelled")): 0.0,
        ("portal_payouts", labels(status="created")): 2.0,
        ("portal_payouts", labels(status="issued")): 1.0,
        ("portal_payouts_to_issue", labels(batched="no")): 2.0,
        ("portal_payouts_to_issue", labels(batched="yes")): 0.0,
        ("portal_payouts_to_issue_oldest_age_seconds", labels()): 240.0,
        ("portal_payout_notices_pending", labels()): 1.0,
        ("portal_payout_notices_pending_oldest_age_seconds", labels()): 180.0,
        **{
            ("portal_payout_batches", labels(status=s)): 0.0
            for s in ("scheduled", "running", "paused", "completed", "cancelled")
        },
    }
    assert portal(samples, "portal_import") == {
        ("portal_import_runs", labels(status="running")): 0.0,
        ("portal_import_runs", labels(status="succeeded")): 1.0,
        ("portal_import_runs", labels(status="rejected")): 1.0,
        ("portal_import_runs", labels(status="failed")): 0.0,
        ("portal_import_row_errors", labels()): 3.0,
        ("portal_import_last_finished_timestamp_seconds", labels()): (NOW - dt.timedelta(hours=1)).timestamp(),
    }
    assert portal(samples, "portal_sweep") == {
        ("portal_sweep_last_run_timestamp_seconds", labels(sweep="payouts.sweep")): (
            NOW - dt.timedelta(minutes=1)
        ).timestamp(),
        ("portal_sweep_last_reenqueued", labels(sweep="payouts.sweep")): 1.0,
        ("portal_sweep_reenqueued_total", labels(sweep="payouts.sweep")): 5.0,
        ("portal_sweep_overdue", labels(sweep="payouts.sweep")): 0.0,
    }
    assert portal(samples, "portal_worker") == {
        ("portal_worker_heartbeat_age_seconds", labels(worker="worker-1")): 30.0
    }
    assert portal(samples, "portal_celery") == {
        ("portal_celery_tasks_total", labels(task="core.heartbeat", outcome="succeeded")): 2.0,
        ("portal_celery_tasks_total", labels(task="tests.monitoring.boom", outcome="failed")): 1.0,
        ("portal_celery_tasks_total", labels(task="tests.monitoring.flaky", outcome="retried")): 1.0,
        ("portal_celery_tasks_total", labels(task="tests.monitoring.flaky", outcome="failed")): 1.0,
    }
    assert samples[("portal_figures_provider_up", labels(provider="payouts"))] == 1.0
    assert samples[("portal_figure_estimated", labels(figure="portal_payouts"))] == 0.0


@pytest.mark.django_db
def test_request_latency_is_labelled_by_route_never_by_path(client, admin_user, settings):
    settings.METRICS_TOKEN = TOKEN
    client.force_login(admin_user)
    key = (
        "portal_http_request_duration_seconds_count",
        frozenset({"view": "admin:customers_customer_change", "method": "GET", "status": "4xx"}.items()),
    )
    before = scrape(client).get(key, 0.0)

    client.get("/admin/customers/customer/C12345678/change/")  # no such customer: 404
    after = scrape(client)

    assert after[key] == before + 1
    assert not [name for name, sample_labels in after if "C12345678" in str(sample_labels)]


@pytest.mark.django_db
def test_metrics_include_the_default_registry(client, settings):
    settings.METRICS_TOKEN = TOKEN
    counter = Counter("portal_test_enqueue_failures", "A counter another module registers", ["task"])
    try:
        counter.labels(task="payouts.issue").inc(2)
        samples = scrape(client)
    finally:
        REGISTRY.unregister(counter)

    assert samples[("portal_test_enqueue_failures_total", frozenset({"task": "payouts.issue"}.items()))] == 2.0
