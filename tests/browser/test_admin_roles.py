"""Each demo role signs in to the admin in a real browser and sees exactly its own sections."""

import pytest
from playwright.sync_api import Page

from support_portal.core.demo_users import DEMO_PASSWORD, demo_users_create
from support_portal.core.roles import roles_sync
from tests.browser.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Model tables shown on the admin index, by their URL (language-independent).
EXPECTED_ADMIN_LINKS = {
    "agent": {
        "/admin/claims/claim/",
        "/admin/claims/submission/",
        "/admin/claims/couponpaymentconfirmation/",
        "/admin/claims/couponduplicatepayment/",
        "/admin/claims/couponremedy/",
        "/admin/claims/mergeoffer/",
        "/admin/customers/charge/",
        "/admin/customers/coupon/",
        "/admin/customers/coupontransaction/",
        "/admin/customers/customer/",
        "/admin/customers/login/",
        "/admin/customers/plan/",
        "/admin/customers/subscription/",
        "/admin/customers/usageevent/",
        "/admin/tickets/ticket/",
        "/admin/tickets/queue/",
        "/admin/tickets/cannedreply/",
        "/admin/tickets/savedfilter/",
        "/admin/identity/identityrecoverycase/",
        "/admin/banking/bankaccount/",
    },
    "manager": {
        "/admin/claims/claim/",
        "/admin/claims/program/",
        "/admin/claims/submission/",
        "/admin/claims/grant/",
        "/admin/api/apikey/",
        "/admin/core/closedday/",
        "/admin/core/importrun/",
        "/admin/core/workerheartbeat/",
        "/admin/customers/charge/",
        "/admin/customers/coupon/",
        "/admin/customers/coupontransaction/",
        "/admin/customers/customer/",
        "/admin/customers/login/",
        "/admin/customers/plan/",
        "/admin/customers/subscription/",
        "/admin/customers/usageevent/",
        "/admin/django_celery_beat/crontabschedule/",
        "/admin/django_celery_beat/intervalschedule/",
        "/admin/django_celery_beat/periodictask/",
        "/admin/accounts/securityevent/",
        "/admin/accounts/exportrecord/",
        "/admin/tickets/ticket/",
        "/admin/tickets/queue/",
        "/admin/tickets/cannedreply/",
        "/admin/tickets/savedfilter/",
        "/admin/identity/identityrecoverycase/",
        "/admin/payouts/programpayoutpolicy/",
        "/admin/payouts/payoutnotice/",
        "/admin/core/backlogsample/",
        "/admin/core/sweeprun/",
    },
}


@pytest.fixture(autouse=True)
def demo_users():
    # Transactional tests start from a flushed database: the role groups come back from the matrix.
    roles_sync()
    demo_users_create()


def _index_links(page: Page) -> set[str]:
    hrefs = page.locator("#content-main th[scope=row] a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    return set(hrefs)


@pytest.mark.parametrize("role", ["agent", "manager"])
def test_role_signs_in_and_sees_only_its_sections(page: Page, live_server, role):
    # When the role signs in with the demo password
    admin_login(page, live_server.url, role, DEMO_PASSWORD)

    # Then the admin index (in Japanese) lists exactly that role's tables
    assert page.locator("html").get_attribute("lang") == "ja"
    assert _index_links(page) == EXPECTED_ADMIN_LINKS[role]


def test_agent_is_refused_the_import_upload_screen(page: Page, live_server):
    # Given an agent (no core.add_importrun)
    admin_login(page, live_server.url, "agent", DEMO_PASSWORD)

    # When they open the upload screen's URL directly
    response = page.goto(f"{live_server.url}/admin/core/importrun/upload/")

    # Then the server refuses it
    assert response is not None
    assert response.status == 403
