"""Exactly-once under concurrency and crashes, on real PostgreSQL, Redis and Celery worker processes.

Each test ends with exactly one payout and one notice per claim, counted in the database: payouts,
provider issuances (SimulatorIssuance: one row per key, `requests` = how often the provider was asked),
outbox rows, SMS gateway rows (SimulatedSms, UNIQUE message key) and the emails the workers wrote
(filebased backend: one Message-ID per notice — a re-send after a crash repeats the same Message-ID).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connections

from claims.models import ClaimStatus
from claims.review import ClaimDecisionRefused
from payouts.batches import payout_batch_create, payout_batch_start
from payouts.models import (
    BatchStatus,
    NoticeChannel,
    Payout,
    PayoutBatch,
    PayoutNotice,
    PayoutStatus,
    SimulatedSms,
    SimulatorIssuance,
)
from payouts.services import claim_approve_and_pay, payouts_create_for_approved_claims
from payouts.tasks import payout_batch_run_task, payout_issue_task, payout_notices_send_task, payouts_sweep
from tests.core.test_celery_worker import ROOT, _database_url_of_test_db
from tests.factories import UserFactory
from tests.payouts.conftest import bulk_claims, make_program

pytestmark = pytest.mark.worker

TIMEOUT = 60


class Workers:
    """Celery worker subprocesses (solo pool) on the test Redis and the test database."""

    def __init__(self, mail_dir: Path) -> None:
        self.mail_dir = mail_dir
        self.processes: list[subprocess.Popen[str]] = []

    def start(self, name: str) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url_of_test_db(),
            "DJANGO_SETTINGS_MODULE": "tests.payouts.worker_settings",
            "PAYOUT_TEST_MAIL_DIR": str(self.mail_dir),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "support_portal",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
                "--without-heartbeat",
                "--without-mingle",
                "--without-gossip",
                f"--hostname={name}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def workers(transactional_db, tmp_path: Path) -> Iterator[Workers]:
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.flushdb()
    pool = Workers(tmp_path / "mail")
    pool.mail_dir.mkdir()
    yield pool
    pool.stop()
    broker.flushdb()


def wait_until(
    condition: Callable[[], bool], *, timeout: float = TIMEOUT, every: Callable[[], object] | None = None
) -> None:
    """Polls `condition`; calls `every` (e.g. the beat's sweep) at most every 2 seconds meanwhile."""
    deadline = time.monotonic() + timeout
    last_every = 0.0
    while time.monotonic() < deadline:
        if condition():
            return
        if every is not None and time.monotonic() - last_every >= 2:
            every()
            last_every = time.monotonic()
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {condition.__name__}")


def email_message_ids(mail_dir: Path) -> Counter[str]:
    ids: Counter[str] = Counter()
    for path in mail_dir.iterdir():
        ids.update(re.findall(r"^Message-ID: (<payout-notice-\d+@[^>]+>)$", path.read_text(), flags=re.MULTILINE))
    return ids


def all_notified() -> bool:
    return not Payout.objects.exclude(status=PayoutStatus.NOTIFIED).exists() and not (
        PayoutNotice.objects.filter(status="pending").exists()
    )


def assert_exactly_once(claims: list, mail_dir: Path) -> None:
    """One payout, one provider issuance and one notice per claim, each delivered once."""
    claim_ids = sorted(claim.pk for claim in claims)
    payouts = list(Payout.objects.order_by("claim_id"))
    assert [p.claim_id for p in payouts] == claim_ids
    assert {p.status for p in payouts} == {PayoutStatus.NOTIFIED}
    assert SimulatorIssuance.objects.count() == len(claims)
    assert set(SimulatorIssuance.objects.values_list("idempotency_key", flat=True)) == {
        p.idempotency_key for p in payouts
    }
    notices = list(PayoutNotice.objects.order_by("payout__claim_id"))
    assert [n.payout.claim_id for n in notices] == claim_ids
    assert {(n.kind, n.sequence, n.status) for n in notices} == {("issued", 1, "sent")}
    email_notices = {n.message_id for n in notices if n.channel == NoticeChannel.EMAIL}
    sms_notices = [n for n in notices if n.channel == NoticeChannel.SMS]
    assert len(email_notices) + len(sms_notices) == len(claims)
    assert set(email_message_ids(mail_dir)) == email_notices  # every email notice written, none extra
    assert sorted(SimulatedSms.objects.values_list("message_key", flat=True)) == sorted(
        f"payout-notice-{n.pk}" for n in sms_notices
    )


def test_two_workers_run_the_same_batch_at_once(workers: Workers):
    # Given 600 approved claims and a batch built from them
    program = make_program()
    claims = bulk_claims(program, 600)
    batch = payout_batch_create(program=program, actor=None)
    assert batch.total_count == 600
    workers.start("w1")
    workers.start("w2")

    # When the batch is started and its run task is sent a second time, so both workers run it
    payout_batch_start(batch=batch, actor=UserFactory.create())
    payout_batch_run_task.delay(batch.pk)

    # Then it completes with every payout issued once and every notice sent once
    wait_until(lambda: PayoutBatch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED)
    wait_until(all_notified)
    batch.refresh_from_db()
    assert (batch.total_count, batch.issued_count, batch.failed_count) == (600, 600, 0)
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True).distinct()) == [1]
    assert_exactly_once(claims, workers.mail_dir)
    assert max(email_message_ids(workers.mail_dir).values()) == 1  # no crash: no email sent twice
    assert list(SimulatedSms.objects.values_list("requests", flat=True).distinct()) == [1]


