"""Fixtures for the payouts tests: a program with ATM cash and point codes, approved claims."""

import datetime as dt

import pytest

from claims.models import Claim, ClaimStatus, Program
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
        "payee": CustomerFactory(),
    }
    values.update(overrides)
    return ClaimFactory.create(**values)


@pytest.fixture
def program() -> Program:
    return make_program()


@pytest.fixture
def finance_user():
    return UserFactory(username="finance-1")
