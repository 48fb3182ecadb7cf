"""Bank accounts: converted to half-width kana, validated, encrypted at rest, masked, replaced, refused."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from payouts.banking.forms import BankAccountForm
from payouts.banking.models import BankAccount, BankAccountStatus, BankingEvent
from payouts.banking.services import BankingRefused, bank_account_record
from tests.banking.conftest import account_input
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_account_is_recorded_in_kana_with_the_number_encrypted_and_masked():
    # given a customer and an agent
    customer = CustomerFactory.create()
    agent = UserFactory.create(username="agent-1")
    # when the agent records what the caller typed (hiragana name, full-width digits, short number)
    record = bank_account_record(
        customer=customer,
        account_input=account_input(holder_name="やまだ たろう", account_number="１２３４５", branch_code="１２３"),
        actor=agent,
    )
    # then the name is half-width kana, the number is zero-padded, encrypted and only shown masked
    record.refresh_from_db()
    assert record.holder_kana == "ﾔﾏﾀﾞ ﾀﾛｳ"
    assert record.branch_code == "123"
    assert record.account_number_masked == "***2345"
    assert "0012345" not in record.account_number_ciphertext
    assert record.account_number() == "0012345"
    assert "0012345" not in str(record)
    assert (record.status, record.source, record.created_by) == (BankAccountStatus.ACTIVE, "agent", agent)
    assert list(BankingEvent.objects.values_list("action", "actor", "customer")) == [
        ("account_recorded", agent.pk, customer.pk)
    ]


def test_a_new_account_replaces_the_active_one_of_the_same_customer_and_claim():
    customer = CustomerFactory.create()
    first = bank_account_record(customer=customer, account_input=account_input(), actor=None, source="customer")
    second = bank_account_record(
        customer=customer, account_input=account_input(account_number="7654321"), actor=None, source="customer"
    )
    first.refresh_from_db()
    assert first.status == BankAccountStatus.REPLACED and first.closed_at is not None
    assert BankAccount.objects.get(customer=customer, status=BankAccountStatus.ACTIVE) == second
    assert BankAccount.objects.count() == 2


def test_an_invalid_account_is_refused_with_every_field_and_nothing_changes():
    customer = CustomerFactory.create()
    with pytest.raises(BankingRefused) as refused:
        bank_account_record(
            customer=customer,
            account_input=account_input(bank_code="12", holder_name="山田太郎", account_number="12a"),
            actor=None,
        )
    assert set(refused.value.errors) == {"bank_code", "holder_kana", "account_number"}
    assert BankAccount.objects.count() == 0
    assert BankingEvent.objects.count() == 0


def test_the_form_shows_each_problem_on_its_field_and_hands_over_what_was_typed():
    form = BankAccountForm(
        data={
            "bank_code": "0005",
            "branch_code": "12",
            "account_type": "1",
            "account_number": "1234567",
            "holder_name": "山田",
        }
    )
    assert not form.is_valid()
    assert set(form.errors) == {"branch_code", "holder_name"}
    good = BankAccountForm(
        data={
            "bank_code": "0005",
            "branch_code": "123",
            "account_type": "1",
            "account_number": "1234567",
            "holder_name": "ヤマダ タロウ",
        }
    )
    assert good.is_valid(), good.errors
    assert good.account_input().holder_name == "ヤマダ タロウ"
    assert "1234567" not in repr(good.account_input())


def test_the_agent_form_records_an_account_and_shows_problems(client):
    agent = UserFactory.create(username="agent-2")
    agent.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="banking", codename__in=["add_bankaccount", "view_bankaccount"]
        )
    )
    customer = CustomerFactory.create()
    client.force_login(agent)
    url = reverse("admin:banking_bankaccount_record")
    data = {
        "customer_id": customer.pk,
        "bank_code": "0005",
        "branch_code": "123",
        "account_type": "1",
        "account_number": "1234567",
        "holder_name": "漢字",
    }
    page = client.post(url, data)
    assert page.status_code == 200 and BankAccount.objects.count() == 0
    page = client.post(url, {**data, "holder_name": "ヤマダ ハナコ"})
    assert page.status_code == 302
    record = BankAccount.objects.get()
    assert (record.customer, record.source, record.created_by, record.holder_kana) == (
        customer,
        "agent",
        agent,
        "ﾔﾏﾀﾞ ﾊﾅｺ",
    )
    listing = client.get(reverse("admin:banking_bankaccount_changelist")).content.decode()
    assert "***4567" in listing and "1234567" not in listing


def test_staff_without_the_add_permission_cannot_record_accounts(client):
    client.force_login(UserFactory.create(username="viewer-1"))
    assert client.get(reverse("admin:banking_bankaccount_record")).status_code == 403
    assert BankAccount.objects.count() == 0
