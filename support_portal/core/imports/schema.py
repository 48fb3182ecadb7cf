"""The one declaration of the import files (FORMATS.md): their columns, value rules and reasons.

Both load paths derive from this module, so their rules cannot diverge: the PostgreSQL path turns
each rule into set-based SQL (`postgres.py`), the Python path applies it per row (`python_path.py`).
Formats are regular expressions written in the subset both Python `re` and PostgreSQL's ARE accept;
reasons are templates with `%s` placeholders, filled by Python's `%` and by PostgreSQL's `format()`.

Column limits (lengths, choices, defaults) are read from the model fields, so a model change carries
over to the import.
"""

from __future__ import annotations

import calendar
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from django.db import models
from django.db.models.fields import NOT_PROVIDED

from claims.models import Policy, Program, Submission
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

# Date-times without an offset are JST (FORMATS.md "Common rules").
SOURCE_TIME_ZONE_NAME = "Asia/Tokyo"
SOURCE_TIME_ZONE = ZoneInfo(SOURCE_TIME_ZONE_NAME)

# PostgreSQL `integer`, the type of Django's PositiveIntegerField.
MAX_INTEGER = 2_147_483_647

# --- Formats (shared by both paths; anchored with ^…$ in SQL, matched with fullmatch in Python) ---
_YEAR = "[1-9][0-9]{3}"
_DATE = f"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9]([.][0-9]{1,6})?)?"
OFFSET_PATTERN = "(Z|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)"
DATE_PATTERN = _DATE
DATETIME_PATTERN = f"{_DATE}[T ]{_TIME}{OFFSET_PATTERN}?"
DATE_OR_DATETIME_PATTERN = f"{_DATE}([T ]{_TIME}{OFFSET_PATTERN}?)?"
# Says whether a value that matched one of the patterns above carries its own offset.
HAS_OFFSET_PATTERN = f"[T ][0-9:.]+{OFFSET_PATTERN}"
INTEGER_PATTERN = "[0-9]{1,10}"
# An address Django's EmailValidator accepts, in its common form: a dot-atom local part, then a domain of
# dot-separated labels (ASCII; no quoted local parts, IP literals or bare hosts such as `localhost`).
_EMAIL_ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOMAIN_LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = f"{_EMAIL_ATOM}([.]{_EMAIL_ATOM})*@({_DOMAIN_LABEL}[.])+[A-Za-z0-9]([A-Za-z0-9-]{{0,61}}[A-Za-z0-9])"
# A Japanese number as people write it: 0 and 9 or 10 more digits (landline 03-1234-5678, mobile
# 090-1234-5678, 0120-123-456), or +81 with the leading 0 dropped (+81 90-1234-5678); hyphens, spaces and
# parentheses between the digits (03 (1234) 5678). Every such number is one phonenumbers (region JP) can
# parse as possible; tests/core/imports/test_contact_formats.py keeps the two in step.
PHONE_PATTERN = "([+]81[ -]?|[(]?0)[1-9]([ ()-]{0,2}[0-9]){8,9}"
TRUE_VALUES = ("true", "1")
FALSE_VALUES = ("false", "0")


