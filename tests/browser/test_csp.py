"""Content-Security-Policy in a real browser: the admin and the application page run without a violation.

Chromium reports every blocked inline script/style, eval or foreign source both as a console error and as
a `securitypolicyviolation` event; the test collects both and fails on any.
"""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Browser, Page

from claims.application import application_link_make
from claims.models import Program
from support_portal.core.roles import roles_sync
from tests.browser.conftest import admin_login
from tests.claims.factories import ReviewProgramFactory
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.sourceFile + ":" + e.lineNumber;
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + where);
});
"""


@pytest.fixture
def watched_page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    console_errors: list[str] = []
    page.on(
        "console",
        lambda message: (
            console_errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text
            else None
        ),
    )
    yield page, console_errors
    context.close()


def _violations(page: Page, console_errors: list[str]) -> list[str]:
    page.wait_for_load_state("load")
    return [*console_errors, *page.evaluate("window.__cspViolations || []")]


@pytest.fixture
def program() -> Program:
    roles_sync()
    return ReviewProgramFactory.create(
        slug="csp-program",
        status=Program.Status.OPEN,
        application_rule="required",
        application_deadline=None,
        payout_methods=["atm_cash", "bank_transfer"],
        default_payout_method="atm_cash",
    )


def test_admin_pages_run_without_csp_violations(watched_page, live_server, program):
    # Given a manager signed in (the admin index, a changelist with actions, a change form with
    # date widgets and the collapse/filter scripts)
    page, console_errors = watched_page
    manager = UserFactory.create(username="csp-manager")
    manager.groups.set([Group.objects.get(name="manager")])
    admin_login(page, live_server.url, "csp-manager", PASSWORD)

    for path in [
        "/admin/",
        "/admin/claims/claim/",
        "/admin/claims/program/",
        f"/admin/claims/program/{program.pk}/change/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        # Then the policy is sent and nothing was blocked
        assert "default-src 'none'" in (response.header_value("content-security-policy") or "")
        assert _violations(page, console_errors) == [], path

    # The admin's JavaScript really ran under the policy (the action bar's "select all" checkbox works).
    page.goto(f"{live_server.url}/admin/claims/program/")
    page.check("#action-toggle")
    assert page.is_checked(f"input.action-select[value='{program.pk}']")


def test_application_page_runs_without_csp_violations(watched_page, live_server, program):
    page, console_errors = watched_page
    link = application_link_make(program=program, subject="C0000001")

    response = page.goto(f"{live_server.url}{link}")

    assert response is not None and response.status == 200
    assert _violations(page, console_errors) == []


def test_the_api_docs_page_renders_its_operations_without_a_violation(live_server, watched_page) -> None:
    page, console_errors = watched_page

    page.goto(f"{live_server.url}/api/v1/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)

    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/ingest/charges" in [path.replace("\u200b", "") for path in paths]
    assert _violations(page, console_errors) == []
