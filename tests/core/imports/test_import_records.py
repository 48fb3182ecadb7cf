"""`records_import`, the `import_records` command and the admin upload screen, on real PostgreSQL."""

import hashlib
import re
from datetime import UTC, date, datetime
from io import BytesIO
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from claims.models import Policy, Program, Submission
from support_portal.core.imports import python_path
from support_portal.core.imports.csv_files import ErrorList, read_header
from support_portal.core.imports.postgres import probes_stored_rows
from support_portal.core.imports.schema import SPECS_BY_FILE_NAME
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

pytestmark = pytest.mark.django_db

EVENT_MODELS = [
    "customers.CustomerEvent",
    "customers.PlanEvent",
    "customers.SubscriptionEvent",
    "customers.ChargeEvent",
    "customers.CouponEvent",
    "customers.CouponTransactionEvent",
]

GOOD_FILES = {
    "customers.csv": (
        "customer_id,name,email,phone,created_at\n"
        "c1,山田 太郎,taro@example.jp,090-1234-5678,2024-04-01T09:00:00\n"
        "c2,Hanako,,,2024-04-01T09:00:00+00:00\n"
        'c3,"Sato, Jiro",,03 (1234) 5678,\n'
    ),
    "plans.csv": "plan_code,name,monthly_fee_jpy\npremium,Premium,550\nbasic,Basic,0\n",
    "subscriptions.csv": (
        "subscription_id,customer_id,plan_code,payer_customer_id,payment_method,started_at,ended_at,auto_renew\n"
        "s1,c1,premium,,card,2024-04-01T10:00:00+09:00,,true\n"
        "s2,c2,basic,c1,apple_iap,2024-05-01 00:00,2024-06-01T00:00:00Z,0\n"
    ),
    "charges.csv": (
        "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,payment_method,promotional\n"
        "ch1,s1,550,2024-04-01T10:00:00+09:00,2024-04-01,2024-05-01,,false\n"
        "ch2,s1,550,2024-05-01T10:00:00,2024-05-01,2024-06-01,carrier,1\n"
        "ch3,s2,0,2024-05-01T00:00:00.5+0900,2024-05-01,2024-06-01,,\n"
    ),
    "logins.csv": "customer_id,logged_in_at\nc1,2024-07-01T08:00:00\nc1,2024-07-02T08:00:00+09\n",
    "usage_events.csv": "used_at,customer_id,subscription_id\n2024-07-01T08:00:00,c1,s1\n2024-07-01T08:00:00,c1,\n",
    "coupons.csv": (
        "inquiry_number,customer_id,prefecture,face_value_jpy,issued_at,expires_at,via_app,app_withdrawn\n"
        "Q1,c1,東京都,3000,2023-01-01T00:00:00,2023-12-31T23:59:59,true,\n"
        "Q2,,,1000,2023-01-01T00:00:00,2023-12-31T23:59:59,,\n"
    ),
    "coupon_transactions.csv": (
        "transaction_id,inquiry_number,kind,amount_jpy,occurred_at,store_name\n"
        "t1,Q1,charge,3000,2023-01-02T12:00:00,\n"
        "t2,Q1,payment,500,2023-02-24T12:00:00,Lawson\n"
    ),
    "submissions.csv": (
        "submission_id,program,subject,submitted_at,channel,contact_email,payout_method,fault,effective_at\n"
        "sub1,autorenew-60day,ch1,2024-06-01T12:00:00,web,taro@example.jp,original_method,company,2024-06-15\n"
        "sub2,login-outage-2024,c2,2024-06-02T12:00:00,,,,,\n"
    ),
}


