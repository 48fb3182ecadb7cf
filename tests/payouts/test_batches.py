"""Payout batches: built set-based, run in chunks, resumable, pausable and cancellable; admin screens."""

import datetime as dt
import re
import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from claims.models import ClaimStatus
from payouts.batches import (
    BatchRefused,
    payout_batch_cancel,
    payout_batch_create,
    payout_batch_pause,
    payout_batch_process_chunk,
    payout_batch_run,
    payout_batch_start,
    payout_batches_build_scheduled,
)
from payouts.models import (
    BatchStatus,
    Payout,
    PayoutBatch,
    PayoutBatchTransition,
    PayoutNotice,
    PayoutSecret,
    PayoutStatus,
    PayoutTransition,
    SimulatorIssuance,
)
from payouts.tasks import batches_sweep_enqueue, payout_batch_run_task
from support_portal.core.roles import roles_sync
from tests.factories import UserFactory
from tests.payouts.conftest import approved_claim, bulk_claims, make_program


def finance(username: str = "finance-1"):
    roles_sync()
    user = UserFactory.create(username=username)
    user.groups.add(Group.objects.get(name="finance"))
    return user


@pytest.mark.django_db
def test_a_batch_is_built_with_one_insert_select(django_capture_on_commit_callbacks):
    # Given 30 approved claims of the program, 1 of another program and 1 pending claim
    program = make_program()
    bulk_claims(program, 30)
    approved_claim(make_program())
    approved_claim(program, status=ClaimStatus.PENDING_REVIEW, approved_amount_jpy=None)
    actor = finance()

    # When finance builds a batch (not started)
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False) as cbs:
        batch = payout_batch_create(program=program, actor=actor)

    # Then the 30 payouts exist in the batch, written by one INSERT … SELECT, and no task was sent
    assert (batch.status, batch.total_count, batch.created_by) == (BatchStatus.SCHEDULED, 30, actor)
    assert Payout.objects.filter(batch=batch, status=PayoutStatus.CREATED).count() == 30
    assert Payout.objects.count() == 30
    inserts = [q["sql"] for q in queries.captured_queries if re.search(r'INSERT INTO "?payouts_payout"?\s', q["sql"])]
    assert len(inserts) == 1 and "SELECT" in inserts[0]
    assert cbs == []
    assert list(PayoutBatchTransition.objects.values_list("status_before", "status_after", "actor")) == [
        ("", "scheduled", actor.pk)
    ]


@pytest.mark.django_db
def test_the_batch_runs_in_chunks_and_records_progress_set_based(django_capture_on_commit_callbacks):
    program = make_program()
    claims = bulk_claims(program, 25)
    batch = payout_batch_create(program=program, actor=None, start=True)

    # One chunk of 10: issued, secrets, transitions, notices and counters, all at once
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = payout_batch_process_chunk(batch_id=batch.pk, chunk_size=10)
    assert (result.state, result.issued) == ("processed", 10)
    batch.refresh_from_db()
    assert (batch.issued_count, batch.percent()) == (10, 40)
    assert Payout.objects.filter(status=PayoutStatus.ISSUED).count() == 10
    assert PayoutSecret.objects.count() == 10
    assert PayoutNotice.objects.filter(kind="issued", sequence=1, status="pending").count() == 10
    assert PayoutTransition.objects.filter(status_after="issued").count() == 10
    assert [cb.func.__self__.name for cb in callbacks] == ["payouts.send_notices"]

    # The rest of the run completes the batch
    assert payout_batch_run(batch_id=batch.pk, chunk_size=10) == "completed"
    batch.refresh_from_db()
    assert (batch.status, batch.issued_count, batch.percent()) == (BatchStatus.COMPLETED, 25, 100)
    assert SimulatorIssuance.objects.count() == 25
    assert PayoutNotice.objects.count() == 25
    assert {p.claim_id for p in Payout.objects.all()} == {c.pk for c in claims}


@pytest.mark.django_db
def test_pause_and_cancel_are_honoured_between_chunks():
    program = make_program()
    bulk_claims(program, 30)
    actor = finance()
    batch = payout_batch_create(program=program, actor=actor, start=True)
    payout_batch_process_chunk(batch_id=batch.pk, chunk_size=10)

    # Paused: the next chunk does nothing; the sweep does not issue its payouts either
    payout_batch_pause(batch=batch, actor=actor)
    assert payout_batch_process_chunk(batch_id=batch.pk, chunk_size=10).state == BatchStatus.PAUSED
    assert Payout.objects.filter(status=PayoutStatus.ISSUED).count() == 10

    # Resumed: it carries on where it stopped
    payout_batch_start(batch=batch, actor=actor)
    payout_batch_process_chunk(batch_id=batch.pk, chunk_size=10)
    assert Payout.objects.filter(status=PayoutStatus.ISSUED).count() == 20

    # Cancelled: the last 10 payouts are cancelled, nothing more is issued
    batch = payout_batch_cancel(batch=batch, actor=actor)
    assert (batch.status, batch.issued_count, batch.cancelled_count, batch.percent()) == ("cancelled", 20, 10, 100)
    assert payout_batch_run(batch_id=batch.pk) == BatchStatus.CANCELLED
    assert Payout.objects.filter(status=PayoutStatus.CANCELLED).count() == 10
    assert SimulatorIssuance.objects.count() == 20
    assert list(PayoutBatchTransition.objects.filter(batch=batch).values_list("status_after", flat=True)) == [
        "scheduled",
        "running",
        "paused",
        "running",
        "cancelled",
    ]

    # A cancelled batch cannot be started again
    with pytest.raises(BatchRefused):
        payout_batch_start(batch=batch, actor=actor)


