"""coupon-outage-2023 remedies in the coupon ledger, and the class-B2 duplicates agents confirm (issue 4 item 6)."""

import datetime as dt

import pghistory.models
import pytest
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.test import Client
from django.utils import timezone

from claims.models import Claim, ClaimStatus, CouponDuplicatePayment, CouponRemedy, DuplicatePaymentStatus
from claims.remedies import (
    RemedyRefused,
    coupon_duplicates_decide,
    coupon_duplicates_detect,
    coupon_remedies_apply,
)
from claims.review import ClaimDecisionRefused, RefusalCode, claim_approve, claim_reject, claim_reopen
from claims.services import program_claims_submit_for_review, program_run
from payouts.models import Payout
from payouts.services import payout_issue, payout_transition, payouts_create_for_approved_claims
from support_portal.core.roles import roles_sync
from support_portal.customers.models import CouponTransaction
from support_portal.customers.selectors import coupons_with_balance
from tests.claims.factories import (
    ClaimFactory,
    CouponFactory,
    CouponTransactionFactory,
    SubmissionFactory,
    jst,
    template,
)
from tests.factories import UserFactory
from tests.payouts.conftest import approved_claim as payouts_approved_claim
from tests.payouts.conftest import make_program

pytestmark = pytest.mark.django_db

AS_OF = jst(2023, 6, 1)
STORE = "長崎ちゃんぽん本店"
REMEDY_EXPIRY = jst(2023, 3, 31, 23, 59, 59)


def pay(coupon, at, amount=1000, store=STORE):
    return CouponTransactionFactory.create(coupon=coupon, occurred_at=at, amount_jpy=amount, store_name=store)


@pytest.fixture
def program():
    program = template("coupon-outage-2023")
    program.second_approval_above_jpy = None
    program.save(update_fields=["second_approval_above_jpy"])
    return program


@pytest.fixture
def duplicated(program, calendar):
    """A class-A paper coupon (face ¥5,000) that called: paid ¥1,000 at 18:00:00, then the button twice more
    (18:01:00, 18:03:00 — duplicates), once 121 s later (a new payment). Balance at 03-31 ¥1,000."""
    coupon = CouponFactory.create(face_value_jpy=5000, expires_at=jst(2023, 2, 24, 23, 59))
    first = pay(coupon, jst(2023, 2, 24, 18, 0, 0))
    dup1 = pay(coupon, jst(2023, 2, 24, 18, 1, 0))
    dup2 = pay(coupon, jst(2023, 2, 24, 18, 3, 0))
    pay(coupon, jst(2023, 2, 24, 18, 5, 1))
    SubmissionFactory.create(
        program=program, subject=coupon.inquiry_number, submitted_at=jst(2023, 3, 10, 11), channel="phone"
    )
    return coupon, first, dup1, dup2


def run(program, calendar):
    return program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)


def claim_for(program, coupon):
    return Claim.objects.get(program=program, subject=coupon.inquiry_number)


def ledger(coupon):
    """The coupon's remedy rows in the ledger, in id order."""
    return list(
        CouponTransaction.objects.filter(coupon=coupon, kind__in=["restoration", "expiry_extension"])
        .order_by("transaction_id")
        .values_list("transaction_id", "kind", "amount_jpy", "extended_to")
    )


def remedies(claim):
    return list(
        CouponRemedy.objects.filter(claim=claim)
        .order_by("ledger_entry_id")
        .values_list("kind", "restored_payment_id", "ledger_entry_id", "amount_jpy", "applied_by__username")
    )


def queue():
    return list(
        CouponDuplicatePayment.objects.order_by("transaction_id").values_list(
            "transaction_id", "previous_payment_id", "amount_jpy", "status"
        )
    )


# --- detection -----------------------------------------------------------------------------------


def test_a_run_queues_the_duplicates_once_for_agents(program, calendar, duplicated):
    coupon, first, dup1, dup2 = duplicated

    # When the program runs (twice)
    run(program, calendar)
    run(program, calendar)

    # Then each duplicate is queued once, naming the payment it repeats, waiting for an agent
    assert queue() == [
        (dup1.transaction_id, first.transaction_id, 1000, "pending"),
        (dup2.transaction_id, dup1.transaction_id, 1000, "pending"),
    ]
    assert set(CouponDuplicatePayment.objects.values_list("coupon_id", flat=True)) == {coupon.inquiry_number}
    # And the explicit detection finds nothing new
    assert coupon_duplicates_detect(program=program, actor=None) == 0


