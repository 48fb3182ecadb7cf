"""Factories for the claims tests (source data the engine reads, submissions, confirmations)."""

import datetime as dt
from zoneinfo import ZoneInfo

import factory

from claims.models import CouponPaymentConfirmation, Program, Submission
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
