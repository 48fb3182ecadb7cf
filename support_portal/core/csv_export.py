"""The one CSV writer every export goes through (audit trail, claims preview/dry run, program report,
payout reconciliation, desk dashboard): no spreadsheet formula injection.

A cell that a spreadsheet would read as a formula (starting with = + - @, tab or CR) is written with a
leading apostrophe, which spreadsheets show as text. Plain numbers ("-120", "+3.5") are left as they are:
they are not formulas, and amounts must stay numbers.
"""

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


def csv_cell(value: object) -> object:
    """The value as written: a formula-looking string gets a leading apostrophe; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class CsvWriter:
    """csv.writer with every cell passed through `csv_cell`."""

    def __init__(self, out: _Writable, *, lineterminator: str = "\n") -> None:
        self._writer = csv.writer(out, lineterminator=lineterminator)

    def writerow(self, row: Iterable[object]) -> None:
        self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


class CsvDictWriter:
    """csv.DictWriter's header + rows, through the same neutralisation."""

    def __init__(self, out: _Writable, *, fieldnames: Sequence[str], lineterminator: str = "\n") -> None:
        self.fieldnames = list(fieldnames)
        self._writer = CsvWriter(out, lineterminator=lineterminator)

    def writeheader(self) -> None:
        self._writer.writerow(self.fieldnames)

    def writerow(self, row: Mapping[str, object]) -> None:
        self._writer.writerow([row.get(name, "") for name in self.fieldnames])
