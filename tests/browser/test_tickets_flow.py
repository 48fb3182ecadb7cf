"""The ticket desk in a real browser: an agent opens a ticket for a customer, replies with a canned reply
(the email goes out) and merges a duplicate; a manager opens the dashboard and the charts render."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.core import mail
from playwright.sync_api import Browser, Page

from support_portal.core.demo_users import DEMO_PASSWORD, demo_users_create
from support_portal.core.roles import roles_sync
from support_portal.tickets.models import Direction, EventKind, MessageKind, Status, Ticket, TicketEvent, TicketMessage
from tests.browser.conftest import admin_login
from tests.factories import CustomerFactory
from tests.tickets.factories import CannedReplyFactory, QueueFactory, TicketFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def demo_users() -> None:
    # Transactional tests start from a flushed database: the role groups come back from the matrix.
    roles_sync()
    demo_users_create()


@pytest.fixture
def signed_in(browser: Browser, live_server) -> Iterator:
    contexts = []

    def sign_in(username: str) -> Page:
        context = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        admin_login(page, live_server.url, username, DEMO_PASSWORD)
        return page

    yield sign_in
    for context in contexts:
        context.close()


def test_agent_opens_replies_with_a_canned_reply_and_merges_a_duplicate(signed_in, live_server) -> None:
    # given a login queue the demo agent works, a customer with an earlier duplicate ticket, a canned reply
    queue = QueueFactory.create(name="ログイン", slug="login", first_response_minutes=120, resolution_minutes=960)
    agent = User.objects.get(username="agent")
    queue.members.add(agent)
    customer = CustomerFactory.create(customer_id="C7700001", name="佐藤 花子", email="hanako@example.jp")
    duplicate = TicketFactory.create(
        queue=queue, customer=customer, subject="ログインできない（重複）", status=Status.NEW
    )
    canned = CannedReplyFactory.create(
        title="本人確認のお願い",
        body="{{ customer_name }} 様\nお問い合わせ {{ ticket_token }} について、ご本人確認をお願いします。",
        set_status=Status.PENDING_CUSTOMER,
    )
    canned.queues.add(queue)
    base = f"{live_server.url}/admin/tickets/ticket"

    # when the agent opens a ticket for the customer on the phone
    page = signed_in("agent")
    page.goto(f"{base}/add/")
    page.select_option("#id_queue", str(queue.pk))
    page.click("#id_customer + .select2 .select2-selection")
    page.fill(".select2-search__field", "C7700001")
    page.click(".select2-results__option:has-text('C7700001')")
    page.fill("#id_subject", "ログインできない")
    page.select_option("#id_category", "login")
    page.select_option("#id_channel", "phone")
    page.fill("#id_body", "登録メールアドレスが使えずログインできない")
    with page.expect_navigation():
        page.click("input[name=_continue]")
    ticket = Ticket.objects.exclude(pk=duplicate.pk).get()
    assert (ticket.customer_id, ticket.status, ticket.channel) == ("C7700001", Status.NEW, "phone")
    assert page.url.startswith(f"{base}/{ticket.pk}/change/")

    # and replies with the canned reply, inserted into the text box first (rendered for this customer)
    expected_body = f"佐藤 花子 様\nお問い合わせ T-{ticket.pk} について、ご本人確認をお願いします。"
    page.select_option("#ticket-reply select[name=canned]", str(canned.pk))
    with page.expect_navigation():
        page.click("#ticket-reply input[name=preview]")
    assert page.input_value("#ticket-reply textarea[name=body]") == expected_body
    with page.expect_navigation():
        page.click("#ticket-reply input[name=send]")
    reply = TicketMessage.objects.get(ticket=ticket, direction=Direction.OUTBOUND)
    assert (reply.kind, reply.body) == (MessageKind.PUBLIC, expected_body)
    assert len(mail.outbox) == 1
    assert mail.outbox[0].subject == f"[#T-{ticket.pk}] ログインできない"
    assert mail.outbox[0].to == ["hanako@example.jp"]
    assert page.locator("#ticket-thread article[data-message-kind=public]").count() == 2
    ticket.refresh_from_db()
    assert ticket.status == Status.PENDING_CUSTOMER

    # and merges the duplicate into it from the inbox
    page.goto(f"{base}/")
    page.check(f"input.action-select[value='{ticket.pk}']")
    page.check(f"input.action-select[value='{duplicate.pk}']")
    page.select_option("select[name=action]", "merge_tickets")
    with page.expect_navigation():
        page.click("button[name=index]")
    page.select_option("#id_target", str(ticket.pk))
    with page.expect_navigation():
        page.click("input[name=merge]")

    # then the duplicate is closed with a pointer and its message is visible on the kept ticket
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into_id) == (Status.CLOSED, ticket.pk)
    assert TicketEvent.objects.filter(ticket=ticket, kind=EventKind.MERGED_IN, actor=agent).count() == 1
    assert page.url.startswith(f"{base}/{ticket.pk}/change/")
    assert page.locator("#ticket-thread").inner_text().count(f"T-{duplicate.pk}") >= 1


def test_manager_opens_the_dashboard_and_the_charts_render(signed_in, live_server) -> None:
    queue = QueueFactory.create(name="一般", slug="general")
    TicketFactory.create_batch(3, queue=queue, status=Status.OPEN)
    page = signed_in("manager")
    page.goto(f"{live_server.url}/admin/tickets/ticket/")
    with page.expect_navigation():
        page.click("a.viewlink[href$='/dashboard/']")
    charts = page.locator("svg[role=img][data-chart]")
    assert charts.count() == 3
    assert page.locator("svg[data-chart=bar]").count() == 2
    assert page.locator("svg[data-chart=line]").count() == 1
    assert page.locator("#open-by-queue table").inner_text().count("一般") == 1
    with page.expect_download() as download:
        page.click("#daily a[href*='part=daily']")
    assert download.value.suggested_filename == "tickets-daily.csv"
