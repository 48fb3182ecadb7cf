"""The claims flow in a real browser: a manager opens a program, a customer applies, reviewers decide."""

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Group
from django.core import mail, signing
from django.utils import timezone, translation
from playwright.sync_api import Browser, Page, ViewportSize

from claims.application import application_link_make
from claims.models import Claim, ClaimStatus, Program, Submission
from claims.services import program_run
from support_portal.core.demo_users import DEMO_PASSWORD, demo_users_create
from support_portal.core.roles import roles_sync
from tests.browser.conftest import admin_login
from tests.claims.factories import ClaimFactory, LoginFactory, ReviewProgramFactory, SubmissionFactory, jst
from tests.factories import ChargeFactory, CustomerFactory, PlanFactory, SubscriptionFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

USER_PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def demo_users():
    # Transactional tests start from a flushed database: the role groups come back from the matrix.
    roles_sync()
    demo_users_create()


@pytest.fixture
def signed_in(browser: Browser, live_server) -> Iterator:
    """`signed_in(username, password)` -> a page of a fresh browser context signed in to the admin."""
    contexts = []

    def sign_in(username: str, password: str = DEMO_PASSWORD) -> Page:
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        admin_login(page, live_server.url, username, password)
        return page

    yield sign_in
    for context in contexts:
        context.close()


def reviewer(username: str):
    user = UserFactory.create(username=username)
    user.groups.add(Group.objects.get(name="reviewer"))
    return user


def run_action(page: Page, changelist_url: str, pk: int, action: str, *, download: bool = False) -> None:
    """Selects one row of an admin changelist and runs an action on it (then back on the list)."""
    if not page.url.startswith(changelist_url):
        page.goto(changelist_url)
    page.check(f"input.action-select[value='{pk}']")
    page.select_option("select[name=action]", action)
    if download:
        page.click("button[name=index]")
        return
    with page.expect_navigation():
        page.click("button[name=index]")


def ja(label) -> str:
    with translation.override("ja"):
        return str(label)


# --- (a) a manager previews the login-outage program and opens it for applications -----------------


def login_outage_program() -> Program:
    program, _created = Program.objects.update_or_create(
        slug="login-outage-2024",
        defaults={
            "name": "ログイン障害期間の月額料金補償（2024年）",
            "policy": "login-outage-2024",
            "status": Program.Status.PREVIEW,
            "parameters": {
                "first_covered_month_by_plan": {"premium": "2024-09"},
                "cap_month": "2024-12",
                "restored_at": "2024-08-05T00:00:00+09:00",
            },
            "application_deadline": dt.date(2025, 1, 31),
            "application_rule": "required",
            "payout_methods": ["atm_cash"],
            "default_payout_method": "atm_cash",
        },
    )
    return program


def premium_member(*, apply: bool):
    subscription = SubscriptionFactory.create(plan=PlanFactory.create(plan_code="premium"))
    for month in (9, 10, 11):
        ChargeFactory.create(
            subscription=subscription,
            amount_jpy=550,
            charged_at=jst(2024, month, 1, 3),
            period_start=dt.date(2024, month, 1),
            period_end=dt.date(2024, month + 1, 1),
        )
    LoginFactory.create(customer=subscription.customer, logged_in_at=jst(2024, 10, 20))
    if apply:
        SubmissionFactory.create(subject=subscription.customer_id, submitted_at=jst(2025, 1, 10))
    return subscription.customer_id


