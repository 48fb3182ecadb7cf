"""`demo_payouts`: payouts in every state with their notices, idempotently."""

import pytest
from django.core.management import call_command
from django.db.models import Count

from payouts.models import BatchStatus, NoticeStatus, Payout, PayoutBatch, PayoutNotice, PayoutStatus
from support_portal.core.roles import roles_sync
from tests.claims.factories import ClaimFactory
from tests.factories import CustomerFactory
from tests.payouts.conftest import approved_claim, make_program


@pytest.mark.django_db
def test_demo_payouts_shows_every_state_once():
    # Given a program with three approved claims and twelve waiting for review
    roles_sync()
    program = make_program()
    for _ in range(3):
        approved_claim(program)
    for amount in range(12):
        ClaimFactory.create(program=program, amount_jpy=1000 + amount, customer=CustomerFactory.create())

    # When the command runs twice
    call_command("demo_payouts")
    counts = dict(Payout.objects.values_list("status").annotate(n=Count("id")))
    call_command("demo_payouts")

    # Then every payout state is there, and the second run changed nothing
    assert set(counts) == set(PayoutStatus.values)
    assert dict(Payout.objects.values_list("status").annotate(n=Count("id"))) == counts
    assert set(PayoutBatch.objects.values_list("status", flat=True)) == {
        BatchStatus.COMPLETED,
        BatchStatus.PAUSED,
        BatchStatus.CANCELLED,
    }
    statuses = set(PayoutNotice.objects.values_list("status", flat=True))
    assert {NoticeStatus.SENT, NoticeStatus.BOUNCED, NoticeStatus.PENDING} <= statuses
    assert PayoutNotice.objects.filter(sequence=2, created_by__username="finance").count() == 1
