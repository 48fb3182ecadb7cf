"""The masking walk: every admin page an agent can open shows personal data masked, whatever the URL says.

Given demo-like data with known email addresses, phone numbers, a bank account number and an ATM payout
code, an agent (the `agent` group of support_portal/core/roles.py, without the reveal permissions) opens
every changelist, the change page and history page of every object of every registered model, and the
custom get_urls() pages with real ids, each plain and with query strings that might switch masking off
(`?_edit=1`, `?_popup=1`, `?unmasked=1`, …). None of the real values may appear in any response body.
"""

import datetime as dt

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from payouts.banking.services import bank_account_record, zengin_export_create
from payouts.models import Payout
from payouts.services import payouts_create_for_approved_claims
from support_portal.core.business_days import JST
from support_portal.identity.models import IdentityRecoveryCase
from support_portal.tickets.models import Queue
from tests.banking.conftest import account_input, approved_claim, make_program
from tests.claims.factories import SubmissionFactory
from tests.customers.conftest import issued_payout, staff_in
from tests.factories import CustomerFactory, UserFactory
from tests.security.test_admin_permission_walk import CUSTOM_URL_RULES, MISSING_PK
from tests.tickets.factories import QueueFactory, TicketFactory, TicketMessageFactory

pytestmark = pytest.mark.django_db

CUSTOMER_EMAIL = "hanako.walk@example.jp"
CUSTOMER_PHONE = "090-1234-5678"
SUBMISSION_EMAIL = "taro.walk@example.jp"
SUBMISSION_PHONE = "080-9876-5432"
RECOVERY_EMAIL = "new.walk@example.jp"
ACCOUNT_NUMBER = "8642097"

QUERY_STRINGS = ["", "?_edit=1", "?_popup=1", "?_to_field=email", "?unmasked=1", "?reveal=1", "?_edit=1&_popup=1"]


@pytest.fixture
def demo_like() -> dict[str, str]:
    """Personal data of each kind, in the places the demo puts it; returns label → the clear value."""
    customer = CustomerFactory.create(
        customer_id="C-WALK", name="佐藤 花子", email=CUSTOMER_EMAIL, phone=CUSTOMER_PHONE
    )
    payout = issued_payout(customer)
    code = payout.secret.reveal().code
    SubmissionFactory.create(
        submission_id="S-WALK",
        program=payout.program,
        subject=customer.customer_id,
        contact_email=SUBMISSION_EMAIL,
        contact_phone=SUBMISSION_PHONE,
        payout_method="atm_cash",
    )
    # A bank transfer: the payee's account, the 総合振込 file written for it
    finance = UserFactory.create(username="finance-walk")
    bank_program = make_program("bank_transfer")
    approved_claim(bank_program, amount=7000, payee=customer, subject="C-WALK-B")
    bank_account_record(
        customer=customer, account_input=account_input(account_number=ACCOUNT_NUMBER), actor=finance, source="customer"
    )
    payouts_create_for_approved_claims(program=bank_program, actor=None)
    zengin_export_create(
        actor=finance, transfer_date=timezone.localdate(timezone=JST) + dt.timedelta(days=3), sender_key="demo"
    )
    assert Payout.objects.filter(program=bank_program, status="issued").count() == 1
    # The support desk: a ticket from the customer in a queue the agent works, an identity-recovery case
    queue = QueueFactory.create()
    ticket = TicketFactory.create(queue=queue, customer=customer, requester_email=CUSTOMER_EMAIL)
    TicketMessageFactory.create(ticket=ticket, author_customer=customer, author_email=CUSTOMER_EMAIL)
    IdentityRecoveryCase.objects.create(customer=customer, agent=finance, new_email=RECOVERY_EMAIL)
    return {
        "customer email": CUSTOMER_EMAIL,
        "customer phone": CUSTOMER_PHONE,
        "customer phone digits": CUSTOMER_PHONE.replace("-", ""),
        "submission email": SUBMISSION_EMAIL,
        "submission phone": SUBMISSION_PHONE,
        "submission phone digits": SUBMISSION_PHONE.replace("-", ""),
        "recovery email": RECOVERY_EMAIL,
        "bank account number": ACCOUNT_NUMBER,
        "ATM payout code": code,
    }


