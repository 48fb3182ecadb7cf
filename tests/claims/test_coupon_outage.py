"""coupon-outage-2023: classes A and B (seed 001)."""

import pytest

from claims.engine import common, compute_entitlements
from tests.claims.factories import (
    CouponFactory,
    CouponPaymentConfirmationFactory,
    CouponTransactionFactory,
    SubmissionFactory,
    jst,
    template,
)
from tests.claims.helpers import rows

pytestmark = pytest.mark.django_db

AS_OF = jst(2023, 6, 1)


@pytest.fixture
def program():
    return template("coupon-outage-2023")


def call(coupon, submitted_at=None):
    return SubmissionFactory.create(
        program=template("coupon-outage-2023"),
        subject=coupon.inquiry_number,
        submitted_at=submitted_at or jst(2023, 3, 10, 11),
        channel="phone",
    )


def pay(coupon, at, amount=1000, store="長崎ちゃんぽん本店", kind="payment"):
    return CouponTransactionFactory.create(
        coupon=coupon, occurred_at=at, amount_jpy=amount, store_name=store, kind=kind
    )


def test_class_a_app_coupon_needs_no_application_and_pays_the_balance_at_march_31(program, calendar):
    # Given an app coupon expiring on the outage day with ¥3000 face value, ¥1000 spent in March
    coupon = CouponFactory.create(via_app=True, face_value_jpy=3000, expires_at=jst(2023, 2, 24, 23, 59))
    pay(coupon, jst(2023, 3, 20, 12))

    row = rows(program, calendar, AS_OF)[coupon.inquiry_number]

    assert row == {
        "subject": coupon.inquiry_number,
        "eligible": "true",
        "amount_jpy": "2000",
        "payee": coupon.customer_id,
        "lines": "balance at 2023-03-31 23:59=2000",
        "reason": "",
    }


def test_class_a_paper_coupon_needs_an_application_by_april_30(program, calendar):
    applied = CouponFactory.create(expires_at=jst(2023, 2, 24, 12))
    late = CouponFactory.create(expires_at=jst(2023, 2, 24, 12))
    withdrawn = CouponFactory.create(via_app=True, app_withdrawn=True, expires_at=jst(2023, 2, 24, 12))
    call(applied, jst(2023, 4, 30, 23, 59, 59))
    call(late, jst(2023, 5, 1, 0, 0))

    result = rows(program, calendar, AS_OF)

    assert (result[applied.inquiry_number]["eligible"], result[applied.inquiry_number]["amount_jpy"]) == (
        "true",
        "3000",
    )
    assert result[late.inquiry_number]["reason"] == "late_application"
    assert result[withdrawn.inquiry_number]["reason"] == "no_application"


def test_class_a_needs_a_balance_after_the_first_extension(program, calendar):
    spent = CouponFactory.create(via_app=True, face_value_jpy=1000, expires_at=jst(2023, 2, 24, 12))
    pay(spent, jst(2023, 2, 26, 23, 59, 30))  # within the minute 23:59 of 02-26: counts as before the instant
    later_expiry = CouponFactory.create(via_app=True, expires_at=jst(2023, 2, 25, 0, 0))

    result = rows(program, calendar, AS_OF)

    assert spent.inquiry_number not in result
    assert later_expiry.inquiry_number not in result


def test_class_a_fully_used_by_march_31_is_used(program, calendar):
    coupon = CouponFactory.create(via_app=True, face_value_jpy=1000, expires_at=jst(2023, 2, 24, 12))
    pay(coupon, jst(2023, 3, 31, 23, 59, 59))

    assert rows(program, calendar, AS_OF)[coupon.inquiry_number]["reason"] == "used"


def test_balance_counts_charges_payments_and_reversals(program, calendar):
    coupon = CouponFactory.create(via_app=True, face_value_jpy=2000, expires_at=jst(2023, 2, 24, 12))
    pay(coupon, jst(2023, 2, 20), amount=500, kind="charge")
    pay(coupon, jst(2023, 2, 21), amount=1500)
    pay(coupon, jst(2023, 2, 22), amount=300, kind="reversal")
    pay(coupon, jst(2023, 4, 1), amount=100, kind="charge")  # after the remedy expiry: not counted

    assert rows(program, calendar, AS_OF)[coupon.inquiry_number]["amount_jpy"] == "1300"


def test_class_b2_duplicates_within_120_seconds_are_restored_after_the_call(program, calendar):
    # Given a coupon (not class A) charged three times in a run and once more after 121 s
    coupon = CouponFactory.create(face_value_jpy=5000, expires_at=jst(2023, 3, 31, 23, 59))
    pay(coupon, jst(2023, 2, 24, 18, 0, 0))
    dup1 = pay(coupon, jst(2023, 2, 24, 18, 1, 0))
    dup2 = pay(coupon, jst(2023, 2, 24, 18, 3, 0))  # 120 s after the previous: still a duplicate
    pay(coupon, jst(2023, 2, 24, 18, 5, 1))  # 121 s: a new payment
    pay(coupon, jst(2023, 2, 24, 18, 5, 30), store="別の店")  # other store: not a duplicate
    call(coupon)

    row = rows(program, calendar, AS_OF)[coupon.inquiry_number]

    # Balance at 03-31: 5000 - 5000 = 0; restored 2000
    assert row["lines"] == (
        f"restored payment {dup1.transaction_id} 長崎ちゃんぽん本店=1000;"
        f"restored payment {dup2.transaction_id} 長崎ちゃんぽん本店=1000"
    )
    assert (row["eligible"], row["amount_jpy"]) == ("true", "2000")


