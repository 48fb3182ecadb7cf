"""The demo generator: deterministic bytes, and the shape the policies need (SPEC.md)."""

import csv
import itertools
from collections import defaultdict
from datetime import datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from support_portal.core.demo.generator import CHUNK_CUSTOMERS, FILE_COLUMNS, FILE_NAMES, generate_demo_data

LOGIN_OUTAGE_PLANS = {"premium", "channel", "channel_plus", "creator_support", "zen_study"}


def read_rows(directory: Path, name: str) -> list[dict[str, str]]:
    with (directory / f"{name}.csv").open(encoding="utf-8", newline="") as source:
        return list(csv.DictReader(source))


def file_bytes(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in FILE_NAMES}


@pytest.fixture(scope="module")
def data_2000(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("demo-2000")
    generate_demo_data(directory, customers=2000, seed=7, workers=1)
    return directory


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    generate_demo_data(tmp_path / "a", customers=400, seed=11, workers=1)
    generate_demo_data(tmp_path / "b", customers=400, seed=11, workers=1)
    assert file_bytes(tmp_path / "a") == file_bytes(tmp_path / "b")


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    generate_demo_data(tmp_path / "a", customers=400, seed=11, workers=1)
    generate_demo_data(tmp_path / "b", customers=400, seed=12, workers=1)
    first, second = file_bytes(tmp_path / "a"), file_bytes(tmp_path / "b")
    assert first["customers.csv"] != second["customers.csv"]
    assert first["charges.csv"] != second["charges.csv"]


def test_output_does_not_depend_on_the_number_of_worker_processes(tmp_path: Path) -> None:
    customers = 2 * CHUNK_CUSTOMERS + 17  # three chunks, the last one partial
    generate_demo_data(tmp_path / "one", customers=customers, seed=3, workers=1)
    generate_demo_data(tmp_path / "two", customers=customers, seed=3, workers=2)
    assert file_bytes(tmp_path / "one") == file_bytes(tmp_path / "two")


def test_headers_follow_the_import_contract_and_reported_counts_match(tmp_path: Path) -> None:
    data_set = generate_demo_data(tmp_path, customers=300, seed=1, workers=1)
    for name, columns in FILE_COLUMNS.items():
        with (tmp_path / f"{name}.csv").open(encoding="utf-8", newline="") as source:
            reader = csv.reader(source)
            assert tuple(next(reader)) == columns
            assert sum(1 for _ in reader) == data_set.rows[name]
    assert not list(tmp_path.glob("*.partial"))


def test_about_one_customer_in_five_has_no_email(data_2000: Path) -> None:
    customers = read_rows(data_2000, "customers")
    assert len(customers) == 2000
    share = sum(1 for row in customers if not row["email"]) / len(customers)
    assert 0.15 <= share <= 0.25
    assert len({row["customer_id"] for row in customers}) == 2000


def test_every_login_outage_plan_exists_and_has_subscriptions(data_2000: Path) -> None:
    plans = {row["plan_code"] for row in read_rows(data_2000, "plans")}
    assert plans >= LOGIN_OUTAGE_PLANS
    subscribed = {row["plan_code"] for row in read_rows(data_2000, "subscriptions")}
    assert subscribed >= LOGIN_OUTAGE_PLANS


def test_outage_window_has_duplicate_coupon_payments(data_2000: Path) -> None:
    window_start = datetime.fromisoformat("2023-02-24T16:00:00+09:00")
    window_end = datetime.fromisoformat("2023-02-24T23:59:59+09:00")
    payments: dict[tuple[str, str, str], list[datetime]] = defaultdict(list)
    for row in read_rows(data_2000, "coupon_transactions"):
        occurred = datetime.fromisoformat(row["occurred_at"])
        if row["kind"] == "payment" and window_start <= occurred <= window_end:
            payments[(row["inquiry_number"], row["store_name"], row["amount_jpy"])].append(occurred)
    duplicated = [
        key
        for key, times in payments.items()
        if any(later - earlier <= timedelta(seconds=120) for earlier, later in itertools.pairwise(sorted(times)))
    ]
    assert duplicated


def test_coupon_balances_never_go_negative(data_2000: Path) -> None:
    balances = {row["inquiry_number"]: int(row["face_value_jpy"]) for row in read_rows(data_2000, "coupons")}
    transactions = sorted(read_rows(data_2000, "coupon_transactions"), key=lambda row: row["occurred_at"])
    for row in transactions:
        sign = -1 if row["kind"] == "payment" else 1
        balances[row["inquiry_number"]] += sign * int(row["amount_jpy"])
        assert balances[row["inquiry_number"]] >= 0, row


def test_charges_are_monthly_periods_with_some_promotions_and_double_charges(data_2000: Path) -> None:
    charges = read_rows(data_2000, "charges")
    assert 6 * 2000 <= len(charges) <= 10 * 2000
    assert all(row["period_start"].endswith("-01") and row["period_end"].endswith("-01") for row in charges)
    assert all(row["charged_at"].startswith(row["period_start"]) for row in charges)
    assert any(row["promotional"] == "true" for row in charges)
    per_period: dict[tuple[str, str], int] = defaultdict(int)
    for row in charges:
        per_period[(row["subscription_id"], row["period_start"])] += 1
    assert any(count > 1 for count in per_period.values())


def test_submissions_cover_every_program_with_repeats(data_2000: Path) -> None:
    submissions = read_rows(data_2000, "submissions")
    programs = {row["program"] for row in submissions}
    assert programs >= {"login-outage-2024", "coupon-outage-2023", "cooling-off-7day", "overpayment"}
    per_subject: dict[tuple[str, str], int] = defaultdict(int)
    for row in submissions:
        per_subject[(row["program"], row["subject"])] += 1
    assert any(count > 1 for count in per_subject.values())
    assert all(row["payout_method"] == "atm_cash" for row in submissions if row["program"] == "login-outage-2024")
    assert len({row["submission_id"] for row in submissions}) == len(submissions)


def test_command_writes_the_files_and_reports_the_counts(tmp_path: Path) -> None:
    output = StringIO()

    call_command("generate_demo_data", customers=50, out=tmp_path, seed=9, workers=1, stdout=output)

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FILE_NAMES)
    assert "customers.csv" in output.getvalue()
    assert len(read_rows(tmp_path, "customers")) == 50
