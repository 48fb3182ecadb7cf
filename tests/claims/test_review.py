"""Review of claims: transitions, maker-checker, bulk approval of the lowest band, QA sample, admin actions."""

import datetime as dt
import threading

import pghistory.models
import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client

from claims.models import Claim, ClaimDecision, ClaimStatus, DecisionAction, RejectReason
from claims.review import (
    ClaimDecisionRefused,
    RefusalCode,
    claim_approve,
    claim_reject,
    claim_reopen,
    claim_request_info,
    claims_bulk_approve,
)
from claims.services import program_run
from support_portal.core.roles import roles_sync
from support_portal.customers.models import Login
from tests.claims.factories import ClaimFactory, LoginFactory, ReviewProgramFactory, SubmissionFactory, jst, template
from tests.factories import ChargeFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/claims/claim/"


def state(claim):
    """What a refused step must leave untouched: status, approved amount, deciders, QA flag, decision rows."""
    claim = Claim.objects.get(pk=claim.pk)
    return (claim.status, claim.approved_amount_jpy, claim.decided_by_id, claim.qa_review, claim.decisions.count())


def history(claim):
    return list(
        claim.decisions.order_by("id").values_list("actor__username", "action", "status_before", "status_after")
    )


def audit_trail(obj):
    """(event label, acting user id) of the row's audit events; factory inserts have no context."""
    events = pghistory.models.Events.objects.tracks(obj).order_by("pgh_created_at")
    return [(e.pgh_label, (e.pgh_context or {}).get("user")) for e in events]


def refused(step, code):
    """Runs `step`, expecting a refusal with `code`."""
    with pytest.raises(ClaimDecisionRefused) as info:
        step()
    assert info.value.code == code
    return info.value


class FixedRandom:
    """A random source returning the given values in order."""

    def __init__(self, *values):
        self.values = list(values)

    def random(self):
        return self.values.pop(0)


@pytest.fixture
def reviewers():
    return UserFactory.create(username="rev-a"), UserFactory.create(username="rev-b")


def test_approve_below_the_threshold_by_one_reviewer(reviewers):
    # Given a pending eligible claim of ¥5,000 (threshold ¥10,000)
    alice, _bob = reviewers
    claim = ClaimFactory.create(amount_jpy=5000)

    # When one reviewer approves it
    claim_approve(claim=claim, actor=alice)

    # Then it is approved at that amount, with one decision row, audited as hers
    claim.refresh_from_db()
    assert (claim.status, claim.approved_amount_jpy, claim.decided_by) == (ClaimStatus.APPROVED, 5000, alice)
    assert history(claim) == [("rev-a", "approve", "pending_review", "approved")]
    decision = claim.decisions.get()
    assert decision.amount_jpy == 5000
    assert audit_trail(claim) == [("insert", None), ("update", alice.pk)]
    assert audit_trail(decision) == [("insert", alice.pk)]


def test_above_the_threshold_two_different_people_must_approve(reviewers):
    # Given a pending claim of ¥10,001 prepared by an agent (threshold ¥10,000)
    alice, bob = reviewers
    preparer = UserFactory.create(username="preparer")
    claim = ClaimFactory.create(amount_jpy=10001, prepared_by=preparer)

    # When the first reviewer approves
    claim_approve(claim=claim, actor=alice)

    # Then it waits for a second approval, no amount approved yet
    first = state(claim)
    assert first == (ClaimStatus.AWAITING_SECOND_APPROVAL, None, alice.pk, False, 1)

    # And the same reviewer cannot give the second approval; the preparer cannot approve at all
    error = refused(lambda: claim_approve(claim=claim, actor=alice), RefusalCode.ALREADY_DECIDED)
    assert str(claim) in error.message
    refused(lambda: claim_approve(claim=claim, actor=preparer), RefusalCode.OWN_WORK)
    assert state(claim) == first

    # When a second reviewer approves
    claim_approve(claim=claim, actor=bob)

    # Then it is approved
    assert state(claim) == (ClaimStatus.APPROVED, 10001, bob.pk, False, 2)
    assert history(claim) == [
        ("rev-a", "approve", "pending_review", "awaiting_second_approval"),
        ("rev-b", "approve", "awaiting_second_approval", "approved"),
    ]


