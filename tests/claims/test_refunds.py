"""The refund policies: subject = charge id; rules for every refund; each policy's numbers and edges."""

import datetime as dt

import pytest

from tests.claims.factories import SubmissionFactory, UsageEventFactory, jst, template
from tests.claims.helpers import preview, rows
from tests.factories import ChargeFactory, CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def charge(**kwargs):
    defaults = {
        "amount_jpy": 3000,
        "charged_at": jst(2024, 9, 1, 3),
        "period_start": dt.date(2024, 9, 1),
        "period_end": dt.date(2024, 10, 1),
    }
    return ChargeFactory.create(**{**defaults, **kwargs})


def request(slug, the_charge, submitted_at, **kwargs):
    return SubmissionFactory.create(
        program=template(slug), subject=the_charge.charge_id, submitted_at=submitted_at, **kwargs
    )


# --- autorenew-60day -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("submitted_at", "eligible", "reason"),
    [
        (jst(2024, 10, 31, 23, 59, 59), "true", ""),  # day 60 (2024-09-01 + 60 days = 10-31): inclusive
        (jst(2024, 11, 1, 0, 0, 0), "false", "outside_window"),  # day 61
    ],
)
def test_autorenew_day_60_inclusive_day_61_not(calendar, submitted_at, eligible, reason):
    the_charge = charge()
    request("autorenew-60day", the_charge, submitted_at, reason="price")

    row = rows(template("autorenew-60day"), calendar)[the_charge.charge_id]

    assert (row["eligible"], row["reason"]) == (eligible, reason)
    assert row["amount_jpy"] == ("3000" if eligible == "true" else "0")


def test_autorenew_full_refund_line_and_provider_due_date_three_business_days(calendar):
    the_charge = charge()
    # Requested Friday 2024-09-13 → Mon 16 is a holiday (敬老の日) → 17, 18, 19
    request("autorenew-60day", the_charge, jst(2024, 9, 13, 18), reason="competitor")

    entitlement = preview(template("autorenew-60day"), calendar)[the_charge.charge_id]

    assert [(line.label, line.amount_jpy, line.rule) for line in entitlement.lines] == [
        (f"refund {the_charge.charge_id}", 3000, "autorenew-60day-full-refund")
    ]
    assert entitlement.provider_request_due_on == dt.date(2024, 9, 19)
    assert entitlement.payout_method == "original_method"


def test_autorenew_requires_a_known_reason(calendar):
    the_charge = charge()
    request("autorenew-60day", the_charge, jst(2024, 9, 10), reason="")

    assert rows(template("autorenew-60day"), calendar)[the_charge.charge_id]["reason"] == "reason_required"


def test_payer_different_from_user_is_the_payee(calendar):
    parent = CustomerFactory.create()
    subscription = SubscriptionFactory.create(payer=parent)
    the_charge = charge(subscription=subscription)
    request("autorenew-60day", the_charge, jst(2024, 9, 10), reason="price")

    row = rows(template("autorenew-60day"), calendar)[the_charge.charge_id]

    assert (row["eligible"], row["payee"]) == ("true", parent.customer_id)


@pytest.mark.parametrize("method", ["apple_iap", "google_play"])
def test_app_store_purchase_is_not_refunded_by_us_and_says_how_to_ask_the_store(calendar, method):
    the_charge = charge(payment_method=method)
    request("autorenew-60day", the_charge, jst(2024, 9, 10), reason="price")

    entitlement = preview(template("autorenew-60day"), calendar)[the_charge.charge_id]

    assert (entitlement.eligible, entitlement.reason, entitlement.amount_jpy) == (False, "app_store", 0)
    assert entitlement.note != ""


def test_app_store_subscription_method_applies_when_charge_method_is_blank(calendar):
    the_charge = charge(subscription=SubscriptionFactory.create(payment_method="apple_iap"), payment_method="")
    request("cooling-off-7day", the_charge, jst(2024, 9, 2))

    assert rows(template("cooling-off-7day"), calendar)[the_charge.charge_id]["reason"] == "app_store"


def test_promotional_charge_is_never_refunded(calendar):
    the_charge = charge(promotional=True)
    request("cooling-off-7day", the_charge, jst(2024, 9, 2))

    assert rows(template("cooling-off-7day"), calendar)[the_charge.charge_id]["reason"] == "promotional"


def test_suspected_fraud_is_not_refunded(calendar):
    the_charge = charge()
    request("autorenew-60day", the_charge, jst(2024, 9, 2), reason="stolen_payment_method")

    assert rows(template("autorenew-60day"), calendar)[the_charge.charge_id]["reason"] == "fraud"


