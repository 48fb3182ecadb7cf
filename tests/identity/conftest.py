"""Fixtures for identity recovery: a customer with a card subscription and two charges, an agent, a lead."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from support_portal.core.roles import roles_sync
from support_portal.customers.models import Customer, PaymentMethod
from tests.factories import JST, ChargeFactory, CustomerFactory, SubscriptionFactory, UserFactory

LAST_CHARGED_AT = dt.datetime(2024, 10, 1, 0, 30, tzinfo=JST)  # 2024-09-30 15:30 UTC: the JST date counts


@pytest.fixture
def customer() -> Customer:
    customer = CustomerFactory.create(customer_id="C-ID-1", email="", phone="090-1234-5678")
    subscription = SubscriptionFactory.create(customer=customer, payment_method=PaymentMethod.CARD)
    ChargeFactory.create(subscription=subscription, amount_jpy=550, charged_at=dt.datetime(2024, 9, 1, tzinfo=JST))
    ChargeFactory.create(subscription=subscription, amount_jpy=1100, charged_at=LAST_CHARGED_AT)
    # A later free charge is not what the caller paid last.
    ChargeFactory.create(
        subscription=subscription,
        amount_jpy=0,
        promotional=True,
        charged_at=LAST_CHARGED_AT + dt.timedelta(days=3),
        period_start=dt.date(2024, 11, 1),
        period_end=dt.date(2024, 12, 1),
    )
    return customer


@pytest.fixture
def roles() -> None:
    roles_sync()


@pytest.fixture
def agent(roles):
    user = UserFactory.create(username="agent-1")
    user.groups.add(Group.objects.get(name="agent"))
    return user


@pytest.fixture
def lead(roles):
    user = UserFactory.create(username="lead-1")
    user.groups.add(Group.objects.get(name="manager"))
    return user