def write_files(directory: Path, files: dict[str, str | bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content.encode() if isinstance(content, str) else content)
    return directory


def import_dir(directory: Path, **options):
    return records_import(directory=directory, actor=None, source=ImportRun.Source.COMMAND, **options)


def row_versions() -> list[tuple[str, str]]:
    """The physical version (xmin) of every charge and customer: unchanged when no UPDATE ran."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT charge_id, xmin::text FROM customers_charge UNION ALL "
            "SELECT customer_id, xmin::text FROM customers_customer ORDER BY 1"
        )
        return cursor.fetchall()


def event_counts() -> dict[str, int]:
    return {label: apps.get_model(label).objects.count() for label in EVENT_MODELS}


def errors_of(result, file_name: str) -> list[tuple[int, str, str]]:
    outcome = next(outcome for outcome in result.files if outcome.file_name == file_name)
    return [(error.line, error.column, error.reason) for error in outcome.errors]


def assert_errors(actual: list[tuple[int, str, str]], expected: list[tuple[int, str, str]]) -> None:
    """Same lines and columns in the same order; each reason contains the expected text."""
    assert [(line, column) for line, column, _reason in actual] == [(line, column) for line, column, _ in expected]
    for (_line, _column, reason), (_l, _c, expected_text) in zip(actual, expected, strict=True):
        assert expected_text in reason


@pytest.fixture
def programs() -> None:
    # The seven program templates ship with the claims migrations (slug = policy).
    assert dict(
        Program.objects.filter(slug__in=["autorenew-60day", "login-outage-2024"]).values_list("slug", "policy")
    ) == {
        "autorenew-60day": Policy.AUTORENEW_60DAY,
        "login-outage-2024": Policy.LOGIN_OUTAGE_2024,
    }


@pytest.fixture
def good_dir(tmp_path: Path, programs: None) -> Path:
    return write_files(tmp_path / "good", dict(GOOD_FILES))


def test_good_directory_imports_every_file_exactly(good_dir: Path) -> None:
    # Given a directory with one good file of each kind
    # When it is imported
    result = import_dir(good_dir)

    # Then every file succeeds, in dependency order, with exact counts
    assert result.ok
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
    # And the values are stored as FORMATS.md says (JST without offset, stored in UTC)
    c1 = Customer.objects.get(pk="c1")
    assert (c1.name, c1.phone, c1.phone_digits) == ("山田 太郎", "090-1234-5678", "09012345678")
    assert c1.created_at == datetime(2024, 4, 1, 0, 0, tzinfo=UTC)
    assert Customer.objects.get(pk="c2").created_at == datetime(2024, 4, 1, 9, 0, tzinfo=UTC)
    c3 = Customer.objects.get(pk="c3")
    assert (c3.name, c3.email, c3.phone_digits, c3.created_at) == ("Sato, Jiro", "", "0312345678", None)
    s1, s2 = Subscription.objects.get(pk="s1"), Subscription.objects.get(pk="s2")
    assert (s1.customer_id, s1.plan_id, s1.payer_id, s1.payment_method, s1.auto_renew) == (
        "c1",
        "premium",
        None,
        "card",
        True,
    )
    assert s1.started_at == datetime(2024, 4, 1, 1, 0, tzinfo=UTC)
    assert (s2.payer_id, s2.auto_renew, s2.ended_at) == ("c1", False, datetime(2024, 6, 1, tzinfo=UTC))
    assert s2.started_at == datetime(2024, 4, 30, 15, 0, tzinfo=UTC)
    ch1, ch2, ch3 = (Charge.objects.get(pk=pk) for pk in ("ch1", "ch2", "ch3"))
    assert (ch1.amount_jpy, ch1.period_start, ch1.period_end, ch1.payment_method, ch1.promotional) == (
        550,
        date(2024, 4, 1),
        date(2024, 5, 1),
        "",
        False,
    )
    assert (ch2.charged_at, ch2.payment_method, ch2.promotional) == (
        datetime(2024, 5, 1, 1, 0, tzinfo=UTC),
        "carrier",
        True,
    )
    assert ch3.charged_at == datetime(2024, 4, 30, 15, 0, 0, 500000, tzinfo=UTC)
    assert sorted(Login.objects.values_list("logged_in_at", flat=True)) == [
        datetime(2024, 6, 30, 23, 0, tzinfo=UTC),
        datetime(2024, 7, 1, 23, 0, tzinfo=UTC),
    ]
    assert sorted(UsageEvent.objects.values_list("subscription_id", flat=True), key=str) == [None, "s1"]
    q1, q2 = Coupon.objects.get(pk="Q1"), Coupon.objects.get(pk="Q2")
    assert (q1.customer_id, q1.prefecture, q1.via_app, q1.app_withdrawn) == ("c1", "東京都", True, False)
    assert (q2.customer_id, q2.face_value_jpy) == (None, 1000)
    assert CouponTransaction.objects.get(pk="t2").store_name == "Lawson"
    sub1, sub2 = Submission.objects.get(pk="sub1"), Submission.objects.get(pk="sub2")
    assert (sub1.program_id, sub1.subject, sub1.channel, sub1.payout_method, sub1.fault) == (
        "autorenew-60day",
        "ch1",
        "web",
        "original_method",
        "company",
    )
    assert sub1.effective_at == datetime(2024, 6, 14, 15, 0, tzinfo=UTC)
    assert (sub2.channel, sub2.effective_at) == ("import", None)
    # And one ImportRun per file records the checksum and counts
    run = ImportRun.objects.get(file_name="charges.csv")
    assert (run.status, run.source, run.actor, run.rows_read, run.rows_inserted, run.error_count) == (
        "succeeded",
        "command",
        None,
        3,
        3,
        0,
    )
    assert run.sha256 == hashlib.sha256(GOOD_FILES["charges.csv"].encode()).hexdigest()
    assert run.finished_at is not None
    assert ImportRun.objects.count() == 9


def test_reimport_changes_nothing_and_writes_no_audit_rows(good_dir: Path) -> None:
    # Given the good directory already imported
    import_dir(good_dir)
    events_before = event_counts()
    versions_before = row_versions()
    submission_events_before = apps.get_model("claims", "SubmissionEvent").objects.count()

    # When the same files are imported again
    result = import_dir(good_dir)

    # Then nothing is inserted or updated and no audit rows are written
    assert result.ok
    assert [(o.rows_read, o.rows_inserted, o.rows_updated) for o in result.files] == [
        (3, 0, 0),
        (2, 0, 0),
        (2, 0, 0),
        (3, 0, 0),
        (2, 0, 0),
        (2, 0, 0),
        (2, 0, 0),
        (2, 0, 0),
        (2, 0, 0),
    ]
    assert event_counts() == events_before
    assert row_versions() == versions_before
    assert apps.get_model("claims", "SubmissionEvent").objects.count() == submission_events_before


def test_changed_charge_amount_updates_one_row_with_before_and_after_audit(good_dir: Path, tmp_path: Path) -> None:
    # Given the good directory imported
    import_dir(good_dir)
    charge_events = apps.get_model("customers", "ChargeEvent")
    assert charge_events.objects.count() == 0
    # When charges.csv comes again with one amount changed
    changed = GOOD_FILES["charges.csv"].replace("ch2,s1,550,", "ch2,s1,600,")
    result = import_dir(write_files(tmp_path / "again", {"charges.csv": changed}))

    # Then exactly that row is updated
    assert [(o.rows_inserted, o.rows_updated) for o in result.files] == [(0, 1)]
    assert Charge.objects.get(pk="ch2").amount_jpy == 600
    assert Charge.objects.get(pk="ch1").amount_jpy == 550
    # And the before/after audit rows name the import run
    events = list(charge_events.objects.order_by("pgh_id"))
    assert [(event.pgh_label, event.pgh_obj_id, event.amount_jpy) for event in events] == [
        ("before_update", "ch2", 550),
        ("update", "ch2", 600),
    ]
    run_id = result.files[0].run_id
    assert run_id is not None
    assert events[0].pgh_context.metadata["import_run"] == run_id
    assert events[0].pgh_context.metadata["command"] == "import_records"


def test_imported_submissions_write_no_insert_events_but_updates_are_audited(good_dir: Path, tmp_path: Path) -> None:
    submission_events = apps.get_model("claims", "SubmissionEvent")
    # Given the good directory imported (a first load: submissions go into an empty table)
    import_dir(good_dir)
    # Then the created submissions are recorded by their ImportRun, not by insert events
    assert submission_events.objects.count() == 0
    assert ImportRun.objects.get(file_name="submissions.csv").rows_inserted == 2

    # When submissions.csv comes again with sub2 changed and a new sub3 (a load into a non-empty table)
    changed = (
        GOOD_FILES["submissions.csv"].replace(
            "sub2,login-outage-2024,c2,2024-06-02T12:00:00,,,,,",
            "sub2,login-outage-2024,c2,2024-06-02T12:00:00,email,,,,",
        )
        + "sub3,login-outage-2024,c1,2024-06-03T12:00:00,,,,,\n"
    )
    result = import_dir(write_files(tmp_path / "again", {"submissions.csv": changed}))

    # Then sub3 is inserted without an event, and the update of sub2 is audited naming the import run
    assert [(o.rows_inserted, o.rows_updated) for o in result.files] == [(1, 1)]
    events = list(submission_events.objects.order_by("pgh_id"))
    assert [(event.pgh_label, event.pgh_obj_id, event.channel) for event in events] == [("update", "sub2", "email")]
    assert events[0].pgh_context.metadata["import_run"] == result.files[0].run_id
    # And outside the import every insert, update and delete is still recorded
    program = Program.objects.get(slug="login-outage-2024")
    submission = Submission.objects.create(
        submission_id="sub4", program=program, subject="c1", submitted_at=datetime(2024, 6, 4, tzinfo=UTC)
    )
    Submission.objects.filter(pk="sub1").update(reason="x")
    submission.delete()
    assert list(submission_events.objects.order_by("pgh_id").values_list("pgh_label", "pgh_obj_id"))[1:] == [
        ("insert", "sub4"),
        ("update", "sub1"),
        ("delete", "sub4"),
    ]


BAD_CHARGES = (
    "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,payment_method,promotional\n"
    "ch1,s1,550,2024-04-01T10:00:00+09:00,2024-04-01,2024-05-01,,false\n"  # 2: fine
    "ch2,s1,5x0,2024-04-01T10:00:00,2024-04-31,2024-05-01,,false\n"  # 3: bad int, bad date
    "ch3,s1,550,2024-04-01T10:00:00,2024-04-01,2024-05-01,paypal,maybe\n"  # 4: unknown enum, bad bool
    "ch4,s404,550,2024-04-01T10:00:00,2024-04-01,2024-05-01,,\n"  # 5: unknown subscription
    "ch1,s1,550,2024-04-01T10:00:00,2024-04-01,2024-05-01,,\n"  # 6: duplicate of line 2
    "ch6,s1,550,2024-04-01 25:00,2024-05-01,2024-05-01,,\n"  # 7: bad date-time, empty period
    ",s1,,2024-04-01T10:00:00,2024-04-01,,,\n"  # 8: missing id, amount, period_end
    "ch8,s1,2147483648,2024-02-30T10:00:00,2023-02-29,2024-02-29,,\n"  # 9: too large, no Feb 30/29 2023
)
BAD_CHARGES_ERRORS = [
    (2, "charge_id", "duplicate id in this file (first on line 2, 2 lines in all)"),
    (3, "amount_jpy", "not a whole number"),
    (3, "period_start", "not a valid date"),
    (4, "payment_method", "not one of: card, carrier, apple_iap, google_play, convenience, bank, points"),
    (4, "promotional", "not a boolean"),
    (5, "subscription_id", "unknown subscription"),
    (6, "charge_id", "duplicate id in this file (first on line 2, 2 lines in all)"),
    (7, "charged_at", "not a valid date-time"),
    (7, "period_end", "must be after period_start"),
    (8, "charge_id", "required value is missing"),
    (8, "amount_jpy", "required value is missing"),
    (8, "period_end", "required value is missing"),
    (9, "amount_jpy", "number too large"),
    (9, "charged_at", "not a valid date-time"),
    (9, "period_start", "not a valid date"),
]


@pytest.fixture
def subscribed(tmp_path: Path) -> None:
    result = import_dir(
        write_files(
            tmp_path / "base", {name: GOOD_FILES[name] for name in ("customers.csv", "plans.csv", "subscriptions.csv")}
        )
    )
    assert result.ok


def test_file_with_bad_rows_is_rejected_with_every_error(subscribed: None, tmp_path: Path) -> None:
    # Given a charges file with several kinds of bad rows
    directory = write_files(tmp_path / "bad", {"charges.csv": BAD_CHARGES})

    # When it is imported
    result = import_dir(directory)

    # Then it is rejected with exactly these errors, and no charge is stored
    assert not result.ok
    assert result.files[0].status == "rejected"
    assert result.files[0].rows_read == 8
    assert_errors(errors_of(result, "charges.csv"), BAD_CHARGES_ERRORS)
    assert result.files[0].error_count == len(BAD_CHARGES_ERRORS)
    assert Charge.objects.count() == 0
    run = ImportRun.objects.get(file_name="charges.csv")
    assert (run.status, run.error_count, len(run.errors)) == ("rejected", 15, 15)
    assert run.errors[0] == {"line": 2, "column": "charge_id", "reason": BAD_CHARGES_ERRORS[0][2]}


def test_python_path_validation_gives_the_same_errors(subscribed: None) -> None:
    # Given the same bad charges file
    spec = SPECS_BY_FILE_NAME["charges.csv"]
    stream = BytesIO(BAD_CHARGES.encode())
    header = read_header(stream)
    assert header is not None
    stream.seek(0)
    errors = ErrorList("charges.csv")

    # When the Python path (the SQLite default's) validates it
    _rows, rows_read = python_path.validate_file(spec=spec, header=header, stream=stream, errors=errors)

    # Then it reports exactly what the PostgreSQL path reports
    assert rows_read == 8
    assert [(e.line, e.column, e.reason) for e in errors.items] == [
        (2, "charge_id", BAD_CHARGES_ERRORS[0][2]),
        (3, "amount_jpy", "not a whole number (digits only, e.g. 1200)"),
        (3, "period_start", "not a valid date (YYYY-MM-DD)"),
        (4, "payment_method", BAD_CHARGES_ERRORS[3][2]),
        (4, "promotional", "not a boolean (true, false, 1 or 0)"),
        (5, "subscription_id", "unknown subscription (not in the database)"),
        (6, "charge_id", BAD_CHARGES_ERRORS[6][2]),
        (7, "charged_at", "not a valid date-time (ISO 8601, e.g. 2024-04-01T09:30:00+09:00)"),
        (7, "period_end", "must be after period_start"),
        (8, "charge_id", "required value is missing"),
        (8, "amount_jpy", "required value is missing"),
        (8, "period_end", "required value is missing"),
        (9, "amount_jpy", "number too large (at most 2147483647)"),
        (9, "charged_at", "not a valid date-time (ISO 8601, e.g. 2024-04-01T09:30:00+09:00)"),
        (9, "period_start", "not a valid date (YYYY-MM-DD)"),
    ]


def test_python_and_postgres_paths_report_identical_error_lists(subscribed: None, tmp_path: Path) -> None:
    # Given the bad charges file, checked by both paths
    pg_result = import_dir(write_files(tmp_path / "bad", {"charges.csv": BAD_CHARGES}))
    stream = BytesIO(BAD_CHARGES.encode())
    header = read_header(stream)
    assert header is not None
    stream.seek(0)
    errors = ErrorList("charges.csv")
    python_path.validate_file(spec=SPECS_BY_FILE_NAME["charges.csv"], header=header, stream=stream, errors=errors)

    # Then the lists are the same, reason for reason
    assert list(pg_result.files[0].errors) == errors.items


def test_python_path_writes_like_postgres(good_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the Python path forced (as on SQLite)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    # When the good directory is imported twice
    first = import_dir(good_dir)
    second = import_dir(good_dir)

    # Then the first inserts everything, the second nothing, with the same stored values
    assert [(o.status, o.rows_inserted, o.rows_updated) for o in first.files] == [
        ("succeeded", n, 0) for n in (3, 2, 2, 3, 2, 2, 2, 2, 2)
    ]
    assert [(o.rows_inserted, o.rows_updated) for o in second.files] == [(0, 0)] * 9
    assert Customer.objects.get(pk="c1").phone_digits == "09012345678"
    assert Customer.objects.get(pk="c1").created_at == datetime(2024, 4, 1, 0, 0, tzinfo=UTC)
    assert Submission.objects.get(pk="sub1").effective_at == datetime(2024, 6, 14, 15, 0, tzinfo=UTC)
    assert Subscription.objects.get(pk="s1").payer_id is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,colour",
            [(1, "colour", "unknown column (expected one of: charge_id, subscription_id,")],
        ),
        (
            "charge_id,subscription_id,charged_at,period_start",
            [(1, "amount_jpy", "required column is missing"), (1, "period_end", "required column is missing")],
        ),
        (
            "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,amount_jpy",
            [(1, "amount_jpy", "column appears more than once")],
        ),
    ],
)
def test_bad_header_is_rejected(subscribed: None, tmp_path: Path, header: str, expected: list) -> None:
    # Given a charges file whose header is wrong
    directory = write_files(tmp_path / "bad", {"charges.csv": header + "\n"})
    # When it is imported
    result = import_dir(directory)
    # Then the header errors are reported on line 1
    assert_errors(errors_of(result, "charges.csv"), expected)
    assert result.files[0].status == "rejected"


def test_unknown_file_name_is_an_error_and_known_files_still_load(tmp_path: Path) -> None:
    # Given a directory with a misspelt file next to a good one
    directory = write_files(tmp_path / "d", {"customer.csv": "x\n", "plans.csv": GOOD_FILES["plans.csv"]})
    # When it is imported
    result = import_dir(directory)
    # Then the unknown name is an error naming it, and plans.csv loads
    assert [(o.file_name, o.status) for o in result.files] == [("customer.csv", "rejected"), ("plans.csv", "succeeded")]
    assert_errors(errors_of(result, "customer.csv"), [(0, "", "unknown file name (expected one of: customers.csv,")])
    assert Plan.objects.count() == 2


def test_bom_is_accepted(tmp_path: Path) -> None:
    # Given a customers file starting with a UTF-8 BOM
    directory = write_files(tmp_path / "d", {"customers.csv": b"\xef\xbb\xbf" + GOOD_FILES["customers.csv"].encode()})
    # When it is imported
    result = import_dir(directory)
    # Then the header is read correctly and the rows load
    assert result.ok
    assert Customer.objects.count() == 3


def test_structurally_broken_csv_lists_every_bad_line(tmp_path: Path) -> None:
    # Given a customers file with wrong field counts, a NUL, bad UTF-8 and an unclosed quote
    content = (
        b"customer_id,name\n"
        b"c1,Taro\n"  # 2 fine
        b"c2,Hanako,extra\n"  # 3 too many fields
        b"c3\n"  # 4 too few
        b"c4,\x00\n"  # 5 NUL
        b"c5,\xff\xfe\n"  # 6 not UTF-8
        b"c6,Jiro\n"  # 7 fine
        b'c7,"never closed\n'  # 8 unterminated
        b"c8,Saburo\n"
    )
    directory = write_files(tmp_path / "d", {"customers.csv": content})
    # When it is imported
    result = import_dir(directory)
    # Then every unreadable line is named and nothing is stored
    assert_errors(
        errors_of(result, "customers.csv"),
        [
            (3, "", "expected 2 fields, found 3"),
            (4, "", "expected 2 fields, found 1"),
            (5, "", "contains a NUL character"),
            (6, "", "not valid UTF-8"),
            (8, "", "unterminated quoted field"),
        ],
    )
    assert result.files[0].status == "rejected"
    assert Customer.objects.count() == 0


def test_rejected_file_does_not_stop_a_later_independent_file(tmp_path: Path) -> None:
    # Given a bad customers file and a good plans file
    directory = write_files(
        tmp_path / "d",
        {"customers.csv": "customer_id,created_at\nc1,yesterday\n", "plans.csv": GOOD_FILES["plans.csv"]},
    )
    # When they are imported
    result = import_dir(directory)
    # Then customers is rejected and plans is imported
    assert [(o.file_name, o.status) for o in result.files] == [
        ("customers.csv", "rejected"),
        ("plans.csv", "succeeded"),
    ]
    assert_errors(errors_of(result, "customers.csv"), [(2, "created_at", "not a valid date-time")])
    assert (Customer.objects.count(), Plan.objects.count()) == (0, 2)


def test_submission_subject_must_exist_for_the_programs_policy(good_dir: Path, tmp_path: Path) -> None:
    # Given the good data imported and submissions naming unknown programs and subjects
    import_dir(good_dir)
    content = (
        "submission_id,program,subject,submitted_at\n"
        "x1,autorenew-60day,c1,2024-06-01T12:00:00\n"  # a customer id where a charge id is due
        "x2,no-such-program,ch1,2024-06-01T12:00:00\n"
        "x3,login-outage-2024,c1,2024-06-01\n"  # fine subject, but submitted_at is a date-time
    )
    # When they are imported
    result = import_dir(write_files(tmp_path / "s", {"submissions.csv": content}))
    # Then each problem is named
    assert_errors(
        errors_of(result, "submissions.csv"),
        [
            (2, "subject", "unknown charge (this program's subjects are charge ids)"),
            (3, "program", "unknown program"),
            (4, "submitted_at", "not a valid date-time"),
        ],
    )


def test_dry_run_counts_but_changes_nothing(good_dir: Path) -> None:
    # When the good directory is imported as a dry run
    result = import_dir(good_dir, dry_run=True)
    # Then the counts are those of a real import, and nothing (not even an ImportRun) is kept
    assert result.ok
    assert [o.rows_inserted for o in result.files] == [3, 2, 2, 3, 2, 2, 2, 2, 2]
    assert (Customer.objects.count(), Charge.objects.count(), ImportRun.objects.count()) == (0, 0, 0)


def test_command_exits_non_zero_and_prints_every_error(subscribed: None, tmp_path: Path, capsys) -> None:
    # Given a directory with the bad charges file
    directory = write_files(tmp_path / "bad", {"charges.csv": BAD_CHARGES})
    # When the command runs
    with pytest.raises(CommandError) as raised:
        call_command("import_records", str(directory))
    # Then it fails with a non-zero code and prints each error as file:line: column: reason
    assert raised.value.returncode == 1
    stderr = capsys.readouterr().err.splitlines()
    assert stderr[0] == "charges.csv:2: charge_id: duplicate id in this file (first on line 2, 2 lines in all)"
    assert "charges.csv:5: subscription_id: unknown subscription (not in the database)" in stderr
    assert len([line for line in stderr if line.startswith("charges.csv:")]) == 15


def test_command_succeeds_on_good_directory(good_dir: Path, capsys) -> None:
    # When the command imports the good directory
    call_command("import_records", str(good_dir))
    # Then it reports each file on stdout and nothing on stderr
    captured = capsys.readouterr()
    assert "charges.csv: succeeded: read 3, inserted 3, updated 0, errors 0" in captured.out
    assert captured.err == ""


# --- Admin ----------------------------------------------------------------------------------------


@pytest.fixture
def uploader(db) -> Client:
    user = User.objects.create_user("uploader", password="x" * 12, is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="add_importrun"), Permission.objects.get(codename="view_importrun")
    )
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, files: dict[str, str], *, validate_only: bool):
    data: dict = {
        "csv_files": [SimpleUploadedFile(name, content.encode(), "text/csv") for name, content in files.items()]
    }
    if validate_only:
        data["validate_only"] = "on"
    return client.post(reverse("admin:core_importrun_upload"), data)


def test_admin_upload_shows_error_preview_and_changes_nothing(subscribed: None, uploader: Client) -> None:
    # When a user allowed to import uploads the bad charges file (for real, not preview)
    response = upload(uploader, {"charges.csv": BAD_CHARGES}, validate_only=False)
    # Then the page lists the errors and nothing is stored
    assert response.status_code == 200
    page = response.content.decode()
    assert (
        "<td>charges.csv</td><td>5</td><td>subscription_id</td><td>unknown subscription (not in the database)</td>"
        in page
    )
    assert len(re.findall(r"<td>charges.csv</td><td>\d+</td>", page)) == 15
    assert Charge.objects.count() == 0
    run = ImportRun.objects.get(file_name="charges.csv")
    assert run.actor is not None
    assert (run.status, run.source, run.actor.username) == ("rejected", "admin", "uploader")


def test_admin_validate_only_changes_nothing(uploader: Client) -> None:
    # When a good file is uploaded with "validate only"
    response = upload(uploader, {"plans.csv": GOOD_FILES["plans.csv"]}, validate_only=True)
    # Then the counts are shown and nothing is stored
    assert response.status_code == 200
    assert "<td>plans.csv</td><td>succeeded</td><td>2</td>\n          <td>2</td>" in response.content.decode()
    assert (Plan.objects.count(), ImportRun.objects.count()) == (0, 0)


def test_admin_upload_imports(uploader: Client) -> None:
    # When a good file is uploaded for real
    response = upload(uploader, {"plans.csv": GOOD_FILES["plans.csv"]}, validate_only=False)
    # Then it is imported and recorded
    assert response.status_code == 200
    assert Plan.objects.count() == 2
    assert ImportRun.objects.get().status == "succeeded"


def test_admin_upload_requires_permission(db) -> None:
    # Given a staff user without core.add_importrun
    user = User.objects.create_user("viewer", password="x" * 12, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_importrun"))
    client = Client()
    client.force_login(user)
    # When they open or post the upload screen
    get = client.get(reverse("admin:core_importrun_upload"))
    post = upload(client, {"plans.csv": GOOD_FILES["plans.csv"]}, validate_only=False)
    # Then both are refused and nothing is stored
    assert (get.status_code, post.status_code) == (403, 403)
    assert Plan.objects.count() == 0
    # And the changelist offers no upload link
    changelist = client.get(reverse("admin:core_importrun_changelist"))
    assert changelist.status_code == 200
    assert reverse("admin:core_importrun_upload") not in changelist.content.decode()


def test_admin_changelist_links_to_upload_and_detail_shows_errors(subscribed: None, uploader: Client) -> None:
    # Given a rejected upload
    upload(uploader, {"charges.csv": BAD_CHARGES}, validate_only=False)
    run = ImportRun.objects.get(file_name="charges.csv")
    # When the changelist and the run's page are opened
    changelist = uploader.get(reverse("admin:core_importrun_changelist"))
    detail = uploader.get(reverse("admin:core_importrun_change", args=[run.pk]))
    # Then the list links to the upload screen and the detail shows the errors table
    assert reverse("admin:core_importrun_upload") in changelist.content.decode()
    assert "<tr><td>5</td><td>subscription_id</td><td>unknown subscription (not in the database)</td></tr>" in (
        detail.content.decode()
    )


def test_admin_upload_size_is_capped(uploader: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a cap smaller than the file
    monkeypatch.setattr("support_portal.core.imports.forms.MAX_UPLOAD_BYTES", 10)
    # When the file is uploaded
    response = upload(uploader, {"plans.csv": GOOD_FILES["plans.csv"]}, validate_only=True)
    # Then the form says it is too large and nothing runs
    assert response.status_code == 200
    assert "import_records" in response.content.decode()
    assert ImportRun.objects.count() == 0


# --- PostgreSQL fast paths (COPY straight into an empty table; one statement for plainly valid files) ---


def table_shape(table: str) -> list[tuple[str, str]]:
    """Index and constraint names with their definitions (and whether each constraint is validated)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass UNION ALL "
            "SELECT conname, pg_get_constraintdef(oid) || ' validated=' || convalidated FROM pg_constraint "
            "WHERE conrelid = %s::regclass ORDER BY 1",
            [table, table],
        )
        return cursor.fetchall()


