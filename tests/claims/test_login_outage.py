"""login-outage-2024: monthly fees from the plan's first covered month to the month of first login (seed 000)."""

import datetime as dt

import pytest

from claims.models import Claim
from claims.selectors import program_preview
from claims.services import program_run
from tests.claims.factories import LoginFactory, SubmissionFactory, jst, template
from tests.claims.helpers import AS_OF, rows
from tests.factories import ChargeFactory, CustomerFactory, PlanFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def monthly_charges(subscription, months, amount=550, **extra):
    for year, month in months:
        start = dt.date(year, month, 1)
        end = dt.date(year + (month == 12), month % 12 + 1, 1)
        ChargeFactory.create(
            subscription=subscription,
            amount_jpy=amount,
            charged_at=jst(year, month, 1, 3),
            period_start=start,
            period_end=end,
            **extra,
        )


AUG_TO_JAN = [(2024, 8), (2024, 9), (2024, 10), (2024, 11), (2024, 12), (2025, 1)]


@pytest.fixture
def program():
    return template("login-outage-2024")


def stored_rows(program):
    """subject -> the dry-run row rebuilt from the stored claims and lines (what program_run wrote)."""
    result = {}
    for claim in Claim.objects.filter(program=program).prefetch_related("lines"):
        lines = list(claim.lines.all())
        paid = [line for line in lines if not line.excluded_reason] if claim.eligible else []
        excluded = [line.excluded_reason for line in lines if line.excluded_reason]
        result[claim.subject] = {
            "subject": claim.subject,
            "eligible": "true" if claim.eligible else "false",
            "amount_jpy": str(claim.amount_jpy),
            "payee": claim.payee_id or "",
            "lines": ";".join(f"{line.label}={line.amount_jpy}" for line in paid),
            "reason": claim.reason or (excluded[0] if excluded else ""),
        }
    return result


@pytest.fixture(autouse=True)
def run_agrees_with_the_preview(program, calendar):
    """After every scenario here: the run's set-based SQL path stores exactly what the preview computed."""
    yield
    expected = rows(program, calendar)
    program_run(program=program, actor=None, as_of=AS_OF, calendar=calendar)
    assert stored_rows(program) == expected


def applied(customer, **kwargs):
    return SubmissionFactory.create(subject=customer.customer_id, **kwargs)


def test_document_example_premium_first_login_in_october_gets_september_and_october(program, calendar):
    # Given a premium member charged monthly, whose first login after restoration is in October 2024
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    customer = subscription.customer
    monthly_charges(subscription, AUG_TO_JAN)
    LoginFactory.create(customer=customer, logged_in_at=jst(2024, 10, 20, 8))
    LoginFactory.create(customer=customer, logged_in_at=jst(2024, 11, 2, 8))
    applied(customer)

    # When the program is previewed
    row = rows(program, calendar)[customer.customer_id]

    # Then September and October are compensated, paid to the member
    assert row == {
        "subject": customer.customer_id,
        "eligible": "true",
        "amount_jpy": "1100",
        "payee": customer.customer_id,
        "lines": "2024-09 premium=550;2024-10 premium=550",
        "reason": "",
    }


def test_no_login_since_restoration_is_capped_at_december(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    monthly_charges(subscription, AUG_TO_JAN)
    applied(subscription.customer)

    row = rows(program, calendar)[subscription.customer_id]

    assert row["lines"] == "2024-09 premium=550;2024-10 premium=550;2024-11 premium=550;2024-12 premium=550"
    assert row["amount_jpy"] == "2200"


def test_first_login_after_cap_month_is_capped(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="channel"))
    monthly_charges(subscription, AUG_TO_JAN, amount=330)
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2025, 1, 3, 0, 0))
    applied(subscription.customer)

    assert rows(program, calendar)[subscription.customer_id]["amount_jpy"] == "1320"


def test_zen_study_starts_in_october(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="zen_study", monthly_fee_jpy=2000))
    monthly_charges(subscription, AUG_TO_JAN, amount=2000)
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 11, 30, 23, 59))
    applied(subscription.customer)

    assert rows(program, calendar)[subscription.customer_id]["lines"] == "2024-10 zen_study=2000;2024-11 zen_study=2000"


