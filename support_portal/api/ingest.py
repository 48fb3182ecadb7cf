"""Batches of source records pushed over the API, loaded by the import service (`records_import`) — the
same validation, upsert and ImportRun as `import_records`, not a second path.

A batch is a JSON array of objects with the columns of FORMATS.md (one file's worth, up to
`MAX_RECORDS`). It becomes that file in memory (CSV, the record order kept) and loads all-or-nothing; a
file's line N is `records[N - 2]`, so the errors read `records[3]: email: not a valid email address …`.

`idempotent_answer` keeps the answer under an `Idempotency-Key` per API key: the same key and body get
the stored answer (nothing is loaded again), the same key with another body is refused (409).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import operator
from collections.abc import Callable, Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from support_portal.api.models import ApiKey, IdempotencyRecord
from support_portal.core.audit import api_key_actor
from support_portal.core.imports.csv_files import RowError
from support_portal.core.imports.schema import FALSE_VALUES, SPECS_BY_FILE_NAME, TRUE_VALUES, FileSpec, Reason
from support_portal.core.imports.service import records_import
from support_portal.core.models import ImportRun

MAX_RECORDS = 10_000
# Errors listed in one answer (the count is exact): as many as an ImportRun stores.
ANSWER_ERRORS_CAP = 1_000

# The batch kinds the API takes, and the file each one is.
KINDS: dict[str, str] = {
    "customers": "customers.csv",
    "subscriptions": "subscriptions.csv",
    "charges": "charges.csv",
    "logins": "logins.csv",
    "submissions": "submissions.csv",
}


@dataclasses.dataclass(frozen=True)
class Answer:
    status_code: int
    body: dict[str, Any]


def _rejected(errors: list[str], count: int | None = None) -> Answer:
    return Answer(
        400,
        {
            "status": "rejected",
            "error_count": len(errors) if count is None else count,
            "errors": errors[:ANSWER_ERRORS_CAP],
        },
    )


# Values the CSV writer renders as the importer reads them (None: empty); a bool is rewritten first
# (true / false), an object or array is no column value.
_PLAIN_TYPES = frozenset({str, int, float, type(None)})


def _record_errors(index: int, record: dict[str, Any], known: Mapping[str, object], columns: str) -> list[str]:
    errors = []
    for name, value in record.items():
        if name not in known:
            errors.append(f"records[{index}]: {name}: {Reason.UNKNOWN_COLUMN % columns}")
        elif type(value) not in _PLAIN_TYPES and not isinstance(value, bool):
            errors.append(f"records[{index}]: {name}: must be a string, a number, a boolean or null")
    return errors


def _plain_columns(records: list[Any], known_names: frozenset[str]) -> set[str] | None:
    """The columns of a batch whose records are all objects of known columns with plain values, else None
    (then each record is walked to find and name what is wrong, or to rewrite booleans). Whole-batch set
    operations: a batch of 10,000 records costs a few milliseconds here instead of tens record by record."""
    if not all(type(record) is dict for record in records):
        return None
    names: set[str] = set().union(*records)
    if not names <= known_names:
        return None
    if not set(map(type, itertools.chain.from_iterable(map(dict.values, records)))) <= _PLAIN_TYPES:
        return None
    return names


def _batch_columns(spec: FileSpec, records: list[Any]) -> tuple[dict[str, None], list[str]]:
    """(the batch's columns: the required ones, then the others in the order they first appear; errors)."""
    known = spec.by_name
    known_names = frozenset(known)
    present: dict[str, None] = dict.fromkeys(spec.required_names)
    names = _plain_columns(records, known_names)
    if names is not None:
        for record in records:  # usually every column is in the first record
            present.update(dict.fromkeys(record))
            if names <= present.keys():
                break
        return present, []
    errors: list[str] = []
    for index, record in enumerate(records):
        if type(record) is not dict:
            errors.append(f"records[{index}]: must be an object of column: value")
            continue
        types = set(map(type, record.values()))
        if not (record.keys() <= known_names and types <= _PLAIN_TYPES):
            if bool in types and record.keys() <= known_names and types - {bool} <= _PLAIN_TYPES:
                record.update({k: ("true" if v else "false") for k, v in record.items() if isinstance(v, bool)})
            else:
                errors += _record_errors(index, record, known, ", ".join(spec.column_names))
                continue
        if not record.keys() <= present.keys():
            present.update(dict.fromkeys(record))
    return present, errors


def _empty_cells(spec: FileSpec, absent: list[str]) -> tuple[str, ...] | None:
    """The cells that store what the absent columns would (each column's empty value, spelled out), or
    None when one of them has no such spelling."""
    cells = []
    for name in absent:
        value = spec.by_name[name].empty_value
        if value is None or value == "":
            cells.append("")
        elif isinstance(value, bool):
            cells.append(FALSE_VALUES[0] if not value else TRUE_VALUES[0])
        elif type(value) in {int, str}:
            cells.append(str(value))
        else:
            return None
    return tuple(cells)


def _as_csv(file_name: str, records: list[Any]) -> tuple[bytes | None, list[str]]:
    """The batch as the CSV file of its kind (columns: the required ones, then the others in the order
    they first appear), or the errors that keep it from being one.

    Columns no record has are written too, each cell holding the column's empty value (a boolean's
    `false`, a text's empty string): the import stores exactly what it stores for an absent column, and a
    file with every column can be COPYed straight into its table (`postgres._load_appended`) instead of
    through staging."""
    spec = SPECS_BY_FILE_NAME[file_name]
    present, errors = _batch_columns(spec, records)
    if errors:
        return None, errors
    columns = list(present)
    absent = [name for name in spec.column_names if name not in present]
    filled = _empty_cells(spec, absent)
    tail = filled or ()
    pick = operator.itemgetter(*columns)
    count = len(columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns + absent if filled is not None else columns)
    if count == 1:
        writer.writerows([record.get(columns[0]), *tail] for record in records)
    else:
        # A record with every column is picked in one call; one without some gets empties for them.
        writer.writerows(
            (pick(record) if len(record) == count else tuple(record.get(name) for name in columns)) + tail
            for record in records
        )
    return out.getvalue().encode(), []


def _where(error: RowError) -> str:
    place = f"records[{error.line - 2}]" if error.line >= 2 else "records"
    return f"{place}: {error.column}: {error.reason}" if error.column else f"{place}: {error.reason}"


def records_ingest(*, kind: str, records: list[Any], api_key: ApiKey) -> Answer:
    """Loads one batch through `records_import` (all-or-nothing), as the API key (`api:<prefix>`)."""
    file_name = KINDS[kind]
    if not records:
        return _rejected(["records: the batch is empty"])
    if len(records) > MAX_RECORDS:
        return Answer(
            413, {"status": "rejected", "error_count": 1, "errors": [f"records: more than {MAX_RECORDS:,} records"]}
        )
    data, errors = _as_csv(file_name, records)
    if data is None:
        return _rejected(errors)
    result = records_import(
        files={file_name: io.BytesIO(data)},
        actor=api_key_actor(prefix=api_key.prefix),
        source=ImportRun.Source.API,
    )
    outcome = result.files[0]
    if not outcome.succeeded:
        return _rejected([_where(error) for error in outcome.errors], outcome.error_count)
    return Answer(
        200,
        {
            "status": "succeeded",
            "records": outcome.rows_read,
            "inserted": outcome.rows_inserted,
            "updated": outcome.rows_updated,
            "import_run": outcome.run_id,
        },
    )


def idempotent_answer(
    *, api_key: ApiKey, key: str, operation: str, body_sha256: str, compute: Callable[[], Answer]
) -> Answer:
    """`compute()`'s answer, kept under (api_key, key): a repeat with the same body gets it again without
    computing; another body (or operation) under the same key is a 409. Answers of 5xx are not kept.

    Two requests racing with one key may both compute (the load is an idempotent upsert, so nothing is
    written twice); the first stored answer is the one every later request gets."""
    stored = IdempotencyRecord.objects.filter(api_key=api_key, key=key).first()
    if stored is None:
        answer = compute()
        if answer.status_code >= 500:
            return answer
        try:
            with transaction.atomic():
                IdempotencyRecord.objects.create(
                    api_key=api_key,
                    key=key,
                    operation=operation,
                    body_sha256=body_sha256,
                    status_code=answer.status_code,
                    response=answer.body,
                    created_at=timezone.now(),
                )
            return answer
        except IntegrityError:
            stored = IdempotencyRecord.objects.get(api_key=api_key, key=key)
    if stored.body_sha256 != body_sha256 or stored.operation != operation:
        return Answer(
            409,
            {"status": "conflict", "errors": ["Idempotency-Key: already used with another request body"]},
        )
    return Answer(stored.status_code, stored.response)
