"""Bank transfer end to end with the bank simulator: approved claim → payout → Zengin file → the file
validates → the bank's simulated result → settled / returned → re-offer; refused paths change nothing."""

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from claims.models import ClaimStatus
from payouts.banking.models import (
    BankAccount,
    BankAccountStatus,
    BankingEvent,
    BankResultImport,
    ExportStatus,
    LineResult,
    ZenginExport,
    ZenginExportDownload,
    ZenginExportLine,
)
from payouts.banking.services import (
    BankingRefused,
    bank_account_record,
    bank_results_import,
    zengin_export_create,
    zengin_export_download,
)
from payouts.data.samples import sample_zengin_result_file
from payouts.models import Payout, PayoutNotice, PayoutSecret, PayoutStatus, PayoutTransition
from payouts.services import PayoutRefused, RefusalCode, payout_issue, payouts_create_for_approved_claims
from payouts.tasks import payouts_sweep_enqueue
from payouts.zengin import customer_code_for, parse_transfer_results, simulate_bank_results, zengin_parse
from support_portal.core.business_days import JST
from tests.banking.conftest import account_input, approved_claim, bank_payouts, finance_user
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOMORROW = timezone.localdate(timezone=JST) + dt.timedelta(days=1)


def export(actor, **kwargs) -> ZenginExport:
    return zengin_export_create(actor=actor, transfer_date=TOMORROW, sender_key="demo", **kwargs)


def test_a_bank_payout_is_not_issued_one_by_one_and_nothing_changes(bank_program):
    # given a created bank-transfer payout
    (payout,) = bank_payouts(bank_program, 1)
    before = (payout.status, payout.attempts, payout.updated_at, PayoutTransition.objects.count())
    # when the sweep path tries to issue it outside an export
    with pytest.raises(PayoutRefused) as refused:
        payout_issue(payout_id=payout.pk)
    # then it is refused and nothing changed
    assert refused.value.code == RefusalCode.METHOD_NOT_SUPPORTED
    payout.refresh_from_db()
    assert (payout.status, payout.attempts, payout.updated_at, PayoutTransition.objects.count()) == before
    assert PayoutNotice.objects.count() == 0


def test_end_to_end_export_validate_import_settle_return_and_reoffer(bank_program):
    finance = finance_user()
    # given three approved bank-transfer claims whose payees gave an account, and one payee without one
    payouts = bank_payouts(bank_program, 3, amounts=[5500, 12000, 330])
    approved_claim(bank_program, amount=999)
    payouts_create_for_approved_claims(program=bank_program, actor=None)
    assert Payout.objects.filter(program=bank_program).count() == 4

    # when finance writes the transfer file
    written = export(finance)

    # then it holds the three payouts with an account, validates against the format, and they are issued
    parsed = zengin_parse(written.file_bytes(), year=TOMORROW.year)
    assert parsed.header.transfer_date == TOMORROW
    assert [line.customer_code for line in parsed.lines] == [customer_code_for(p.pk) for p in payouts]
    assert [line.amount_jpy for line in parsed.lines] == [5500, 12000, 330]
    assert {line.account.holder_kana for line in parsed.lines} == {"ﾔﾏﾀﾞ ﾀﾛｳ"}
    assert (parsed.total_count, parsed.total_amount_jpy) == (3, 17830)
    assert (written.total_count, written.total_amount_jpy) == (3, 17830)
    assert len(written.file_bytes()) == 6 * 122  # header, 3 data, trailer, end; 120 bytes + CRLF each
    assert ZenginExportLine.objects.count() == 3
    statuses = dict(Payout.objects.filter(program=bank_program).values_list("pk", "status"))
    assert [statuses[p.pk] for p in payouts] == ["issued"] * 3
    assert sorted(statuses.values()).count("created") == 1
    assert PayoutNotice.objects.count() == 3
    assert PayoutTransition.objects.filter(status_after="issued", actor=finance).count() == 3
    assert (
        Payout.objects.get(pk=payouts[0].pk).provider_reference
        == f"ZEN-{written.pk}-{customer_code_for(payouts[0].pk)}"
    )

    # when the file is downloaded, then who and when is recorded
    content = zengin_export_download(export=written, actor=finance)
    assert content == written.file_bytes()
    assert ZenginExportDownload.objects.filter(export=written, actor=finance).count() == 1

    # when the bank answers: the second transfer returned (口座なし)
    result_file = simulate_bank_results(content, returned={customer_code_for(payouts[1].pk): "1"})
    assert len(parse_transfer_results(result_file)) == 3
    imported = bank_results_import(actor=finance, data=result_file, file_name="result.txt")

    # then the others are settled, the returned one failed with its reason, its account returned, re-offered
    assert (imported.settled_count, imported.failed_count, imported.reoffered_count) == (2, 1, 1)
    assert imported.outcome == "clean"
    payout_status = dict(Payout.objects.filter(pk__in=[p.pk for p in payouts]).values_list("pk", "status"))
    assert payout_status == {payouts[0].pk: "settled", payouts[1].pk: "failed", payouts[2].pk: "settled"}
    failed = PayoutTransition.objects.get(payout=payouts[1], status_after="failed")
    assert "口座なし" in failed.note and failed.actor == finance
    returned_account = BankAccount.objects.get(customer=payouts[1].payee)
    assert returned_account.status == BankAccountStatus.RETURNED
    reoffer = Payout.objects.get(claim=payouts[1].claim, offer=2)
    assert (reoffer.status, reoffer.method, reoffer.amount_jpy) == ("created", "bank_transfer", 12000)
    assert reoffer.idempotency_key == f"payout:{payouts[1].claim_id}:bank_transfer:2"
    assert list(ZenginExportLine.objects.order_by("pk").values_list("result", flat=True)) == [
        LineResult.SETTLED,
        LineResult.RETURNED,
        LineResult.SETTLED,
    ]
    written.refresh_from_db()
    assert written.status == ExportStatus.RESULTS_IMPORTED

    # when the same result file is imported again, then it is refused and nothing changes
    counts = (Payout.objects.count(), PayoutTransition.objects.count(), BankingEvent.objects.count())
    with pytest.raises(BankingRefused) as again:
        bank_results_import(actor=finance, data=result_file, file_name="result-again.txt")
    assert again.value.code == "already_imported"
    assert (Payout.objects.count(), PayoutTransition.objects.count(), BankingEvent.objects.count()) == counts
    assert BankResultImport.objects.count() == 1

    # when the customer corrects the account, the next file carries the re-offer (and only it)
    bank_account_record(
        customer=payouts[1].payee, account_input=account_input(account_number="7777777"), actor=None, source="customer"
    )
    second = export(finance)
    assert [line.customer_code for line in zengin_parse(second.file_bytes()).lines] == [customer_code_for(reoffer.pk)]
    assert zengin_parse(second.file_bytes()).lines[0].account.account_number == "7777777"