class Reason:
    """Why a value or a row was refused. Stable English texts: tests and users grep for them."""

    MISSING = "required value is missing"
    TOO_LONG = "longer than %s characters"
    NOT_INTEGER = "not a whole number (digits only, e.g. 1200)"
    TOO_LARGE = "number too large (at most 2147483647)"
    NOT_POSITIVE = "must be greater than 0"
    NOT_BOOLEAN = "not a boolean (true, false, 1 or 0)"
    NOT_DATE = "not a valid date (YYYY-MM-DD)"
    NOT_DATETIME = "not a valid date-time (ISO 8601, e.g. 2024-04-01T09:30:00+09:00)"
    NOT_DATE_OR_DATETIME = "not a valid date or date-time (YYYY-MM-DD or ISO 8601)"
    NOT_CHOICE = "not one of: %s"
    NOT_EMAIL = "not a valid email address (e.g. taro@example.jp)"
    NOT_PHONE = "not a valid Japanese phone number (e.g. 090-1234-5678, 03-1234-5678 or +81 90-1234-5678)"
    UNKNOWN_REFERENCE = "unknown %s (not in the database)"
    UNKNOWN_SUBJECT = "unknown %s (this program's subjects are %s ids)"
    DUPLICATE_ID = "duplicate id in this file (first on line %s, %s lines in all)"
    PERIOD_NOT_AFTER = "must be after %s"
    # Whole-file problems.
    UNKNOWN_FILE = "unknown file name (expected one of: %s)"
    EMPTY_FILE = "the file is empty (a header row is required)"
    UNKNOWN_COLUMN = "unknown column (expected one of: %s)"
    MISSING_COLUMN = "required column is missing"
    DUPLICATE_COLUMN = "column appears more than once in the header"
    # Structure (a record the CSV reader cannot map onto the header).
    FIELD_COUNT = "expected %s fields, found %s"
    NOT_UTF8 = "not valid UTF-8"
    NUL_CHARACTER = "contains a NUL character"
    UNTERMINATED_QUOTE = "unterminated quoted field (a quote is never closed)"
    END_OF_DATA_MARKER = "a line consisting of \\. cannot be loaded"


class Kind(enum.StrEnum):
    ID = "id"
    TEXT = "text"
    INTEGER = "integer"  # whole yen, >= 0
    POSITIVE_INTEGER = "positive_integer"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    DATE_OR_DATETIME = "date_or_datetime"  # a date means JST midnight
    CHOICE = "choice"
    EMAIL = "email"  # text in EMAIL_PATTERN
    PHONE = "phone"  # text in PHONE_PATTERN


# Kinds stored as the text given (an empty cell is '' unless the field is nullable).
TEXT_KINDS = (Kind.ID, Kind.TEXT, Kind.CHOICE, Kind.EMAIL, Kind.PHONE)


@dataclass(frozen=True)
class Column:
    """One CSV column and the model field it fills.

    `references` names the model a foreign key points to (the value must exist there); `subject` marks
    the submissions column whose target depends on the program's policy.
    """

    name: str
    kind: Kind
    model_field: str
    required: bool = False
    references: type[models.Model] | None = None
    subject_of: str | None = None  # the column naming the program whose policy decides the subject kind
    # A choice column's allowed values when the contract allows fewer than the model field's choices.
    only: tuple[str, ...] | None = None

    def bind(self, model: type[models.Model]) -> BoundColumn:
        return BoundColumn(self, model)


@dataclass(frozen=True)
class BoundColumn:
    """A column with what the model says about it (database column, length, choices, default)."""

    column: Column
    model: type[models.Model]

    @property
    def name(self) -> str:
        return self.column.name

    @property
    def kind(self) -> Kind:
        return self.column.kind

    @property
    def required(self) -> bool:
        return self.column.required

    @cached_property
    def field(self) -> models.Field[Any, Any]:
        found = self.model._meta.get_field(self.column.model_field)
        assert isinstance(found, models.Field)
        return found

    @property
    def db_column(self) -> str:
        return str(self.field.column)

    @property
    def attname(self) -> str:
        return str(self.field.attname)

    @cached_property
    def max_length(self) -> int | None:
        target = self.field.target_field if self.field.is_relation else self.field  # type: ignore[attr-defined]
        max_length = getattr(target, "max_length", None)
        return int(max_length) if max_length else None

    @cached_property
    def choices(self) -> tuple[str, ...]:
        if self.column.only is not None:
            return self.column.only
        return tuple(str(value) for value, _label in (self.field.choices or []))

    @property
    def nullable(self) -> bool:
        return bool(self.field.null)

    @cached_property
    def empty_value(self) -> Any:
        """What an empty cell stores: the field's default, else NULL where allowed, else ''."""
        if self.field.default is not NOT_PROVIDED:
            default = self.field.default
            return default() if callable(default) else default
        if self.field.null:
            return None
        if self.kind is Kind.BOOLEAN:
            return False
        return ""

    @property
    def referenced_model(self) -> type[models.Model] | None:
        return self.column.references

    @cached_property
    def referenced_db_column(self) -> str | None:
        """The database column a foreign key value is looked up in (the pk or the FK's to_field)."""
        if self.column.references is None:
            return None
        if self.field.is_relation:
            return str(self.field.target_field.column)  # type: ignore[attr-defined]
        pk = self.column.references._meta.pk
        assert pk is not None
        return str(pk.column)

    @property
    def referenced_label(self) -> str:
        assert self.column.references is not None
        return str(self.column.references._meta.model_name)


