"""A real Celery worker process, on the test Redis, writes to the test PostgreSQL database."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

from support_portal.core.enqueue import enqueue_on_commit
from support_portal.core.models import WorkerHeartbeat
from support_portal.core.tasks import heartbeat

ROOT = Path(__file__).resolve().parents[2]


def _database_url_of_test_db() -> str:
    db = connection.settings_dict
    user = db["USER"] or "postgres"
    auth = f"{user}:{db['PASSWORD']}@" if db["PASSWORD"] else f"{user}@"
    return f"postgres://{auth}{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def celery_worker_process(transactional_db):
    env = {
        **os.environ,
        "DATABASE_URL": _database_url_of_test_db(),
        "DJANGO_SETTINGS_MODULE": "support_portal.settings.test",
    }
    worker = subprocess.Popen(
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
            "--hostname=test-worker@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.mark.worker
def test_real_worker_consumes_task_from_redis_and_writes_to_postgres(celery_worker_process):
    # Given a worker process on the throwaway Redis and no heartbeat recorded
    assert settings.CELERY_BROKER_URL.startswith("redis://")
    assert WorkerHeartbeat.objects.count() == 0

    # When a task is enqueued after commit (autocommit here, so it is sent at once)
    enqueue_on_commit(heartbeat, "worker-under-test")

    # Then the worker's effect appears in the database, exactly once
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not WorkerHeartbeat.objects.exists():
        assert celery_worker_process.poll() is None, celery_worker_process.stdout.read()
        time.sleep(0.2)
    assert list(WorkerHeartbeat.objects.values_list("hostname", flat=True)) == ["worker-under-test"]


@pytest.mark.django_db(transaction=True)
def test_task_enqueued_in_rolled_back_transaction_is_never_sent():
    # Given an empty broker queue
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete("celery")

    # When the transaction that asked for the task rolls back
    with pytest.raises(RuntimeError), transaction.atomic():
        enqueue_on_commit(heartbeat, "never")
        raise RuntimeError("rolled back")

    # Then no message reached the broker, and nothing was written
    assert broker.llen("celery") == 0
    assert WorkerHeartbeat.objects.count() == 0

    # While the same call in a committed transaction sends exactly one message
    with transaction.atomic():
        enqueue_on_commit(heartbeat, "sent")
    assert broker.llen("celery") == 1
    broker.delete("celery")