def test_exactly_the_threshold_needs_one_approval(reviewers):
    alice, _bob = reviewers
    claim = ClaimFactory.create(amount_jpy=10000)

    claim_approve(claim=claim, actor=alice)

    assert state(claim) == (ClaimStatus.APPROVED, 10000, alice.pk, False, 1)


def test_nobody_approves_a_claim_they_prepared(reviewers):
    alice, _bob = reviewers
    claim = ClaimFactory.create(amount_jpy=500, prepared_by=alice)
    before = state(claim)

    refused(lambda: claim_approve(claim=claim, actor=alice), RefusalCode.OWN_WORK)

    assert state(claim) == before == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)


def test_review_needs_a_signed_in_person():
    claim = ClaimFactory.create()

    refused(lambda: claim_approve(claim=claim, actor=None), RefusalCode.NO_ACTOR)

    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)


def test_approving_an_ineligible_claim_is_refused(reviewers):
    alice, _bob = reviewers
    claim = ClaimFactory.create(eligible=False, amount_jpy=0, reason="no_charge")

    error = refused(lambda: claim_approve(claim=claim, actor=alice), RefusalCode.NOT_ELIGIBLE)

    assert "no_charge" in error.message
    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)


@pytest.mark.parametrize("status", [ClaimStatus.COMPUTED, ClaimStatus.INFO_REQUESTED, ClaimStatus.APPROVED])
def test_approving_outside_review_is_refused(reviewers, status):
    alice, _bob = reviewers
    claim = ClaimFactory.create(status=status)

    refused(lambda: claim_approve(claim=claim, actor=alice), RefusalCode.STATUS)

    assert state(claim) == (status, None, None, False, 0)


def test_reject_requires_a_known_reason_code(reviewers):
    # Given a pending claim
    alice, _bob = reviewers
    claim = ClaimFactory.create()
    before = state(claim)

    # When rejected without a reason, with an unknown one, or with "other" and no note: refused, nothing changed
    refused(lambda: claim_reject(claim=claim, actor=alice, reason_code=""), RefusalCode.REASON_REQUIRED)
    refused(lambda: claim_reject(claim=claim, actor=alice, reason_code="dislike"), RefusalCode.UNKNOWN_REASON)
    refused(lambda: claim_reject(claim=claim, actor=alice, reason_code="other", note=" "), RefusalCode.NOTE_REQUIRED)
    assert state(claim) == before

    # When rejected with a reason code
    claim_reject(claim=claim, actor=alice, reason_code=RejectReason.DUPLICATE, note="same as C9000001")

    # Then it is rejected, the reason and note recorded
    assert state(claim) == (ClaimStatus.REJECTED, None, alice.pk, False, 1)
    assert list(claim.decisions.values_list("action", "reason_code", "note")) == [
        ("reject", "duplicate", "same as C9000001")
    ]


def test_no_refund_for_special_circumstances_records_why(reviewers):
    # Given a company-termination refund claim under review (refund = base - fee)
    alice, _bob = reviewers
    program = ReviewProgramFactory.create(slug="termination-review", policy="company-termination")
    claim = ClaimFactory.create(program=program, amount_jpy=2600)

    # When the reviewer decides "no refund" for special circumstances without saying why: refused
    refused(
        lambda: claim_reject(claim=claim, actor=alice, reason_code=RejectReason.SPECIAL_CIRCUMSTANCES, note=""),
        RefusalCode.NOTE_REQUIRED,
    )
    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)

    # When they give the reason
    claim_reject(
        claim=claim, actor=alice, reason_code=RejectReason.SPECIAL_CIRCUMSTANCES, note="account theft confirmed"
    )

    # Then nothing is paid and the decision records the reason code and why
    assert state(claim) == (ClaimStatus.REJECTED, None, alice.pk, False, 1)
    assert list(claim.decisions.values_list("action", "reason_code", "note")) == [
        ("reject", "special_circumstances", "account theft confirmed")
    ]


def test_the_preparer_cannot_reject_either(reviewers):
    alice, _bob = reviewers
    claim = ClaimFactory.create(prepared_by=alice)

    refused(lambda: claim_reject(claim=claim, actor=alice, reason_code="not_eligible"), RefusalCode.OWN_WORK)

    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)


