"""The demo files go through the real import service with no errors, and `load_demo` loads them once."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Model

from claims.models import Policy, Program, Submission
from support_portal.core.demo.generator import generate_demo_data
from support_portal.core.imports.service import records_import
from support_portal.core.models import ImportRun
from support_portal.customers.models import (
    Charge,
    Coupon,
    CouponTransaction,
    Customer,
    Login,
    Plan,
    Subscription,
    UsageEvent,
)

MODELS_BY_FILE: dict[str, type[Model]] = {
    "customers": Customer,
    "plans": Plan,
    "subscriptions": Subscription,
    "charges": Charge,
    "logins": Login,
    "usage_events": UsageEvent,
    "coupons": Coupon,
    "coupon_transactions": CouponTransaction,
    "submissions": Submission,
}

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def programs() -> None:
    # The templates come from a data migration; create any this database lacks.
    existing = set(Program.objects.values_list("slug", flat=True))
    for policy in Policy:
        if policy.value not in existing:
            Program.objects.create(slug=policy.value, name=str(policy.label), policy=policy.value)


def test_demo_files_import_without_errors_and_every_row_lands(tmp_path: Path) -> None:
    data_set = generate_demo_data(tmp_path, customers=300, seed=5, workers=1)
    messages: list[str] = []

    result = records_import(directory=tmp_path, actor=None, source=ImportRun.Source.COMMAND, progress=messages.append)

    assert result.ok, [str(error) for error in result.errors[:20]]
    assert result.error_count == 0
    runs = list(ImportRun.objects.all())
    assert {run.status for run in runs} == {ImportRun.Status.SUCCEEDED}
    assert sum(run.error_count for run in runs) == 0
    for name, model in MODELS_BY_FILE.items():
        assert model._default_manager.count() == data_set.rows[name], name


def test_load_demo_generates_imports_and_then_does_nothing(tmp_path: Path, settings) -> None:
    settings.VAR_DIR = tmp_path
    first = StringIO()

    call_command("load_demo", customers=200, seed=2, stdout=first)

    assert Customer.objects.count() == 200
    assert (tmp_path / "demo" / "200-2" / "charges.csv").is_file()
    second = StringIO()
    call_command("load_demo", customers=200, seed=2, stdout=second)
    assert "already loaded" in second.getvalue()
    assert Customer.objects.count() == 200


def test_load_demo_fails_with_every_bad_row_when_a_file_is_refused(tmp_path: Path, settings) -> None:
    settings.VAR_DIR = tmp_path
    cached = tmp_path / "demo" / "100-4"
    generate_demo_data(cached, customers=100, seed=4, workers=1)
    charges = cached / "charges.csv"
    lines = charges.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace(",false\n", ",maybe\n").replace(",true\n", ",maybe\n")
    charges.write_text("".join(lines), encoding="utf-8")

    with pytest.raises(CommandError) as refused:
        call_command("load_demo", customers=100, seed=4, stdout=StringIO())

    assert "charges.csv" in str(refused.value)
    assert "charges.csv:3: promotional" in str(refused.value)
