"""A broker outage breaks nothing committed: approving claims with Redis unreachable commits every
approval, answers the agent normally, counts each failed enqueue, and the sweep sends the work later."""

from __future__ import annotations

import base64
import datetime as dt
import json
import socket
from collections import Counter
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group
from django.urls import reverse
from prometheus_client import REGISTRY

from claims.models import Claim, ClaimDecision, ClaimStatus
from payouts.models import Payout, PayoutStatus
from payouts.tasks import payouts_sweep_enqueue
from support_portal.celery import app as celery_app
from support_portal.core.roles import roles_sync
from tests.factories import UserFactory
from tests.payouts.conftest import bulk_claims, make_program


def enqueue_failures(task: str) -> float:
    """portal_enqueue_failures_total{task=…} on the default registry (what /metrics exposes)."""
    return REGISTRY.get_sample_value("portal_enqueue_failures_total", {"task": task}) or 0.0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _use_broker(url: str) -> None:
    # Celery builds its connection pools from the URL on first use: drop them so the next send reconnects.
    celery_app.conf["broker_url"] = url
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def broker_down(broker: redis.Redis) -> Iterator[None]:
    """The Celery broker pointed at a port nobody listens on, until the test brings it back."""
    working = celery_app.conf.broker_url
    _use_broker(f"redis://127.0.0.1:{closed_port()}/0")
    yield
    _use_broker(working)


def queued_tasks(client: redis.Redis) -> list[tuple[str, list[object]]]:
    """(task name, args) of every message waiting in the default queue."""
    out = []
    for raw in client.lrange("celery", 0, -1):
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


@pytest.mark.django_db(transaction=True)
def test_approving_100_claims_with_the_broker_down_commits_all_and_the_sweep_enqueues_them(
    client, broker, broker_down, caplog
):
    # Given 100 claims under review and a reviewer, and the broker unreachable
    roles_sync()
    program = make_program()
    claims = bulk_claims(program, 100, status=ClaimStatus.PENDING_REVIEW)
    reviewer = UserFactory.create(username="reviewer-outage")
    reviewer.groups.add(Group.objects.get(name="reviewer"))
    client.force_login(reviewer)
    failures_before = enqueue_failures("payouts.issue")
    caplog.set_level("WARNING", logger="support_portal.core.enqueue")

    # When the reviewer approves and pays all 100 in one admin action
    response = client.post(
        reverse("admin:claims_claim_changelist"),
        {"action": "approve_and_pay_claims", "_selected_action": [c.pk for c in claims]},
    )

    # Then the page answers normally (redirect back to the list), every approval and payout is committed
    assert response.status_code == 302
    assert Counter(Claim.objects.values_list("status", flat=True)) == {ClaimStatus.APPROVED: 100}
    assert ClaimDecision.objects.count() == 100
    payouts = list(Payout.objects.order_by("pk").values_list("pk", "status"))
    assert len(payouts) == 100 and {status for _, status in payouts} == {PayoutStatus.CREATED}
    # And each of the 100 enqueues that failed is counted once, logged without personal data
    assert enqueue_failures("payouts.issue") - failures_before == 100
    warnings = [r for r in caplog.records if r.name == "support_portal.core.enqueue"]
    assert len(warnings) == 100
    assert {(r.getMessage(), r.task, r.error) for r in warnings} == {
        ("task not enqueued: broker unavailable; the sweep will pick the work up", "payouts.issue", "OperationalError")
    }
    # And nothing reached the (real) broker
    assert broker.llen("celery") == 0

    # When the broker is back and the sweep runs
    _use_broker(settings.CELERY_BROKER_URL)
    swept = payouts_sweep_enqueue(min_age=dt.timedelta(0))

    # Then it sends one issue task per payout, and no more failures are counted
    assert swept == [pk for pk, _ in payouts]
    assert sorted(queued_tasks(broker)) == sorted(("payouts.issue", [pk]) for pk, _ in payouts)
    assert enqueue_failures("payouts.issue") - failures_before == 100
