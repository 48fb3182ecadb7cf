"""Emails and phone numbers in the import files: malformed ones are row errors, like any other value.

The contract's patterns (schema.EMAIL_PATTERN, schema.PHONE_PATTERN) are checked against Django's
EmailValidator and phonenumbers (region JP) here, so the set-based SQL check and the per-row Python check
stay in step with the libraries that would otherwise judge these values.
"""

import csv
import re
from io import BytesIO
from pathlib import Path

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.core.validators import EmailValidator

from claims.models import Submission
from support_portal.core.demo.generator import generate_demo_data
from support_portal.core.imports import python_path
from support_portal.core.imports.csv_files import ErrorList, read_header
from support_portal.core.imports.schema import EMAIL_PATTERN, PHONE_PATTERN, SPECS_BY_FILE_NAME, Reason
from support_portal.core.imports.service import records_import
from support_portal.core.models import ImportRun
from support_portal.customers.models import Customer
from tests.core.imports.test_import_records import GOOD_FILES, errors_of, import_dir, write_files

VALID_EMAILS = [
    "taro@example.jp",
    "Taro.Yamada1@mail.example.ne.jp",
    "hanako+claims@example.co.jp",
    "o'brien@example.com",
    "a_b-c@sub-domain.example.jp",
]
INVALID_EMAILS = [
    "not-an-email",
    "taro@",
    "@example.jp",
    "taro@example",
    "taro..yamada@example.jp",
    "taro@example..jp",
    "taro@-example.jp",
    "taro yamada@example.jp",
    "taro@example.jp.",
    "太郎@example.jp",
]
VALID_PHONES = [
    "090-1234-5678",
    "09012345678",
    "080 1234 5678",
    "03-1234-5678",
    "0312345678",
    "03 (1234) 5678",
    "(03)1234-5678",
    "052-123-4567",
    "0120-123-456",
    "+81 90-1234-5678",
    "+81-3-1234-5678",
    "+819012345678",
]
INVALID_PHONES = [
    "call me",
    "1234",
    "03-1234-567",
    "090-1234-56789",
    "1-800-555-0199",
    "+1 415 555 0199",
    "+81 090-1234-5678",
    "0-0000-0000",
    "090-1234-5678 ext 2",
    "０９０−１２３４−５６７８",
]


def _email_validator_accepts(value: str) -> bool:
    try:
        EmailValidator()(value)
    except ValidationError:
        return False
    return True


def _jp_number_possible(value: str) -> bool:
    try:
        number = phonenumbers.parse(value, "JP")
    except phonenumbers.NumberParseException:
        return False
    return number.country_code == 81 and phonenumbers.is_possible_number(number)


@pytest.mark.parametrize("value", VALID_EMAILS)
def test_valid_email_matches_the_pattern_and_django_accepts_it(value: str) -> None:
    assert re.fullmatch(EMAIL_PATTERN, value)
    assert _email_validator_accepts(value)


@pytest.mark.parametrize("value", INVALID_EMAILS)
def test_malformed_email_does_not_match_the_pattern(value: str) -> None:
    assert re.fullmatch(EMAIL_PATTERN, value) is None


@pytest.mark.parametrize("value", VALID_PHONES)
def test_valid_phone_matches_the_pattern_and_phonenumbers_accepts_it(value: str) -> None:
    assert re.fullmatch(PHONE_PATTERN, value)
    assert _jp_number_possible(value)
    assert phonenumbers.is_valid_number(phonenumbers.parse(value, "JP"))


@pytest.mark.parametrize("value", INVALID_PHONES)
def test_malformed_phone_does_not_match_the_pattern(value: str) -> None:
    assert re.fullmatch(PHONE_PATTERN, value) is None


def test_every_demo_email_and_phone_is_valid_by_pattern_and_library(tmp_path: Path) -> None:
    # Given the demo data `make run` loads
    generate_demo_data(tmp_path, customers=2000, seed=7, workers=1)
    values: dict[str, set[str]] = {"email": set(), "phone": set()}
    for name, email_column, phone_column in (
        ("customers", "email", "phone"),
        ("submissions", "contact_email", "contact_phone"),
    ):
        with (tmp_path / f"{name}.csv").open(encoding="utf-8", newline="") as source:
            for row in csv.DictReader(source):
                values["email"].add(row[email_column])
                values["phone"].add(row[phone_column])
    values = {kind: found - {""} for kind, found in values.items()}
    assert len(values["email"]) > 1000
    assert len(values["phone"]) > 1000

    # Then every address and number matches the contract and the libraries agree
    assert [v for v in values["email"] if not (re.fullmatch(EMAIL_PATTERN, v) and _email_validator_accepts(v))] == []
    assert [v for v in values["phone"] if not (re.fullmatch(PHONE_PATTERN, v) and _jp_number_possible(v))] == []


