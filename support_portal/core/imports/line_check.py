"""A cheap, strict pre-check of the data bytes on their way to COPY: is every record plainly valid?

The PostgreSQL path streams each file through COPY; this module looks at the same blocks in the Python
process (which is otherwise idle, so the check costs no wall time on a multi-core machine) and answers
one question: does every record match the contract's formats exactly (FORMATS.md, the patterns of
`schema.py`)? When it does, the database only has to check what bytes cannot show (foreign keys,
duplicate ids, day-of-month, integer range, lengths in characters), which its own input functions and
constraints do as a side effect of writing: the optimistic fast path. When it does not (or the file uses
CSV features the check does not model, such as a quoted id), the full set-based validation runs and names
every bad row, exactly as before. So the check may be stricter than the contract, never more lenient.

One compiled regular expression per (file, header) matches whole records; it runs in C over each block,
never per row in Python.
"""

from __future__ import annotations

import re

from support_portal.core.imports.schema import (
    DATE_OR_DATETIME_PATTERN,
    DATE_PATTERN,
    DATETIME_PATTERN,
    EMAIL_PATTERN,
    FALSE_VALUES,
    INTEGER_PATTERN,
    PHONE_PATTERN,
    TEXT_KINDS,
    TRUE_VALUES,
    BoundColumn,
    FileSpec,
    Kind,
)

# Unchecked bytes carried from one block to the next (a record split by the block boundary). More than
# this means a record that never matches: the file is not plainly valid.
MAX_CARRY_BYTES = 4 * 1024 * 1024

_UNQUOTED = rb'[^,"\r\n]'
_QUOTED_NONEMPTY = rb'"(?:[^"]|"")+"'
_QUOTED_ANY = rb'"(?:[^"]|"")*"'


def _non_capturing(pattern: str) -> bytes:
    """The shared pattern with its groups made non-capturing (several times faster in Python's engine).

    A `(` inside a bracket expression (the phone pattern's `[ ()-]`) is a character, not a group.
    """
    out: list[str] = []
    in_brackets = False
    for index, char in enumerate(pattern):
        if in_brackets:
            in_brackets = char != "]"
        elif char == "[":
            in_brackets = True
        elif char == "(" and pattern[index + 1 : index + 2] != "?":
            out.append("(?:")
            continue
        out.append(char)
    return "".join(out).encode()


_KIND_PATTERNS: dict[Kind, bytes] = {
    Kind.INTEGER: _non_capturing(INTEGER_PATTERN),
    Kind.DATE: _non_capturing(DATE_PATTERN),
    Kind.DATETIME: _non_capturing(DATETIME_PATTERN),
    Kind.DATE_OR_DATETIME: _non_capturing(DATE_OR_DATETIME_PATTERN),
    Kind.EMAIL: _non_capturing(EMAIL_PATTERN),
    Kind.PHONE: _non_capturing(PHONE_PATTERN),
}


def empty_is_null_or_blank(column: BoundColumn) -> bool:
    """An empty cell means what COPY makes of it: NULL for a nullable column, '' for a text one.

    Only such columns may be empty on the direct path (COPY straight into the table, no casts).
    """
    if column.empty_value is None:
        return column.nullable
    return column.empty_value == "" and column.kind in TEXT_KINDS and not column.nullable


def value_pattern(column: BoundColumn, *, direct: bool) -> bytes:
    """The bytes of one plainly valid field of `column` (unquoted, except free text)."""
    kind = column.kind
    may_be_empty = not column.required and (not direct or empty_is_null_or_blank(column))
    if kind is Kind.TEXT:
        if may_be_empty and column.empty_value == "":
            return rb"(?:" + _UNQUOTED + rb"*|" + _QUOTED_ANY + rb")"
        # Non-empty, or empty stored as NULL: a quoted "" would not be NULL for COPY, so only unquoted empty.
        body = rb"(?:" + _UNQUOTED + rb"+|" + _QUOTED_NONEMPTY + rb")"
        return body + rb"?" if may_be_empty else body
    if kind is Kind.ID:
        body = _UNQUOTED + rb"+"
    elif kind is Kind.POSITIVE_INTEGER:
        body = rb"(?!0+(?:,|\r?\n))" + _KIND_PATTERNS[Kind.INTEGER]
    elif kind is Kind.BOOLEAN:
        body = rb"(?:" + b"|".join(re.escape(value.encode()) for value in (*TRUE_VALUES, *FALSE_VALUES)) + rb")"
    elif kind is Kind.CHOICE:
        body = rb"(?:" + b"|".join(re.escape(choice.encode()) for choice in column.choices) + rb")"
    else:
        body = rb"(?:" + _KIND_PATTERNS[kind] + rb")"
    return rb"(?:" + body + rb")?" if may_be_empty else body


def record_pattern(spec: FileSpec, header_names: tuple[str, ...], *, direct: bool) -> re.Pattern[bytes]:
    """Any number of whole plainly valid records (each ending with a newline)."""
    fields = [value_pattern(spec.by_name[name], direct=direct) for name in header_names]
    record = b",".join(fields) + rb"\r?\n"
    return re.compile(rb"(?:" + record + rb")*")


class LineChecker:
    """Fed the data blocks in order; `valid` says whether every record so far was plainly valid."""

    def __init__(self, spec: FileSpec, header_names: tuple[str, ...], *, direct: bool) -> None:
        self._pattern = record_pattern(spec, header_names, direct=direct)
        self._carry = b""
        self.valid = True

    def feed(self, block: bytes) -> bool:
        if not self.valid:
            return False
        data = self._carry + block if self._carry else block
        end = self._pattern.match(data).end()  # type: ignore[union-attr]  # `(…)*` always matches
        self._carry = data[end:]
        if len(self._carry) > MAX_CARRY_BYTES:
            self.valid = False
            self._carry = b""
        return self.valid

    def finish(self) -> bool:
        """After the last block: a last record without its newline is checked as if it had one."""
        if self.valid and self._carry:
            rest = self._carry + b"\n"
            self.valid = self._pattern.fullmatch(rest) is not None
            self._carry = b""
        return self.valid
