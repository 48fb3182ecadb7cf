"""Creating payouts for a program's approved claims: set-based, once per claim, method and amount rules."""

import datetime as dt

import pytest

from claims.models import ClaimStatus
from payouts.models import Payout, PayoutStatus, PayoutTransition
from payouts.services import payouts_create_for_approved_claims
from support_portal.core.business_days import end_of_day_jst
from tests.claims.factories import ClaimFactory, SubmissionFactory
from tests.factories import CustomerFactory
from tests.payouts.conftest import approved_claim, make_program

pytestmark = pytest.mark.django_db


def test_creating_twice_creates_one_payout_per_approved_claim(program, finance_user):
    # Given three approved claims and claims in every other status
    approved = [approved_claim(program, amount=1000 * (i + 1)) for i in range(3)]
    for status in (ClaimStatus.PENDING_REVIEW, ClaimStatus.REJECTED, ClaimStatus.AWAITING_SECOND_APPROVAL):
        ClaimFactory(program=program, status=status, payee=CustomerFactory())
    # and an approved claim of another program
    approved_claim(make_program())

    # When payouts are created twice
    first = payouts_create_for_approved_claims(program=program, actor=finance_user)
    second = payouts_create_for_approved_claims(program=program, actor=finance_user)

    # Then exactly the three approved claims have one payout each, created by the first call only
    assert (first, second) == (3, 0)
    payouts = Payout.objects.filter(program=program).order_by("claim_id")
    assert [p.claim_id for p in payouts] == [c.pk for c in approved]
    assert [p.amount_jpy for p in payouts] == [1000, 2000, 3000]
    assert {p.status for p in payouts} == {PayoutStatus.CREATED}
    assert [p.payee_id for p in payouts] == [c.payee_id for c in approved]
    assert [p.idempotency_key for p in payouts] == [f"payout:{c.pk}:atm_cash" for c in approved]
    # and each creation is recorded once, with who did it
    transitions = PayoutTransition.objects.filter(payout__program=program)
    assert transitions.count() == 3
    assert {(t.actor_id, t.status_before, t.status_after) for t in transitions} == {
        (finance_user.pk, "", PayoutStatus.CREATED)
    }


def test_a_claim_that_is_not_approved_gets_no_payout(program, finance_user):
    ClaimFactory(program=program, status=ClaimStatus.PENDING_REVIEW, payee=CustomerFactory())
    ClaimFactory(program=program, status=ClaimStatus.NEEDS_REREVIEW, approved_amount_jpy=5000)

    assert payouts_create_for_approved_claims(program=program, actor=finance_user) == 0
    assert Payout.objects.count() == 0


def test_method_is_the_allowed_choice_else_the_program_default(program, finance_user):
    def with_submission(method: str):
        claim = approved_claim(program)
        claim.official_submission = SubmissionFactory.create(
            program=program, subject=claim.subject, payout_method=method
        )
        claim.save(update_fields=["official_submission"])
        return claim

    chosen_allowed = with_submission("points:paypay")
    chosen_not_allowed = with_submission("points:ponta")
    chosen_nothing = with_submission("")
    no_submission = approved_claim(program)
    # A refund: the engine recorded the original payment method on the claim, which wins.
    refund = approved_claim(program, payout_method="original_method")

    assert payouts_create_for_approved_claims(program=program, actor=finance_user) == 5

    methods = dict(Payout.objects.values_list("claim_id", "method"))
    assert methods == {
        chosen_allowed.pk: "points:paypay",
        chosen_not_allowed.pk: "atm_cash",
        chosen_nothing.pk: "atm_cash",
        no_submission.pk: "atm_cash",
        refund.pk: "original_method",
    }
    assert Payout.objects.get(claim=chosen_allowed).idempotency_key == f"payout:{chosen_allowed.pk}:points:paypay"


def test_expiry_is_the_end_of_the_receipt_deadline_in_jst(finance_user):
    deadline = dt.date(2031, 3, 31)
    program = make_program(receipt_deadline=deadline)
    approved_claim(program)
    no_deadline = make_program(receipt_deadline=None)
    approved_claim(no_deadline)

    payouts_create_for_approved_claims(program=program, actor=finance_user)
    payouts_create_for_approved_claims(program=no_deadline, actor=finance_user)

    assert Payout.objects.get(program=program).expires_at == end_of_day_jst(deadline)
    assert Payout.objects.get(program=no_deadline).expires_at is None


def test_claims_without_a_method_or_payee_are_skipped_until_fixed(finance_user):
    program = make_program(default_payout_method="")
    no_method = approved_claim(program)
    no_payee = approved_claim(program, payee=None, customer=None, payout_method="atm_cash")

    assert payouts_create_for_approved_claims(program=program, actor=finance_user) == 0

    no_method.payout_method = "points:amazon"
    no_method.save(update_fields=["payout_method"])
    assert payouts_create_for_approved_claims(program=program, actor=finance_user) == 1
    assert list(Payout.objects.values_list("claim_id", flat=True)) == [no_method.pk]
    assert not Payout.objects.filter(claim=no_payee).exists()
