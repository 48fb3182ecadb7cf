"""The sweep: the database says what is due; the sweep sends it again; a real worker issues each once."""

import datetime as dt
import time

import pytest
import redis
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from claims.models import ClaimStatus
from payouts.models import Payout, PayoutNotice, PayoutStatus, PayoutTransition, SimulatorIssuance
from payouts.services import payout_issue, payouts_create_for_approved_claims
from payouts.tasks import payout_issue_task, payouts_sweep, payouts_sweep_enqueue
from tests.core.test_celery_worker import celery_worker_process  # noqa: F401 - fixture
from tests.payouts.conftest import approved_claim, make_program


def _age(payout: Payout, minutes: int = 5) -> None:
    Payout.objects.filter(pk=payout.pk).update(updated_at=timezone.now() - dt.timedelta(minutes=minutes))


@pytest.mark.django_db
def test_the_sweep_sends_only_created_payouts_that_are_due(django_capture_on_commit_callbacks):
    program = make_program()
    for method in ("atm_cash", "points:amazon", "atm_cash", "bank_transfer", "atm_cash", "atm_cash"):
        approved_claim(program, payout_method=method)
    payouts_create_for_approved_claims(program=program, actor=None)
    due_atm, due_points, issued, transfer, recent, unapproved = Payout.objects.order_by("pk")
    payout_issue(payout_id=issued.pk)
    unapproved.claim.status = ClaimStatus.NEEDS_REREVIEW
    unapproved.claim.save(update_fields=["status"])
    for payout in (due_atm, due_points, issued, transfer, unapproved):
        _age(payout)

    # Older than a minute: the two due payouts only (not issued, not bank transfer, not recent, not unapproved)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        sent = payouts_sweep_enqueue()
    assert sent == [due_atm.pk, due_points.pk]
    assert [(cb.func, cb.args) for cb in callbacks] == [
        (payout_issue_task.delay, (due_atm.pk,)),
        (payout_issue_task.delay, (due_points.pk,)),
    ]

    # Everything created, whatever its age
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert payouts_sweep_enqueue(min_age=dt.timedelta(0)) == [due_atm.pk, due_points.pk, recent.pk]
    assert [cb.args for cb in callbacks] == [(due_atm.pk,), (due_points.pk,), (recent.pk,)]

    # Nothing changed in the database
    assert Payout.objects.filter(status=PayoutStatus.CREATED).count() == 5


@pytest.mark.django_db(transaction=True)
def test_the_sweep_sends_one_message_per_due_payout_to_the_broker():
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    program = make_program()
    for _ in range(3):
        approved_claim(program)
    payouts_create_for_approved_claims(program=program, actor=None)

    assert payouts_sweep.apply(kwargs={"min_age_seconds": 0}).get() == 3
    assert broker.llen("celery") == 3
    assert payouts_sweep.apply().get() == 0  # none older than a minute
    assert broker.llen("celery") == 3
    broker.delete("celery")


@pytest.mark.django_db
def test_the_sweep_runs_every_minute_from_beat():
    task = PeriodicTask.objects.get(name="Payout sweep")
    assert (task.task, task.enabled, task.interval.every, task.interval.period) == ("payouts.sweep", True, 1, "minutes")


@pytest.mark.worker
def test_a_real_worker_issues_every_swept_payout_exactly_once(celery_worker_process):  # noqa: F811
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")
    program = make_program()
    methods = ["atm_cash", "points:amazon", "points:paypay", "atm_cash", "atm_cash", "points:amazon"]
    for method in methods:
        approved_claim(program, payout_method=method)
    assert payouts_create_for_approved_claims(program=program, actor=None) == len(methods)

    # The sweep runs twice before the worker catches up: every payout is sent twice
    assert len(payouts_sweep_enqueue(min_age=dt.timedelta(0))) == len(methods)
    assert len(payouts_sweep_enqueue(min_age=dt.timedelta(0))) <= len(methods)

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and Payout.objects.filter(status=PayoutStatus.CREATED).exists():
        assert celery_worker_process.poll() is None, celery_worker_process.stdout.read()
        time.sleep(0.2)
    # Let the duplicate messages drain too
    while time.monotonic() < deadline and broker.llen("celery"):
        time.sleep(0.2)
    time.sleep(1)

    # The notice sender ran after each issue: every payout notified once through the outbox
    while time.monotonic() < deadline and Payout.objects.filter(status=PayoutStatus.ISSUED).exists():
        time.sleep(0.2)
    payouts = list(Payout.objects.order_by("pk"))
    assert [p.status for p in payouts] == [PayoutStatus.NOTIFIED] * len(methods)
    assert sorted(PayoutNotice.objects.values_list("payout_id", "kind", "sequence", "status")) == [
        (p.pk, "issued", 1, "sent") for p in payouts
    ]
    assert [p.attempts for p in payouts] == [1] * len(methods)
    assert sorted(SimulatorIssuance.objects.values_list("idempotency_key", "requests")) == sorted(
        (p.idempotency_key, 1) for p in payouts
    )
    assert PayoutTransition.objects.filter(status_after=PayoutStatus.ISSUED).count() == len(methods)
    for payout in payouts:
        secret = payout.secret.reveal()
        assert (secret.code if payout.method == "atm_cash" else secret.url) != ""
