"""Factories for the claims tests (source data the engine reads, submissions, confirmations)."""

import datetime as dt
from zoneinfo import ZoneInfo

import factory

from claims.models import Claim, ClaimStatus, CouponPaymentConfirmation, Program, Submission
from support_portal.customers.models import Coupon, CouponTransaction, Login, UsageEvent
from tests.factories import CustomerFactory, UserFactory

JST = ZoneInfo("Asia/Tokyo")


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=JST)


def template(slug: str) -> Program:
    """The program template the data migration ships (slug == policy)."""
    return Program.objects.get(slug=slug)


class LoginFactory(factory.django.DjangoModelFactory[Login]):
    class Meta:
        model = Login

    customer = factory.SubFactory(CustomerFactory)
    logged_in_at = jst(2024, 10, 15, 12)


class UsageEventFactory(factory.django.DjangoModelFactory[UsageEvent]):
    class Meta:
        model = UsageEvent

    customer = factory.SubFactory(CustomerFactory)
    subscription = None
    used_at = jst(2024, 9, 2, 12)


class SubmissionFactory(factory.django.DjangoModelFactory[Submission]):
    class Meta:
        model = Submission

    submission_id = factory.Sequence(lambda n: f"SUB{n:07d}")
    program = factory.LazyFunction(lambda: template("login-outage-2024"))
    subject = "C0000000"
    submitted_at = jst(2025, 1, 10, 12)
    channel = "web"
    contact_email = "applicant@example.jp"


class CouponFactory(factory.django.DjangoModelFactory[Coupon]):
    class Meta:
        model = Coupon

    inquiry_number = factory.Sequence(lambda n: f"Q{n:08d}")
    customer = factory.SubFactory(CustomerFactory)
    prefecture = "長崎県"
    face_value_jpy = 3000
    issued_at = jst(2023, 2, 20, 10)
    expires_at = jst(2023, 2, 24, 23, 59)
    via_app = False
    app_withdrawn = False


class CouponTransactionFactory(factory.django.DjangoModelFactory[CouponTransaction]):
    class Meta:
        model = CouponTransaction

    transaction_id = factory.Sequence(lambda n: f"T{n:08d}")
    coupon = factory.SubFactory(CouponFactory)
    kind = "payment"
    amount_jpy = 1000
    occurred_at = jst(2023, 2, 24, 18)
    store_name = "長崎ちゃんぽん本店"


class CouponPaymentConfirmationFactory(factory.django.DjangoModelFactory[CouponPaymentConfirmation]):
    class Meta:
        model = CouponPaymentConfirmation

    transaction = factory.SubFactory(CouponTransactionFactory)
    confirmed_by = factory.SubFactory(UserFactory)
    confirmed_at = jst(2023, 3, 5, 11)


class ReviewProgramFactory(factory.django.DjangoModelFactory[Program]):
    """A program with review bands: bulk up to ¥1,000, one approval up to ¥10,000, two above."""

    class Meta:
        model = Program

    slug = factory.Sequence(lambda n: f"review-program-{n}")
    name = "review bands"
    policy = "login-outage-2024"
    status = Program.Status.OPEN
    application_rule = "not_required"
    payout_methods = ["atm_cash"]
    default_payout_method = "atm_cash"
    auto_approve_max_jpy = 1000
    second_approval_above_jpy = 10000
    qa_sample_percent = 0


class ClaimFactory(factory.django.DjangoModelFactory[Claim]):
    """A claim waiting for review, as the engine left it (prepared by the run's actor)."""

    class Meta:
        model = Claim

    program = factory.SubFactory(ReviewProgramFactory)
    subject = factory.Sequence(lambda n: f"C9{n:06d}")
    status = ClaimStatus.PENDING_REVIEW
    eligible = True
    amount_jpy = 5000
    computed_at = jst(2025, 2, 10, 9)
    prepared_by = None
