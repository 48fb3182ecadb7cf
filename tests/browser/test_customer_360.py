"""An agent finds a customer by a phone number typed with different hyphens and opens the 360 page;
an agent recovers an account with no working email from that page."""

import datetime as dt
from collections.abc import Iterator

import pytest
from django.utils import translation
from playwright.sync_api import Browser, Page

from payouts.models import PayoutStatus
from support_portal.core.demo_users import DEMO_PASSWORD, demo_users_create
from support_portal.core.roles import roles_sync
from support_portal.customers.models import Customer, PaymentMethod
from support_portal.identity.models import IdentityRecoveryCase, RecoveryStatus
from tests.browser.conftest import admin_login
from tests.customers.conftest import issued_payout
from tests.factories import JST, ChargeFactory, CustomerFactory, SubscriptionFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def demo_users():
    # Transactional tests start from a flushed database: the role groups come back from the matrix.
    roles_sync()
    demo_users_create()


@pytest.fixture
def agent_page(browser: Browser, live_server) -> Iterator[Page]:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    admin_login(page, live_server.url, "agent", DEMO_PASSWORD)
    yield page
    context.close()


def test_an_agent_finds_a_customer_by_phone_and_sees_the_payout_masked(agent_page: Page, live_server):
    # Given a customer stored with a hyphenated phone number, an issued ATM payout, and a namesake
    customer = CustomerFactory.create(
        customer_id="C-BROWSER",
        name="高橋 美咲",
        email="misaki@example.jp",
        phone="080-2468-1357",
    )
    CustomerFactory.create(customer_id="C-OTHER", phone="090-9999-0000")
    payout = issued_payout(customer)
    code = payout.secret.reveal().code
    changelist = f"{live_server.url}/admin/customers/customer/"
    page = agent_page

    for typed in ("08024681357", "080 2468 1357", "080-2468-1357"):
        # When the agent types the number in the customer search box
        page.goto(changelist)
        page.fill("#searchbar", typed)
        with page.expect_navigation():
            page.press("#searchbar", "Enter")
        # Then exactly that customer is listed
        rows = page.locator("#result_list tbody tr")
        assert rows.count() == 1, typed
        assert "C-BROWSER" in rows.first.inner_text()

    # When the agent opens the customer's page
    with page.expect_navigation():
        page.click("#result_list tbody tr a:text('C-BROWSER')")

    # Then the 360 page shows the contact masked and the payout's state with the code masked
    assert page.inner_text("#c360-customer-id") == "C-BROWSER"
    assert page.inner_text("#c360-phone") == "*******1357"
    assert page.inner_text("#c360-email") == "m***@example.jp"
    row = page.locator(f"#c360-payouts tr[data-payout='{payout.pk}']")
    with translation.override("ja"):
        assert row.locator(".payout-status").inner_text() == str(PayoutStatus.ISSUED.label)
    assert row.locator(".payout-code").inner_text() == payout.secret.masked
    assert code not in page.content()


def test_an_agent_recovers_an_account_from_the_360_page(agent_page: Page, live_server):
    # Given a customer with no working email, one card charge and a phone on file
    customer = CustomerFactory.create(customer_id="C-RECOVER", name="伊藤 健", email="", phone="070-1111-2222")
    subscription = SubscriptionFactory.create(customer=customer, payment_method=PaymentMethod.CARD)
    ChargeFactory.create(subscription=subscription, amount_jpy=990, charged_at=dt.datetime(2024, 11, 1, 9, tzinfo=JST))
    page = agent_page

    # When the agent starts identity recovery from the customer's 360 page and saves the case
    page.goto(f"{live_server.url}/admin/customers/customer/C-RECOVER/change/")
    with page.expect_navigation():
        page.click("#c360-recover")
    with page.expect_navigation():
        page.click("input[name=_save]")
    assert "/verify/" in page.url

    # And types a wrong amount: the screen says which items did not match, without the true values
    page.fill("#id_charge_amount_jpy", "1100")
    page.fill("#id_charge_date", "2024-11-01")
    page.select_option("#id_payment_method", "card")
    page.fill("#id_phone", "070 1111 2222")
    page.fill("#id_new_email", "ken@example.jp")
    with page.expect_navigation():
        page.click("input[name=verify]")
    assert page.locator("#verification-failed").is_visible()
    assert page.locator("tr[data-check='charge_amount']").get_attribute("class") == "check-fail"
    assert page.locator("tr[data-check='phone']").get_attribute("class") == "check-pass"
    assert "990" not in page.locator("#content-main").inner_text()

    # And then the caller's corrected answer
    page.fill("#id_charge_amount_jpy", "990")
    page.fill("#id_charge_date", "2024-11-01")
    page.select_option("#id_payment_method", "card")
    page.fill("#id_phone", "07011112222")
    with page.expect_navigation():
        page.click("input[name=verify]")

    # Then the case is completed and the customer has the new contact address
    case = IdentityRecoveryCase.objects.get(customer=customer)
    assert case.status == RecoveryStatus.COMPLETED
    assert Customer.objects.get(pk="C-RECOVER").email == "ken@example.jp"
    assert page.locator(".messagelist .success").count() == 1
