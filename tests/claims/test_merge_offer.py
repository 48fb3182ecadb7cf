"""autorenew-60day duplicate purchase: the merge offer's outcome (refunded / merged / declined)."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from claims.models import Claim, Grant, MergeOffer, MergeOutcome
from claims.review import ClaimDecisionRefused, RefusalCode, claim_merge_offer_record
from claims.services import program_run
from support_portal.core.roles import roles_sync
from support_portal.customers.models import Subscription
from tests.claims.factories import SubmissionFactory, jst, template
from tests.claims.helpers import AS_OF
from tests.claims.test_refunds import charge
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db


def duplicate_purchase_claim(calendar, reason="duplicate_purchase"):
    """A ¥3,000 renewal (period 2024-09-01..10-01) refunded on request of 2024-09-11; the customer's other
    licence ends 2025-03-01."""
    renewal = charge()
    other = SubscriptionFactory.create(
        customer=renewal.subscription.customer, ended_at=jst(2025, 3, 1), started_at=jst(2024, 3, 1)
    )
    program = template("autorenew-60day")
    SubmissionFactory.create(program=program, subject=renewal.charge_id, submitted_at=jst(2024, 9, 11), reason=reason)
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    return Claim.objects.get(program=program, subject=renewal.charge_id), other


def test_merged_extends_the_other_licence_and_pays_nothing(calendar):
    # Given an eligible ¥3,000 duplicate-purchase refund claim holding its grant
    claim, other = duplicate_purchase_claim(calendar)
    assert (claim.eligible, claim.amount_jpy, Grant.objects.count()) == (True, 3000, 1)
    agent = UserFactory.create()

    # When the agent records that the customer accepted the merge
    offer = claim_merge_offer_record(claim=claim, actor=agent, outcome=MergeOutcome.MERGED, other_subscription=other)

    # Then the remaining 20 days (09-11 → 10-01) extend the other licence, and the claim pays nothing
    assert (offer.outcome, offer.days_added, offer.recorded_by) == ("merged", 20, agent)
    assert Subscription.objects.get(pk=other.pk).ended_at == jst(2025, 3, 1) + dt.timedelta(days=20)
    claim.refresh_from_db()
    assert (claim.eligible, claim.reason, claim.amount_jpy, claim.lines.count()) == (False, "merged", 0, 0)
    assert Grant.objects.count() == 0
    # And a later run keeps it so
    program_run(program=claim.program, actor=None, as_of=AS_OF, calendar=calendar)
    claim.refresh_from_db()
    assert (claim.eligible, claim.reason) == (False, "merged")


def test_refunded_keeps_the_refund_and_declined_withdraws(calendar):
    claim, _other = duplicate_purchase_claim(calendar)
    agent = UserFactory.create()

    claim_merge_offer_record(claim=claim, actor=agent, outcome=MergeOutcome.REFUNDED)

    claim.refresh_from_db()
    assert (claim.eligible, claim.amount_jpy) == (True, 3000)
    # A second outcome on the same claim is refused
    with pytest.raises(ClaimDecisionRefused) as refused:
        claim_merge_offer_record(claim=claim, actor=agent, outcome=MergeOutcome.DECLINED)
    assert refused.value.code == RefusalCode.ALREADY_RECORDED
    assert list(MergeOffer.objects.values_list("outcome", flat=True)) == ["refunded"]


def test_declined_pays_nothing(calendar):
    claim, _other = duplicate_purchase_claim(calendar)

    claim_merge_offer_record(claim=claim, actor=UserFactory.create(), outcome=MergeOutcome.DECLINED, note="keeps both")

    claim.refresh_from_db()
    assert (claim.eligible, claim.reason, claim.amount_jpy) == (False, "merge_declined", 0)


def test_merge_is_only_for_duplicate_purchases_and_needs_the_other_licence(calendar):
    # Given a refund claim for another reason, and a duplicate purchase
    price_claim, other = duplicate_purchase_claim(calendar, reason="price")
    agent = UserFactory.create()

    # When a merge is recorded on the price claim, or a merge without the other licence
    with pytest.raises(ClaimDecisionRefused) as not_duplicate:
        claim_merge_offer_record(claim=price_claim, actor=agent, outcome=MergeOutcome.MERGED, other_subscription=other)
    duplicate, _ = duplicate_purchase_claim(calendar)
    with pytest.raises(ClaimDecisionRefused) as no_licence:
        claim_merge_offer_record(claim=duplicate, actor=agent, outcome=MergeOutcome.MERGED)

    # Then both are refused and nothing was recorded or extended
    assert (not_duplicate.value.code, no_licence.value.code) == ("not_applicable", "not_applicable")
    assert MergeOffer.objects.count() == 0
    assert Subscription.objects.get(pk=other.pk).ended_at == jst(2025, 3, 1)


# --- the agent's screen on the claim (admin) -------------------------------------------------------


def role_client(username, role):
    roles_sync()
    user = UserFactory.create(username=username)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return user, client


def merge_url(claim):
    return f"/admin/claims/claim/{claim.pk}/merge-offer/"


def test_agent_records_a_merge_with_the_other_licence_on_the_claim_screen(calendar):
    # Given a duplicate-purchase claim and an agent
    claim, other = duplicate_purchase_claim(calendar)
    agent, client = role_client("agent-m", "agent")

    # When the agent opens the claim: it links to the merge-offer screen, which offers the other licence
    change = client.get(f"/admin/claims/claim/{claim.pk}/change/")
    assert change.status_code == 200
    assert merge_url(claim) in change.text
    page = client.get(merge_url(claim))
    assert page.status_code == 200
    assert [s.pk for s in page.context["form"].fields["other_subscription"].queryset] == [other.pk]

    # And records "merged" with that licence
    response = client.post(merge_url(claim), {"outcome": "merged", "other_subscription": other.pk, "note": "ok"})

    # Then the outcome is recorded by the agent, the licence extended, and the claim page shows it
    assert response.status_code == 302
    assert response["Location"] == f"/admin/claims/claim/{claim.pk}/change/"
    offer = MergeOffer.objects.get(claim=claim)
    assert (offer.outcome, offer.other_subscription_id, offer.days_added, offer.note, offer.recorded_by) == (
        "merged",
        other.pk,
        20,
        "ok",
        agent,
    )
    assert Subscription.objects.get(pk=other.pk).ended_at == jst(2025, 3, 1) + dt.timedelta(days=20)
    assert merge_url(claim) not in client.get(f"/admin/claims/claim/{claim.pk}/change/").text


def test_the_screen_shows_refusals_as_form_errors_and_changes_nothing(calendar):
    claim, other = duplicate_purchase_claim(calendar)
    price_claim, _ = duplicate_purchase_claim(calendar, reason="price")
    _reviewer, client = role_client("reviewer-m", "reviewer")

    # A merge without the other licence: a field error
    missing = client.post(merge_url(claim), {"outcome": "merged"})
    assert missing.status_code == 200
    assert missing.context["form"].errors == {
        "other_subscription": ["残り日数を加算するライセンスを選択してください。"]
    }
    # A merge on a claim that is not a duplicate purchase: the service's refusal, shown on the form
    refused = client.post(merge_url(price_claim), {"outcome": "declined"})
    assert refused.status_code == 200
    assert refused.context["form"].non_field_errors() == [
        f"claim {price_claim}: a merge is offered for duplicate purchases only (not_applicable)"
    ]
    assert MergeOffer.objects.count() == 0
    assert Subscription.objects.get(pk=other.pk).ended_at == jst(2025, 3, 1)


def test_the_screen_needs_the_record_merge_offer_permission(calendar):
    claim, _other = duplicate_purchase_claim(calendar)
    _manager, client = role_client("manager-m", "manager")

    assert client.get(merge_url(claim)).status_code == 403
    assert client.post(merge_url(claim), {"outcome": "declined"}).status_code == 403
    assert MergeOffer.objects.count() == 0