def test_detection_is_for_coupon_programs_only():
    with pytest.raises(RemedyRefused) as refused:
        coupon_duplicates_detect(program=template("autorenew-60day"), actor=None)
    assert refused.value.code == RemedyRefused.NOT_APPLICABLE
    assert queue() == []


def test_a_rejected_duplicate_is_not_restored_and_a_confirmed_one_is(program, calendar, duplicated):
    coupon, _first, dup1, _dup2 = duplicated
    run(program, calendar)
    agent = UserFactory.create(username="agent-1")
    [q1, q2] = CouponDuplicatePayment.objects.order_by("transaction_id")

    # When the agent confirms the first and rejects the second (the store's records show two purchases)
    confirmed = coupon_duplicates_decide(duplicate_ids=[q1.pk], actor=agent, status="confirmed")
    rejected = coupon_duplicates_decide(duplicate_ids=[q2.pk], actor=agent, status="rejected", note="two meals")

    assert (confirmed.decided, rejected.decided) == ([q1.pk], [q2.pk])
    q2.refresh_from_db()
    assert (q2.status, q2.decided_by, q2.note) == ("rejected", agent, "two meals")
    # Then the next run restores only the confirmed payment: ¥1,000 balance + ¥1,000
    run(program, calendar)
    claim = claim_for(program, coupon)
    assert list(claim.lines.order_by("position").values_list("rule", "grant_key", "amount_jpy")) == [
        ("coupon-balance", f"coupon:{coupon.inquiry_number}", 1000),
        ("coupon-restore", f"coupon-tx:{dup1.transaction_id}", 1000),
    ]
    assert claim.amount_jpy == 2000
    # And the decisions are audited with the agent
    events = pghistory.models.Events.objects.tracks(q2).order_by("pgh_created_at")
    assert [(e.pgh_label, (e.pgh_context or {}).get("user")) for e in events][-1] == ("update", agent.pk)


def test_refused_duplicate_decisions_change_nothing(program, calendar, duplicated):
    run(program, calendar)
    agent = UserFactory.create()
    [q1, q2] = CouponDuplicatePayment.objects.order_by("transaction_id")
    coupon_duplicates_decide(duplicate_ids=[q1.pk], actor=agent, status="confirmed")
    before = queue()

    # A rejection without a note, an unknown decision, no signed-in person: refused outright
    for kwargs, code in (
        ({"actor": agent, "status": "rejected"}, RemedyRefused.NOT_APPLICABLE),
        ({"actor": agent, "status": "pending"}, RemedyRefused.STATUS),
        ({"actor": None, "status": "confirmed"}, RemedyRefused.NO_ACTOR),
    ):
        with pytest.raises(RemedyRefused) as refused:
            coupon_duplicates_decide(duplicate_ids=[q2.pk], **kwargs)
        assert refused.value.code == code
    # A second decision on the confirmed one, and a missing id: listed, nothing changed
    result = coupon_duplicates_decide(duplicate_ids=[q1.pk, 999999], actor=agent, status="rejected", note="x")
    assert result.decided == []
    assert [pk for pk, _message in result.refused] == [q1.pk, 999999]
    assert queue() == before


# --- remedies in the ledger -------------------------------------------------------------------------


def approved_claim(program, calendar, approver):
    run(program, calendar)
    program_claims_submit_for_review(program=program, actor=None)
    return claim_approve(claim=Claim.objects.get(program=program, eligible=True), actor=approver)


