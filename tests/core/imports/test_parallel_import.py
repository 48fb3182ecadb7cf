"""Several files loaded at once (`jobs` > 1): each on its own connection, after the files it references.

Transactional tests: the loading threads use their own connections, which see only committed rows.
"""

import importlib
import threading
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from support_portal.core.checks import set_aside_foreign_keys
from support_portal.core.imports.postgres import set_aside_cross_file_keys, tables_locked_by_load
from support_portal.core.imports.schema import SPECS_BY_FILE_NAME, file_prerequisites
from support_portal.core.imports.service import FileOutcome, _run_scheduled
from support_portal.core.models import ImportRun, SetAsideForeignKey
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
    # And no file committed before every file it references had committed
    runs = {run.file_name: run for run in ImportRun.objects.all()}
    assert len(runs) == 9
    for name, spec in SPECS_BY_FILE_NAME.items():
        for prerequisite in file_prerequisites(spec):
            before, after = runs[prerequisite].finished_at, runs[name].finished_at
            assert before is not None and after is not None and before <= after, (prerequisite, name)
    # And every index and constraint of every table is back, same names, same definitions, validated,
    # and the journal of keys set aside is empty
    assert schema_shape() == shape_before
    assert SetAsideForeignKey.objects.count() == 0
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
    shape_before = schema_shape()
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
    # And nothing but the plans was written, and the rejected files' keys are back
    assert (Customer.objects.count(), Plan.objects.count(), Subscription.objects.count(), Charge.objects.count()) == (
        0,
        2,
        0,
        0,
    )
    assert schema_shape() == shape_before
    assert SetAsideForeignKey.objects.count() == 0


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
    # Without keys set aside, dropping charges' key locks subscriptions, and logins' locks customers
    assert {"customers_charge", "customers_subscription"} <= locks["charges.csv"]
    assert not locks["charges.csv"] & locks["logins.csv"]
    # usage events reference subscriptions too: they wait for charges to commit
    assert "customers_subscription" in locks["charges.csv"] & locks["usage_events.csv"]
    # submissions are checked against customers, coupons and charges
    assert {"customers_customer", "customers_coupon", "customers_charge"} <= locks["submissions.csv"]


def test_keys_between_the_empty_tables_of_an_import_are_set_aside_up_front_and_restored() -> None:
    # Given every table of the files empty, and the schema
    shape_before = schema_shape()
    loaded = frozenset(spec.table for spec in SPECS_BY_FILE_NAME.values())
    # When the keys between them are set aside
    set_aside = set_aside_cross_file_keys(loaded)
    # Then each is in the journal and no longer in the catalog
    journal = sorted(SetAsideForeignKey.objects.values_list("table_name", "constraint_name"))
    assert len(journal) == set_aside
    assert {table for table, _name in journal} == {
        "customers_subscription",
        "customers_charge",
        "customers_login",
        "customers_usageevent",
        "customers_coupon",
        "customers_coupontransaction",
    }
    assert not {name for _table, name in journal} & {row[1] for row in schema_shape()}
    # And charges, subscriptions, logins and usage events now lock only their own tables (plus the claims
    # tables that reference them, which no file loads), and submissions no longer their subjects
    locks = {name: tables_locked_by_load(spec, loaded_tables=loaded) for name, spec in SPECS_BY_FILE_NAME.items()}
    assert locks["charges.csv"] == {"customers_charge"}
    assert locks["logins.csv"] == {"customers_login"}
    assert locks["usage_events.csv"] == {"customers_usageevent"}
    assert not {"customers_customer", "customers_coupon", "customers_charge"} & locks["submissions.csv"]
    # And the check says so
    assert [message.id for message in set_aside_foreign_keys(databases=["default"])] == ["core.W001"]
    # When they are restored (as the next import, or `import_records --restore-keys`, does)
    call_command("import_records", "--restore-keys", verbosity=0)
    # Then the schema is back exactly, the journal empty, and the check silent
    assert schema_shape() == shape_before
    assert SetAsideForeignKey.objects.count() == 0
    assert set_aside_foreign_keys(databases=["default"]) == []