def test_manager_previews_and_opens_the_login_outage_program(signed_in, live_server):
    # Given the login-outage program in preview, one member who applied and one who did not
    program = login_outage_program()
    applied = premium_member(apply=True)
    silent = premium_member(apply=False)
    page = signed_in("manager")
    changelist = f"{live_server.url}/admin/claims/program/"

    # When the manager runs the Preview action on it
    with page.expect_download() as download_info:
        run_action(page, changelist, program.pk, "preview_csv", download=True)
    download = download_info.value

    # Then the dry-run CSV lists both members: the applicant's two covered months, the other refused
    assert download.suggested_filename == "login-outage-2024-preview.csv"
    with open(download.path(), encoding="utf-8") as file:
        rows = {row["subject"]: row for row in csv.DictReader(io.StringIO(file.read()))}
    assert set(rows) == {applied, silent}
    assert (rows[applied]["eligible"], rows[applied]["amount_jpy"], rows[applied]["lines"]) == (
        "true",
        "1100",
        "2024-09 premium=550;2024-10 premium=550",
    )
    assert (rows[silent]["eligible"], rows[silent]["reason"]) == ("false", "no_application")
    program.refresh_from_db()
    assert program.status == Program.Status.PREVIEW  # previewing changes nothing

    # When they open it for applications
    run_action(page, changelist, program.pk, "open_for_applications")

    # Then the list shows it open, with a success message, and the database agrees
    assert page.locator("ul.messagelist li.success").count() == 1
    row = page.locator(f"tr:has(input.action-select[value='{program.pk}'])")
    assert row.locator("td.field-status").inner_text().strip() == ja(Program.Status.OPEN.label)
    program.refresh_from_db()
    assert program.status == Program.Status.OPEN

    # And opening it a second time is refused with a message, nothing changed
    run_action(page, changelist, program.pk, "open_for_applications")
    assert "cannot go from open to open" in page.locator("ul.messagelist li.error").inner_text()

    # When the program has run and the manager opens its report from the list
    program_run(program=program, actor=None)
    page.goto(changelist)
    page.locator(f"tr:has(input.action-select[value='{program.pk}']) td.field-report_link a").click()

    # Then the report shows the totals, and a chart rendered next to each table
    assert page.locator('[data-total="population"]').inner_text() == "2"
    assert page.locator('[data-total="eligible_amount_jpy"]').inner_text() == "1100"
    assert page.locator('svg[role="img"]').count() == 4
    assert page.locator("table.report-breakdown[data-section='month'] tbody tr").count() == 2


# --- (b) a customer applies on a phone -------------------------------------------------------------