def test_approval_records_the_extension_and_the_restorations_in_the_ledger(program, calendar, duplicated):
    coupon, _first, dup1, dup2 = duplicated
    reviewer = UserFactory.create(username="rev-1")

    # When the claim (¥1,000 balance + ¥1,000 + ¥1,000 restored) is approved
    claim = approved_claim(program, calendar, reviewer)

    # Then the ledger holds exactly the expiry extension and the two restorations, by that reviewer
    assert claim.status == ClaimStatus.APPROVED
    assert ledger(coupon) == [
        (f"remedy:{claim.pk}:expiry_extension", "expiry_extension", 0, REMEDY_EXPIRY),
        (f"remedy:{claim.pk}:restoration:{dup1.transaction_id}", "restoration", 1000, None),
        (f"remedy:{claim.pk}:restoration:{dup2.transaction_id}", "restoration", 1000, None),
    ]
    assert remedies(claim) == [
        ("expiry_extension", None, f"remedy:{claim.pk}:expiry_extension", 0, "rev-1"),
        ("restoration", dup1.transaction_id, f"remedy:{claim.pk}:restoration:{dup1.transaction_id}", 1000, "rev-1"),
        ("restoration", dup2.transaction_id, f"remedy:{claim.pk}:restoration:{dup2.transaction_id}", 1000, "rev-1"),
    ]
    # And each remedy row's insert is audited with the reviewer
    for remedy in CouponRemedy.objects.filter(claim=claim):
        events = pghistory.models.Events.objects.tracks(remedy)
        assert [(e.pgh_label, (e.pgh_context or {}).get("user")) for e in events] == [("insert", reviewer.pk)]
    # When the remedies are applied again, and the program re-runs
    assert coupon_remedies_apply(claim=claim, actor=reviewer) == []
    again = run(program, calendar)
    # Then nothing is added and the claim is unchanged (the engine ignores remedy rows)
    assert len(ledger(coupon)) == 3
    assert CouponRemedy.objects.count() == 3
    assert (again.created, again.updated, again.sent_to_rereview) == (0, 0, 0)
    claim.refresh_from_db()
    assert (claim.status, claim.amount_jpy) == (ClaimStatus.APPROVED, 3000)


def test_a_payment_is_never_restored_twice_even_by_hand(program, calendar, duplicated):
    coupon, _first, dup1, _dup2 = duplicated
    claim = approved_claim(program, calendar, UserFactory.create())
    other = ClaimFactory.create(program=program, subject=coupon.inquiry_number + "-x")
    entry = CouponTransactionFactory.create(coupon=coupon, kind="restoration", amount_jpy=1000)

    # When someone writes a second restoration of the same payment directly: the database refuses it
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponRemedy.objects.create(
            claim=other,
            kind="restoration",
            coupon=coupon,
            restored_payment_id=dup1.transaction_id,
            ledger_entry=entry,
            amount_jpy=1000,
            applied_by=UserFactory.create(),
            applied_at=timezone.now(),
        )
    # And a second extension by the same claim too
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponRemedy.objects.create(
            claim=claim,
            kind="expiry_extension",
            coupon=coupon,
            ledger_entry=entry,
            amount_jpy=0,
            applied_by=UserFactory.create(),
            applied_at=timezone.now(),
        )
    assert CouponRemedy.objects.count() == 3


def test_first_of_two_approvals_records_no_remedy_the_second_does(program, calendar, duplicated):
    coupon, *_ = duplicated
    program.second_approval_above_jpy = 2999
    program.save(update_fields=["second_approval_above_jpy"])
    alice, bob = UserFactory.create(username="alice"), UserFactory.create(username="bob")

    claim = approved_claim(program, calendar, alice)

    assert (claim.status, ledger(coupon)) == (ClaimStatus.AWAITING_SECOND_APPROVAL, [])
    # The same reviewer's second approval is refused and writes nothing
    with pytest.raises(ClaimDecisionRefused) as refused:
        claim_approve(claim=claim, actor=alice)
    assert refused.value.code == RefusalCode.ALREADY_DECIDED
    assert ledger(coupon) == [] and CouponRemedy.objects.count() == 0
    # A second reviewer's approval writes the remedies, attributed to them
    claim = claim_approve(claim=claim, actor=bob)
    assert claim.status == ClaimStatus.APPROVED
    assert [row[4] for row in remedies(claim)] == ["bob", "bob", "bob"]


def test_remedies_are_refused_before_approval_and_for_other_policies(program, calendar, duplicated):
    coupon, *_ = duplicated
    run(program, calendar)
    pending = claim_for(program, coupon)
    refund = ClaimFactory.create(status=ClaimStatus.APPROVED, eligible=True)
    agent = UserFactory.create()

    for claim, actor, code in (
        (pending, agent, RemedyRefused.STATUS),
        (refund, agent, RemedyRefused.NOT_APPLICABLE),
        (pending, None, RemedyRefused.NO_ACTOR),
    ):
        with pytest.raises(RemedyRefused) as refused:
            coupon_remedies_apply(claim=claim, actor=actor)
        assert refused.value.code == code
    assert ledger(coupon) == [] and CouponRemedy.objects.count() == 0