def test_first_load_keeps_every_index_and_constraint(good_dir: Path) -> None:
    # Given the tables' indexes and constraints before anything is loaded
    tables = ["customers_subscription", "customers_charge", "customers_login", "customers_usageevent"]
    before = {table: table_shape(table) for table in tables}
    # When the good directory is loaded into the empty tables
    assert import_dir(good_dir).ok
    # Then the same indexes and constraints exist, with the same names and definitions, all validated
    assert {table: table_shape(table) for table in tables} == before


PLAIN_BUT_WRONG_CHARGES = (
    "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,payment_method,promotional\n"
    "ch1,s1,550,2024-04-01T10:00:00+09:00,2024-04-01,2024-05-01,card,false\n"  # 2: fine
    "ch2,s404,550,2024-04-01T10:00:00+09:00,2024-04-01,2024-05-01,card,false\n"  # 3: unknown subscription
    "ch3,s1,550,2024-04-01T10:00:00+09:00,2024-02-30,2024-05-01,card,false\n"  # 4: no Feb 30
    "ch1,s1,550,2024-04-01T10:00:00+09:00,2024-04-01,2024-05-01,card,false\n"  # 5: duplicate of line 2
    "ch5,s1,9999999999,2024-04-01T10:00:00+09:00,2024-05-01,2024-04-01,card,false\n"  # 6: too large, empty period
)
PLAIN_BUT_WRONG_ERRORS = [
    (2, "charge_id", "duplicate id in this file (first on line 2, 2 lines in all)"),
    (3, "subscription_id", "unknown subscription"),
    (4, "period_start", "not a valid date"),
    (5, "charge_id", "duplicate id in this file (first on line 2, 2 lines in all)"),
    (6, "amount_jpy", "number too large"),
    (6, "period_end", "must be after period_start"),
]


