"""Two batch builds at once (beat delivered twice, or beat and a person): one batch with the payouts, no
empty batch left behind."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from claims.models import Program
from payouts.batches import BatchRefused, payout_batch_create, payout_batches_build_scheduled
from payouts.models import Payout, PayoutBatch, PayoutBatchTransition
from tests.payouts.conftest import bulk_claims, make_program


def _blocked_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return int(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_two_scheduled_builds_at_once_leave_one_batch_and_no_empty_one():
    # Given a program with 5 approved claims without payouts, its row locked by a third connection so
    # both builders have chosen the program before either can build
    program = make_program()
    bulk_claims(program, 5)
    locked, release = threading.Event(), threading.Event()

    def hold_the_program() -> None:
        try:
            with transaction.atomic():
                Program.objects.select_for_update().get(pk=program.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    results: list[list[int]] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            results.append(payout_batches_build_scheduled())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_program)
    holder.start()
    assert locked.wait(timeout=10)
    builders = [threading.Thread(target=build) for _ in range(2)]
    for builder in builders:
        builder.start()
    deadline = time.monotonic() + 20
    while _blocked_on_a_lock() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _blocked_on_a_lock() == 2  # both builders wait for the program row

    # When the lock is released and both builds go on, one after the other
    release.set()
    holder.join(timeout=30)
    for builder in builders:
        builder.join(timeout=30)

    # Then one batch holds the 5 payouts and the second build left nothing behind
    assert errors == []
    [batch] = PayoutBatch.objects.all()
    assert sorted(results) == [[], [batch.pk]]
    assert (batch.program_id, batch.status, batch.total_count) == (program.pk, "running", 5)
    assert Payout.objects.filter(batch=batch).count() == 5
    assert PayoutBatchTransition.objects.count() == 2  # scheduled, running — of that one batch


@pytest.mark.django_db
def test_building_a_batch_with_nothing_to_pay_is_refused_and_writes_nothing():
    # Given a program whose approved claims all have payouts already
    program = make_program()
    bulk_claims(program, 2)
    first = payout_batch_create(program=program, actor=None)

    # When a second batch is built for it
    with pytest.raises(BatchRefused) as refused:
        payout_batch_create(program=program, actor=None, start=True)

    # Then it is refused and no batch row or transition was written
    assert refused.value.code == "nothing_to_pay"
    assert list(PayoutBatch.objects.values_list("pk", flat=True)) == [first.pk]
    assert PayoutBatchTransition.objects.count() == 1