@pytest.mark.django_db
def test_a_crashed_run_resumes_where_it_stopped():
    program = make_program()
    bulk_claims(program, 20)
    batch = payout_batch_create(program=program, actor=None, start=True)
    payout_batch_process_chunk(batch_id=batch.pk, chunk_size=8)
    # (the worker died here: the batch stays running with its progress)
    PayoutBatch.objects.filter(pk=batch.pk).update(last_progress_at=batch.created_at - dt.timedelta(minutes=10))

    # The sweep finds the stalled batch and a new run finishes it without repeating anything
    assert batches_sweep_enqueue(stalled_for=dt.timedelta(minutes=2)) == [batch.pk]
    assert payout_batch_run(batch_id=batch.pk, chunk_size=8) == "completed"
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True).distinct()) == [1]
    assert PayoutNotice.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_two_runs_in_threads_share_the_batch_without_issuing_twice():
    program = make_program()
    bulk_claims(program, 120)
    batch = payout_batch_create(program=program, actor=None, start=True)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            payout_batch_run(batch_id=batch.pk, chunk_size=15)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    batch.refresh_from_db()
    assert (batch.status, batch.issued_count) == (BatchStatus.COMPLETED, 120)
    assert SimulatorIssuance.objects.count() == 120
    assert list(SimulatorIssuance.objects.values_list("requests", flat=True).distinct()) == [1]
    assert PayoutTransition.objects.filter(status_after="issued").count() == 120
    assert PayoutNotice.objects.count() == 120


@pytest.mark.django_db
def test_claims_no_longer_approved_leave_the_batch_for_the_sweep():
    program = make_program()
    claims = bulk_claims(program, 3)
    batch = payout_batch_create(program=program, actor=None, start=True)
    claims[0].status = ClaimStatus.NEEDS_REREVIEW
    claims[0].save(update_fields=["status"])

    assert payout_batch_run(batch_id=batch.pk) == "completed"
    batch.refresh_from_db()
    assert (batch.total_count, batch.issued_count) == (2, 2)
    detached = Payout.objects.get(claim=claims[0])
    assert (detached.status, detached.batch) == (PayoutStatus.CREATED, None)


@pytest.mark.django_db
def test_beat_builds_one_started_batch_per_program_with_unpaid_claims(django_capture_on_commit_callbacks):
    first, second, done = make_program(), make_program(), make_program()
    bulk_claims(first, 3)
    bulk_claims(second, 2)
    approved_claim(done)
    payout_batch_create(program=done, actor=None)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ids = payout_batches_build_scheduled()

    batches = list(PayoutBatch.objects.filter(pk__in=ids).order_by("pk"))
    assert [(b.program, b.status, b.total_count, b.created_by) for b in batches] == [
        (first, "running", 3, None),
        (second, "running", 2, None),
    ]
    assert [(cb.func.__self__.name, cb.args) for cb in callbacks] == [
        ("payouts.batch_run", (batches[0].pk,)),
        ("payouts.batch_run", (batches[1].pk,)),
    ]
    assert payout_batches_build_scheduled() == []


@pytest.mark.django_db
def test_beat_schedules_exist_and_are_editable_rows():
    tasks = dict(PeriodicTask.objects.filter(task__startswith="payouts.").values_list("task", "enabled"))
    assert tasks == {
        "payouts.sweep": True,
        "payouts.build_batches": True,
        "payouts.send_notices": True,
        "payouts.reminders": True,
        "payouts.expire": True,
    }


@pytest.mark.django_db
def test_finance_builds_starts_and_watches_a_batch_in_the_admin(client, django_capture_on_commit_callbacks):
    program = make_program()
    bulk_claims(program, 5)
    user = finance()
    client.force_login(user)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(
            reverse("admin:payouts_payoutbatch_build"), {"program": program.pk, "method": "", "start": "on"}
        )
    batch = PayoutBatch.objects.get()
    assert [(cb.func.__self__.name, cb.args) for cb in callbacks] == [("payouts.batch_run", (batch.pk,))]
    page = client.get(response["Location"])
    assert client.get(reverse("admin:payouts_payoutbatch_progress_json", args=[batch.pk])).json()["percent"] == 0
    payout_batch_run(batch_id=batch.pk)  # what the worker does with the task
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:payouts_payoutbatch_progress", args=[batch.pk])

    assert page.status_code == 200
    body = page.content.decode()
    assert "payouts/batch_progress.js" in body and "<script>" not in body
    data = client.get(reverse("admin:payouts_payoutbatch_progress_json", args=[batch.pk])).json()
    assert (data["status"], data["total"], data["issued"], data["percent"], data["finished"]) == (
        "completed",
        5,
        5,
        100,
        True,
    )


@pytest.mark.django_db
def test_batch_controls_need_their_permissions(client):
    program = make_program()
    bulk_claims(program, 2)
    batch = payout_batch_create(program=program, actor=None)
    viewer = UserFactory.create(username="agent-1")
    client.force_login(viewer)

    assert client.get(reverse("admin:payouts_payoutbatch_build")).status_code == 403
    assert client.get(reverse("admin:payouts_payoutbatch_progress", args=[batch.pk])).status_code == 403
    assert (
        client.post(reverse("admin:payouts_payoutbatch_control", args=[batch.pk]), {"step": "start"}).status_code == 403
    )
    response = client.post(
        reverse("admin:payouts_payoutbatch_changelist"),
        {"action": "start_batches", "_selected_action": [batch.pk]},
    )
    assert response.status_code == 403
    batch.refresh_from_db()
    assert batch.status == BatchStatus.SCHEDULED
    assert not Payout.objects.exclude(status=PayoutStatus.CREATED).exists()


@pytest.mark.django_db
def test_the_run_task_on_a_missing_batch_does_nothing():
    assert payout_batch_run_task.apply(args=(999_999,)).get() == "gone"