def test_an_import_killed_after_setting_keys_aside_is_repaired_by_the_next(tmp_path: Path) -> None:
    # Given keys left set aside (a parallel import killed before its loads re-added them)
    shape_before = schema_shape()
    set_aside_cross_file_keys(frozenset(spec.table for spec in SPECS_BY_FILE_NAME.values()))
    assert SetAsideForeignKey.objects.count() > 0
    # When the next import loads only customers and plans, in parallel
    directory = write_files(tmp_path / "d", {name: GOOD_FILES[name] for name in ("customers.csv", "plans.csv")})
    result = import_dir(directory, jobs=2)
    # Then it loads them, and every key is back
    assert [(o.file_name, o.status) for o in result.files] == [
        ("customers.csv", "succeeded"),
        ("plans.csv", "succeeded"),
    ]
    assert schema_shape() == shape_before
    assert SetAsideForeignKey.objects.count() == 0


def test_a_sequential_load_into_a_table_whose_keys_were_left_aside_re_adds_them_and_checks_its_rows(
    tmp_path: Path,
) -> None:
    # Given customers and plans loaded, then the keys between the empty tables left set aside
    write_files(tmp_path / "base", {name: GOOD_FILES[name] for name in ("customers.csv", "plans.csv")})
    import_dir(tmp_path / "base")
    shape_before = schema_shape()
    set_aside_cross_file_keys(frozenset(spec.table for spec in SPECS_BY_FILE_NAME.values()))
    # When one file of subscriptions naming an unknown customer is imported on its own (one job)
    bad = GOOD_FILES["subscriptions.csv"].replace(",c1,", ",c9,", 1)
    directory = write_files(tmp_path / "d", {"subscriptions.csv": bad})
    result = import_dir(directory)
    # Then it is refused, naming the row, and nothing is written
    [outcome] = result.files
    assert (outcome.status, [(e.line, e.column) for e in outcome.errors]) == ("rejected", [(2, "customer_id")])
    assert Subscription.objects.count() == 0
    # When the good file is imported on its own
    result = import_dir(write_files(tmp_path / "g", {"subscriptions.csv": GOOD_FILES["subscriptions.csv"]}))
    # Then it loads, and its own keys are back (validated) and out of the journal; the others still wait
    assert [(o.status, o.rows_inserted) for o in result.files] == [("succeeded", 2)]
    assert not SetAsideForeignKey.objects.filter(table_name="customers_subscription").exists()
    restored = {row for row in schema_shape() if row[0] == "customers_subscription"}
    assert restored == {row for row in shape_before if row[0] == "customers_subscription"}
    call_command("import_records", "--restore-keys", verbosity=0)
    assert schema_shape() == shape_before


def test_the_largest_load_starts_at_once_and_no_load_waits_for_a_queued_one() -> None:
    # Given a big file that references a chain of two small ones, and its dependent, on two lanes
    prerequisites = {
        "big": frozenset({"middle"}),
        "middle": frozenset({"first"}),
        "first": frozenset(),
        "last": frozenset({"big", "first"}),
    }
    locks = {name: frozenset({name}) for name in prerequisites}
    started: list[str] = []
    done = {name: threading.Event() for name in prerequisites}

    def load(name: str) -> FileOutcome:
        started.append(name)
        for other in prerequisites[name]:
            assert done[other].wait(timeout=10), f"{name} waited for {other} forever"
        done[name].set()
        return FileOutcome(file_name=name, status="succeeded")

    # When they are scheduled in priority order
    finished = _run_scheduled(
        ["big", "middle", "first", "last"], prerequisites, locks, load, {n: n for n in prerequisites}, 2
    )
    # Then the big one starts first (before its prerequisites), the chain follows on the other lane, and
    # its dependent starts only once nothing it waits for is queued
    assert started == ["big", "first", "middle", "last"]
    assert set(finished) == set(prerequisites)