def test_first_login_before_first_covered_month_gives_nothing(program, calendar):
    # Given a premium member who logged in on restoration day (August) — before September
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    monthly_charges(subscription, AUG_TO_JAN)
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 8, 5, 0, 0))
    applied(subscription.customer)

    # Then the applicant is reported, not eligible
    row = rows(program, calendar)[subscription.customer_id]
    assert (row["eligible"], row["amount_jpy"], row["lines"], row["reason"]) == ("false", "0", "", "not_covered")


def test_login_before_restoration_does_not_count(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    monthly_charges(subscription, AUG_TO_JAN)
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 8, 4, 23, 59, 59))
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 9, 30, 23, 59, 59))
    applied(subscription.customer)

    assert rows(program, calendar)[subscription.customer_id]["lines"] == "2024-09 premium=550"


def test_login_month_is_the_jst_month_across_the_utc_date_line(program, calendar):
    # 2024-09-30T15:30Z is 2024-10-01 00:30 JST: October is covered too
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    monthly_charges(subscription, AUG_TO_JAN)
    LoginFactory.create(customer=subscription.customer, logged_in_at=dt.datetime(2024, 9, 30, 15, 30, tzinfo=dt.UTC))
    applied(subscription.customer)

    assert rows(program, calendar)[subscription.customer_id]["amount_jpy"] == "1100"


def test_month_without_charge_has_no_line_and_promotional_is_skipped(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    monthly_charges(subscription, [(2024, 9)])
    monthly_charges(subscription, [(2024, 10)], promotional=True)
    monthly_charges(subscription, [(2024, 12)])
    applied(subscription.customer)

    assert rows(program, calendar)[subscription.customer_id]["lines"] == "2024-09 premium=550;2024-12 premium=550"


def test_uncovered_plan_gives_nothing(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="basic", monthly_fee_jpy=100))
    monthly_charges(subscription, AUG_TO_JAN, amount=100)
    applied(subscription.customer)

    assert rows(program, calendar)[subscription.customer_id]["reason"] == "not_covered"


def test_covered_plan_without_charges_is_no_charge(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    applied(subscription.customer)

    assert rows(program, calendar)[subscription.customer_id]["reason"] == "no_charge"


def test_application_is_required_by_the_deadline_end_of_day_jst(program, calendar):
    on_time, late, none = (SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium")) for _ in range(3))
    for subscription in (on_time, late, none):
        monthly_charges(subscription, [(2024, 9)])
    applied(on_time.customer, submitted_at=jst(2025, 1, 31, 23, 59, 59))
    applied(late.customer, submitted_at=jst(2025, 2, 1, 0, 0, 0))

    result = rows(program, calendar)

    assert (result[on_time.customer_id]["eligible"], result[on_time.customer_id]["amount_jpy"]) == ("true", "550")
    assert (result[late.customer_id]["eligible"], result[late.customer_id]["reason"]) == ("false", "late_application")
    assert (result[none.customer_id]["eligible"], result[none.customer_id]["reason"]) == ("false", "no_application")
    assert result[none.customer_id]["amount_jpy"] == "0"


def test_latest_submission_is_official_and_late_resubmission_keeps_the_on_time_one(program, calendar):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    monthly_charges(subscription, [(2024, 9)])
    applied(subscription.customer, submission_id="A1", submitted_at=jst(2025, 1, 5), payout_method="atm_cash")
    applied(subscription.customer, submission_id="A2", submitted_at=jst(2025, 1, 20), payout_method="atm_cash")
    applied(subscription.customer, submission_id="A3", submitted_at=jst(2025, 2, 3), payout_method="atm_cash")

    (entitlement,) = program_preview(program=program, as_of=jst(2025, 2, 10), calendar=calendar)

    assert (entitlement.eligible, entitlement.official_submission_id) == (True, "A2")
    assert entitlement.payout_method == "atm_cash"


def test_subscriber_without_application_or_charges_is_not_in_the_report(program, calendar):
    CustomerFactory.create()
    SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))

    assert rows(program, calendar) == {}
