"""factory_boy factories for the source data; ids are sequences so every test gets distinct rows."""

import datetime as dt
from zoneinfo import ZoneInfo

import factory
from django.contrib.auth.models import User

from support_portal.customers.models import Charge, Customer, PaymentMethod, Plan, Subscription

JST = ZoneInfo("Asia/Tokyo")


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True
    password = factory.django.Password("correct-horse-battery")


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    customer_id = factory.Sequence(lambda n: f"C{n:07d}")
    name = factory.Sequence(lambda n: f"山田 太郎{n}")
    email = factory.LazyAttribute(lambda o: f"{o.customer_id.lower()}@example.jp")
    phone = "090-1234-5678"


class PlanFactory(factory.django.DjangoModelFactory[Plan]):
    class Meta:
        model = Plan
        django_get_or_create = ("plan_code",)

    plan_code = "premium"
    name = "プレミアム"
    monthly_fee_jpy = 550


class SubscriptionFactory(factory.django.DjangoModelFactory[Subscription]):
    class Meta:
        model = Subscription

    subscription_id = factory.Sequence(lambda n: f"S{n:07d}")
    customer = factory.SubFactory(CustomerFactory)
    plan = factory.SubFactory(PlanFactory)
    payment_method = PaymentMethod.CARD
    started_at = dt.datetime(2024, 4, 1, tzinfo=JST)
    auto_renew = True


class ChargeFactory(factory.django.DjangoModelFactory[Charge]):
    class Meta:
        model = Charge

    charge_id = factory.Sequence(lambda n: f"CH{n:08d}")
    subscription = factory.SubFactory(SubscriptionFactory)
    amount_jpy = 550
    charged_at = dt.datetime(2024, 9, 1, 3, 0, tzinfo=JST)
    period_start = dt.date(2024, 9, 1)
    period_end = dt.date(2024, 10, 1)