@pytest.fixture
def agent_client(demo_like) -> Client:
    agent = staff_in("agent", "agent-walk")
    for queue in Queue.objects.all():
        queue.members.add(agent)
    client = Client()
    client.force_login(agent)
    return client


def _pages() -> list[str]:
    """Every changelist, the change and history page of every object, the custom URLs with real ids."""
    urls = []
    for model, model_admin in admin.site._registry.items():
        opts = model_admin.opts
        base = f"admin:{opts.app_label}_{opts.model_name}"
        urls.append(reverse(f"{base}_changelist"))
        for pk in model._default_manager.order_by("pk").values_list("pk", flat=True)[:5]:
            urls.append(reverse(f"{base}_change", args=[pk]))
            urls.append(reverse(f"{base}_history", args=[pk]))
    for name, (kwargs, _permission) in CUSTOM_URL_RULES.items():
        urls += _custom_urls(name, kwargs)
    return urls


def _custom_urls(name: str, kwargs: dict[str, object]) -> list[str]:
    """A custom URL with the ids of real rows of its model (its first argument), else as the walk has it."""
    missing = [key for key, value in kwargs.items() if value == int(MISSING_PK)]
    if not missing:
        return [reverse(name, kwargs=kwargs)]
    app_model = name.removeprefix("admin:").rsplit("_", 1)[0]
    model = next((m for m in admin.site._registry if f"{m._meta.app_label}_{m._meta.model_name}" in app_model), None)
    if model is None:
        return [reverse(name, kwargs=kwargs)]
    urls = []
    for pk in model._default_manager.order_by("pk").values_list("pk", flat=True)[:5]:
        try:
            urls.append(reverse(name, kwargs={**kwargs, missing[0]: pk}))
        except NoReverseMatch:
            continue
    return urls or [reverse(name, kwargs=kwargs)]


def test_the_data_is_there_for_someone_allowed_to_see_it(demo_like):
    # Given a superuser (sees everything) — proves the walk would notice a clear value if one were shown
    root = User.objects.create_superuser("root-walk", password=None)
    client = Client()
    client.force_login(root)

    body = client.get(reverse("admin:customers_customer_change", args=["C-WALK"]) + "?_edit=1").text

    assert CUSTOMER_EMAIL in body


def test_an_agent_sees_no_personal_value_unmasked_anywhere(agent_client, demo_like):
    # When the agent opens every admin page, plain and with each query string
    leaks = []
    opened = 0
    for url in _pages():
        for query in QUERY_STRINGS:
            response = agent_client.get(url + query)
            opened += response.status_code == 200
            body = response.content.decode(errors="replace")
            leaks += [
                f"{label} on {url}{query} ({response.status_code})" for label, v in demo_like.items() if v in body
            ]

    # Then no page shows any of the clear values (and the walk really opened pages, not only refusals)
    assert leaks == [], "\n".join(leaks)
    assert opened > 100


def test_the_customer_page_ignores_edit_for_an_agent(agent_client):
    # When an agent asks for the default admin form of a customer
    response = agent_client.get(reverse("admin:customers_customer_change", args=["C-WALK"]) + "?_edit=1")

    # Then they get the 360 page with masked contact data, not the form
    assert response.status_code == 200
    assert "c360" in response.context
    assert CUSTOMER_EMAIL not in response.text and "h***@example.jp" in response.text


def test_submission_contact_is_masked_on_its_page(agent_client):
    response = agent_client.get(reverse("admin:claims_submission_change", args=["S-WALK"]))

    assert response.status_code == 200
    assert SUBMISSION_EMAIL not in response.text and SUBMISSION_PHONE not in response.text
    assert "t***@example.jp" in response.text