@dataclass(frozen=True)
class RowCheck:
    """A rule across columns: `later` must be strictly after `earlier` (both dates of the same kind).

    `enforced_by` names the table's CHECK constraint that enforces the same rule on the stored values, so
    a load that skips the per-row validation (PostgreSQL's fast path) still cannot store a violation.
    """

    earlier: str
    later: str
    enforced_by: str | None = None

    @property
    def reason(self) -> str:
        return Reason.PERIOD_NOT_AFTER % self.earlier


@dataclass(frozen=True)
class FileSpec:
    file_name: str
    model: type[models.Model]
    columns: tuple[Column, ...]
    # Files without an id are keyed by their unique constraint: a row already there is skipped.
    has_id: bool = True
    row_checks: tuple[RowCheck, ...] = ()

    @cached_property
    def bound_columns(self) -> tuple[BoundColumn, ...]:
        return tuple(column.bind(self.model) for column in self.columns)

    @cached_property
    def by_name(self) -> Mapping[str, BoundColumn]:
        return {column.name: column for column in self.bound_columns}

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def required_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)

    @property
    def id_column(self) -> BoundColumn | None:
        return self.bound_columns[0] if self.has_id else None

    @property
    def table(self) -> str:
        return str(self.model._meta.db_table)


def _c(name: str, kind: Kind, model_field: str | None = None, **options: Any) -> Column:
    return Column(name=name, kind=kind, model_field=model_field or name, **options)