def test_nothing_to_export_is_refused_and_writes_nothing(bank_program):
    finance = finance_user()
    approved_claim(bank_program)  # no account
    with pytest.raises(BankingRefused) as refused:
        export(finance)
    assert refused.value.code == "nothing_to_export"
    assert (ZenginExport.objects.count(), ZenginExportLine.objects.count(), BankingEvent.objects.count()) == (0, 0, 0)


def test_an_export_needs_a_person_a_known_sender_and_a_date_not_past(bank_program):
    bank_payouts(bank_program, 1)
    with pytest.raises(BankingRefused, match="signed-in"):
        export(None)
    finance = finance_user()
    with pytest.raises(BankingRefused) as unknown:
        zengin_export_create(actor=finance, transfer_date=TOMORROW, sender_key="nope")
    assert unknown.value.code == "unknown_sender"
    with pytest.raises(BankingRefused) as past:
        zengin_export_create(actor=finance, transfer_date=TOMORROW - dt.timedelta(days=3), sender_key="demo")
    assert past.value.code == "date_past"
    assert ZenginExport.objects.count() == 0
    assert Payout.objects.get().status == PayoutStatus.CREATED


def test_a_claim_no_longer_approved_is_left_out(bank_program):
    finance = finance_user()
    first, second = bank_payouts(bank_program, 2)
    type(second.claim).objects.filter(pk=second.claim_id).update(status=ClaimStatus.NEEDS_REREVIEW)
    written = export(finance)
    assert list(written.lines.values_list("payout_id", flat=True)) == [first.pk]


def test_an_export_issues_its_payouts_together_in_the_same_number_of_queries_for_any_size(bank_program):
    finance = finance_user()
    bank_payouts(bank_program, 2)
    with CaptureQueriesContext(connection) as small:
        export(finance)
    # given ten more payouts ready for the next file
    payouts = bank_payouts(bank_program, 10)[2:]  # all of the program's payouts: the first two are in a file

    with CaptureQueriesContext(connection) as large:
        written = export(finance)

    # then the ten are issued with one transition (by finance), one secret and one notice each ...
    assert written.total_count == 10
    ids = [p.pk for p in payouts]
    assert sorted(Payout.objects.filter(pk__in=ids, status="issued").values_list("pk", flat=True)) == ids
    transitions = PayoutTransition.objects.filter(payout__in=ids, status_before="created")
    assert sorted(transitions.values_list("payout_id", "status_before", "status_after", "actor")) == [
        (pk, "created", "issued", finance.pk) for pk in ids
    ]
    assert PayoutSecret.objects.filter(payout__in=ids).count() == 10
    assert sorted(PayoutNotice.objects.filter(payout__in=ids).values_list("payout_id", "kind", "sequence")) == [
        (pk, "issued", 1) for pk in ids
    ]
    assert list(Payout.objects.filter(pk__in=ids).values_list("attempts", flat=True).distinct()) == [1]
    # ... in as many queries as the file of two took (set-based: none per payout)
    assert len(large.captured_queries) == len(small.captured_queries)


