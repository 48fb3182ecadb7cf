"""Fixtures for the payouts tests: a program with ATM cash and point codes, approved claims."""

import datetime as dt

import pytest

from claims.models import Claim, ClaimStatus, Program
from support_portal.customers.models import Customer
from tests.claims.factories import ClaimFactory, ReviewProgramFactory
from tests.factories import CustomerFactory, UserFactory


def make_program(**overrides: object) -> Program:
    values: dict[str, object] = {
        "payout_methods": ["atm_cash", "points:amazon", "points:paypay"],
        "default_payout_method": "atm_cash",
        "receipt_deadline": dt.date.today() + dt.timedelta(days=365),
    }
    values.update(overrides)
    return ReviewProgramFactory.create(**values)


def approved_claim(program: Program, *, amount: int = 5000, **overrides: object) -> Claim:
    values: dict[str, object] = {
        "program": program,
        "status": ClaimStatus.APPROVED,
        "amount_jpy": amount,
        "approved_amount_jpy": amount,
        "payee": CustomerFactory.create(),
    }
    values.update(overrides)
    return ClaimFactory.create(**values)


@pytest.fixture
def program() -> Program:
    return make_program()


@pytest.fixture
def finance_user():
    return UserFactory.create(username="finance-1")


def bulk_claims(
    program: Program, n: int, *, status: str = ClaimStatus.APPROVED, sms_every: int = 4, amount: int = 3000
) -> list[Claim]:
    """n claims of the program in two bulk INSERTs (customers, claims): every `sms_every`-th customer has
    no email (only a phone), so its notice goes by SMS. `status` approved (with the approved amount) or
    pending_review (for approve-and-pay)."""
    start = Customer.objects.count()
    customers = [
        Customer(
            customer_id=f"BK{program.pk:03d}{start + i:07d}",
            name=f"顧客 {i}",
            email="" if i % sms_every == 0 else f"bk{program.pk}-{start + i}@example.jp",
            phone="090-0000-0000",
        )
        for i in range(n)
    ]
    Customer.objects.bulk_create(customers)
    approved = status == ClaimStatus.APPROVED
    claims = [
        Claim(
            program=program,
            subject=customer.customer_id,
            customer=customer,
            payee=customer,
            status=status,
            eligible=True,
            amount_jpy=amount,
            approved_amount_jpy=amount if approved else None,
            computed_at=dt.datetime(2025, 2, 10, tzinfo=dt.UTC),
        )
        for customer in customers
    ]
    return Claim.objects.bulk_create(claims)
