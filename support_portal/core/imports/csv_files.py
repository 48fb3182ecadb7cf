"""Reading the CSV files themselves: the header, records, and what makes a record unreadable.

Line numbers count records with the header as line 1, so they equal the file's physical lines unless a
quoted value spans lines; both load paths number the same way (PostgreSQL numbers staged rows in COPY
order).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from support_portal.core.imports.schema import FileSpec, Reason

BOM = codecs.BOM_UTF8
BLOCK_SIZE = 1024 * 1024
# Kept in memory (and printed) per file; ImportRun stores fewer (STORED_ERRORS_CAP), the count is exact.
REPORTED_ERRORS_CAP = 100_000
STORED_ERRORS_CAP = 1_000


class ReadableBytes(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"line": self.line, "column": self.column, "reason": self.reason}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:"
        return f"{where} {self.column}: {self.reason}" if self.column else f"{where} {self.reason}"


def _printable(text: str) -> str:
    """Control characters shown escaped: a NUL (e.g. a UTF-16 file read as UTF-8) cannot be stored in
    PostgreSQL text or jsonb, and none of them is readable in an error list."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


@dataclass
class ErrorList:
    """Every error of one file, counted exactly, kept up to a cap so memory stays bounded."""

    file: str
    cap: int = REPORTED_ERRORS_CAP
    items: list[RowError] = field(default_factory=list)
    count: int = 0

    def add(self, line: int, column: str, reason: str) -> None:
        self.count += 1
        if len(self.items) < self.cap:
            self.items.append(RowError(self.file, line, _printable(column), _printable(reason)))

    def __bool__(self) -> bool:
        return self.count > 0


class FileRejected(Exception):
    """Raised inside a file's transaction so nothing of it is kept; carries every error."""

    def __init__(self, errors: ErrorList, rows_read: int) -> None:
        super().__init__(f"{errors.file}: {errors.count} errors")
        self.errors = errors
        self.rows_read = rows_read


@dataclass(frozen=True)
class Header:
    names: tuple[str, ...]
    # Bytes of the file after the header line (the start of the data), already read.
    rest: bytes


def read_header(stream: ReadableBytes) -> Header | None:
    """Reads up to the end of the header line (BOM stripped); None for an empty file."""
    buffered = b""
    while b"\n" not in buffered:
        block = stream.read(BLOCK_SIZE)
        if not block:
            break
        buffered += block
        if len(buffered) > 16 * BLOCK_SIZE:  # no sane header is this long; stop reading into memory
            break
    if buffered.startswith(BOM):
        buffered = buffered[len(BOM) :]
    if not buffered.strip():
        return None
    line, _newline, rest = buffered.partition(b"\n")
    text = line.decode("utf-8", errors="replace").rstrip("\r")
    names = next(csv.reader([text]), [])
    return Header(names=tuple(names), rest=rest)


def header_errors(spec: FileSpec, header: Header, errors: ErrorList) -> None:
    """Unknown, repeated and missing columns, reported on line 1."""
    seen: set[str] = set()
    for name in header.names:
        if name in seen:
            errors.add(1, name, Reason.DUPLICATE_COLUMN)
        elif name not in spec.by_name:
            errors.add(1, name, Reason.UNKNOWN_COLUMN % ", ".join(spec.column_names))
        seen.add(name)
    for name in spec.required_names:
        if name not in seen:
            errors.add(1, name, Reason.MISSING_COLUMN)


class _QuoteCounter:
    """Counts quote characters of the text it passes on: an odd total leaves a quoted field open."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self.quotes = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._lines:
            self.quotes += text.count('"')
            yield text


def iter_records(stream: BinaryIO, expected_fields: int, errors: ErrorList) -> Iterator[tuple[int, list[str]]]:
    """Yields (line, fields) of every data record that is readable; adds the others to `errors`.

    Structure is checked as PostgreSQL's COPY checks it: field count, UTF-8, NUL, an unclosed quote.
    `stream` must be positioned at the start of the file.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 16 * BLOCK_SIZE))
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    counter = _QuoteCounter(iter(text))
    reader = csv.reader(counter)
    line = 0
    last_line = 0
    try:
        for fields in reader:
            line += 1
            if line == 1:
                continue
            last_line = line
            reason = _structure_problem(fields, expected_fields)
            if reason is not None:
                errors.add(line, "", reason)
                continue
            yield line, fields
    except csv.Error:
        errors.add(line + 1, "", Reason.UNTERMINATED_QUOTE)
        return
    finally:
        text.detach()
    if counter.quotes % 2:
        errors.add(last_line, "", Reason.UNTERMINATED_QUOTE)


def _structure_problem(fields: list[str], expected_fields: int) -> str | None:
    if len(fields) != expected_fields:
        if any(value == "\\." or "\n\\.\n" in value for value in fields):
            return Reason.END_OF_DATA_MARKER
        return Reason.FIELD_COUNT % (expected_fields, len(fields))
    for value in fields:
        if "\x00" in value:
            return Reason.NUL_CHARACTER
        if _has_undecodable_bytes(value):
            return Reason.NOT_UTF8
        if "\n\\.\n" in value or value.startswith("\\.\n") or value.endswith("\n\\."):
            return Reason.END_OF_DATA_MARKER
    return None


def _has_undecodable_bytes(value: str) -> bool:
    # surrogateescape turns each byte that is not UTF-8 into a lone surrogate U+DC80..U+DCFF.
    return any("\udc80" <= char <= "\udcff" for char in value)