def test_request_info_then_reopen_then_approve(reviewers):
    # Given a pending claim
    alice, bob = reviewers
    claim = ClaimFactory.create(amount_jpy=3000)

    # When information is requested without saying what: refused
    refused(lambda: claim_request_info(claim=claim, actor=alice, note=""), RefusalCode.NOTE_REQUIRED)
    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)

    # When information is requested
    claim_request_info(claim=claim, actor=alice, note="bank account holder name?")

    # Then the claim waits; it cannot be approved or reopened without a note meanwhile
    on_hold = state(claim)
    assert on_hold == (ClaimStatus.INFO_REQUESTED, None, None, False, 1)
    refused(lambda: claim_approve(claim=claim, actor=bob), RefusalCode.STATUS)
    refused(lambda: claim_reopen(claim=claim, actor=alice, note=""), RefusalCode.NOTE_REQUIRED)
    assert state(claim) == on_hold

    # When reopened, it is pending again and the reviewer who asked may still approve (asking is not deciding)
    claim_reopen(claim=claim, actor=alice, note="customer answered by phone")
    assert state(claim)[0] == ClaimStatus.PENDING_REVIEW
    refused(lambda: claim_reopen(claim=claim, actor=alice, note="again"), RefusalCode.STATUS)
    claim_approve(claim=claim, actor=alice)

    assert state(claim) == (ClaimStatus.APPROVED, 3000, alice.pk, False, 3)
    assert history(claim) == [
        ("rev-a", "request_info", "pending_review", "info_requested"),
        ("rev-a", "reopen", "info_requested", "pending_review"),
        ("rev-a", "approve", "pending_review", "approved"),
    ]


def test_a_reopened_rejection_needs_someone_else_to_approve(reviewers):
    alice, bob = reviewers
    claim = ClaimFactory.create(amount_jpy=3000)
    claim_reject(claim=claim, actor=alice, reason_code=RejectReason.INSUFFICIENT_EVIDENCE)
    claim_reopen(claim=claim, actor=alice, note="receipt arrived")
    reopened = state(claim)

    refused(lambda: claim_approve(claim=claim, actor=alice), RefusalCode.ALREADY_DECIDED)
    assert state(claim) == reopened == (ClaimStatus.PENDING_REVIEW, None, alice.pk, False, 2)

    claim_approve(claim=claim, actor=bob)
    assert state(claim) == (ClaimStatus.APPROVED, 3000, bob.pk, False, 3)


def test_bulk_approve_takes_only_the_lowest_band_and_lists_the_others(reviewers):
    # Given claims in every situation (lowest band ≤ ¥1,000, threshold ¥10,000)
    alice, _bob = reviewers
    program = ReviewProgramFactory.create()
    low = ClaimFactory.create(program=program, amount_jpy=1000)
    low_2 = ClaimFactory.create(program=program, amount_jpy=1)
    middle = ClaimFactory.create(program=program, amount_jpy=1001)
    ineligible = ClaimFactory.create(program=program, amount_jpy=0, eligible=False, reason="no_charge")
    rereview = ClaimFactory.create(program=program, amount_jpy=500, status=ClaimStatus.NEEDS_REREVIEW)
    own = ClaimFactory.create(program=program, amount_jpy=500, prepared_by=alice)
    others = [middle, ineligible, rereview, own]
    before = {c.pk: state(c) for c in others}

    # When a reviewer bulk-approves all of them (and an id that does not exist)
    result = claims_bulk_approve(claim_ids=[c.pk for c in [own, *others, low_2, low]] + [999999], actor=alice)

    # Then exactly the lowest-band pending ones are approved; the others are refused, listed and unchanged
    assert result.approved == [low.pk, low_2.pk]
    assert [(r.claim_id, r.code) for r in result.refused] == [
        (middle.pk, RefusalCode.NOT_LOWEST_BAND),
        (ineligible.pk, RefusalCode.NOT_ELIGIBLE),
        (rereview.pk, RefusalCode.STATUS),
        (own.pk, RefusalCode.OWN_WORK),
        (999999, RefusalCode.NOT_FOUND),
    ]
    assert all(str(c) in r.message for c, r in zip(others, result.refused, strict=False))
    assert result.qa_flagged == []
    assert {c.pk: state(c) for c in others} == before
    assert state(low) == (ClaimStatus.APPROVED, 1000, alice.pk, False, 1)
    assert state(low_2) == (ClaimStatus.APPROVED, 1, alice.pk, False, 1)
    assert history(low) == [("rev-a", "bulk_approve", "pending_review", "approved")]