@pytest.mark.parametrize("table_empty", [True, False])
def test_well_formed_rows_only_the_database_can_refuse_are_all_named(
    subscribed: None, tmp_path: Path, table_empty: bool
) -> None:
    # Given charges whose every value has the right form, but the database must refuse some rows
    if not table_empty:
        assert import_dir(write_files(tmp_path / "first", {"charges.csv": GOOD_FILES["charges.csv"]})).ok
    before = (sorted(Charge.objects.values_list("pk", flat=True)), table_shape("customers_charge"))
    # When they are imported (into an empty table: the direct path; else the one-statement path)
    result = import_dir(write_files(tmp_path / "bad", {"charges.csv": PLAIN_BUT_WRONG_CHARGES}))
    # Then every bad row is named, and nothing changed: no charge, same indexes and constraints
    assert result.files[0].status == "rejected"
    assert_errors(errors_of(result, "charges.csv"), PLAIN_BUT_WRONG_ERRORS)
    assert (sorted(Charge.objects.values_list("pk", flat=True)), table_shape("customers_charge")) == before


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        # Values PostgreSQL's input functions accept but the file format does not.
        ("amount_jpy", " 550", "not a whole number"),
        ("amount_jpy", "+550", "not a whole number"),
        ("charged_at", "2024-04-01 10:00:00 JST", "not a valid date-time"),
        ("charged_at", "2024-04-01T24:00:00", "not a valid date-time"),
        ("charged_at", "2024-04-01", "not a valid date-time"),
        ("period_start", "20240401", "not a valid date"),
        ("period_start", "April 1 2024", "not a valid date"),
        ("promotional", "yes", "not a boolean"),
        ("promotional", "t", "not a boolean"),
    ],
)
@pytest.mark.parametrize("table_empty", [True, False])
def test_values_postgresql_would_read_but_the_format_forbids_are_refused(
    subscribed: None, tmp_path: Path, column: str, value: str, reason: str, table_empty: bool
) -> None:
    # Given one charge row with a value PostgreSQL itself would accept
    if not table_empty:
        assert import_dir(write_files(tmp_path / "first", {"charges.csv": GOOD_FILES["charges.csv"]})).ok
    names = ["charge_id", "subscription_id", "amount_jpy", "charged_at", "period_start", "period_end", "promotional"]
    row = dict(zip(names, ["chx", "s1", "550", "2024-04-01T10:00:00", "2024-04-01", "2024-05-01", "true"], strict=True))
    row[column] = f'"{value}"' if "," in value else value
    content = ",".join(names) + "\n" + ",".join(row[name] for name in names) + "\n"
    # When it is imported
    result = import_dir(write_files(tmp_path / "odd", {"charges.csv": content}))
    # Then the row is refused for that value and not stored
    assert_errors(errors_of(result, "charges.csv"), [(2, column, reason)])
    assert not Charge.objects.filter(pk="chx").exists()


