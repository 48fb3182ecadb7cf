"""Several files loaded at once (`jobs` > 1): each on its own connection, after the files it references.

Transactional tests: the loading threads use their own connections, which see only committed rows.
"""

import importlib
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from support_portal.core.imports.postgres import tables_locked_by_load
from support_portal.core.imports.schema import SPECS_BY_FILE_NAME, file_prerequisites
from support_portal.core.models import ImportRun
from support_portal.customers.models import Charge, Customer, Plan, Subscription
from tests.core.imports.test_import_records import GOOD_FILES, import_dir, write_files

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def program_templates(transactional_db) -> None:
    """The migration's templates (submissions name them): an earlier transactional test may have flushed them."""
    importlib.import_module("claims.migrations.0002_program_templates").create_templates(apps, None)


def schema_shape() -> list[tuple[str, str, str]]:
    """Every index and constraint of the public schema: (table, name, definition + validated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indrelid::regclass::text, indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "JOIN pg_class c ON c.oid = indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' UNION ALL "
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(p.oid) || ' validated=' || convalidated "
            "FROM pg_constraint p JOIN pg_namespace n ON n.oid = p.connamespace WHERE n.nspname = 'public' "
            "ORDER BY 1, 2, 3"
        )
        return cursor.fetchall()


def test_prerequisites_follow_the_references() -> None:
    assert {name: sorted(file_prerequisites(spec)) for name, spec in SPECS_BY_FILE_NAME.items()} == {
        "customers.csv": [],
        "plans.csv": [],
        "subscriptions.csv": ["customers.csv", "plans.csv"],
        "charges.csv": ["subscriptions.csv"],
        "logins.csv": ["customers.csv"],
        "usage_events.csv": ["customers.csv", "subscriptions.csv"],
        "coupons.csv": ["customers.csv"],
        "coupon_transactions.csv": ["coupons.csv"],
        "submissions.csv": ["charges.csv", "coupons.csv", "customers.csv"],
    }


def test_parallel_import_loads_everything_after_its_prerequisites_and_keeps_the_schema(tmp_path: Path) -> None:
    # Given every good file and the schema before any load
    directory = write_files(tmp_path / "good", dict(GOOD_FILES))
    shape_before = schema_shape()
    # When they are imported two at a time
    result = import_dir(directory, jobs=2)
    # Then every file succeeds with the sequential run's counts, reported in dependency order
    assert [(o.file_name, o.status, o.rows_read, o.rows_inserted, o.rows_updated) for o in result.files] == [
        ("customers.csv", "succeeded", 3, 3, 0),
        ("plans.csv", "succeeded", 2, 2, 0),
        ("subscriptions.csv", "succeeded", 2, 2, 0),
        ("charges.csv", "succeeded", 3, 3, 0),
        ("logins.csv", "succeeded", 2, 2, 0),
        ("usage_events.csv", "succeeded", 2, 2, 0),
        ("coupons.csv", "succeeded", 2, 2, 0),
        ("coupon_transactions.csv", "succeeded", 2, 2, 0),
        ("submissions.csv", "succeeded", 2, 2, 0),
    ]
    # And no file started before every file it references had finished
    runs = {run.file_name: run for run in ImportRun.objects.all()}
    assert len(runs) == 9
    for name, spec in SPECS_BY_FILE_NAME.items():
        for prerequisite in file_prerequisites(spec):
            finished_at = runs[prerequisite].finished_at
            assert finished_at is not None and finished_at <= runs[name].started_at, (prerequisite, name)
    # And every index and constraint of every table is back, same names, same definitions, validated
    assert schema_shape() == shape_before
    # And a second parallel run changes nothing
    again = import_dir(directory, jobs=2)
    assert [(o.status, o.rows_inserted, o.rows_updated) for o in again.files] == [("succeeded", 0, 0)] * 9


def test_a_rejected_prerequisite_does_not_stop_its_dependents_which_name_the_missing_rows(tmp_path: Path) -> None:
    # Given a customers file with a bad row, and subscriptions and charges that reference its customers
    files = dict(GOOD_FILES)
    files["customers.csv"] = GOOD_FILES["customers.csv"] + "c4,,,,not-a-time\n"
    directory = write_files(
        tmp_path / "d",
        {name: files[name] for name in ("customers.csv", "plans.csv", "subscriptions.csv", "charges.csv")},
    )
    # When they are imported in parallel
    result = import_dir(directory, jobs=2)
    # Then customers is rejected, plans loads, and the dependents are rejected naming the unknown rows
    assert [(o.file_name, o.status) for o in result.files] == [
        ("customers.csv", "rejected"),
        ("plans.csv", "succeeded"),
        ("subscriptions.csv", "rejected"),
        ("charges.csv", "rejected"),
    ]
    subscriptions = next(o for o in result.files if o.file_name == "subscriptions.csv")
    assert [(e.line, e.column) for e in subscriptions.errors] == [
        (2, "customer_id"),
        (3, "customer_id"),
        (3, "payer_customer_id"),
    ]
    # And nothing but the plans was written
    assert (Customer.objects.count(), Plan.objects.count(), Subscription.objects.count(), Charge.objects.count()) == (
        0,
        2,
        0,
        0,
    )


def test_command_loads_in_parallel_by_default_outside_a_transaction(tmp_path: Path, capsys) -> None:
    # Given the good files
    directory = write_files(tmp_path / "good", dict(GOOD_FILES))
    # When the command runs with two jobs
    call_command("import_records", str(directory), "--jobs", "2", verbosity=0)
    # Then every file is in
    assert capsys.readouterr().out.count(": succeeded:") == 9
    assert (Customer.objects.count(), Charge.objects.count()) == (3, 3)


def test_loads_that_would_lock_the_same_table_are_kept_apart() -> None:
    locks = {name: tables_locked_by_load(spec) for name, spec in SPECS_BY_FILE_NAME.items()}
    # charges locks subscriptions (its foreign key) and logins locks customers: they may run together
    assert {"customers_charge", "customers_subscription"} <= locks["charges.csv"]
    assert not locks["charges.csv"] & locks["logins.csv"]
    # usage events reference subscriptions too: they wait for charges to commit
    assert "customers_subscription" in locks["charges.csv"] & locks["usage_events.csv"]
    # submissions are checked against customers, coupons and charges
    assert {"customers_customer", "customers_coupon", "customers_charge"} <= locks["submissions.csv"]
