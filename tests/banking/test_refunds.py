"""Refunds to the original payment method: the beat run sends them through the provider simulator with the
payout's idempotency key, records the due date (3 business days, Golden Week) and the delay interest, and
ends app-store purchases with instructions (no money moved)."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from claims.models import PayoutMethod
from payouts.banking.models import BankingEvent, RefundOutcomeChoice, RefundRequest
from payouts.banking.services import refund_requests_flag, refund_requests_prepare, refund_requests_send
from payouts.banking.tasks import refund_requests_send_task
from payouts.models import Payout, PayoutStatus, SimulatorIssuance
from payouts.services import payout_issue, payouts_create_for_approved_claims
from support_portal.core.business_days import JST, business_calendar, jst_date
from tests.banking.conftest import approved_claim, make_program
from tests.claims.factories import SubmissionFactory
from tests.factories import ChargeFactory, UserFactory

pytestmark = pytest.mark.django_db


def refund_payout(*, payment_method: str = "card", submitted_at: dt.datetime | None = None, amount: int = 10_000):
    program = make_program(PayoutMethod.ORIGINAL_METHOD)
    charge = ChargeFactory.create(subscription__payment_method=payment_method)
    submission = SubmissionFactory.create(
        program=program, subject=charge.charge_id, submitted_at=submitted_at or timezone.now()
    )
    approved_claim(
        program,
        amount=amount,
        subject=charge.charge_id,
        official_submission=submission,
        payee=charge.subscription.customer,
        customer=charge.subscription.customer,
    )
    payouts_create_for_approved_claims(program=program, actor=None)
    return Payout.objects.get(program=program), charge


def test_a_golden_week_request_is_due_on_the_third_business_day_and_interest_is_added_when_late():
    # given a customer who asked on Friday 2026-05-01 (Golden Week follows) and a refund sent today
    payout, charge = refund_payout(submitted_at=dt.datetime(2026, 5, 1, 15, 0, tzinfo=JST))
    # when the beat run sends the due refund requests
    run = refund_requests_send()
    # then the request was due at the end of Monday 2026-05-11 (5/4-5/6 holidays) and was sent late
    request = RefundRequest.objects.get(payout=payout)
    assert request.due_at == dt.datetime(2026, 5, 11, 23, 59, 59, 999999, tzinfo=JST)
    assert request.requested_at == dt.datetime(2026, 5, 1, 15, 0, tzinfo=JST)
    assert request.sent_at is not None
    days = (jst_date(request.sent_at) - dt.date(2026, 5, 11)).days
    assert days > 0
    assert request.interest_jpy == 10_000 * 3 * days // 36_500
    assert request.is_late
    # and the provider got one refund for the amount plus interest, keyed by the payout
    issuance = SimulatorIssuance.objects.get()
    assert (issuance.idempotency_key, issuance.amount_jpy, issuance.payee_ref) == (
        payout.idempotency_key,
        10_000 + request.interest_jpy,
        charge.charge_id,
    )
    assert issuance.provider == "refund-card-simulator"
    payout.refresh_from_db()
    assert (payout.status, payout.provider_reference) == (PayoutStatus.ISSUED, request.reference)
    assert request.outcome == RefundOutcomeChoice.REQUESTED
    assert (run.prepared, run.sent, run.failed) == (1, 1, 0)


def test_an_on_time_request_owes_no_interest_and_sending_twice_sends_once():
    payout, _charge = refund_payout(submitted_at=timezone.now())
    refund_requests_send()
    refund_requests_send()
    payout_issue(payout_id=payout.pk)  # the sweep path too
    request = RefundRequest.objects.get(payout=payout)
    assert request.interest_jpy == 0 and not request.is_late
    assert SimulatorIssuance.objects.count() == 1
    assert SimulatorIssuance.objects.get().requests == 1
    assert RefundRequest.objects.count() == 1


def test_an_app_store_purchase_ends_with_instructions_and_no_money_moved():
    payout, _charge = refund_payout(payment_method="apple_iap")
    run = refund_requests_send_task()
    request = RefundRequest.objects.get(payout=payout)
    assert request.outcome == RefundOutcomeChoice.ASK_STORE
    assert request.instructions  # the store's instructions
    assert (request.sent_at, request.interest_jpy, request.reference) == (None, 0, "")
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.FAILED and "ask" in payout.last_error
    assert SimulatorIssuance.objects.count() == 0
    assert Payout.objects.count() == 1  # no re-offer
    assert run == {"sent": 0, "failed": 1, "flagged": 0, "reoffered": 0}


def test_a_convenience_store_payment_is_reoffered_as_a_bank_transfer():
    payout, _charge = refund_payout(payment_method="convenience")
    run = refund_requests_send()
    assert RefundRequest.objects.get(payout=payout).outcome == RefundOutcomeChoice.NEEDS_BANK_ACCOUNT
    assert SimulatorIssuance.objects.count() == 0
    reoffer = Payout.objects.exclude(pk=payout.pk).get()
    assert (reoffer.method, reoffer.status, reoffer.offer, reoffer.amount_jpy) == (
        "bank_transfer",
        "created",
        1,
        10_000,
    )
    assert run.reoffered == 1
    # a second run re-offers nothing more
    assert refund_requests_send().reoffered == 0
    assert Payout.objects.count() == 2


def test_unsent_requests_due_soon_are_flagged_once():
    # given a refund request not sent yet (prepared, the provider not asked)
    payout, _charge = refund_payout(submitted_at=dt.datetime(2026, 4, 30, 10, 0, tzinfo=JST))
    assert refund_requests_prepare() == 1
    request = RefundRequest.objects.get(payout=payout)
    # Thursday 4/30 → due at the end of Friday 5/8 (5/1 Fri, 5/7 Thu, 5/8 Fri; 5/2-5/6 closed)
    assert request.due_at == dt.datetime(2026, 5, 8, 23, 59, 59, 999999, tzinfo=JST)
    calendar = business_calendar()
    # when the run looks on Monday 5/4 (the next business day is 5/7), nothing is due soon
    assert refund_requests_flag(now=dt.datetime(2026, 5, 4, 9, 0, tzinfo=JST), calendar=calendar) == 0
    # on Thursday 5/7 it is due by the end of the next business day: flagged, once
    assert refund_requests_flag(now=dt.datetime(2026, 5, 7, 9, 0, tzinfo=JST), calendar=calendar) == 1
    assert refund_requests_flag(now=dt.datetime(2026, 5, 7, 10, 0, tzinfo=JST), calendar=calendar) == 0
    request.refresh_from_db()
    assert request.flagged_at == dt.datetime(2026, 5, 7, 9, 0, tzinfo=JST)
    assert BankingEvent.objects.filter(action="refund_flagged", payout=payout).count() == 1


def test_the_refund_run_is_on_the_beat_schedule():
    task = PeriodicTask.objects.get(task="banking.refunds_send")
    assert task.enabled and (task.interval.every, task.interval.period) == (15, "minutes")


def test_the_flagged_link_of_the_report_filters_the_refund_list(client):
    # given a flagged and an unflagged unsent request
    flagged, _charge = refund_payout(submitted_at=dt.datetime(2026, 4, 30, 10, 0, tzinfo=JST))
    refund_payout(submitted_at=timezone.now())
    refund_requests_prepare()
    refund_requests_flag(now=dt.datetime(2026, 5, 7, 9, 0, tzinfo=JST), calendar=business_calendar())
    client.force_login(UserFactory.create(username="root-1", is_superuser=True))
    url = reverse("admin:banking_refundrequest_changelist") + "?flagged_at__isempty=0&outcome__exact=pending"
    response = client.get(url)
    # then the list shows only the flagged one (a 200, not the admin's "invalid filter" redirect)
    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == [RefundRequest.objects.get(payout=flagged)]