def test_first_load_into_an_empty_table_reads_every_allowed_form(subscribed: None, tmp_path: Path) -> None:
    # Given charges using the other allowed forms (no newline at the end, CRLF, a quoted free text elsewhere)
    content = (
        "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,payment_method,promotional\r\n"
        "ch1,s1,0007,2024-04-01 10:00,2024-04-01,2024-05-01,,1\r\n"
        "ch2,s1,550,2024-04-01T10:00:00.123456Z,2024-04-01,2024-05-01,points,0\r\n"
        "ch3,s1,550,2024-04-01T10:00:00-0130,2024-04-01,2024-05-01,card,"
    )
    # When they are imported into the empty table
    result = import_dir(write_files(tmp_path / "forms", {"charges.csv": content}))
    # Then they are stored as the format says
    assert [(o.status, o.rows_inserted) for o in result.files] == [("succeeded", 3)]
    ch1, ch2, ch3 = (Charge.objects.get(pk=pk) for pk in ("ch1", "ch2", "ch3"))
    assert (ch1.amount_jpy, ch1.charged_at, ch1.promotional) == (7, datetime(2024, 4, 1, 1, 0, tzinfo=UTC), True)
    assert ch2.charged_at == datetime(2024, 4, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert (ch3.charged_at, ch3.payment_method, ch3.promotional) == (
        datetime(2024, 4, 1, 11, 30, tzinfo=UTC),
        "card",
        False,
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"customer_id,name\x00,email,phone,created_at\nc1,x,,,\n", r"name\x00"),
        ("customer_id,name,email,phone,created_at\nc1,x,,,\n".encode("utf-16"), r"\x00"),
    ],
)
def test_nul_bytes_are_named_escaped_and_the_file_is_rejected(tmp_path: Path, body: bytes, expected: str) -> None:
    # Given a header with a NUL byte (a stray one, or a whole UTF-16 file)
    directory = write_files(tmp_path / "d", {"customers.csv": body})
    # When it is imported
    result = import_dir(directory)
    # Then the file is rejected, the errors show the NUL escaped, and the ImportRun stores them
    (outcome,) = result.files
    assert outcome.status == "rejected" and outcome.error_count >= 1
    assert any(expected in f"{error.column} {error.reason}" for error in outcome.errors)
    assert all("\x00" not in f"{error.column} {error.reason}" for error in outcome.errors)
    run = ImportRun.objects.get()
    assert (run.status, run.error_count) == ("rejected", outcome.error_count)
    assert Customer.objects.count() == 0