def test_class_b_without_a_call_is_no_application(program, calendar):
    coupon = CouponFactory.create(face_value_jpy=5000, expires_at=jst(2023, 3, 31, 23, 59))
    pay(coupon, jst(2023, 2, 24, 18, 0, 0))
    pay(coupon, jst(2023, 2, 24, 18, 0, 30))

    assert rows(program, calendar, AS_OF)[coupon.inquiry_number]["reason"] == "no_application"


def test_class_b_outside_the_outage_window_is_not_covered(program, calendar):
    coupon = CouponFactory.create(face_value_jpy=5000, expires_at=jst(2023, 3, 31, 23, 59))
    pay(coupon, jst(2023, 2, 24, 15, 58, 0))
    pay(coupon, jst(2023, 2, 24, 15, 59, 59))
    call(coupon)

    assert rows(program, calendar, AS_OF)[coupon.inquiry_number]["reason"] == "not_covered"


def test_class_b1_needs_the_store_confirmation_recorded_by_an_agent(program, calendar):
    confirmed = CouponFactory.create(face_value_jpy=3000, expires_at=jst(2023, 3, 31, 23, 59))
    unconfirmed = CouponFactory.create(face_value_jpy=3000, expires_at=jst(2023, 3, 31, 23, 59))
    payment = pay(confirmed, jst(2023, 2, 24, 20), amount=3000)
    pay(unconfirmed, jst(2023, 2, 24, 20), amount=3000)
    CouponPaymentConfirmationFactory.create(transaction=payment)
    call(confirmed)
    call(unconfirmed)

    result = rows(program, calendar, AS_OF)

    assert result[confirmed.inquiry_number]["amount_jpy"] == "3000"
    assert result[unconfirmed.inquiry_number]["reason"] == "not_covered"


def test_already_reversed_duplicate_is_not_restored_twice(program, calendar):
    coupon = CouponFactory.create(face_value_jpy=5000, expires_at=jst(2023, 3, 31, 23, 59))
    pay(coupon, jst(2023, 2, 24, 18, 0, 0))
    pay(coupon, jst(2023, 2, 24, 18, 0, 40))
    dup2 = pay(coupon, jst(2023, 2, 24, 18, 1, 20))
    pay(coupon, jst(2023, 2, 25, 10), amount=1000, kind="reversal")  # one of the duplicates reversed already
    call(coupon)

    row = rows(program, calendar, AS_OF)[coupon.inquiry_number]

    # Ledger balance at 03-31: 5000 - 3000 + 1000 = 3000; one duplicate left to restore
    assert (
        row["lines"]
        == f"balance at 2023-03-31 23:59=3000;restored payment {dup2.transaction_id} 長崎ちゃんぽん本店=1000"
    )
    assert row["amount_jpy"] == "4000"


def test_coupons_stream_in_small_fetches_with_their_submissions_and_unknown_subjects(program, calendar, monkeypatch):
    # Given fetches of 2 rows: five class-A app coupons (¥1000 spent from the third on), a paper coupon
    # applied for, and a call about an inquiry number no coupon has
    monkeypatch.setattr(common, "STREAM_FETCH_ROWS", 2)
    app = [CouponFactory.create(via_app=True, face_value_jpy=3000, expires_at=jst(2023, 2, 24, 12)) for _ in range(5)]
    for coupon in app[2:]:
        pay(coupon, jst(2023, 3, 20, 12))
    paper = CouponFactory.create(face_value_jpy=2000, expires_at=jst(2023, 2, 24, 12))
    paper_call = call(paper)
    unknown = SubmissionFactory.create(program=program, subject="Q-NOWHERE", submitted_at=jst(2023, 3, 10))

    # When the entitlements are computed
    result = rows(program, calendar, AS_OF)

    # Then every coupon and the unknown subject appear once, each with its own amount and submission
    assert {subject: (row["eligible"], row["amount_jpy"], row["reason"]) for subject, row in result.items()} == {
        **{c.inquiry_number: ("true", "3000", "") for c in app[:2]},
        **{c.inquiry_number: ("true", "2000", "") for c in app[2:]},
        paper.inquiry_number: ("true", "2000", ""),
        "Q-NOWHERE": ("false", "0", "unknown_subject"),
    }
    by_subject = {e.subject: e for e in compute_entitlements(program=program, as_of=AS_OF, calendar=calendar)}
    assert by_subject[paper.inquiry_number].official_submission_id == paper_call.submission_id
    assert by_subject["Q-NOWHERE"].official_submission_id == unknown.submission_id
    assert {by_subject[c.inquiry_number].official_submission_id for c in app} == {None}