# In dependency order: a file's foreign keys point only at files listed before it.
FILE_SPECS: tuple[FileSpec, ...] = (
    FileSpec(
        "customers.csv",
        Customer,
        (
            _c("customer_id", Kind.ID, required=True),
            _c("name", Kind.TEXT),
            _c("email", Kind.EMAIL),
            _c("phone", Kind.PHONE),
            _c("created_at", Kind.DATETIME),
        ),
    ),
    FileSpec(
        "plans.csv",
        Plan,
        (
            _c("plan_code", Kind.ID, required=True),
            _c("name", Kind.TEXT),
            _c("monthly_fee_jpy", Kind.INTEGER, required=True),
        ),
    ),
    FileSpec(
        "subscriptions.csv",
        Subscription,
        (
            _c("subscription_id", Kind.ID, required=True),
            _c("customer_id", Kind.ID, "customer", required=True, references=Customer),
            _c("plan_code", Kind.ID, "plan", required=True, references=Plan),
            # Empty: the customer pays for their own subscription (stored as NULL).
            _c("payer_customer_id", Kind.ID, "payer", references=Customer),
            _c("payment_method", Kind.CHOICE, required=True),
            _c("started_at", Kind.DATETIME, required=True),
            _c("ended_at", Kind.DATETIME),
            _c("auto_renew", Kind.BOOLEAN),
        ),
    ),
    FileSpec(
        "charges.csv",
        Charge,
        (
            _c("charge_id", Kind.ID, required=True),
            _c("subscription_id", Kind.ID, "subscription", required=True, references=Subscription),
            _c("amount_jpy", Kind.INTEGER, required=True),
            _c("charged_at", Kind.DATETIME, required=True),
            _c("period_start", Kind.DATE, required=True),
            _c("period_end", Kind.DATE, required=True),
            # Empty: the subscription's method (stored as '', which the model reads that way).
            _c("payment_method", Kind.CHOICE),
            _c("promotional", Kind.BOOLEAN),
        ),
        row_checks=(RowCheck("period_start", "period_end", enforced_by="charge_period_not_empty"),),
    ),
    FileSpec(
        "logins.csv",
        Login,
        (
            _c("customer_id", Kind.ID, "customer", required=True, references=Customer),
            _c("logged_in_at", Kind.DATETIME, required=True),
        ),
        has_id=False,
    ),
    FileSpec(
        "usage_events.csv",
        UsageEvent,
        (
            _c("customer_id", Kind.ID, "customer", required=True, references=Customer),
            _c("subscription_id", Kind.ID, "subscription", references=Subscription),
            _c("used_at", Kind.DATETIME, required=True),
        ),
        has_id=False,
    ),
    FileSpec(
        "coupons.csv",
        Coupon,
        (
            _c("inquiry_number", Kind.ID, required=True),
            _c("customer_id", Kind.ID, "customer", references=Customer),
            _c("prefecture", Kind.TEXT),
            _c("face_value_jpy", Kind.INTEGER, required=True),
            _c("issued_at", Kind.DATETIME, required=True),
            _c("expires_at", Kind.DATETIME, required=True),
            _c("via_app", Kind.BOOLEAN),
            _c("app_withdrawn", Kind.BOOLEAN),
        ),
    ),
    FileSpec(
        "coupon_transactions.csv",
        CouponTransaction,
        (
            _c("transaction_id", Kind.ID, required=True),
            _c("inquiry_number", Kind.ID, "coupon", required=True, references=Coupon),
            # The source ledger's kinds; remedies (restoration, expiry extension) are written by the claims
            # engine only (claims.remedies), never imported.
            _c("kind", Kind.CHOICE, required=True, only=("charge", "payment", "reversal")),
            _c("amount_jpy", Kind.POSITIVE_INTEGER, required=True),
            _c("occurred_at", Kind.DATETIME, required=True),
            _c("store_name", Kind.TEXT),
        ),
    ),
    FileSpec(
        "submissions.csv",
        Submission,
        (
            _c("submission_id", Kind.ID, required=True),
            _c("program", Kind.ID, "program", required=True, references=Program),
            _c("subject", Kind.ID, required=True, subject_of="program"),
            _c("submitted_at", Kind.DATETIME, required=True),
            _c("channel", Kind.CHOICE),
            _c("contact_email", Kind.EMAIL),
            _c("contact_phone", Kind.PHONE),
            _c("payout_method", Kind.CHOICE),
            _c("reason", Kind.TEXT),
            _c("fault", Kind.CHOICE),
            _c("effective_at", Kind.DATE_OR_DATETIME),
        ),
    ),
)

SPECS_BY_FILE_NAME: Mapping[str, FileSpec] = {spec.file_name: spec for spec in FILE_SPECS}

# What a submission's subject is, by program policy, and where such ids live.
SUBJECT_MODELS: Mapping[str, type[models.Model]] = {"customer": Customer, "coupon": Coupon, "charge": Charge}


def file_prerequisites(spec: FileSpec) -> frozenset[str]:
    """The files whose rows this file's rows may reference: they must be loaded (committed) first."""
    models_needed: set[type[models.Model]] = set()
    for column in spec.columns:
        if column.references is not None:
            models_needed.add(column.references)
        if column.subject_of is not None:
            models_needed.update(SUBJECT_MODELS.values())
    return frozenset(
        other.file_name for other in FILE_SPECS if other.model in models_needed and other.file_name != spec.file_name
    )


def subject_kind_by_policy() -> dict[str, str]:
    return {str(policy): Policy.subject_kind(policy) for policy in Policy.values}


# --- Value rules, Python side (the SQL side in postgres.py follows the same patterns) -------------

_DATE_RE = re.compile(DATE_PATTERN)
_DATETIME_RE = re.compile(DATETIME_PATTERN)
_DATE_OR_DATETIME_RE = re.compile(DATE_OR_DATETIME_PATTERN)
_HAS_OFFSET_RE = re.compile(HAS_OFFSET_PATTERN)
_INTEGER_RE = re.compile(INTEGER_PATTERN)
_EMAIL_RE = re.compile(EMAIL_PATTERN)
_PHONE_RE = re.compile(PHONE_PATTERN)


