"""The demo command: accounts for the demo bank payouts, one file, the simulated answer imported."""

import pytest
from django.core.management import call_command

from payouts.banking.models import BankAccount, BankResultImport, ZenginExport
from payouts.models import Payout
from payouts.services import payouts_create_for_approved_claims
from tests.banking.conftest import approved_claim
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_demo_banking_writes_a_file_and_imports_its_result(bank_program, capsys):
    UserFactory.create(username="root", is_superuser=True)
    for amount in (1000, 2000, 3000, 4000, 5000):
        approved_claim(bank_program, amount=amount)
    payouts_create_for_approved_claims(program=bank_program, actor=None)
    call_command("demo_banking", "--return-every", "5")
    assert BankAccount.objects.count() == 5
    export = ZenginExport.objects.get()
    assert (export.total_count, export.total_amount_jpy) == (5, 15000)
    record = BankResultImport.objects.get()
    assert (record.settled_count, record.failed_count, record.reoffered_count) == (4, 1, 1)
    assert Payout.objects.filter(status="settled").count() == 4
    assert Payout.objects.filter(status="created", offer=2).count() == 1
    assert "export" in capsys.readouterr().out