def test_a_restored_payment_can_no_longer_be_rejected(program, calendar, duplicated):
    _coupon, _first, dup1, _dup2 = duplicated
    approved_claim(program, calendar, UserFactory.create())
    q1 = CouponDuplicatePayment.objects.get(transaction_id=dup1.transaction_id)

    result = coupon_duplicates_decide(duplicate_ids=[q1.pk], actor=UserFactory.create(), status="rejected", note="n")

    assert result.refused == [(q1.pk, f"payment {dup1.transaction_id} is already restored in the ledger")]
    q1.refresh_from_db()
    assert q1.status == DuplicatePaymentStatus.PENDING


# --- remedies follow the decision ---------------------------------------------------------------


def reversals(coupon):
    """The coupon's remedy_reversal rows in the ledger, in id order."""
    return list(
        CouponTransaction.objects.filter(coupon=coupon, kind="remedy_reversal")
        .order_by("transaction_id")
        .values_list("transaction_id", "amount_jpy", "extended_to")
    )


def remedy_states(claim):
    """(kind, restored payment, ledger row, reversing ledger row, reversed by) per remedy, in id order."""
    return list(
        CouponRemedy.objects.filter(claim=claim)
        .order_by("pk")
        .values_list("kind", "restored_payment_id", "ledger_entry_id", "reversal_entry_id", "reversed_by__username")
    )


def balance(coupon):
    [row] = [b for b in coupons_with_balance(coupon.customer) if b.coupon.pk == coupon.pk]
    return row.balance_jpy


def sent_back_to_review(program, calendar, coupon):
    """The store reverses a duplicate itself (a later `reversal` of ¥1,000: the engine counts it against the
    earliest duplicate, dup1): the next run takes dup1's restore line away (the ¥1,000 is in the balance
    instead) and sends the approved claim back to review."""
    CouponTransactionFactory.create(
        coupon=coupon, kind="reversal", amount_jpy=1000, occurred_at=jst(2023, 2, 25, 10), store_name=STORE
    )
    result = run(program, calendar)
    assert (result.created, result.updated, result.sent_to_rereview) == (0, 1, 1)
    claim = claim_for(program, coupon)
    assert (claim.status, claim.amount_jpy) == (ClaimStatus.NEEDS_REREVIEW, 3000)
    assert list(claim.lines.values_list("rule", "amount_jpy")) == [("coupon-balance", 2000), ("coupon-restore", 1000)]
    return claim


def test_rejecting_a_claim_whose_approval_wrote_remedies_reverses_every_one(program, calendar, duplicated):
    coupon, _first, dup1, dup2 = duplicated
    first, second = UserFactory.create(username="rev-1"), UserFactory.create(username="rev-2")
    claim = approved_claim(program, calendar, first)
    assert balance(coupon) == 3000  # ¥5,000 − 4 × ¥1,000 + 2 restorations
    claim = sent_back_to_review(program, calendar, coupon)
    ids = list(CouponRemedy.objects.filter(claim=claim).order_by("pk").values_list("pk", flat=True))

    # When a second reviewer rejects it
    claim_reject(claim=claim, actor=second, reason_code="not_eligible")

    # Then each remedy has a reversing ledger row (the restorations' amounts leave the balance) by rev-2
    assert reversals(coupon) == [
        (f"remedy-reversal:{ids[0]}", 0, None),
        (f"remedy-reversal:{ids[1]}", 1000, None),
        (f"remedy-reversal:{ids[2]}", 1000, None),
    ]
    assert remedy_states(claim) == [
        ("expiry_extension", None, f"remedy:{claim.pk}:expiry_extension", f"remedy-reversal:{ids[0]}", "rev-2"),
        (
            "restoration",
            dup1.transaction_id,
            f"remedy:{claim.pk}:restoration:{dup1.transaction_id}",
            f"remedy-reversal:{ids[1]}",
            "rev-2",
        ),
        (
            "restoration",
            dup2.transaction_id,
            f"remedy:{claim.pk}:restoration:{dup2.transaction_id}",
            f"remedy-reversal:{ids[2]}",
            "rev-2",
        ),
    ]
    # And the balance is the ledger's own again: ¥1,000 + the store's ¥1,000 reversal
    assert balance(coupon) == 2000
    # And each reversal is audited with the rejecting reviewer
    for remedy in CouponRemedy.objects.filter(claim=claim):
        events = pghistory.models.Events.objects.tracks(remedy)
        assert [(e.pgh_label, (e.pgh_context or {}).get("user")) for e in events] == [
            ("insert", first.pk),
            ("update", second.pk),
        ]
    # And a payment no longer restored may now be decided a genuine purchase
    q1 = CouponDuplicatePayment.objects.get(transaction_id=dup1.transaction_id)
    decided = coupon_duplicates_decide(duplicate_ids=[q1.pk], actor=second, status="rejected", note="store: paid")
    assert (decided.decided, decided.refused) == ([q1.pk], [])


