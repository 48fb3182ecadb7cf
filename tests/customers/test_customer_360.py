"""The customer 360 page: every section, masking by role, payouts with the masked code only."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payouts import crypto
from support_portal.customers.selectors import customer_360
from tests.customers.conftest import issued_payout
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def url(customer) -> str:
    return reverse("admin:customers_customer_change", args=[customer.pk])


def test_the_selector_gathers_every_section(rich_customer):
    # given
    payout = issued_payout(rich_customer)
    # when
    data = customer_360(customer=rich_customer, unmasked=False)
    # then
    assert (data.email, data.phone, data.contact_masked) == ("h***@example.jp", "*******5678", True)
    assert len(data.subscriptions) == 1
    assert (len(data.charges.rows), data.charges.total, data.charges.more) == (10, 12, 2)
    assert data.charges.rows[0].amount_jpy == 562  # newest first
    assert (len(data.logins.rows), data.logins.total) == (1, 1)
    assert [c.balance_jpy for c in data.coupons] == [3000 - 1000 + 400 + 200]
    assert [(c.status, c.amount_jpy) for c in data.claims] == [("approved", 4400)]
    assert [(p.pk, p.status, p.masked_code) for p in data.payouts] == [(payout.pk, "issued", payout.secret.masked)]
    assert data.tickets is not None and data.tickets.total == 0


def test_an_agent_sees_masked_contact_and_the_payout_code_masked(client, rich_customer, agent, monkeypatch):
    # given
    payout = issued_payout(rich_customer)
    code = payout.secret.reveal().code
    decrypts: list[str] = []

    def spy_decrypt(token: str) -> str:
        decrypts.append(token)
        return ""

    monkeypatch.setattr(crypto, "decrypt", spy_decrypt)
    client.force_login(agent)
    # when
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url(rich_customer))
    # then
    page = response.content.decode()
    assert response.status_code == 200
    assert "h***@example.jp" in page and "hanako@example.jp" not in page
    assert "*******5678" in page and "090-1234-5678" not in page
    assert payout.secret.masked in page and code not in page
    assert decrypts == []  # the page never decrypts a secret
    assert 'id="c360-recover"' in page
    # a bounded number of queries, whatever the customer has
    assert len(queries) <= 25


def test_a_lead_sees_full_contact_data(client, rich_customer, lead):
    client.force_login(lead)
    page = client.get(url(rich_customer)).content.decode()
    assert "hanako@example.jp" in page and "090-1234-5678" in page


def test_staff_without_customer_access_is_refused(client, rich_customer):
    client.force_login(UserFactory.create(username="nobody"))
    assert client.get(url(rich_customer)).status_code == 403