def test_unknown_charge_is_reported_as_no_charge(calendar):
    SubmissionFactory.create(program=template("autorenew-60day"), subject="NOPE", submitted_at=jst(2024, 9, 2))

    assert rows(template("autorenew-60day"), calendar)["NOPE"]["reason"] == "no_charge"


# --- cooling-off-7day ----------------------------------------------------------------------------


def test_cooling_off_seven_jst_days_across_the_utc_date_line(calendar):
    # Charged 2024-09-01 08:30 JST (= 08-31 23:30Z); day 7 ends 2024-09-08 23:59:59 JST (= 09-08 14:59:59Z)
    the_charge = charge(charged_at=dt.datetime(2024, 8, 31, 23, 30, tzinfo=dt.UTC))
    late_charge = charge(charged_at=dt.datetime(2024, 8, 31, 23, 30, tzinfo=dt.UTC))
    request("cooling-off-7day", the_charge, dt.datetime(2024, 9, 8, 14, 59, 59, tzinfo=dt.UTC))
    request("cooling-off-7day", late_charge, dt.datetime(2024, 9, 8, 15, 0, 0, tzinfo=dt.UTC))

    result = rows(template("cooling-off-7day"), calendar)

    assert (result[the_charge.charge_id]["eligible"], result[the_charge.charge_id]["amount_jpy"]) == ("true", "3000")
    assert result[late_charge.charge_id]["reason"] == "outside_window"


def test_cooling_off_first_payment_refused_after_usage(calendar):
    the_charge = charge()
    UsageEventFactory.create(
        customer=the_charge.subscription.customer, subscription=the_charge.subscription, used_at=jst(2024, 9, 2)
    )
    request("cooling-off-7day", the_charge, jst(2024, 9, 3))

    assert rows(template("cooling-off-7day"), calendar)[the_charge.charge_id]["reason"] == "used"


def test_cooling_off_usage_before_the_payment_does_not_count(calendar):
    the_charge = charge()
    UsageEventFactory.create(customer=the_charge.subscription.customer, used_at=jst(2024, 8, 31))
    request("cooling-off-7day", the_charge, jst(2024, 9, 3))

    assert rows(template("cooling-off-7day"), calendar)[the_charge.charge_id]["eligible"] == "true"


def _later_cycle(fee, requires_no_usage, used):
    program = template("cooling-off-7day")
    program.parameters = {
        **program.parameters,
        "processing_fee_jpy": fee,
        "later_cycle_requires_no_usage": requires_no_usage,
    }
    program.save()
    first = charge()
    later = charge(
        subscription=first.subscription,
        charged_at=jst(2024, 10, 1, 3),
        period_start=dt.date(2024, 10, 1),
        period_end=dt.date(2024, 11, 1),
    )
    if used:
        UsageEventFactory.create(customer=later.subscription.customer, used_at=jst(2024, 10, 2))
    request("cooling-off-7day", later, jst(2024, 10, 5))
    return program, later


def test_cooling_off_later_cycle_minus_processing_fee(calendar):
    program, later = _later_cycle(fee=300, requires_no_usage=True, used=False)

    row = rows(program, calendar)[later.charge_id]

    assert (row["eligible"], row["amount_jpy"]) == ("true", "2700")
    assert row["lines"] == f"refund {later.charge_id}=3000;processing fee=-300"


def test_cooling_off_later_cycle_usage_allowed_when_parameter_says_so(calendar):
    program, later = _later_cycle(fee=0, requires_no_usage=False, used=True)

    assert rows(program, calendar)[later.charge_id]["amount_jpy"] == "3000"


def test_cooling_off_later_cycle_usage_refused_by_default(calendar):
    program, later = _later_cycle(fee=0, requires_no_usage=True, used=True)

    assert rows(program, calendar)[later.charge_id]["reason"] == "used"


# --- service-failure-prorata ---------------------------------------------------------------------


def test_service_failure_pro_rata_rounded_down_plus_ten_percent_penalty(calendar):
    # 1000 yen for 30 days (09-01..10-01); stopped 09-11 → 20 remaining days → 1000*20//30 = 666; penalty 66
    the_charge = charge(amount_jpy=1000)
    request("service-failure-prorata", the_charge, jst(2024, 9, 12), effective_at=jst(2024, 9, 11, 10), fault="company")

    row = rows(template("service-failure-prorata"), calendar)[the_charge.charge_id]

    assert row["amount_jpy"] == "732"
    assert row["lines"] == f"{the_charge.charge_id} unused 20/30 days=666;penalty 10%=66"


def test_service_failure_member_fault_has_no_penalty(calendar):
    the_charge = charge(amount_jpy=1000)
    request("service-failure-prorata", the_charge, jst(2024, 9, 12), effective_at=jst(2024, 9, 11), fault="member")

    assert rows(template("service-failure-prorata"), calendar)[the_charge.charge_id]["amount_jpy"] == "666"


