"""Settlement files and the finance report: picked_up → settled, expired → expired, returned → failed and
re-offered; differences (unknown references, other amounts) recorded and shown; the same file twice
changes nothing."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payouts.banking.models import SettlementImport
from payouts.banking.selectors import finance_report_rows
from payouts.banking.services import BankingRefused, settlement_import
from payouts.models import Payout, PayoutStatus, PayoutTransition
from payouts.services import (
    PayoutsTransitioned,
    payout_issue,
    payout_transition,
    payouts_create_for_approved_claims,
    payouts_transition,
)
from support_portal.accounts.models import ExportRecord
from tests.banking.conftest import approved_claim, finance_user, make_program

pytestmark = pytest.mark.django_db


def issued_atm_payouts(n: int) -> list[Payout]:
    program = make_program("atm_cash", slug="atm-program")
    for i in range(n):
        approved_claim(program, amount=1000 * (i + 1))
    payouts_create_for_approved_claims(program=program, actor=None)
    payouts = list(Payout.objects.filter(program=program).order_by("pk"))
    for payout in payouts:
        payout_issue(payout_id=payout.pk)
    return list(Payout.objects.filter(program=program).order_by("pk"))


def csv_file(rows: list[tuple[str, str, str, int]]) -> bytes:
    lines = ["provider,reference,status,amount_jpy,at"]
    lines += [f"{p},{r},{s},{a},2026-05-20T10:00:00" for p, r, s, a in rows]
    return ("\n".join(lines) + "\n").encode()


def test_a_settlement_file_moves_payouts_records_differences_and_is_imported_once():
    finance = finance_user()
    # given four issued ATM payouts
    a, b, c, d = issued_atm_payouts(4)
    provider = a.provider
    data = csv_file(
        [
            (provider, a.provider_reference, "picked_up", 1000),
            (provider, b.provider_reference, "expired", 2000),
            (provider, c.provider_reference, "returned", 3000),
            (provider, d.provider_reference, "picked_up", 4001),  # another amount: flagged, not applied
            (provider, "SBA-UNKNOWN", "picked_up", 500),  # not ours
        ]
    )
    # when finance imports the provider's settlement file
    record = settlement_import(actor=finance, data=data, file_name="settle.csv")
    # then each payout moved as reported, the returned one is re-offered, differences are recorded
    status = dict(Payout.objects.filter(offer=1).values_list("pk", "status"))
    assert status == {a.pk: "settled", b.pk: "expired", c.pk: "failed", d.pk: "issued"}
    reoffer = Payout.objects.get(offer=2)
    assert (reoffer.claim_id, reoffer.method, reoffer.status) == (c.claim_id, "atm_cash", "created")
    assert (record.settled_count, record.expired_count, record.failed_count, record.reoffered_count) == (1, 1, 1, 1)
    assert record.outcome == "differences"
    assert record.differences["unexpected"] == [{"reference": "SBA-UNKNOWN", "amount_jpy": 500}]
    assert record.differences["amount_mismatches"] == [
        {"reference": d.provider_reference, "expected_jpy": 4000, "reported_jpy": 4001}
    ]
    assert PayoutTransition.objects.filter(actor=finance).count() == 4  # 3 moves + the re-offer's creation

    # when the same file comes again, then it is refused and nothing changes
    transitions = PayoutTransition.objects.count()
    with pytest.raises(BankingRefused) as again:
        settlement_import(actor=finance, data=data, file_name="settle-again.csv")
    assert again.value.code == "already_imported"
    assert (PayoutTransition.objects.count(), SettlementImport.objects.count(), Payout.objects.count()) == (
        transitions,
        1,
        5,
    )


def test_a_bad_settlement_file_is_refused_with_its_lines_and_changes_nothing():
    finance = finance_user()
    (a,) = issued_atm_payouts(1)
    data = csv_file([(a.provider, a.provider_reference, "lost", 1000)])
    with pytest.raises(BankingRefused, match="line 2, status"):
        settlement_import(actor=finance, data=data, file_name="bad.csv")
    assert SettlementImport.objects.count() == 0
    assert Payout.objects.get().status == PayoutStatus.ISSUED


def test_a_report_row_already_settled_counts_as_unchanged_and_a_conflict_is_reported():
    finance = finance_user()
    a, _b = issued_atm_payouts(2)
    settlement_import(
        actor=finance, data=csv_file([(a.provider, a.provider_reference, "picked_up", 1000)]), file_name="1.csv"
    )
    second = settlement_import(
        actor=finance,
        data=csv_file(
            [
                (a.provider, a.provider_reference, "picked_up", 1000),
                (a.provider, a.provider_reference + "X", "expired", 1),
            ]
        ),
        file_name="2.csv",
    )
    assert second.unchanged_count == 1
    third = settlement_import(
        actor=finance, data=csv_file([(a.provider, a.provider_reference, "expired", 1000)]), file_name="3.csv"
    )
    assert third.outcome == "differences" and third.differences["conflicts"][0]["reference"] == a.provider_reference
    a.refresh_from_db()
    assert a.status == PayoutStatus.SETTLED


def test_the_report_shows_figures_per_program_and_method_with_charts_table_csv_and_differences(client):
    finance = finance_user()
    a, b, _c = issued_atm_payouts(3)
    settlement_import(
        actor=finance,
        data=csv_file(
            [
                (a.provider, a.provider_reference, "picked_up", 1000),
                (b.provider, b.provider_reference, "expired", 2000),
                (b.provider, "SBA-NOT-OURS", "picked_up", 700),
            ]
        ),
        file_name="s.csv",
    )
    (row,) = finance_report_rows()
    assert (row.program, row.method) == ("atm-program", "atm_cash")
    assert row.counts == {"owed": 2, "sent": 2, "settled": 1, "expired": 1, "unclaimed": 1, "failed": 0}
    assert row.amounts == {"owed": 4000, "sent": 4000, "settled": 1000, "expired": 2000, "unclaimed": 3000, "failed": 0}

    client.force_login(finance)
    page = client.get(reverse("admin:banking_zenginexport_report"))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="reconciliation-differences"' in html and "SBA-NOT-OURS" in html
    assert html.count('role="img"') == 2 and 'id="report-table"' in html
    csv_response = client.get(reverse("admin:banking_zenginexport_report_csv"))
    text = csv_response.content.decode("utf-8-sig").splitlines()
    assert text[0].startswith("program,method,owed_count,owed_jpy,sent_count")
    assert text[1] == "atm-program,atm_cash,2,4000,2,4000,1,1000,1,2000,1,3000,0,0"
    assert len(text) == 2
    assert list(ExportRecord.objects.values_list("actor", "what", "row_count")) == [
        (finance.pk, "payout reconciliation report (CSV)", 1)
    ]


def test_a_settlement_file_moves_its_payouts_in_the_same_number_of_queries_for_any_size():
    finance = finance_user()
    payouts = issued_atm_payouts(8)
    small = csv_file([(p.provider, p.provider_reference, "picked_up", p.amount_jpy) for p in payouts[:2]])
    large = csv_file([(p.provider, p.provider_reference, "picked_up", p.amount_jpy) for p in payouts[2:]])

    with CaptureQueriesContext(connection) as two:
        settlement_import(actor=finance, data=small, file_name="two.csv")
    with CaptureQueriesContext(connection) as six:
        record = settlement_import(actor=finance, data=large, file_name="six.csv")

    assert (record.settled_count, record.outcome) == (6, "clean")
    assert set(Payout.objects.values_list("status", flat=True)) == {"settled"}
    assert len(six.captured_queries) == len(two.captured_queries)


def test_many_payouts_move_together_or_are_reported_one_by_one():
    finance = finance_user()
    a, b, c = issued_atm_payouts(3)
    payout_transition(payout_id=b.pk, to="settled", actor=finance)  # already there
    payout_transition(payout_id=c.pk, to="failed", actor=finance)  # can no longer be settled
    before = PayoutTransition.objects.count()

    moved = payouts_transition(
        notes={a.pk: "note a", b.pk: "note b", c.pk: "note c", 999999: "x"}, to="settled", actor=finance
    )

    assert moved == PayoutsTransitioned(moved=[a.pk], unchanged=[b.pk], refused={c.pk: "failed"}, missing=[999999])
    assert dict(Payout.objects.values_list("pk", "status")) == {a.pk: "settled", b.pk: "settled", c.pk: "failed"}
    assert list(
        PayoutTransition.objects.order_by("pk")[before:].values_list(
            "payout_id", "status_before", "status_after", "actor", "note"
        )
    ) == [(a.pk, "issued", "settled", finance.pk, "note a")]