def test_a_worker_killed_mid_batch_is_finished_by_another(workers: Workers):
    # Given 1,200 approved claims in a running batch, worked by one worker
    program = make_program()
    claims = bulk_claims(program, 1200)
    batch = payout_batch_create(program=program, actor=None, start=True)
    first = workers.start("doomed")

    # When that worker is SIGKILLed in the middle of the batch
    wait_until(lambda: PayoutBatch.objects.get(pk=batch.pk).issued_count >= 200, timeout=TIMEOUT)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    batch.refresh_from_db()
    assert 0 < batch.issued_count < 1200, "the worker must die mid-batch"

    # And another worker is there, and the sweep finds the stalled batch and the waiting notices
    workers.start("survivor")
    sweep = lambda: payouts_sweep.delay(min_age_seconds=0, batch_stall_seconds=2)  # noqa: E731
    sweep()

    # Then the batch completes and each claim has exactly one payout and one notice
    wait_until(lambda: PayoutBatch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED, every=sweep)
    wait_until(all_notified, every=sweep)
    batch.refresh_from_db()
    assert (batch.issued_count, batch.failed_count) == (1200, 0)
    assert_exactly_once(claims, workers.mail_dir)
    # The chunk in flight when the worker died rolled back; the provider simulator's issuance rolled back
    # with it (a real provider would keep it and answer the repeat with the same code: same key).
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True).distinct()) == [1]


def test_tasks_delivered_twice_issue_and_notify_once(workers: Workers):
    # Given 300 payouts outside any batch and a batch of 300 more
    program = make_program()
    single = bulk_claims(program, 300)
    payouts_create_for_approved_claims(program=program, actor=None)
    batched = bulk_claims(program, 300)
    batch = payout_batch_create(program=program, actor=None)
    batch.status = BatchStatus.RUNNING
    batch.save(update_fields=["status"])

    # When every task message is delivered twice before a worker runs
    for payout_id in Payout.objects.filter(batch=None).values_list("pk", flat=True):
        payout_issue_task.delay(payout_id)
        payout_issue_task.delay(payout_id)
    payout_batch_run_task.delay(batch.pk)
    payout_batch_run_task.delay(batch.pk)
    payout_notices_send_task.delay()
    payout_notices_send_task.delay()
    workers.start("w1")

    # Then every payout is issued once and notified once
    wait_until(all_notified)
    assert PayoutBatch.objects.get(pk=batch.pk).status == BatchStatus.COMPLETED
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True).distinct()) == [1]
    assert_exactly_once(single + batched, workers.mail_dir)
    assert max(email_message_ids(workers.mail_dir).values()) == 1


def test_approve_and_pay_pressed_twice_pays_once(workers: Workers):
    # Given 200 claims waiting for review and a reviewer
    program = make_program()
    claims = bulk_claims(program, 200, status=ClaimStatus.PENDING_REVIEW)
    reviewer = UserFactory.create(username="reviewer-double-click")
    workers.start("w1")
    barrier = threading.Barrier(2)
    outcomes: list[tuple[str, int]] = []
    errors: list[BaseException] = []

    def press() -> None:
        try:
            barrier.wait(timeout=10)
            for claim in claims:
                try:
                    claim_approve_and_pay(claim=claim, actor=reviewer)
                    outcomes.append(("paid", claim.pk))
                except ClaimDecisionRefused as exc:
                    outcomes.append((exc.code, claim.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    # When the reviewer's "approve and pay" runs twice at the same time for every claim
    threads = [threading.Thread(target=press) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)

    # Then one press per claim paid and the other was refused, and the worker issued and notified once
    assert errors == []
    assert Counter(code for code, _ in outcomes) == {"paid": 200, "status_not_allowed": 200}
    assert sorted(pk for code, pk in outcomes if code == "paid") == sorted(c.pk for c in claims)
    wait_until(all_notified)
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True).distinct()) == [1]
    assert_exactly_once(claims, workers.mail_dir)
    assert max(email_message_ids(workers.mail_dir).values()) == 1