def test_a_reapproval_reverses_only_the_restoration_its_lines_no_longer_make(program, calendar, duplicated):
    coupon, _first, dup1, dup2 = duplicated
    first, second = UserFactory.create(username="rev-1"), UserFactory.create(username="rev-2")
    claim = approved_claim(program, calendar, first)
    claim = sent_back_to_review(program, calendar, coupon)
    dup1_remedy = CouponRemedy.objects.get(claim=claim, restored_payment_id=dup1.transaction_id)

    # When a second reviewer approves the recomputed lines (balance ¥2,000 + dup2 restored ¥1,000)
    claim = claim_approve(claim=claim, actor=second)

    # Then only dup1's restoration is reversed; the extension and dup2's restoration stay live
    assert (claim.status, claim.approved_amount_jpy) == (ClaimStatus.APPROVED, 3000)
    assert reversals(coupon) == [(f"remedy-reversal:{dup1_remedy.pk}", 1000, None)]
    assert remedy_states(claim) == [
        ("expiry_extension", None, f"remedy:{claim.pk}:expiry_extension", None, None),
        (
            "restoration",
            dup1.transaction_id,
            f"remedy:{claim.pk}:restoration:{dup1.transaction_id}",
            f"remedy-reversal:{dup1_remedy.pk}",
            "rev-2",
        ),
        ("restoration", dup2.transaction_id, f"remedy:{claim.pk}:restoration:{dup2.transaction_id}", None, None),
    ]
    # ¥5,000 − ¥4,000 + the store's ¥1,000 + one live restoration: what the claim now says is left
    assert balance(coupon) == 3000
    # And applying again, or another run, changes nothing
    assert coupon_remedies_apply(claim=claim, actor=second) == []
    again = run(program, calendar)
    assert (again.created, again.updated, again.sent_to_rereview) == (0, 0, 0)
    assert CouponRemedy.objects.count() == 3 and len(reversals(coupon)) == 1


def test_an_approval_after_a_rejection_applies_the_remedies_again_as_new_ledger_rows(program, calendar, duplicated):
    coupon, _first, _dup1, dup2 = duplicated
    first, second, third = (UserFactory.create(username=f"rev-{n}") for n in (1, 2, 3))
    claim = approved_claim(program, calendar, first)
    claim = sent_back_to_review(program, calendar, coupon)
    claim = claim_reject(claim=claim, actor=second, reason_code="insufficient_evidence")
    claim = claim_reopen(claim=claim, actor=second, note="the store confirmed the duplicate after all")

    # When a third reviewer approves it
    claim = claim_approve(claim=claim, actor=third)

    # Then the extension and dup2's restoration are written again (second generation ids), dup1 is not
    live = list(
        CouponRemedy.objects.filter(claim=claim, reversed_at__isnull=True)
        .order_by("pk")
        .values_list("kind", "restored_payment_id", "ledger_entry_id", "applied_by__username")
    )
    assert live == [
        ("expiry_extension", None, f"remedy:{claim.pk}:expiry_extension#2", "rev-3"),
        ("restoration", dup2.transaction_id, f"remedy:{claim.pk}:restoration:{dup2.transaction_id}#2", "rev-3"),
    ]
    assert CouponRemedy.objects.filter(claim=claim, reversed_at__isnull=False).count() == 3
    assert balance(coupon) == 3000


def test_a_reversal_must_say_who_and_when_and_which_ledger_row(program, calendar, duplicated):
    coupon, *_ = duplicated
    claim = approved_claim(program, calendar, UserFactory.create())
    remedy = CouponRemedy.objects.filter(claim=claim).earliest("pk")

    # When a reversal time is written without its ledger row and actor: the database refuses it
    with pytest.raises(IntegrityError), transaction.atomic():
        CouponRemedy.objects.filter(pk=remedy.pk).update(reversed_at=timezone.now())
    remedy.refresh_from_db()
    assert (remedy.reversed_at, remedy.reversal_entry_id, remedy.reversed_by_id) == (None, None, None)
    assert reversals(coupon) == []


