"""Two-factor sign-in in a real browser, as production enforces it: enrollment, then the code step."""

import re

import pytest
from playwright.sync_api import Page

from support_portal.accounts import totp
from tests.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


def _password_step(page: Page, base: str, username: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def test_new_user_enrolls_then_signs_in_with_a_code(page: Page, live_server, settings):
    # Given production's rule (REQUIRE_2FA) and a new staff user without a device
    settings.REQUIRE_2FA = True
    UserFactory.create(username="new-staff", is_superuser=True)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)

    # When they sign in with the password
    _password_step(page, live_server.url, "new-staff")

    # Then they land on enrollment (QR code and key), not on the admin
    page.wait_for_url(re.compile(r".*/accounts/two-factor/setup/.*"))
    assert page.locator(".accounts-qr svg").count() == 1
    secret = page.inner_text("#totp-secret").replace(" ", "")
    page.goto(f"{live_server.url}/admin/")
    assert page.url.startswith(f"{live_server.url}/accounts/two-factor/setup/")

    # When they type the app's code
    # (this step's code: still accepted if the 30-second step ends before the server checks it)
    page.fill("#id_code", totp.code_at(secret, totp.current_step()))
    page.click("input[type=submit]")

    # Then they see ten recovery codes once and can continue to the admin
    assert page.locator("#recovery-codes li").count() == 10
    page.click("a.button")
    page.wait_for_url(f"{live_server.url}/admin/")

    # When they sign out and in again, the code step comes after the password
    page.goto(f"{live_server.url}/admin/")
    page.click("#logout-form button")
    _password_step(page, live_server.url, "new-staff")
    page.wait_for_url(re.compile(r".*/accounts/two-factor/\?next=.*"))
    # (the next step's code, accepted as clock drift: the enrollment's step cannot be used twice)
    page.fill("#id_code", totp.code_at(secret, totp.current_step() + 1))
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    assert violations == []