def test_a_bank_result_settles_its_transfers_in_the_same_number_of_queries_for_any_size(bank_program):
    finance = finance_user()
    bank_payouts(bank_program, 2)
    small = export(finance)
    bank_payouts(bank_program, 6)
    large = export(finance)

    with CaptureQueriesContext(connection) as two:
        bank_results_import(
            actor=finance, data=simulate_bank_results(small.file_bytes(), returned={}), file_name="r2.txt"
        )
    with CaptureQueriesContext(connection) as six:
        record = bank_results_import(
            actor=finance, data=simulate_bank_results(large.file_bytes(), returned={}), file_name="r6.txt"
        )

    assert (record.settled_count, record.failed_count, record.outcome) == (6, 0, "clean")
    assert set(Payout.objects.filter(program=bank_program).values_list("status", flat=True)) == {"settled"}
    assert set(ZenginExportLine.objects.values_list("result", flat=True)) == {"settled"}
    assert len(six.captured_queries) == len(two.captured_queries)


def test_a_payout_whose_claim_changed_after_selection_refuses_the_whole_file(bank_program, monkeypatch):
    finance = finance_user()
    first, second = bank_payouts(bank_program, 2)
    before = (ZenginExport.objects.count(), PayoutTransition.objects.count(), PayoutNotice.objects.count())
    # given the second claim's approved amount changes between the selection and the issue
    from payouts.banking import services  # noqa: PLC0415

    selected = services.bank_payouts_ready_for_export

    def select_then_change(**kwargs):
        rows = selected(**kwargs)
        type(second.claim).objects.filter(pk=second.claim_id).update(approved_amount_jpy=second.amount_jpy + 1)
        return rows

    monkeypatch.setattr(services, "bank_payouts_ready_for_export", select_then_change)

    # when finance writes the file: refused, and nothing was written or issued
    with pytest.raises(BankingRefused) as refused:
        export(finance)
    assert refused.value.code == "issue_failed"
    assert str(second.pk) in str(refused.value)
    assert (ZenginExport.objects.count(), PayoutTransition.objects.count(), PayoutNotice.objects.count()) == before
    assert set(Payout.objects.filter(pk__in=[first.pk, second.pk]).values_list("status", flat=True)) == {"created"}


def test_an_unknown_or_malformed_result_file_is_refused_and_changes_nothing(bank_program):
    finance = finance_user()
    bank_payouts(bank_program, 1)
    with pytest.raises(BankingRefused) as bad:
        bank_results_import(actor=finance, data=b"not a zengin file", file_name="x.txt")
    assert bad.value.code == "format"
    with pytest.raises(BankingRefused) as unknown:
        bank_results_import(actor=finance, data=sample_zengin_result_file(), file_name="sample.txt")
    assert unknown.value.code == "no_export"
    assert BankResultImport.objects.count() == 0


def test_the_sweep_does_not_touch_bank_payouts_state(bank_program):
    # The sweep may enqueue them (payouts.selectors lists every registered method), but issuing refuses
    # without changing anything: see test_a_bank_payout_is_not_issued_one_by_one_and_nothing_changes.
    bank_payouts(bank_program, 1)
    payouts_sweep_enqueue(min_age=dt.timedelta(0))
    assert Payout.objects.get().status == PayoutStatus.CREATED


def test_admin_screens_write_download_and_import(client, bank_program):
    finance = finance_user()
    client.force_login(finance)
    (payout,) = bank_payouts(bank_program, 1)
    page = client.get(reverse("admin:banking_zenginexport_create"))
    assert page.status_code == 200 and b"zengin-export-form" in page.content
    response = client.post(
        reverse("admin:banking_zenginexport_create"), {"transfer_date": TOMORROW.isoformat(), "sender": "demo"}
    )
    written = ZenginExport.objects.get()
    assert response.status_code == 302
    download = client.post(reverse("admin:banking_zenginexport_download", args=[written.pk]))
    assert download.status_code == 200 and download.content == written.file_bytes()
    assert "no-store" in download["Cache-Control"]
    assert ZenginExportDownload.objects.count() == 1
    # A GET (a link, a prefetch) never downloads: it goes back to the export page and records nothing
    again = client.get(reverse("admin:banking_zenginexport_download", args=[written.pk]))
    assert (again.status_code, again["Location"]) == (
        302,
        reverse("admin:banking_zenginexport_change", args=[written.pk]),
    )
    assert ZenginExportDownload.objects.count() == 1
    result = simulate_bank_results(download.content, returned={})
    upload = SimpleUploadedFile("result.txt", result)
    page = client.post(reverse("admin:banking_zenginexport_import_result"), {"file": upload})
    assert page.status_code == 200 and b"import-result" in page.content
    payout.refresh_from_db()
    assert payout.status == PayoutStatus.SETTLED


def test_staff_without_the_permissions_are_refused_and_nothing_happens(client, bank_program):
    client.force_login(UserFactory.create(username="agent-x"))
    bank_payouts(bank_program, 1)
    for name in ("create", "import_result", "import_settlement", "report", "report_csv"):
        assert client.get(reverse(f"admin:banking_zenginexport_{name}")).status_code == 403
    assert (
        client.post(
            reverse("admin:banking_zenginexport_create"), {"transfer_date": TOMORROW.isoformat(), "sender": "demo"}
        ).status_code
        == 403
    )
    assert ZenginExport.objects.count() == 0
