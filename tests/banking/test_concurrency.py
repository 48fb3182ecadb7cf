"""Two finance users pressing "write the transfer file" at once: one file, each payout in it once; the same
result file imported twice at once: one import."""

import threading

import pytest
from django.db import connections

from payouts.banking.models import BankResultImport, ZenginExport, ZenginExportLine
from payouts.banking.services import BankingRefused, bank_results_import, zengin_export_create
from payouts.models import Payout, PayoutNotice, PayoutStatus
from payouts.zengin import simulate_bank_results
from tests.banking.conftest import bank_payouts, finance_user, make_program
from tests.banking.test_bank_transfer import TOMORROW


def run_twice(target) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(2)
    results: list[object] = []
    errors: list[BaseException] = []

    def body() -> None:
        try:
            barrier.wait()
            results.append(target())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.mark.django_db(transaction=True)
def test_two_exports_at_once_write_one_file_with_each_payout_once():
    # given five bank payouts ready for a file and two finance users
    payouts = bank_payouts(make_program("bank_transfer"), 5)
    first, second = finance_user("fin-a"), finance_user("fin-b")
    users = iter([first, second])
    lock = threading.Lock()

    def export() -> ZenginExport:
        with lock:
            actor = next(users)
        return zengin_export_create(actor=actor, transfer_date=TOMORROW, sender_key="demo")

    # when both press the button at the same moment
    results, errors = run_twice(export)
    # then one file holds all five, the other press is refused (nothing to export), each payout once
    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], BankingRefused) and errors[0].code == "nothing_to_export"
    assert ZenginExport.objects.count() == 1
    assert ZenginExportLine.objects.count() == 5
    assert Payout.objects.filter(status=PayoutStatus.ISSUED).count() == 5
    assert PayoutNotice.objects.count() == 5
    assert {line.payout_id for line in ZenginExportLine.objects.all()} == {p.pk for p in payouts}


@pytest.mark.django_db(transaction=True)
def test_the_same_result_file_imported_twice_at_once_is_applied_once():
    bank_payouts(make_program("bank_transfer"), 3)
    finance = finance_user("fin-c")
    written = zengin_export_create(actor=finance, transfer_date=TOMORROW, sender_key="demo")
    result = simulate_bank_results(written.file_bytes(), returned={})

    results, errors = run_twice(lambda: bank_results_import(actor=finance, data=result, file_name="r.txt"))

    assert len(results) == 1 and len(errors) == 1
    assert isinstance(errors[0], BankingRefused) and errors[0].code == "already_imported"
    assert BankResultImport.objects.count() == 1
    assert Payout.objects.filter(status=PayoutStatus.SETTLED).count() == 3