@pytest.mark.parametrize("kind", ["restoration", "expiry_extension"])
def test_remedy_kinds_are_never_imported(good_dir: Path, tmp_path: Path, kind: str) -> None:
    # Given the good files loaded, and a ledger row claiming to be a remedy (only the claims engine writes those)
    assert import_dir(good_dir).ok
    header = GOOD_FILES["coupon_transactions.csv"].splitlines()[0]
    body = f"{header}\nt9,Q1,{kind},500,2024-04-01T10:00:00+09:00,\n"
    # When it is imported, then it is refused naming the kinds the contract allows, and nothing is written
    result = import_dir(write_files(tmp_path / "remedy", {"coupon_transactions.csv": body}))
    assert_errors(errors_of(result, "coupon_transactions.csv"), [(2, "kind", "not one of: charge, payment, reversal")])
    assert not CouponTransaction.objects.filter(pk="t9").exists()


def _setting(name: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting(%s)", [name])
        return str(cursor.fetchone()[0])


def _analyze(table: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


def test_a_small_file_into_a_large_table_merges_by_key_lookups_with_the_same_result(
    good_dir: Path, tmp_path: Path
) -> None:
    # Given the good directory imported, then 400 more charges and 400 more logins stored (analysed)
    import_dir(good_dir)
    Charge.objects.bulk_create(
        Charge(
            charge_id=f"bulk{n}",
            subscription_id="s1",
            amount_jpy=550,
            charged_at=datetime(2024, 4, 1, tzinfo=UTC),
            period_start=date(2024, 4, 1),
            period_end=date(2024, 5, 1),
        )
        for n in range(400)
    )
    Login.objects.bulk_create(
        Login(customer_id="c2", logged_in_at=datetime(2023, 1, 1, tzinfo=UTC).replace(minute=n % 60, hour=n // 60))
        for n in range(400)
    )
    _analyze("customers_charge")
    _analyze("customers_login")
    charges_spec, logins_spec = SPECS_BY_FILE_NAME["charges.csv"], SPECS_BY_FILE_NAME["logins.csv"]
    with connection.cursor() as cursor:
        # (a 3-row file is under a tenth of a 403-row table; a file as large as the table is not)
        assert probes_stored_rows(cursor, charges_spec, staged_rows=3) is True
        assert probes_stored_rows(cursor, charges_spec, staged_rows=1_000_000) is False
        assert probes_stored_rows(cursor, logins_spec, staged_rows=2) is True
    # When a charges file with one changed, one identical and one new row comes, and a logins file with
    # one stored and one new login
    charges = (
        "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,payment_method,promotional\n"
        "ch1,s1,777,2024-04-01T10:00:00+09:00,2024-04-01,2024-05-01,,false\n"
        "ch2,s1,550,2024-05-01T10:00:00,2024-05-01,2024-06-01,carrier,1\n"
        "ch9,s2,100,2024-06-01T00:00:00,2024-06-01,2024-07-01,,\n"
    )
    logins = "customer_id,logged_in_at\nc1,2024-07-01T08:00:00\nc1,2024-07-03T08:00:00\n"
    versions_before = dict(row_versions())
    result = import_dir(write_files(tmp_path / "small", {"charges.csv": charges, "logins.csv": logins}))

    # Then the counts and rows are what the hashing merge gives: one inserted and one updated charge,
    # the identical one untouched, one new login
    assert [(o.file_name, o.rows_inserted, o.rows_updated, o.errors) for o in result.files] == [
        ("charges.csv", 1, 1, ()),
        ("logins.csv", 1, 0, ()),
    ]
    assert Charge.objects.get(pk="ch1").amount_jpy == 777
    assert Charge.objects.get(pk="ch9").amount_jpy == 100
    assert dict(row_versions())["ch2"] == versions_before["ch2"]
    assert Charge.objects.count() == 404
    assert Login.objects.filter(customer_id="c1").count() == 3
    assert Login.objects.count() == 403
    # And the join settings are back as they were for the rest of the transaction
    assert (_setting("enable_hashjoin"), _setting("enable_mergejoin")) == ("on", "on")


def _staging_statements(captured: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in captured.captured_queries if "import_records_staging" in query["sql"]]


def _charge_changes() -> list[tuple[int, str, str]]:
    """(change, kind, key) of every statement that wrote charges, as the claims engine's triggers saw it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, k.kind, k.key FROM claims_inputchange c JOIN claims_inputchangekey k ON k.change_id = c.id "
            "WHERE c.table_name = 'customers_charge' ORDER BY 1, 2, 3"
        )
        return cursor.fetchall()


CHARGES_HEADER = "charge_id,subscription_id,amount_jpy,charged_at,period_start,period_end,payment_method,promotional\n"


def test_new_rows_into_a_table_that_holds_others_are_copied_straight_in_with_its_triggers(
    good_dir: Path, tmp_path: Path
) -> None:
    # Given the good directory imported (three charges stored)
    assert import_dir(good_dir).ok
    events_before, changes_before = event_counts(), _charge_changes()
    # When a file of two new charges comes
    charges = CHARGES_HEADER + (
        "ch7,s1,550,2024-06-01T10:00:00+09:00,2024-06-01,2024-07-01,card,false\n"
        "ch8,s2,100,2024-06-01T10:00:00+09:00,2024-06-01,2024-07-01,points,true\n"
    )
    with CaptureQueriesContext(connection) as captured:
        result = import_dir(write_files(tmp_path / "new", {"charges.csv": charges}))
    # Then they are inserted without a staging table, with no insert audit event, and the claims engine's
    # change capture recorded the one statement with the subscriptions of both
    assert [(o.status, o.rows_read, o.rows_inserted, o.rows_updated) for o in result.files] == [("succeeded", 2, 2, 0)]
    assert _staging_statements(captured) == []
    ch7, ch8 = Charge.objects.get(pk="ch7"), Charge.objects.get(pk="ch8")
    assert (ch7.amount_jpy, ch7.charged_at, ch7.payment_method, ch7.promotional) == (
        550,
        datetime(2024, 6, 1, 1, 0, tzinfo=UTC),
        "card",
        False,
    )
    assert (ch8.subscription_id, ch8.amount_jpy, ch8.promotional) == ("s2", 100, True)
    assert Charge.objects.count() == 5
    assert event_counts() == events_before
    new_changes = _charge_changes()[len(changes_before) :]
    assert [(kind, key) for _change, kind, key in new_changes] == [("b", "s1"), ("b", "s2")]
    assert len({change for change, _kind, _key in new_changes}) == 1
    run = ImportRun.objects.latest("pk")
    assert (run.status, run.rows_inserted) == ("succeeded", 2)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # a stored id (changed) among new ones: merged through staging
        (
            "ch9,s1,550,2024-06-01T10:00:00,2024-06-01,2024-07-01,card,false\n"
            "ch1,s1,777,2024-04-01T10:00:00+09:00,2024-04-01,2024-05-01,card,false\n",
            ("succeeded", 1, 1, []),
        ),
        # a reference to no subscription: the staged diagnostics name it
        (
            "ch9,s1,550,2024-06-01T10:00:00,2024-06-01,2024-07-01,card,false\n"
            "ch10,s404,550,2024-06-01T10:00:00,2024-06-01,2024-07-01,card,false\n",
            ("rejected", 0, 0, [(3, "subscription_id")]),
        ),
        # an id twice in the file
        (
            "ch9,s1,550,2024-06-01T10:00:00,2024-06-01,2024-07-01,card,false\n"
            "ch9,s1,550,2024-06-01T10:00:00,2024-06-01,2024-07-01,card,false\n",
            ("rejected", 0, 0, [(2, "charge_id"), (3, "charge_id")]),
        ),
    ],
)
def test_a_file_the_table_refuses_as_an_append_goes_through_staging_as_if_never_tried(
    good_dir: Path, tmp_path: Path, rows: str, expected: tuple
) -> None:
    # Given the good directory imported
    assert import_dir(good_dir).ok
    versions_before = dict(row_versions())
    # When a file the append cannot store comes
    with CaptureQueriesContext(connection) as captured:
        result = import_dir(write_files(tmp_path / "refused", {"charges.csv": CHARGES_HEADER + rows}))
    # Then staging decides, with the counts and errors of a file that never went the append way
    (outcome,) = result.files
    status, inserted, updated, errors = expected
    assert (outcome.status, outcome.rows_inserted, outcome.rows_updated) == (status, inserted, updated)
    assert [(error.line, error.column) for error in outcome.errors] == errors
    assert _staging_statements(captured) != []
    stored = {"ch1", "ch2", "ch3"} | ({"ch9"} if status == "succeeded" else set())
    assert set(Charge.objects.values_list("pk", flat=True)) == stored
    if status == "succeeded":
        assert Charge.objects.get(pk="ch1").amount_jpy == 777
    else:
        assert dict(row_versions()) == versions_before