# --- the balance paid out leaves the coupon -------------------------------------------------------


def test_a_settled_payout_takes_the_balance_paid_out_off_the_coupon(program, calendar, duplicated):
    coupon, *_ = duplicated
    program.default_payout_method = "points:amazon"
    program.receipt_deadline = dt.date.today() + dt.timedelta(days=365)
    program.save(update_fields=["default_payout_method", "receipt_deadline"])
    claim = approved_claim(program, calendar, UserFactory.create())
    payouts_create_for_approved_claims(program=program, actor=None)
    payout = Payout.objects.get(claim=claim)
    payout_issue(payout_id=payout.pk)
    assert balance(coupon) == 3000 == payout.amount_jpy  # ¥1,000 left + ¥2,000 restored

    # When the customer receives it (the provider's settlement)
    finance = UserFactory.create(username="finance-s")
    payout_transition(payout_id=payout.pk, to="settled", actor=finance, note="received")

    # Then one cash_out row takes the ¥3,000 off the coupon: nothing left to pay or spend
    assert list(
        CouponTransaction.objects.filter(coupon=coupon, kind="cash_out").values_list("transaction_id", "amount_jpy")
    ) == [(f"cash-out:{payout.pk}", 3000)]
    assert balance(coupon) == 0
    # And a payout of another policy settles without touching any coupon
    other = make_program()
    other_claim = payouts_approved_claim(other, amount=700)
    payouts_create_for_approved_claims(program=other, actor=None)
    other_payout = Payout.objects.get(claim=other_claim)
    payout_issue(payout_id=other_payout.pk)
    ledger_rows = CouponTransaction.objects.count()
    payout_transition(payout_id=other_payout.pk, to="settled", actor=finance)
    assert CouponTransaction.objects.count() == ledger_rows


# --- admin -----------------------------------------------------------------------------------------


def staff_client(username, role):
    roles_sync()
    user = UserFactory.create(username=username)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return user, client


QUEUE_URL = "/admin/claims/couponduplicatepayment/"


def test_agents_confirm_duplicates_from_the_queue_reviewers_only_see_it(program, calendar, duplicated):
    run(program, calendar)
    [q1, q2] = CouponDuplicatePayment.objects.order_by("transaction_id")
    agent, agent_client = staff_client("agent-q", "agent")
    _reviewer, reviewer_client = staff_client("reviewer-q", "reviewer")

    page = agent_client.get(QUEUE_URL, {"status__exact": "pending"})
    assert page.status_code == 200
    assert [v for v, _l in page.context["action_form"].fields["action"].choices if v] == [
        "confirm_duplicates",
        "reject_duplicates",
    ]
    assert reviewer_client.get(QUEUE_URL).context["action_form"] is None

    response = agent_client.post(
        QUEUE_URL, {"action": "confirm_duplicates", "_selected_action": [q1.pk, q2.pk]}, follow=True
    )

    assert [(m.level_tag, str(m)) for m in response.context["messages"]] == [("success", "2 payment(s) confirmed.")]
    assert list(CouponDuplicatePayment.objects.values_list("status", "decided_by", flat=False).distinct()) == [
        ("confirmed", agent.pk)
    ]
    # A reviewer posting the action changes nothing
    reviewer_client.post(QUEUE_URL, {"action": "reject_duplicates", "_selected_action": [q1.pk], "note": "n"})
    assert set(CouponDuplicatePayment.objects.values_list("status", flat=True)) == {"confirmed"}


def test_apply_remedies_action_for_approved_claims(program, calendar, duplicated):
    coupon, *_ = duplicated
    claim = approved_claim(program, calendar, UserFactory.create())
    CouponRemedy.objects.filter(claim=claim).delete()  # as if approved before remedies existed
    CouponTransaction.objects.filter(coupon=coupon, kind__in=["restoration", "expiry_extension"]).delete()
    _reviewer, client = staff_client("reviewer-r", "reviewer")

    response = client.post(
        "/admin/claims/claim/", {"action": "apply_coupon_remedies", "_selected_action": [claim.pk]}, follow=True
    )

    assert [(m.level_tag, str(m)) for m in response.context["messages"]] == [
        ("success", "3 ledger remedy row(s) written.")
    ]
    assert len(ledger(coupon)) == 3
