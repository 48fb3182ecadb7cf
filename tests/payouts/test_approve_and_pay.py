"""The claims admin's "approve and pay": approval and payout in one transaction, the issue task after commit."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from claims.models import ClaimDecision, ClaimStatus
from claims.review import ClaimDecisionRefused
from payouts.models import Payout, PayoutStatus
from payouts.services import claim_approve_and_pay
from support_portal.core.roles import roles_sync
from tests.claims.factories import ClaimFactory
from tests.factories import CustomerFactory, UserFactory
from tests.payouts.conftest import make_program


def reviewer(username: str = "reviewer-pay"):
    roles_sync()
    user = UserFactory.create(username=username)
    user.groups.add(Group.objects.get(name="reviewer"))
    return user


def pending_claim(program, amount: int = 5000):
    return ClaimFactory.create(program=program, amount_jpy=amount, customer=CustomerFactory.create())


@pytest.mark.django_db
def test_the_admin_action_approves_creates_the_payout_and_enqueues_after_commit(
    client, django_capture_on_commit_callbacks
):
    claim = pending_claim(make_program())
    client.force_login(reviewer())
    url = reverse("admin:claims_claim_changelist")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(url, {"action": "approve_and_pay_claims", "_selected_action": [claim.pk]})

    claim.refresh_from_db()
    payout = Payout.objects.get()
    assert (claim.status, claim.approved_amount_jpy) == (ClaimStatus.APPROVED, 5000)
    assert (payout.claim, payout.status, payout.amount_jpy, payout.batch) == (claim, PayoutStatus.CREATED, 5000, None)
    assert [(cb.func.__self__.name, cb.args) for cb in callbacks] == [("payouts.issue", (payout.pk,))]

    # Pressed again: refused by the review, nothing new
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(url, {"action": "approve_and_pay_claims", "_selected_action": [claim.pk]})
    assert Payout.objects.count() == 1
    assert ClaimDecision.objects.filter(claim=claim).count() == 1
    assert callbacks == []


@pytest.mark.django_db
def test_a_first_of_two_approvals_pays_nothing(django_capture_on_commit_callbacks):
    claim = pending_claim(make_program(), amount=50_000)  # above the program's second-approval threshold

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert claim_approve_and_pay(claim=claim, actor=reviewer()) is None

    claim.refresh_from_db()
    assert claim.status == ClaimStatus.AWAITING_SECOND_APPROVAL
    assert Payout.objects.count() == 0
    assert callbacks == []


@pytest.mark.django_db
def test_without_the_approve_permission_nothing_happens(client):
    claim = pending_claim(make_program())
    client.force_login(UserFactory.create(username="finance-no-approve"))
    response = client.post(
        reverse("admin:claims_claim_changelist"), {"action": "approve_and_pay_claims", "_selected_action": [claim.pk]}
    )
    assert response.status_code in (403, 302, 200)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PENDING_REVIEW
    assert Payout.objects.count() == 0
    with pytest.raises(ClaimDecisionRefused):
        claim_approve_and_pay(claim=claim, actor=None)
    assert Payout.objects.count() == 0