BAD_CUSTOMERS = (
    "customer_id,name,email,phone,created_at\n"
    "c1,山田 太郎,taro@example.jp,090-1234-5678,\n"
    "c2,Hanako,not-an-email,,\n"
    "c3,Jiro,,call me,\n"
    "c4,Saburo,saburo@example,1234,\n"
    '"c5","Shiro","shiro@example.jp","+81 3-1234-5678",\n'
)
BAD_CUSTOMERS_ERRORS = [
    (3, "email", Reason.NOT_EMAIL),
    (4, "phone", Reason.NOT_PHONE),
    (5, "email", Reason.NOT_EMAIL),
    (5, "phone", Reason.NOT_PHONE),
]


@pytest.mark.django_db
def test_malformed_email_and_phone_reject_the_customers_file_with_row_errors(tmp_path: Path) -> None:
    # When a customers file with a malformed email and phone number is imported
    result = import_dir(write_files(tmp_path / "bad", {"customers.csv": BAD_CUSTOMERS}))

    # Then each is a row error and nothing is stored
    assert not result.ok
    assert result.files[0].status == "rejected"
    assert errors_of(result, "customers.csv") == BAD_CUSTOMERS_ERRORS
    assert Customer.objects.count() == 0
    assert ImportRun.objects.get(file_name="customers.csv").error_count == 4


@pytest.mark.django_db
def test_python_path_reports_the_same_contact_errors() -> None:
    # Given the same file, checked by the Python path (the SQLite default's)
    stream = BytesIO(BAD_CUSTOMERS.encode())
    header = read_header(stream)
    assert header is not None
    stream.seek(0)
    errors = ErrorList("customers.csv")

    _rows, rows_read = python_path.validate_file(
        spec=SPECS_BY_FILE_NAME["customers.csv"], header=header, stream=stream, errors=errors
    )

    assert rows_read == 5
    assert [(e.line, e.column, e.reason) for e in errors.items] == BAD_CUSTOMERS_ERRORS


@pytest.mark.django_db
def test_command_prints_contact_errors_as_file_line_column_reason(tmp_path: Path, capsys) -> None:
    directory = write_files(tmp_path / "bad", {"customers.csv": BAD_CUSTOMERS})

    with pytest.raises(CommandError) as raised:
        call_command("import_records", str(directory))

    assert raised.value.returncode == 1
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("customers.csv:")] == [
        f"customers.csv:3: email: {Reason.NOT_EMAIL}",
        f"customers.csv:4: phone: {Reason.NOT_PHONE}",
        f"customers.csv:5: email: {Reason.NOT_EMAIL}",
        f"customers.csv:5: phone: {Reason.NOT_PHONE}",
    ]
    assert Customer.objects.count() == 0


@pytest.mark.django_db
def test_malformed_contact_email_and_phone_reject_the_submissions_file(tmp_path: Path) -> None:
    # Given customers, plans, subscriptions and charges already imported
    base: dict[str, str | bytes] = {
        name: GOOD_FILES[name] for name in ("customers.csv", "plans.csv", "subscriptions.csv", "charges.csv")
    }
    assert import_dir(write_files(tmp_path / "base", base)).ok
    submissions = (
        "submission_id,program,subject,submitted_at,channel,contact_email,contact_phone\n"
        "sub1,autorenew-60day,ch1,2024-06-01T12:00:00,web,taro@example.jp,090-1234-5678\n"
        "sub2,autorenew-60day,ch1,2024-06-01T12:00:00,web,taro at example.jp,\n"
        "sub3,autorenew-60day,ch1,2024-06-01T12:00:00,phone,,ring twice\n"
    )

    # When a submissions file with a malformed contact email and phone is imported
    result = records_import(
        directory=write_files(tmp_path / "bad", {"submissions.csv": submissions}),
        actor=None,
        source=ImportRun.Source.COMMAND,
    )

    # Then both are row errors and no submission is stored
    assert errors_of(result, "submissions.csv") == [
        (3, "contact_email", Reason.NOT_EMAIL),
        (4, "contact_phone", Reason.NOT_PHONE),
    ]
    assert Submission.objects.count() == 0


@pytest.mark.django_db
def test_valid_contacts_in_every_written_form_load_into_an_empty_table(tmp_path: Path) -> None:
    # Given a first load (the direct COPY path) of every valid form, quoted or not
    rows = [
        f"v{index},Name,{VALID_EMAILS[index % len(VALID_EMAILS)]},{phone}," for index, phone in enumerate(VALID_PHONES)
    ]
    quoted = 'q1,Q,"taro@example.jp","03 (1234) 5678",'
    body = "\n".join(["customer_id,name,email,phone,created_at", *rows, quoted]) + "\n"

    result = import_dir(write_files(tmp_path / "good", {"customers.csv": body}))

    assert result.ok, errors_of(result, "customers.csv")
    assert Customer.objects.count() == len(VALID_PHONES) + 1
    assert Customer.objects.get(pk="v9").phone == "+81 90-1234-5678"
    assert Customer.objects.get(pk="v9").phone_digits == "819012345678"