def test_service_failure_before_the_period_refunds_the_whole_amount(calendar):
    the_charge = charge(amount_jpy=999)
    request("service-failure-prorata", the_charge, jst(2024, 8, 30), effective_at=jst(2024, 8, 20))

    assert rows(template("service-failure-prorata"), calendar)[the_charge.charge_id]["amount_jpy"] == "1098"


def test_service_failure_long_licence_every_started_month_counts(calendar):
    # 12-month licence for 9,000 yen, monthly list price 1,000; stopped 2024-11-02 → Sep, Oct, Nov started
    plan = PlanFactory.create(plan_code="annual", monthly_fee_jpy=1000)
    the_charge = charge(
        subscription=SubscriptionFactory.create(plan=plan),
        amount_jpy=9000,
        period_start=dt.date(2024, 9, 1),
        period_end=dt.date(2025, 9, 1),
    )
    request("service-failure-prorata", the_charge, jst(2024, 11, 3), effective_at=jst(2024, 11, 2))

    entitlement = preview(template("service-failure-prorata"), calendar)[the_charge.charge_id]

    assert [(line.amount_jpy, line.rule) for line in entitlement.lines] == [
        (6000, "service-failure-long-licence"),
        (600, "service-failure-penalty"),
    ]


def test_service_failure_after_the_period_is_outside_window(calendar):
    the_charge = charge()
    request("service-failure-prorata", the_charge, jst(2024, 10, 3), effective_at=jst(2024, 10, 1))

    assert rows(template("service-failure-prorata"), calendar)[the_charge.charge_id]["reason"] == "outside_window"


# --- company-termination -------------------------------------------------------------------------


def test_company_termination_fee_is_ten_percent_rounded_down(calendar):
    # 3000 for 30 days, terminated 09-11 → base 2000; fee max(200, 100) = 200 → 1800
    the_charge = charge()
    request("company-termination", the_charge, jst(2024, 9, 11), effective_at=jst(2024, 9, 11))

    row = rows(template("company-termination"), calendar)[the_charge.charge_id]

    assert row["amount_jpy"] == "1800"
    assert row["lines"] == f"{the_charge.charge_id} unused 20/30 days=2000;termination fee=-200"


def test_company_termination_minimum_fee_100(calendar):
    # 550 for 30 days, terminated 09-16 → base 550*15//30 = 275; 10% = 27 < 100 → fee 100 → 175
    the_charge = charge(amount_jpy=550)
    request("company-termination", the_charge, jst(2024, 9, 16), effective_at=jst(2024, 9, 16))

    assert rows(template("company-termination"), calendar)[the_charge.charge_id]["amount_jpy"] == "175"


def test_company_termination_never_negative(calendar):
    # base 550*5//30 = 91 < fee 100 → nothing due
    the_charge = charge(amount_jpy=550)
    request("company-termination", the_charge, jst(2024, 9, 26), effective_at=jst(2024, 9, 26))

    row = rows(template("company-termination"), calendar)[the_charge.charge_id]
    assert (row["eligible"], row["amount_jpy"], row["reason"]) == ("false", "0", "nothing_due")


# --- overpayment ---------------------------------------------------------------------------------


def test_overpayment_all_but_the_first_charge_of_a_period_without_application(calendar):
    first = charge(charged_at=jst(2024, 9, 1, 3))
    second = charge(subscription=first.subscription, charged_at=jst(2024, 9, 1, 3, 1))
    third = charge(subscription=first.subscription, charged_at=jst(2024, 9, 2, 3))
    other_period = charge(
        subscription=first.subscription, period_start=dt.date(2024, 10, 1), period_end=dt.date(2024, 11, 1)
    )

    result = rows(template("overpayment"), calendar, as_of=jst(2024, 9, 20))

    assert set(result) == {second.charge_id, third.charge_id}
    assert result[second.charge_id]["amount_jpy"] == "3000"
    assert first.charge_id not in result and other_period.charge_id not in result


def test_overpayment_member_fault_minus_refund_cost(calendar):
    program = template("overpayment")
    program.parameters = {**program.parameters, "member_fault_refund_cost_jpy": 220}
    program.save()
    first = charge()
    second = charge(subscription=first.subscription, charged_at=jst(2024, 9, 1, 4))
    SubmissionFactory.create(program=program, subject=second.charge_id, submitted_at=jst(2024, 9, 3), fault="member")

    assert rows(program, calendar)[second.charge_id]["amount_jpy"] == "2780"


def test_overpayment_claim_on_a_proper_charge_is_not_covered(calendar):
    single = charge()
    SubmissionFactory.create(program=template("overpayment"), subject=single.charge_id, submitted_at=jst(2024, 9, 3))

    assert rows(template("overpayment"), calendar)[single.charge_id]["reason"] == "not_covered"
