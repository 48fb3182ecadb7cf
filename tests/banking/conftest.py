"""Fixtures of the banking tests: programs paying by bank transfer or refund, approved claims, accounts."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission

from claims.models import Claim, ClaimStatus, Program
from payouts.banking.services import AccountInput, bank_account_record
from payouts.models import Payout
from payouts.services import payouts_create_for_approved_claims
from support_portal.customers.models import Customer
from tests.claims.factories import ClaimFactory, ReviewProgramFactory
from tests.factories import CustomerFactory, UserFactory

FINANCE_PERMISSIONS = (
    "export_zengin",
    "import_bank_results",
    "import_settlement",
    "view_finance_report",
    "view_zenginexport",
    "view_bankaccount",
)


def make_program(method: str, **overrides: object) -> Program:
    values: dict[str, object] = {
        "payout_methods": [method],
        "default_payout_method": method,
        "receipt_deadline": dt.date.today() + dt.timedelta(days=365),
    }
    values.update(overrides)
    return ReviewProgramFactory.create(**values)


def approved_claim(program: Program, *, amount: int = 5000, payee: Customer | None = None, **overrides) -> Claim:
    values: dict[str, object] = {
        "program": program,
        "status": ClaimStatus.APPROVED,
        "amount_jpy": amount,
        "approved_amount_jpy": amount,
        "payee": payee or CustomerFactory.create(),
    }
    values.update(overrides)
    return ClaimFactory.create(**values)


def account_input(**overrides: str) -> AccountInput:
    values = {
        "bank_code": "0005",
        "branch_code": "123",
        "account_type": "1",
        "account_number": "1234567",
        "holder_name": "やまだ たろう",
        "bank_name": "ミツビシユーエフジェイ",
        "branch_name": "シブヤ",
    }
    values.update(overrides)
    return AccountInput(**values)


def bank_payouts(program: Program, n: int, *, amounts: list[int] | None = None, actor=None) -> list[Payout]:
    """n approved claims of a bank-transfer program, each payee with an account, and their payouts."""
    amounts = amounts or [1000 * (i + 1) for i in range(n)]
    for amount in amounts:
        payee = CustomerFactory.create()
        approved_claim(program, amount=amount, payee=payee)
        bank_account_record(customer=payee, account_input=account_input(), actor=actor, source="customer")
    payouts_create_for_approved_claims(program=program, actor=None)
    return list(Payout.objects.filter(program=program).order_by("pk"))


def finance_user(username: str = "finance-1"):
    user = UserFactory.create(username=username)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="banking", codename__in=FINANCE_PERMISSIONS)
    )
    return user


@pytest.fixture
def finance():
    return finance_user()


@pytest.fixture
def bank_program() -> Program:
    return make_program("bank_transfer")
