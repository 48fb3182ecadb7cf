"""The Python load path (SQLite, the zero-config first run): the same rules, applied row by row.

Meant for demo-sized files: the rows of one file are held in memory between validation and writing.
Rules come from `schema.py` (as on the PostgreSQL path) and errors come out in the same order: by line,
then by column in the declared order, then the cross-column checks.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from django.db import models

from claims.models import Program
from support_portal.core.imports.csv_files import ErrorList, FileRejected, Header, iter_records
from support_portal.core.imports.schema import (
    SUBJECT_MODELS,
    FileSpec,
    Reason,
    ValueRejected,
    convert_value,
    subject_kind_by_policy,
)

WRITE_BATCH_SIZE = 500
LOOKUP_BATCH_SIZE = 500
PROGRESS_INTERVAL_SECONDS = 3.0

Progress = Callable[[str], None]


@dataclass
class ValidRow:
    line: int
    values: dict[str, Any]  # model attname -> stored value


@dataclass(frozen=True)
class LoadCounts:
    rows_read: int
    rows_inserted: int
    rows_updated: int


def load_file(
    *, spec: FileSpec, header: Header, stream: BinaryIO, errors: ErrorList, progress: Progress | None
) -> LoadCounts:
    """Validates the whole file, then writes it; raises FileRejected with every bad row."""
    rows, rows_read = validate_file(spec=spec, header=header, stream=stream, errors=errors)
    if errors:
        raise FileRejected(errors, rows_read)
    inserted, updated = _write(spec, rows, progress)
    return LoadCounts(rows_read=rows_read, rows_inserted=inserted, rows_updated=updated)


def validate_file(*, spec: FileSpec, header: Header, stream: BinaryIO, errors: ErrorList) -> tuple[list[ValidRow], int]:
    """Every row's stored values, or the file's errors in `errors` (structure first, then values).

    `stream` is at the start of the file. Foreign keys are looked up in the database in batches.
    """
    positions = {name: index for index, name in enumerate(header.names)}
    records = list(iter_records(stream, len(header.names), errors))
    rows_read = len(records) + errors.count
    if errors:
        # As on PostgreSQL, where COPY stops on a broken structure: only those lines are reported.
        return [], rows_read
    found: list[tuple[int, int, str, str]] = []  # (line, order, column, reason)
    rows: list[ValidRow] = []
    bad_columns: list[set[str]] = []
    for line, fields in records:
        values: dict[str, Any] = {}
        bad: set[str] = set()
        for order, column in enumerate(spec.bound_columns):
            text = fields[positions[column.name]] if column.name in positions else ""
            try:
                values[column.attname] = convert_value(column, text)
            except ValueRejected as rejected:
                bad.add(column.name)
                found.append((line, order, column.name, rejected.reason))
        for check_order, check in enumerate(spec.row_checks, start=len(spec.columns)):
            earlier, later = spec.by_name[check.earlier], spec.by_name[check.later]
            if bad.isdisjoint({check.earlier, check.later}) and values[later.attname] <= values[earlier.attname]:
                found.append((line, check_order, check.later, check.reason))
        rows.append(ValidRow(line, values))
        bad_columns.append(bad)
    found.extend(_duplicate_ids(spec, rows, bad_columns))
    found.extend(_unknown_references(spec, rows, bad_columns))
    for line, _order, column_name, reason in sorted(found, key=lambda item: (item[0], item[1])):
        errors.add(line, column_name, reason)
    return rows, rows_read


def _duplicate_ids(
    spec: FileSpec, rows: list[ValidRow], bad_columns: list[set[str]]
) -> Iterable[tuple[int, int, str, str]]:
    id_column = spec.id_column
    if id_column is None:
        return []
    well_formed = [
        (row.line, row.values[id_column.attname])
        for row, bad in zip(rows, bad_columns, strict=True)
        if id_column.name not in bad
    ]
    counts = Counter(value for _line, value in well_formed)
    first_lines: dict[str, int] = {}
    for line, value in well_formed:
        first_lines.setdefault(value, line)
    return [
        (line, 0, id_column.name, Reason.DUPLICATE_ID % (first_lines[value], counts[value]))
        for line, value in well_formed
        if counts[value] > 1
    ]


def _existing(model: type[models.Model], field_name: str, values: set[Any]) -> set[Any]:
    wanted = sorted(values)
    existing: set[Any] = set()
    for start in range(0, len(wanted), LOOKUP_BATCH_SIZE):
        chunk = wanted[start : start + LOOKUP_BATCH_SIZE]
        existing.update(
            model._default_manager.filter(**{f"{field_name}__in": chunk}).values_list(field_name, flat=True)
        )
    return existing


def _unknown_references(
    spec: FileSpec, rows: list[ValidRow], bad_columns: list[set[str]]
) -> Iterable[tuple[int, int, str, str]]:
    found: list[tuple[int, int, str, str]] = []
    for order, column in enumerate(spec.bound_columns):
        model = column.referenced_model
        if model is None:
            continue
        target_field = column.field.target_field.name  # type: ignore[attr-defined]
        usable = [
            (row, row.values[column.attname])
            for row, bad in zip(rows, bad_columns, strict=True)
            if column.name not in bad and row.values[column.attname] not in (None, "")
        ]
        known = _existing(model, target_field, {value for _row, value in usable})
        reason = Reason.UNKNOWN_REFERENCE % column.referenced_label
        found.extend((row.line, order, column.name, reason) for row, value in usable if value not in known)
    for order, column in enumerate(spec.bound_columns):
        if column.column.subject_of is None:
            continue
        program_column = spec.by_name[column.column.subject_of]
        kinds = subject_kind_by_policy()
        program_policies = dict(
            Program.objects.filter(
                slug__in={row.values.get(program_column.attname) for row in rows} - {None}
            ).values_list("slug", "policy")
        )
        subjects: dict[str, list[tuple[ValidRow, str]]] = {kind: [] for kind in SUBJECT_MODELS}
        for row, bad in zip(rows, bad_columns, strict=True):
            policy = program_policies.get(str(row.values.get(program_column.attname)))
            if column.name in bad or program_column.name in bad or policy is None or policy not in kinds:
                continue
            subjects[kinds[policy]].append((row, row.values[column.attname]))
        for kind, wanted in subjects.items():
            model = SUBJECT_MODELS[kind]
            pk = model._meta.pk
            assert pk is not None
            known = _existing(model, pk.name, {value for _row, value in wanted})
            reason = Reason.UNKNOWN_SUBJECT % (kind, kind)
            found.extend((row.line, order, column.name, reason) for row, value in wanted if value not in known)
    return found


# --- Writing ------------------------------------------------------------------------------------


def _write(spec: FileSpec, rows: list[ValidRow], progress: Progress | None) -> tuple[int, int]:
    inserted = updated = 0
    started = last = time.monotonic()
    for start in range(0, len(rows), WRITE_BATCH_SIZE):
        batch = rows[start : start + WRITE_BATCH_SIZE]
        if spec.id_column is None:
            inserted += _insert_missing_natural_keys(spec, batch)
        else:
            new, changed = _insert_or_update_by_id(spec, batch)
            inserted += new
            updated += changed
        now = time.monotonic()
        if progress is not None and now - last >= PROGRESS_INTERVAL_SECONDS:
            last = now
            progress(f"{spec.file_name}: {start + len(batch):,} / {len(rows):,} rows ({now - started:.0f} s)")
    return inserted, updated


def _insert_or_update_by_id(spec: FileSpec, batch: list[ValidRow]) -> tuple[int, int]:
    """Inserts new ids, updates rows whose values differ, leaves identical rows alone."""
    model = spec.model
    id_column = spec.id_column
    assert id_column is not None
    attnames = [column.attname for column in spec.bound_columns]
    by_id = {row.values[id_column.attname]: row.values for row in batch}
    stored = {
        values[id_column.attname]: values
        for values in model._default_manager.filter(pk__in=list(by_id)).values(*attnames)
    }
    new = [model(**values) for key, values in by_id.items() if key not in stored]
    changed = [model(**values) for key, values in by_id.items() if key in stored and stored[key] != values]
    model._default_manager.bulk_create(new)
    if changed:
        update_fields = [attname for attname in attnames if attname != id_column.attname]
        model._default_manager.bulk_update(changed, update_fields)
    return len(new), len(changed)


def _insert_missing_natural_keys(spec: FileSpec, batch: list[ValidRow]) -> int:
    """Logins and usage events: the row is its key; rows already stored (or repeated) are skipped."""
    model = spec.model
    attnames = [column.attname for column in spec.bound_columns]

    def key(values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple("" if values[name] is None else values[name] for name in attnames)

    customers = {row.values["customer_id"] for row in batch}
    stored = {key(values) for values in model._default_manager.filter(customer_id__in=customers).values(*attnames)}
    new: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in batch:
        row_key = key(row.values)
        if row_key not in stored:
            new.setdefault(row_key, row.values)
    model._default_manager.bulk_create([model(**values) for values in new.values()])
    return len(new)
