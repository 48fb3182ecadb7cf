"""Fixtures for the customer search and 360 page: an agent, a lead, a customer with a bit of everything."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group

from payouts.models import Payout
from payouts.services import payout_issue, payouts_create_for_approved_claims
from support_portal.core.roles import roles_sync
from support_portal.customers.models import Customer
from tests.claims.factories import CouponFactory, CouponTransactionFactory, LoginFactory
from tests.factories import JST, ChargeFactory, CustomerFactory, SubscriptionFactory, UserFactory
from tests.payouts.conftest import approved_claim, make_program


@pytest.fixture
def roles() -> None:
    roles_sync()


def staff_in(role: str, username: str):
    user = UserFactory.create(username=username)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def agent(roles):
    return staff_in("agent", "agent-1")


@pytest.fixture
def lead(roles):
    return staff_in("manager", "lead-1")


def issued_payout(customer: Customer) -> Payout:
    """An approved claim of `customer` paid as ATM cash and issued (its secret stored encrypted)."""
    program = make_program()
    approved_claim(program, customer=customer, payee=customer, subject=customer.customer_id, amount=4400)
    payouts_create_for_approved_claims(program=program, actor=None)
    payout = Payout.objects.get(payee=customer)
    payout_issue(payout_id=payout.pk)
    payout.refresh_from_db()
    return payout


@pytest.fixture
def rich_customer() -> Customer:
    customer = CustomerFactory.create(
        customer_id="C-360",
        name="佐藤 花子",
        email="hanako@example.jp",
        phone="090-1234-5678",
    )
    subscription = SubscriptionFactory.create(customer=customer)
    for month in range(1, 13):  # 12 charges: the page shows 10 and says how many more
        ChargeFactory.create(
            subscription=subscription,
            amount_jpy=550 + month,
            charged_at=dt.datetime(2024, month, 1, 3, tzinfo=JST),
            period_start=dt.date(2024, month, 1),
            period_end=dt.date(2024 + month // 12, month % 12 + 1, 1),
        )
    LoginFactory.create(customer=customer, logged_in_at=dt.datetime(2024, 10, 15, 12, tzinfo=JST))
    coupon = CouponFactory.create(customer=customer, face_value_jpy=3000)
    CouponTransactionFactory.create(coupon=coupon, kind="payment", amount_jpy=1000)
    CouponTransactionFactory.create(coupon=coupon, kind="reversal", amount_jpy=400)
    CouponTransactionFactory.create(coupon=coupon, kind="charge", amount_jpy=200)
    return customer