def test_bulk_approval_never_skips_a_second_approval(reviewers):
    # Given a program whose auto-approve limit is above its second-approval threshold
    alice, _bob = reviewers
    program = ReviewProgramFactory.create(auto_approve_max_jpy=5000, second_approval_above_jpy=2000)
    claim = ClaimFactory.create(program=program, amount_jpy=3000)

    result = claims_bulk_approve(claim_ids=[claim.pk], actor=alice)

    assert (result.approved, [r.code for r in result.refused]) == ([], [RefusalCode.NOT_LOWEST_BAND])
    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)


def test_qa_sample_with_a_fixed_random_source_flags_exactly_the_drawn_claims(reviewers):
    # Given four lowest-band claims and a 25 % QA sample
    alice, _bob = reviewers
    program = ReviewProgramFactory.create(qa_sample_percent=25)
    claims = ClaimFactory.create_batch(4, program=program, amount_jpy=800)

    # When bulk-approved with draws 0.10, 0.30, 0.249, 0.25 (claim id order)
    result = claims_bulk_approve(
        claim_ids=[c.pk for c in claims], actor=alice, rng=FixedRandom(0.10, 0.30, 0.249, 0.25)
    )

    # Then the first and third (draw < 25 %) are flagged for QA, all four approved
    assert result.approved == [c.pk for c in claims]
    assert result.qa_flagged == [claims[0].pk, claims[2].pk]
    assert list(Claim.objects.filter(qa_review=True).order_by("pk").values_list("pk", flat=True)) == [
        claims[0].pk,
        claims[2].pk,
    ]
    assert {state(c)[0] for c in claims} == {ClaimStatus.APPROVED}


def test_qa_sample_of_zero_draws_nothing_and_hundred_draws_all(reviewers):
    alice, _bob = reviewers
    none = ClaimFactory.create(program=ReviewProgramFactory.create(qa_sample_percent=0), amount_jpy=100)
    every = ClaimFactory.create(program=ReviewProgramFactory.create(qa_sample_percent=100), amount_jpy=100)

    result = claims_bulk_approve(claim_ids=[none.pk, every.pk], actor=alice, rng=FixedRandom(0.0, 0.999))

    assert result.qa_flagged == [every.pk]


@pytest.mark.django_db(transaction=True)
def test_a_double_click_records_one_approval_only():
    # Given a claim above the threshold and one reviewer approving it twice at the same moment
    alice = UserFactory.create(username="rev-race")
    claim = ClaimFactory.create(amount_jpy=20000)
    barrier = threading.Barrier(2)
    outcomes = []

    def approve():
        try:
            barrier.wait()
            claim_approve(claim=claim, actor=alice)
            outcomes.append("approved")
        except ClaimDecisionRefused as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=approve) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then the row lock serialised them: one first approval, the other refused as her second
    assert sorted(outcomes) == sorted(["approved", RefusalCode.ALREADY_DECIDED])
    assert state(claim) == (ClaimStatus.AWAITING_SECOND_APPROVAL, None, alice.pk, False, 1)


# --- a decided claim whose source data changed ---------------------------------------------------


def premium_member(login):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    for month in (9, 10, 11):
        ChargeFactory.create(
            subscription=subscription,
            amount_jpy=550,
            charged_at=jst(2024, month, 1, 3),
            period_start=dt.date(2024, month, 1),
            period_end=dt.date(2024, month + 1, 1),
        )
    LoginFactory.create(customer=subscription.customer, logged_in_at=login)
    SubmissionFactory.create(subject=subscription.customer_id, submitted_at=jst(2025, 1, 10))
    return subscription


