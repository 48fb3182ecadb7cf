"""Reconciliation: the providers' settlement files, and what they say against what we expect.

Pure code. The finance report calls `reconcile` with the payouts it expects (by provider reference, or by
Zengin customer code for bank transfers) and the rows a provider or bank reported, and shows the result.

Settlement file (CSV, the common rules of FORMATS.md: UTF-8 with an optional BOM, a header row, column
order free, unknown, repeated or missing columns rejected, date-times ISO 8601 and JST without an offset):

| column     | meaning                                                              |
|------------|----------------------------------------------------------------------|
| provider   | the provider's name (e.g. ``sevenbank-atm-simulator``), not empty    |
| reference  | the provider reference of the payout, unique within the file        |
| status     | ``picked_up``, ``expired`` or ``returned``                           |
| amount_jpy | whole yen, more than 0                                               |
| at         | when it happened                                                     |

Every bad line is reported with its line number (the header is line 1) and column; a file with any bad
line yields no rows (SettlementFileError lists them all).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Protocol

from support_portal.core.business_days import JST


class SettlementStatus(StrEnum):
    PICKED_UP = "picked_up"
    EXPIRED = "expired"
    RETURNED = "returned"


SETTLEMENT_COLUMNS = ("provider", "reference", "status", "amount_jpy", "at")
MAX_AMOUNT_JPY = 9_999_999_999


@dataclasses.dataclass(frozen=True)
class SettlementRow:
    line: int
    provider: str
    reference: str
    status: SettlementStatus
    amount_jpy: int
    at: dt.datetime


@dataclasses.dataclass(frozen=True)
class LineError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.reason}" if self.column else f"line {self.line}: {self.reason}"


class SettlementFileError(ValueError):
    """A settlement file with bad lines; `errors` has every one of them, in line order."""

    MAX_IN_MESSAGE = 20

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = tuple(errors)
        shown = "; ".join(str(error) for error in errors[: self.MAX_IN_MESSAGE])
        more = len(errors) - self.MAX_IN_MESSAGE
        super().__init__(shown + (f"; … and {more} more" if more > 0 else ""))


def parse_datetime_jst(text: str) -> dt.datetime:
    """An ISO 8601 date-time; without an offset it is JST. ValueError for anything else (a bare date too)."""
    if len(text) < 16 or ("T" not in text.upper() and " " not in text):
        raise ValueError(f"not an ISO 8601 date-time: {text!r}")
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=JST) if value.tzinfo is None else value


def _header_errors(header: list[str]) -> list[LineError]:
    errors: list[LineError] = []
    seen: set[str] = set()
    for name in header:
        if name in seen:
            errors.append(LineError(1, name, "repeated column"))
        elif name not in SETTLEMENT_COLUMNS:
            errors.append(LineError(1, name, f"unknown column (expected {', '.join(SETTLEMENT_COLUMNS)})"))
        seen.add(name)
    errors.extend(LineError(1, name, "missing column") for name in SETTLEMENT_COLUMNS if name not in seen)
    return errors


def _row(line: int, values: dict[str, str], errors: list[LineError]) -> SettlementRow | None:
    found = len(errors)
    for name in ("provider", "reference"):
        if not values[name]:
            errors.append(LineError(line, name, "is required"))
    status = values["status"]
    if status not in SettlementStatus.__members__.values():
        errors.append(LineError(line, "status", f"must be picked_up, expired or returned, got {status!r}"))
    amount_text = values["amount_jpy"]
    amount = 0
    if not (amount_text.isascii() and amount_text.isdigit()) or not 0 < int(amount_text) <= MAX_AMOUNT_JPY:
        errors.append(
            LineError(line, "amount_jpy", f"must be whole yen from 1 to {MAX_AMOUNT_JPY}, got {amount_text!r}")
        )
    else:
        amount = int(amount_text)
    at: dt.datetime | None = None
    try:
        at = parse_datetime_jst(values["at"])
    except ValueError:
        errors.append(LineError(line, "at", f"must be an ISO 8601 date-time, got {values['at']!r}"))
    if len(errors) > found or at is None:
        return None
    return SettlementRow(line, values["provider"], values["reference"], SettlementStatus(status), amount, at)


def parse_settlement_csv(data: bytes | str) -> list[SettlementRow]:
    """Every row of a settlement file, or SettlementFileError listing every bad line (nothing partial)."""
    if isinstance(data, bytes):
        raw = data
        try:
            data = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            line = raw.count(b"\n", 0, error.start) + 1
            raise SettlementFileError([LineError(line, "", f"is not UTF-8 ({error.reason})")]) from error
    reader = csv.reader(io.StringIO(data.removeprefix("\ufeff"), newline=""), strict=True)
    errors: list[LineError] = []
    rows: list[SettlementRow] = []
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise SettlementFileError([LineError(1, "", "the file is empty (a header row is required)")]) from None
    errors.extend(_header_errors(header))
    if errors:
        raise SettlementFileError(errors)
    first_line: dict[str, int] = {}
    try:
        for fields in reader:
            line = reader.line_num
            if not fields or fields == [""]:
                continue
            if len(fields) != len(header):
                errors.append(LineError(line, "", f"has {len(fields)} fields, the header has {len(header)}"))
                continue
            row = _row(line, {name: value.strip() for name, value in zip(header, fields, strict=True)}, errors)
            if row is None:
                continue
            if row.reference in first_line:
                errors.append(LineError(line, "reference", f"repeats line {first_line[row.reference]}"))
                continue
            first_line[row.reference] = line
            rows.append(row)
    except csv.Error as error:
        errors.append(LineError(reader.line_num, "", f"unreadable CSV ({error})"))
    if errors:
        raise SettlementFileError(errors)
    return rows


class Reported(Protocol):
    """What a provider or bank reported for one payout (SettlementRow, zengin.TransferResult…)."""

    @property
    def reference(self) -> str: ...

    @property
    def amount_jpy(self) -> int: ...

    @property
    def status(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class Expected:
    """What we expect for one reference: the amount, and optionally the reported status (None = any)."""

    amount_jpy: int
    status: str | None = None


@dataclasses.dataclass(frozen=True)
class Matched:
    reference: str
    amount_jpy: int
    status: str


@dataclasses.dataclass(frozen=True)
class AmountMismatch:
    reference: str
    expected_jpy: int
    reported_jpy: int
    status: str

    @property
    def difference_jpy(self) -> int:
        return self.reported_jpy - self.expected_jpy


@dataclasses.dataclass(frozen=True)
class StatusMismatch:
    reference: str
    expected_status: str
    reported_status: str


@dataclasses.dataclass(frozen=True)
class ReconciliationResult:
    """Every reference in exactly one of matched / missing / unexpected / mismatched (a reference with
    both a wrong amount and a wrong status is in both mismatch lists); later repeats in `duplicates`."""

    matched: tuple[Matched, ...]
    missing: tuple[str, ...]
    unexpected: tuple[Reported, ...]
    amount_mismatches: tuple[AmountMismatch, ...]
    status_mismatches: tuple[StatusMismatch, ...]
    duplicates: tuple[Reported, ...]

    @property
    def is_clean(self) -> bool:
        """No difference of any kind."""
        return not (
            self.missing or self.unexpected or self.amount_mismatches or self.status_mismatches or self.duplicates
        )

    def matched_totals(self) -> dict[str, tuple[int, int]]:
        """status → (count, yen) of the matched references, statuses in first-seen order."""
        totals: dict[str, tuple[int, int]] = {}
        for item in self.matched:
            count, amount = totals.get(item.status, (0, 0))
            totals[item.status] = (count + 1, amount + item.amount_jpy)
        return totals


def reconcile(*, expected: Mapping[str, Expected | int], reported: Iterable[Reported]) -> ReconciliationResult:
    """Compare what we expect (reference → Expected, or just the amount) with what was reported.

    matched: reported with the expected amount and (when one is expected) status, in reported order;
    missing: expected references nobody reported, in `expected` order; unexpected: reported references we
    do not expect; amount/status mismatches: reported but different; duplicates: a reference reported again
    after its first report (only the first one counts). One pass, a dict look-up per row.
    """
    wanted = {ref: value if isinstance(value, Expected) else Expected(value) for ref, value in expected.items()}
    seen: set[str] = set()
    matched: list[Matched] = []
    unexpected: list[Reported] = []
    amounts: list[AmountMismatch] = []
    statuses: list[StatusMismatch] = []
    duplicates: list[Reported] = []
    for row in reported:
        reference, status = row.reference, str(row.status)
        if reference in seen:
            duplicates.append(row)
            continue
        seen.add(reference)
        want = wanted.get(reference)
        if want is None:
            unexpected.append(row)
            continue
        ok = True
        if row.amount_jpy != want.amount_jpy:
            amounts.append(AmountMismatch(reference, want.amount_jpy, row.amount_jpy, status))
            ok = False
        if want.status is not None and status != want.status:
            statuses.append(StatusMismatch(reference, want.status, status))
            ok = False
        if ok:
            matched.append(Matched(reference, row.amount_jpy, status))
    return ReconciliationResult(
        matched=tuple(matched),
        missing=tuple(ref for ref in wanted if ref not in seen),
        unexpected=tuple(unexpected),
        amount_mismatches=tuple(amounts),
        status_mismatches=tuple(statuses),
        duplicates=tuple(duplicates),
    )
