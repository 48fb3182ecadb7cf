"""In real Chromium: finance writes a transfer file, imports the bank's answer and reads the report
(charts, table, the differences box); account numbers stay masked on every page."""

import pytest
from playwright.sync_api import Page

from payouts.banking.models import ZenginExport
from payouts.models import Payout, PayoutStatus
from payouts.zengin import customer_code_for, simulate_bank_results
from tests.banking.conftest import bank_payouts, finance_user, make_program
from tests.browser.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


def test_finance_writes_a_file_imports_the_result_and_reads_the_report(page: Page, live_server, tmp_path):
    # given two bank payouts ready for a file and a finance user
    payouts = bank_payouts(make_program("bank_transfer", slug="bank-demo"), 2, amounts=[5500, 12000])
    finance_user("fin-browser")
    admin_login(page, live_server.url, "fin-browser", PASSWORD)

    # when finance writes the transfer file from the process screen
    page.goto(f"{live_server.url}/admin/banking/zenginexport/create/")
    page.click("#zengin-export-form input[type=submit]")
    page.wait_for_url("**/admin/banking/zenginexport/*/change/")
    # then the export page shows the totals, never an account number
    body = page.content()
    assert "17,500" in body or "17500" in body
    assert "1234567" not in body
    export = ZenginExport.objects.get()
    assert Payout.objects.filter(status=PayoutStatus.ISSUED).count() == 2

    # when the bank's answer (the second transfer returned) is imported
    result = tmp_path / "result.txt"
    result.write_bytes(simulate_bank_results(export.file_bytes(), returned={customer_code_for(payouts[1].pk): "1"}))
    page.goto(f"{live_server.url}/admin/banking/zenginexport/import-result/")
    page.set_input_files("#import-form input[type=file]", str(result))
    page.click("#import-form input[type=submit]")
    page.wait_for_selector("#import-result")

    # then the report shows the figures, both charts and the table, and no difference
    page.goto(f"{live_server.url}/admin/banking/zenginexport/report/")
    assert page.locator("svg[role=img]").count() == 2
    assert page.locator("#reconciliation-clean").is_visible()
    rows = page.locator("#report-table tbody tr")
    assert rows.count() == 1
    assert "bank-demo" in rows.first.inner_text()
    assert (page.locator("#report-csv").get_attribute("href") or "").endswith("report.csv")