def test_a_claim_sent_to_rereview_by_a_run_is_approved_again_by_a_different_reviewer(calendar, reviewers):
    # Given a claim computed by a run, approved at ¥1,100 by reviewer A
    alice, bob = reviewers
    subscription = premium_member(login=jst(2024, 10, 20))
    program = template("login-outage-2024")
    as_of = jst(2025, 2, 10, 9)
    program_run(program=program, actor=None, as_of=as_of, calendar=calendar)
    claim = Claim.objects.get(subject=subscription.customer_id)
    Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.PENDING_REVIEW)
    claim_approve(claim=claim, actor=alice)
    assert state(claim) == (ClaimStatus.APPROVED, 1100, alice.pk, False, 1)

    # When the login data is corrected and the program runs again
    Login.objects.filter(customer=subscription.customer).delete()
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 11, 5))
    program_run(program=program, actor=None, as_of=as_of, calendar=calendar)
    claim.refresh_from_db()
    assert (claim.status, claim.amount_jpy, claim.approved_amount_jpy) == (ClaimStatus.NEEDS_REREVIEW, 1650, 1100)

    # Then reviewer A may not approve it again, reviewer B may, at the new amount
    refused(lambda: claim_approve(claim=claim, actor=alice), RefusalCode.ALREADY_DECIDED)
    assert state(claim) == (ClaimStatus.NEEDS_REREVIEW, 1100, alice.pk, False, 1)
    claim_approve(claim=claim, actor=bob)
    assert state(claim) == (ClaimStatus.APPROVED, 1650, bob.pk, False, 2)
    assert history(claim) == [
        ("rev-a", "approve", "pending_review", "approved"),
        ("rev-b", "approve", "needs_rereview", "approved"),
    ]


def test_a_first_approval_is_sent_to_rereview_when_the_amount_changes(calendar, reviewers):
    # Given a claim above the threshold with one approval
    alice, _bob = reviewers
    subscription = premium_member(login=jst(2024, 10, 20))
    program = template("login-outage-2024")
    program.second_approval_above_jpy = 1000
    program.save()
    program_run(program=program, actor=None, as_of=jst(2025, 2, 10, 9), calendar=calendar)
    claim = Claim.objects.get(subject=subscription.customer_id)
    Claim.objects.filter(pk=claim.pk).update(status=ClaimStatus.PENDING_REVIEW)
    claim_approve(claim=claim, actor=alice)
    assert state(claim)[0] == ClaimStatus.AWAITING_SECOND_APPROVAL

    # When a run changes the amount, the second approver does not see a silently different amount
    Login.objects.filter(customer=subscription.customer).delete()
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 11, 5))
    result = program_run(program=program, actor=None, as_of=jst(2025, 2, 10, 9), calendar=calendar)

    assert (result.sent_to_rereview, state(claim)[0]) == (1, ClaimStatus.NEEDS_REREVIEW)


# --- admin --------------------------------------------------------------------------------------


def staff_client(username, role):
    roles_sync()
    user = UserFactory.create(username=username)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return user, client


def action_choices(client):
    response = client.get(CHANGELIST)
    assert response.status_code == 200
    form = response.context["action_form"]  # None when the user may run no action at all
    return [value for value, _label in form.fields["action"].choices if value] if form else []


def post_action(client, action, claims, **fields):
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [c.pk for c in claims], **fields}, follow=True
    )
    assert response.status_code == 200
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def test_reviewer_approves_from_the_changelist_and_sees_each_refusal():
    # Given a reviewer, a claim to approve and one they prepared
    reviewer, client = staff_client("reviewer-1", "reviewer")
    claim = ClaimFactory.create(amount_jpy=5000)
    own = ClaimFactory.create(amount_jpy=5000, prepared_by=reviewer)

    # Then every review action is offered
    assert action_choices(client) == [
        "approve_claims",
        "approve_and_pay_claims",  # payouts' action (issue 5), offered next to approval
        "bulk_approve_claims",
        "reject_claims",
        "request_info_claims",
        "reopen_claims",
        "apply_coupon_remedies",  # coupon-outage ledger remedies of approved claims (claims.remedies)
    ]

    # When they approve both
    messages = post_action(client, "approve_claims", [claim, own])

    # Then one is approved and the refusal names the other claim and the reason
    assert messages == [
        ("error", f"claim {own}: nobody approves a claim they prepared (prepared_by_actor)"),
        ("success", "1 claim(s) approved."),
    ]
    assert state(claim) == (ClaimStatus.APPROVED, 5000, reviewer.pk, False, 1)
    assert state(own) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)


def test_reviewer_rejects_with_a_reason_from_the_action_bar():
    reviewer, client = staff_client("reviewer-2", "reviewer")
    claim = ClaimFactory.create()

    missing = post_action(client, "reject_claims", [claim])
    assert missing == [("error", f"claim {claim}: a rejection needs a reason code (reason_required)")]
    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)

    done = post_action(client, "reject_claims", [claim], reason_code="fraud_suspected", note="card reported stolen")
    assert done == [("success", "1 claim(s) rejected.")]
    assert state(claim) == (ClaimStatus.REJECTED, None, reviewer.pk, False, 1)
    assert claim.decisions.get().reason_code == "fraud_suspected"