class ValueRejected(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def day_exists(text: str) -> bool:
    """The day of a `YYYY-MM-DD` prefix exists in its month (the pattern allows up to 31)."""
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    return day <= calendar.monthrange(year, month)[1]


def _parse_instant(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if not _HAS_OFFSET_RE.search(text):
        parsed = parsed.replace(tzinfo=SOURCE_TIME_ZONE)
    return parsed.astimezone(UTC)


def _convert_text(column: BoundColumn, text: str) -> Any:
    if column.max_length is not None and len(text) > column.max_length:
        raise ValueRejected(Reason.TOO_LONG % column.max_length)
    return text


def _convert_email(column: BoundColumn, text: str) -> Any:
    _convert_text(column, text)
    if not _EMAIL_RE.fullmatch(text):
        raise ValueRejected(Reason.NOT_EMAIL)
    return text


def _convert_phone(column: BoundColumn, text: str) -> Any:
    _convert_text(column, text)
    if not _PHONE_RE.fullmatch(text):
        raise ValueRejected(Reason.NOT_PHONE)
    return text


def _convert_integer(column: BoundColumn, text: str) -> Any:
    if not _INTEGER_RE.fullmatch(text):
        raise ValueRejected(Reason.NOT_INTEGER)
    number = int(text)
    if number > MAX_INTEGER:
        raise ValueRejected(Reason.TOO_LARGE)
    if column.kind is Kind.POSITIVE_INTEGER and number == 0:
        raise ValueRejected(Reason.NOT_POSITIVE)
    return number


def _convert_boolean(column: BoundColumn, text: str) -> Any:
    if text in TRUE_VALUES:
        return True
    if text in FALSE_VALUES:
        return False
    raise ValueRejected(Reason.NOT_BOOLEAN)


def _convert_choice(column: BoundColumn, text: str) -> Any:
    if text not in column.choices:
        raise ValueRejected(Reason.NOT_CHOICE % ", ".join(column.choices))
    return text


def _convert_date(column: BoundColumn, text: str) -> Any:
    if not _DATE_RE.fullmatch(text) or not day_exists(text):
        raise ValueRejected(Reason.NOT_DATE)
    return date(int(text[0:4]), int(text[5:7]), int(text[8:10]))


def _convert_datetime(column: BoundColumn, text: str) -> Any:
    if not _DATETIME_RE.fullmatch(text) or not day_exists(text):
        raise ValueRejected(Reason.NOT_DATETIME)
    return _parse_instant(text)


def _convert_date_or_datetime(column: BoundColumn, text: str) -> Any:
    if not _DATE_OR_DATETIME_RE.fullmatch(text) or not day_exists(text):
        raise ValueRejected(Reason.NOT_DATE_OR_DATETIME)
    if len(text) == len("YYYY-MM-DD"):
        return datetime.combine(date.fromisoformat(text), time(), SOURCE_TIME_ZONE).astimezone(UTC)
    return _parse_instant(text)


_CONVERTERS: Mapping[Kind, Callable[[BoundColumn, str], Any]] = {
    Kind.ID: _convert_text,
    Kind.TEXT: _convert_text,
    Kind.EMAIL: _convert_email,
    Kind.PHONE: _convert_phone,
    Kind.INTEGER: _convert_integer,
    Kind.POSITIVE_INTEGER: _convert_integer,
    Kind.BOOLEAN: _convert_boolean,
    Kind.CHOICE: _convert_choice,
    Kind.DATE: _convert_date,
    Kind.DATETIME: _convert_datetime,
    Kind.DATE_OR_DATETIME: _convert_date_or_datetime,
}


def convert_value(column: BoundColumn, text: str) -> Any:
    """The stored value for one cell, or ValueRejected with the reason (same rules as the SQL)."""
    if text == "":
        if column.required:
            raise ValueRejected(Reason.MISSING)
        return column.empty_value
    return _CONVERTERS[column.kind](column, text)