def test_customer_applies_on_a_phone(browser: Browser, live_server):
    # Given an open program and a signed link for one customer
    program = ReviewProgramFactory.create(
        slug="phone-apply",
        name="ログイン障害補償（テスト）",
        status=Program.Status.OPEN,
        application_rule="required",
        application_deadline=timezone.localdate() + dt.timedelta(days=30),
        payout_methods=["atm_cash", "bank_transfer"],
        default_payout_method="atm_cash",
    )
    link = f"{live_server.url}{application_link_make(program=program, subject='C7000001')}"
    context = browser.new_context(locale="ja-JP", viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        # When the customer opens it on a phone
        response = page.goto(link)
        assert response is not None and response.status == 200
        assert page.locator("html").get_attribute("lang") == "ja"
        # Then the page fits the screen (no sideways scrolling) and the inputs are finger-sized
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        box = page.locator("#id_contact_email").bounding_box()
        assert box is not None and box["height"] >= 44
        assert page.locator("input[name=payout_method][value=atm_cash]").is_checked()

        # When they fill in the form and submit it
        page.fill("#id_contact_email", "hanako@example.jp")
        page.click("button[type=submit]")

        # Then they see the confirmation with their reference number
        page.locator("#done-title").wait_for()
        assert "お申込みを受け付けました" in page.locator("#done-title").inner_text()
        submission = Submission.objects.get()
        assert page.locator("#reference").inner_text() == submission.submission_id
        assert (submission.channel, submission.subject, submission.contact_email, submission.payout_method) == (
            "web",
            "C7000001",
            "hanako@example.jp",
            "atm_cash",
        )
        # And one confirmation email went to the address they gave (live server: same process)
        assert len(mail.outbox) == 1
        assert mail.outbox[0].to == ["hanako@example.jp"]

        # When someone tampers with the link
        tampered = link[:-2] + ("x" if link[-2] != "x" else "y") + link[-1]
        response = page.goto(tampered)

        # Then it is not found and nothing more is recorded
        assert response is not None and response.status == 404
        assert "C7000001" not in page.content()
        assert Submission.objects.count() == 1
        assert len(mail.outbox) == 1
    finally:
        context.close()


def test_an_expired_link_offers_a_fresh_one_by_email_on_a_phone(browser: Browser, live_server, monkeypatch):
    # Given an open program, a customer with an address in the billing system, and a link made 15 days ago
    program = ReviewProgramFactory.create(
        slug="phone-expired",
        name="ログイン障害補償（期限切れ）",
        status=Program.Status.OPEN,
        application_rule="required",
        application_deadline=timezone.localdate() + dt.timedelta(days=30),
        payout_methods=["atm_cash"],
        default_payout_method="atm_cash",
    )
    CustomerFactory.create(customer_id="C7000002", email="owner@example.jp")
    made = time.time() - 15 * 86400
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: made))
    link = f"{live_server.url}{application_link_make(program=program, subject='C7000002')}"
    monkeypatch.setattr(signing, "time", time)
    context = browser.new_context(locale="ja-JP", viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        # When the customer opens it
        response = page.goto(link)

        # Then the page says it expired (410), in Japanese, with no form to apply
        assert response is not None and response.status == 410
        assert "有効期限が切れています" in page.locator("#expired-notice").inner_text()
        assert page.locator("#id_contact_email").count() == 0

        # When they ask for a new link
        with page.expect_navigation():
            page.click("#resend")

        # Then the page says it is on its way, one email went to the registered address, and its link opens the form
        assert "新しいリンクをお送りしました" in page.locator("#link-sent").inner_text()
        assert [m.to for m in mail.outbox] == [["owner@example.jp"]]
        found = re.search(r"(http://\S+/apply/\S+/)", str(mail.outbox[0].body))
        assert found is not None
        fresh = found.group(1)
        response = page.goto(fresh)
        assert response is not None and response.status == 200
        assert page.locator("#id_contact_email").is_visible()
        assert Submission.objects.count() == 0
    finally:
        context.close()


# --- (c) maker-checker in the admin ----------------------------------------------------------------


def decisions(claim):
    return list(
        claim.decisions.order_by("id").values_list("actor__username", "action", "status_before", "status_after")
    )


def test_above_threshold_claim_needs_two_different_reviewers(signed_in, live_server):
    # Given a ¥20,000 claim (second approval above ¥10,000) prepared by one reviewer
    preparer = reviewer("rev-preparer")
    second_reviewer = reviewer("rev-second")
    claim = ClaimFactory.create(program=ReviewProgramFactory.create(), amount_jpy=20000, prepared_by=preparer)
    changelist = f"{live_server.url}/admin/claims/claim/"

    # When another reviewer approves it
    first = signed_in("reviewer")
    run_action(first, changelist, claim.pk, "approve_claims")

    # Then it awaits a second approval, with one decision row
    assert first.locator("ul.messagelist li.success").count() == 1
    claim.refresh_from_db()
    assert (claim.status, claim.approved_amount_jpy) == (ClaimStatus.AWAITING_SECOND_APPROVAL, None)
    assert decisions(claim) == [("reviewer", "approve", "pending_review", "awaiting_second_approval")]

    # When the same reviewer tries to approve it again
    run_action(first, changelist, claim.pk, "approve_claims")

    # Then the admin shows the maker-checker refusal and nothing changes
    assert (
        "a second approval must come from a different person" in first.locator("ul.messagelist li.error").inner_text()
    )
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.AWAITING_SECOND_APPROVAL
    assert len(decisions(claim)) == 1

    # When the reviewer who prepared it tries
    own = signed_in("rev-preparer", USER_PASSWORD)
    run_action(own, changelist, claim.pk, "approve_claims")

    # Then they are refused too
    assert "nobody approves a claim they prepared" in own.locator("ul.messagelist li.error").inner_text()
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.AWAITING_SECOND_APPROVAL
    assert len(decisions(claim)) == 1

    # When a second, different reviewer approves it
    second = signed_in("rev-second", USER_PASSWORD)
    run_action(second, changelist, claim.pk, "approve_claims")

    # Then it is approved at the amount both saw
    assert second.locator("ul.messagelist li.success").count() == 1
    claim = Claim.objects.get(pk=claim.pk)
    assert (claim.status, claim.approved_amount_jpy, claim.decided_by_id) == (
        ClaimStatus.APPROVED,
        20000,
        second_reviewer.pk,
    )
    assert decisions(claim) == [
        ("reviewer", "approve", "pending_review", "awaiting_second_approval"),
        ("rev-second", "approve", "awaiting_second_approval", "approved"),
    ]