def test_reviewer_bulk_approves_from_the_changelist():
    _reviewer, client = staff_client("reviewer-3", "reviewer")
    low = ClaimFactory.create(amount_jpy=900)
    high = ClaimFactory.create(amount_jpy=9000)

    messages = post_action(client, "bulk_approve_claims", [low, high])

    assert messages == [
        (
            "error",
            f"claim {high}: ¥9,000 is above the lowest band (up to ¥1,000)"
            " or needs a second approval (not_lowest_band)",
        ),
        ("success", "1 claim(s) approved, 0 drawn into the QA sample."),
    ]
    assert (state(low)[0], state(high)[0]) == (ClaimStatus.APPROVED, ClaimStatus.PENDING_REVIEW)


def test_manager_gives_second_approvals_but_cannot_reject():
    _reviewer, reviewer_client = staff_client("reviewer-4", "reviewer")
    manager, client = staff_client("manager-1", "manager")
    claim = ClaimFactory.create(amount_jpy=50000)
    post_action(reviewer_client, "approve_claims", [claim])

    assert action_choices(client) == [
        "approve_claims",
        "approve_and_pay_claims",
        "bulk_approve_claims",
        "apply_coupon_remedies",
    ]
    post_action(client, "approve_claims", [claim])

    assert state(claim) == (ClaimStatus.APPROVED, 50000, manager.pk, False, 2)


def test_agent_has_no_review_actions_and_posting_one_changes_nothing():
    # Given an agent (may view claims, may not decide them)
    _agent, client = staff_client("agent-1", "agent")
    claim = ClaimFactory.create(amount_jpy=500)

    # Then no review action is offered
    assert action_choices(client) == []

    # And posting one anyway changes nothing
    for action in ["approve_claims", "bulk_approve_claims", "reject_claims"]:
        client.post(
            CHANGELIST, {"action": action, "_selected_action": [claim.pk], "reason_code": "duplicate"}, follow=True
        )
    assert state(claim) == (ClaimStatus.PENDING_REVIEW, None, None, False, 0)
    assert ClaimDecision.objects.count() == 0


def test_claim_page_shows_the_decision_history_read_only(reviewers):
    alice, bob = reviewers
    claim = ClaimFactory.create(amount_jpy=20000)
    claim_approve(claim=claim, actor=alice, note="checked the charges")
    claim_approve(claim=claim, actor=bob)
    _manager, client = staff_client("manager-2", "manager")

    response = client.get(f"/admin/claims/claim/{claim.pk}/change/")

    assert response.status_code == 200
    inline = next(f for f in response.context["inline_admin_formsets"] if f.opts.model is ClaimDecision)
    assert inline.has_add_permission is False
    assert inline.has_change_permission is False
    assert inline.has_delete_permission is False
    assert [(f.original.actor.username, f.original.action) for f in inline] == [
        ("rev-a", DecisionAction.APPROVE),
        ("rev-b", DecisionAction.APPROVE),
    ]
    assert "checked the charges" in response.content.decode()


def test_changelist_filters_by_amount_band_status_and_qa(reviewers):
    alice, _bob = reviewers
    program = ReviewProgramFactory.create(qa_sample_percent=100)
    low = ClaimFactory.create(program=program, amount_jpy=1000)
    middle = ClaimFactory.create(program=program, amount_jpy=10000)
    high = ClaimFactory.create(program=program, amount_jpy=10001)
    claim_approve(claim=high, actor=alice)
    claims_bulk_approve(claim_ids=[low.pk], actor=alice, rng=FixedRandom(0.5))
    _reviewer, client = staff_client("reviewer-5", "reviewer")

    def listed(query):
        response = client.get(f"{CHANGELIST}?program__id__exact={program.pk}&{query}")
        assert response.status_code == 200
        return sorted(c.pk for c in response.context["cl"].result_list)

    assert listed("band=lowest") == [low.pk]
    assert listed("band=middle") == [middle.pk]
    assert listed("band=second") == [high.pk]
    assert listed("status__exact=awaiting_second_approval") == [high.pk]
    assert listed("qa_review__exact=1") == [low.pk]
