"""A paused (or cancelled, or not yet started) batch holds its payouts everywhere, not only in its own run:
issuing one of them by itself (service and task), sending their notices (service and task) and writing
bank transfers into a Zengin file all leave them alone until the batch runs again."""

import datetime as dt

import pytest
from django.core import mail

from payouts.banking.services import (
    BankingRefused,
    bank_account_record,
    bank_payouts_ready_for_export,
    zengin_export_create,
)
from payouts.batches import (
    payout_batch_cancel,
    payout_batch_create,
    payout_batch_pause,
    payout_batch_process_chunk,
    payout_batch_start,
)
from payouts.models import Payout, PayoutNotice, PayoutSecret, PayoutStatus, PayoutTransition, SimulatorIssuance
from payouts.notices import payout_notices_send
from payouts.services import PayoutRefused, RefusalCode, payout_issue
from payouts.tasks import payout_issue_task, payout_notices_send_task
from tests.banking.conftest import account_input, finance_user
from tests.banking.conftest import approved_claim as bank_claim
from tests.banking.conftest import make_program as make_bank_program
from tests.factories import CustomerFactory
from tests.payouts.conftest import bulk_claims, make_program
from tests.payouts.test_batches import finance

pytestmark = pytest.mark.django_db

TOMORROW = dt.date.today() + dt.timedelta(days=1)


def paused_batch_with_unissued_payouts(n: int = 3):
    program = make_program()
    bulk_claims(program, n)
    actor = finance()
    batch = payout_batch_create(program=program, actor=actor)
    payout_batch_pause(batch=batch, actor=actor)
    return batch, list(Payout.objects.filter(batch=batch).order_by("pk"))


def nothing_issued(payouts: list[Payout]) -> None:
    assert set(Payout.objects.filter(pk__in=[p.pk for p in payouts]).values_list("status", flat=True)) == {"created"}
    assert list(Payout.objects.filter(pk__in=[p.pk for p in payouts]).values_list("attempts", flat=True)) == [0] * len(
        payouts
    )
    assert SimulatorIssuance.objects.count() == 0
    assert PayoutSecret.objects.count() == 0
    assert PayoutNotice.objects.count() == 0
    assert not PayoutTransition.objects.filter(status_after="issued").exists()


def test_the_issue_service_refuses_a_payout_of_a_paused_batch():
    # Given a paused batch whose payouts are not issued yet
    _batch, payouts = paused_batch_with_unissued_payouts()

    # When one of them is issued by itself
    with pytest.raises(PayoutRefused) as refused:
        payout_issue(payout_id=payouts[0].pk)

    # Then it is refused and nothing was issued or asked of the provider
    assert refused.value.code == RefusalCode.BATCH_HELD
    nothing_issued(payouts)


def test_the_issue_task_leaves_a_payout_of_a_paused_batch_alone():
    _batch, payouts = paused_batch_with_unissued_payouts()

    for payout in payouts:
        payout_issue_task.apply(args=(payout.pk,))

    nothing_issued(payouts)


def test_a_resumed_batch_issues_its_payouts_by_itself_again():
    batch, payouts = paused_batch_with_unissued_payouts(1)
    payout_batch_start(batch=batch, actor=finance("finance-2"))

    payout_issue(payout_id=payouts[0].pk)

    payouts[0].refresh_from_db()
    assert payouts[0].status == PayoutStatus.ISSUED


def issued_then_held(hold: str):
    """A running batch with 4 of its 6 payouts issued (their notices pending), then paused or cancelled."""
    program = make_program()
    bulk_claims(program, 6, sms_every=100)  # the first payee gets an SMS, the others an email
    actor = finance()
    batch = payout_batch_create(program=program, actor=actor, start=True)
    payout_batch_process_chunk(batch_id=batch.pk, chunk_size=4)
    (payout_batch_pause if hold == "pause" else payout_batch_cancel)(batch=batch, actor=actor)
    assert PayoutNotice.objects.filter(status="pending").count() == 4
    return batch, actor


@pytest.mark.parametrize("hold", ["pause", "cancel"])
def test_the_sender_holds_the_notices_of_a_paused_or_cancelled_batch(hold):
    # Given a batch paused (or cancelled) after issuing 4 payouts, whose notices wait in the outbox
    issued_then_held(hold)

    # When the sender runs
    result = payout_notices_send()

    # Then it takes none of them: no mail, the notices stay pending without a lease, the payouts issued
    assert (result.claimed, result.sent) == (0, 0)
    assert mail.outbox == []
    assert list(PayoutNotice.objects.values_list("status", "lease_until", "send_attempts").distinct()) == [
        ("pending", None, 0)
    ]
    assert Payout.objects.filter(status=PayoutStatus.ISSUED).count() == 4


@pytest.mark.parametrize("hold", ["pause", "cancel"])
def test_the_send_task_holds_the_notices_of_a_paused_or_cancelled_batch(hold):
    issued_then_held(hold)

    assert payout_notices_send_task.apply().get() == 0

    assert mail.outbox == []
    assert set(PayoutNotice.objects.values_list("status", flat=True)) == {"pending"}


def test_the_notices_go_once_the_batch_is_resumed():
    batch, actor = issued_then_held("pause")
    payout_batch_start(batch=batch, actor=actor)

    assert payout_notices_send().sent == 4

    assert len(mail.outbox) == 3  # the first payee has no email: an SMS
    assert Payout.objects.filter(status=PayoutStatus.NOTIFIED).count() == 4


def paused_batch_of_bank_transfers(n: int = 2):
    """A batch of every method built for a bank-transfer program (payees with accounts), then paused."""
    program = make_bank_program("bank_transfer")
    for i in range(n):
        payee = CustomerFactory.create()
        bank_claim(program, amount=1000 * (i + 1), payee=payee)
        bank_account_record(customer=payee, account_input=account_input(), actor=None, source="customer")
    actor = finance()
    batch = payout_batch_create(program=program, actor=actor)
    payout_batch_pause(batch=batch, actor=actor)
    payouts = list(Payout.objects.filter(batch=batch).order_by("pk"))
    assert len(payouts) == n
    return batch, actor, payouts


def test_the_export_leaves_out_the_bank_transfers_of_a_paused_batch():
    # Given a paused batch holding two bank-transfer payouts (payees with accounts)
    _batch, _actor, payouts = paused_batch_of_bank_transfers()

    # When finance looks at what is ready for a file and tries to write one
    ready = bank_payouts_ready_for_export()
    with pytest.raises(BankingRefused) as refused:
        zengin_export_create(actor=finance_user("fin-x"), transfer_date=TOMORROW, sender_key="demo")

    # Then none is ready, nothing is written and the payouts stay created
    assert ready == []
    assert refused.value.code == "nothing_to_export"
    assert set(Payout.objects.filter(pk__in=[p.pk for p in payouts]).values_list("status", flat=True)) == {"created"}
    assert PayoutNotice.objects.count() == 0


def test_the_export_takes_them_once_the_batch_runs_again():
    batch, actor, payouts = paused_batch_of_bank_transfers()
    payout_batch_start(batch=batch, actor=actor)

    export = zengin_export_create(actor=finance_user("fin-y"), transfer_date=TOMORROW, sender_key="demo")

    assert export.total_count == 2
    assert set(Payout.objects.filter(pk__in=[p.pk for p in payouts]).values_list("status", flat=True)) == {"issued"}
