"""Original-method refunds: due date, delay interest, the payer / payment-method rule and the simulator."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claims.engine.types import APP_STORE_INSTRUCTIONS
from payouts.models import SimulatorIssuance
from payouts.providers.base import ProviderPermanentError
from payouts.providers.refund_simulator import RefundProviderSimulator
from payouts.refunds import (
    RefundCharge,
    RefundOutcome,
    RefundProvider,
    RefundRequest,
    RefundResult,
    RefundRoute,
    days_late,
    delay_interest_jpy,
    refund_charge_for,
    refund_due_date,
    refund_route,
)
from support_portal.core.business_days import BusinessCalendar
from tests.factories import ChargeFactory, CustomerFactory, SubscriptionFactory

JST = ZoneInfo("Asia/Tokyo")
CALENDAR = BusinessCalendar(first_year=2025, last_year=2027)


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0):
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=JST)


# --- due date -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested_at", "due"),
    [
        # Monday → Thursday
        (jst(2026, 6, 1, 10, 0), jst(2026, 6, 4, 23, 59, 59, 999999)),
        # Friday before Golden Week: 5/4-5/6 are holidays → Thu 5/7, Fri 5/8, Mon 5/11
        (jst(2026, 5, 1, 18, 0), jst(2026, 5, 11, 23, 59, 59, 999999)),
        # Saturday: the request's own day never counts → Mon, Tue, Wed
        (jst(2026, 6, 6, 9, 0), jst(2026, 6, 10, 23, 59, 59, 999999)),
        # year-end closure 12/31-1/3: 12/29 (Tue) → 12/30, 1/4, 1/5
        (jst(2026, 12, 29, 12, 0), jst(2027, 1, 5, 23, 59, 59, 999999)),
        # 23:30 UTC on Sunday is Monday JST
        (dt.datetime(2026, 5, 31, 23, 30, tzinfo=dt.UTC), jst(2026, 6, 4, 23, 59, 59, 999999)),
    ],
)
def test_refund_due_date_is_the_end_of_the_third_business_day(requested_at, due):
    assert refund_due_date(requested_at=requested_at, calendar=CALENDAR) == due


def test_refund_due_date_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive datetime"):
        refund_due_date(requested_at=dt.datetime(2026, 6, 1, 10, 0), calendar=CALENDAR)


def test_refund_due_date_respects_company_closed_days():
    calendar = BusinessCalendar(first_year=2026, last_year=2026, company_closed_days=[dt.date(2026, 6, 3)])
    assert refund_due_date(requested_at=jst(2026, 6, 1, 10, 0), calendar=calendar) == jst(
        2026, 6, 5, 23, 59, 59, 999999
    )


# --- delay interest ----------------------------------------------------------------------------------

DUE = jst(2026, 6, 4, 23, 59, 59, 999999)


@pytest.mark.parametrize(
    ("sent_at", "late"),
    [
        (jst(2026, 6, 2, 9, 0), 0),
        (DUE, 0),
        (jst(2026, 6, 5, 0, 0), 1),
        (jst(2026, 6, 5, 23, 59), 1),
        (jst(2026, 7, 4, 12, 0), 30),
        (dt.datetime(2026, 6, 4, 15, 0, tzinfo=dt.UTC), 1),  # 00:00 JST on 6/5
        (jst(2027, 6, 4, 10, 0), 365),
    ],
)
def test_days_late_counts_jst_calendar_days(sent_at, late):
    assert days_late(due_at=DUE, sent_at=sent_at) == late


@pytest.mark.parametrize(
    ("amount", "sent_at", "interest"),
    [
        (10_000, DUE, 0),  # on time
        (10_000, jst(2026, 6, 3, 10, 0), 0),  # early
        (1_000, jst(2026, 6, 5, 10, 0), 0),  # 1000 × 3 × 1 // 36500 = 0
        (10_000, jst(2026, 7, 4, 10, 0), 24),  # 10000 × 3 × 30 // 36500 = 24.6 → 24
        (365_000, jst(2026, 6, 5, 10, 0), 30),  # exactly 30
        (365_001, jst(2026, 6, 5, 10, 0), 30),  # 30.0008 → 30
        (100_000, jst(2027, 6, 4, 10, 0), 3_000),  # a full year: 3 %
        (1_000_000, jst(2026, 6, 14, 10, 0), 821),  # 10 days: 821.9 → 821 (one rounding, not per day)
    ],
)
def test_delay_interest_is_3_percent_a_year_rounded_down(amount, sent_at, interest):
    assert delay_interest_jpy(amount_jpy=amount, due_at=DUE, sent_at=sent_at) == interest


def test_delay_interest_uses_365_days_in_a_leap_year():
    # given a due date in leap year 2028 and a request sent 366 calendar days later
    due = jst(2028, 1, 10, 23, 59, 59, 999999)
    sent = jst(2029, 1, 10, 12, 0)
    # then interest is for 366 days on a 365-day year
    assert delay_interest_jpy(amount_jpy=365_000, due_at=due, sent_at=sent) == 365_000 * 3 * 366 // 36_500 == 10_980


@pytest.mark.parametrize("amount", [-1, True, 1.0, "100"])
def test_delay_interest_refuses_bad_amounts(amount):
    with pytest.raises(ValueError, match="amount_jpy must be a non-negative whole number of yen"):
        delay_interest_jpy(amount_jpy=amount, due_at=DUE, sent_at=jst(2026, 7, 1))


def test_delay_interest_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="naive datetime"):
        delay_interest_jpy(amount_jpy=100, due_at=DUE, sent_at=dt.datetime(2026, 6, 1))


@given(
    amount=st.integers(min_value=0, max_value=10_000_000),
    late=st.integers(min_value=0, max_value=3_000),
)
def test_delay_interest_never_rounds_up_and_grows_with_days(amount, late):
    sent = DUE + dt.timedelta(days=late)
    interest = delay_interest_jpy(amount_jpy=amount, due_at=DUE, sent_at=sent)
    assert interest * 36_500 <= amount * 3 * late < (interest + 1) * 36_500
    assert interest <= delay_interest_jpy(amount_jpy=amount, due_at=DUE, sent_at=sent + dt.timedelta(days=1))


# --- route ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "payer", "expected"),
    [
        ("card", "", RefundRoute(RefundOutcome.REQUESTED, "card", "user-1")),
        ("card", "payer-9", RefundRoute(RefundOutcome.REQUESTED, "card", "payer-9")),
        ("carrier", "", RefundRoute(RefundOutcome.REQUESTED, "carrier", "user-1")),
        ("points", "payer-9", RefundRoute(RefundOutcome.REQUESTED, "points", "payer-9")),
        ("convenience", "", RefundRoute(RefundOutcome.NEEDS_BANK_ACCOUNT, "convenience", "user-1")),
        ("bank", "payer-9", RefundRoute(RefundOutcome.NEEDS_BANK_ACCOUNT, "bank", "payer-9")),
        (
            "apple_iap",
            "",
            RefundRoute(RefundOutcome.ASK_STORE, "apple_iap", "user-1", APP_STORE_INSTRUCTIONS["apple_iap"]),
        ),
        (
            "google_play",
            "payer-9",
            RefundRoute(RefundOutcome.ASK_STORE, "google_play", "payer-9", APP_STORE_INSTRUCTIONS["google_play"]),
        ),
    ],
)
def test_refund_route(method, payer, expected):
    charge = RefundCharge(charge_id="ch-1", payment_method=method, user_id="user-1", payer_id=payer)
    assert refund_route(charge=charge) == expected


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"payment_method": "cash"}, "unknown payment method 'cash'"),
        ({"payment_method": ""}, "unknown payment method ''"),
        ({"charge_id": ""}, "charge_id and user_id are required"),
        ({"user_id": ""}, "charge_id and user_id are required"),
    ],
)
def test_refund_charge_refuses(values, message):
    with pytest.raises(ValueError, match=message):
        RefundCharge(**{"charge_id": "ch-1", "payment_method": "card", "user_id": "u", **values})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"amount_jpy": 0}, "amount_jpy must be positive"),
        ({"amount_jpy": -5}, "amount_jpy must be a non-negative whole number of yen"),
        ({"interest_jpy": -1}, "interest_jpy must be a non-negative whole number of yen"),
        ({"amount_jpy": True}, "amount_jpy must be a non-negative whole number of yen"),
        ({"idempotency_key": ""}, "idempotency_key is required"),
    ],
)
def test_refund_request_refuses(values, message):
    charge = RefundCharge(charge_id="ch-1", payment_method="card", user_id="u")
    with pytest.raises(ValueError, match=message):
        RefundRequest(**{"idempotency_key": "k", "charge": charge, "amount_jpy": 100, **values})


# --- simulator ---------------------------------------------------------------------------------------


def request(
    *, key: str = "payout:1:original_method", method: str = "card", payer: str = "", amount: int = 1_100, **extra
) -> RefundRequest:
    charge = RefundCharge(
        charge_id=extra.pop("charge_id", "ch-1"), payment_method=method, user_id="user-1", payer_id=payer
    )
    return RefundRequest(idempotency_key=key, charge=charge, amount_jpy=amount, **extra)


def test_simulator_is_a_refund_provider():
    assert isinstance(RefundProviderSimulator(), RefundProvider)


@pytest.mark.django_db
def test_simulator_refunds_the_payer_through_the_charge_method():
    # when a card charge paid by someone else is refunded with delay interest
    result = RefundProviderSimulator().refund(request=request(payer="payer-9", interest_jpy=24))
    # then the payer gets refund + interest on the card, and one issuance row records it
    assert result == RefundResult(
        outcome=RefundOutcome.REQUESTED,
        payment_method="card",
        payee_id="payer-9",
        amount_jpy=1_124,
        reference=result.reference,
    )
    assert result.reference.startswith("RFS-CARD-")
    assert list(
        SimulatorIssuance.objects.values_list("provider", "idempotency_key", "amount_jpy", "payee_ref", "reference")
    ) == [("refund-card-simulator", "payout:1:original_method", 1_124, "ch-1", result.reference)]


@pytest.mark.django_db
def test_simulator_is_idempotent_by_key():
    # given a refund already requested
    simulator = RefundProviderSimulator()
    first = simulator.refund(request=request())
    # when the same key is asked again (a retried task)
    second = simulator.refund(request=request())
    # then the answer is the same and the provider saw one refund, asked twice
    assert second == first
    assert list(SimulatorIssuance.objects.values_list("amount_jpy", "requests")) == [(1_100, 2)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changed",
    [{"amount": 1_000}, {"method": "carrier"}, {"charge_id": "ch-2"}, {"interest_jpy": 1}],
)
def test_simulator_refuses_a_key_reused_with_other_parameters(changed):
    # given a refund already requested
    simulator = RefundProviderSimulator()
    simulator.refund(request=request())
    # when the same key comes with another amount, method or charge
    with pytest.raises(ProviderPermanentError, match="idempotency key reused with different parameters"):
        simulator.refund(request=request(**changed))
    # then nothing new was recorded
    assert list(SimulatorIssuance.objects.values_list("provider", "amount_jpy", "payee_ref", "requests")) == [
        ("refund-card-simulator", 1_100, "ch-1", 2)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "outcome", "instructions"),
    [
        ("apple_iap", RefundOutcome.ASK_STORE, APP_STORE_INSTRUCTIONS["apple_iap"]),
        ("google_play", RefundOutcome.ASK_STORE, APP_STORE_INSTRUCTIONS["google_play"]),
        ("convenience", RefundOutcome.NEEDS_BANK_ACCOUNT, ""),
        ("bank", RefundOutcome.NEEDS_BANK_ACCOUNT, ""),
    ],
)
def test_simulator_sends_nothing_it_cannot_refund(method, outcome, instructions):
    # when the charge was an app-store purchase or has no account to send money back to
    result = RefundProviderSimulator().refund(request=request(method=method, payer="payer-9"))
    # then the outcome says what to do, and nothing was sent or recorded
    assert result == RefundResult(
        outcome=outcome,
        payment_method=method,
        payee_id="payer-9",
        amount_jpy=0,
        reference="",
        instructions=instructions,
    )
    assert SimulatorIssuance.objects.count() == 0


@pytest.mark.django_db
def test_simulator_keys_are_independent():
    simulator = RefundProviderSimulator()
    a = simulator.refund(request=request(key="payout:1:original_method"))
    b = simulator.refund(request=request(key="payout:2:original_method", charge_id="ch-2"))
    assert a.reference != b.reference
    assert SimulatorIssuance.objects.count() == 2


# --- reading a stored charge ---------------------------------------------------------------------


@pytest.mark.django_db
def test_refund_charge_for_reads_method_and_payer():
    # given a subscription paid by card by someone else, and a charge with its own method
    user, payer = CustomerFactory.create(), CustomerFactory.create()
    subscription = SubscriptionFactory.create(customer=user, payer=payer, payment_method="card")
    inherits = ChargeFactory.create(subscription=subscription, payment_method="")
    own = ChargeFactory.create(subscription=subscription, payment_method="apple_iap")
    # then the method falls back to the subscription's and the payer is kept
    assert refund_charge_for(inherits.charge_id) == RefundCharge(
        charge_id=inherits.charge_id, payment_method="card", user_id=user.customer_id, payer_id=payer.customer_id
    )
    assert refund_charge_for(own.charge_id) == RefundCharge(
        charge_id=own.charge_id, payment_method="apple_iap", user_id=user.customer_id, payer_id=payer.customer_id
    )
    assert refund_charge_for("no-such-charge") is None


@pytest.mark.django_db
def test_refund_charge_for_user_who_pays_for_themselves():
    subscription = SubscriptionFactory.create(payer=None, payment_method="carrier")
    charge = ChargeFactory.create(subscription=subscription, payment_method="")
    assert refund_charge_for(charge.charge_id) == RefundCharge(
        charge_id=charge.charge_id, payment_method="carrier", user_id=subscription.customer_id, payer_id=""
    )
