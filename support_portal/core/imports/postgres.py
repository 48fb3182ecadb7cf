"""The PostgreSQL load path: optimistic fast paths, and set-based diagnostics when they fail.

Per file, in the file's transaction (settings in `_configure`), the data bytes stream in blocks to COPY
while `line_check` matches them against the format patterns in this (otherwise idle) Python process:

1. Empty table, every column present, nothing computed (direct path): COPY straight into the table with
   its foreign keys and secondary indexes set aside; rebuild the indexes by sorting and re-add the keys
   NOT VALID + VALIDATE (one join). Anything wrong (bytes not plainly valid, a duplicate id, an unknown
   reference, a CHECK) undoes it all (savepoint) and the file goes through staging from the start.
   Into a table that holds rows, a small file (or one far smaller than the table) is tried the same way
   as an append (`_load_appended`): COPY into the table with everything kept; a stored id sends it
   through staging.
2. Otherwise COPY into a TEMP table of text columns with a line number. If the bytes were plainly valid,
   one `INSERT … SELECT … ON CONFLICT` writes the rows that are new or differ (a hash anti-join leaves
   identical rows out, so they are never locked, rewritten or audited), its casts, the column types and
   the table's constraints refusing what bytes cannot show; any failure rolls back to a savepoint.
3. Only then (or when the bytes were not plainly valid) the diagnostic query lists every (line, column,
   reason) problem (formats by pattern, foreign keys by anti-join, duplicate ids by GROUP BY); with none,
   the same INSERT writes the rows. Counts of inserts and updates are computed on the server.

Memory stays bounded by the block size and the error cap, whatever the file size. All SQL is built from
the schema declaration's fixed identifiers; every value is a named parameter.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pgtrigger
import psycopg
from django.db import DatabaseError, connection, models, transaction
from pghistory.trigger import Event as HistoryEvent

from support_portal.core.imports.csv_files import BLOCK_SIZE, ErrorList, FileRejected, Header, ReadableBytes
from support_portal.core.imports.line_check import LineChecker
from support_portal.core.imports.schema import (
    DATE_OR_DATETIME_PATTERN,
    DATE_PATTERN,
    DATETIME_PATTERN,
    EMAIL_PATTERN,
    FALSE_VALUES,
    INTEGER_PATTERN,
    MAX_INTEGER,
    PHONE_PATTERN,
    SOURCE_TIME_ZONE_NAME,
    SUBJECT_MODELS,
    TEXT_KINDS,
    TRUE_VALUES,
    BoundColumn,
    FileSpec,
    Kind,
    Reason,
    subject_kind_by_policy,
)
from support_portal.core.models import SetAsideForeignKey

STAGING_TABLE = "import_records_staging"
# Per file transaction (SET LOCAL): hash joins and aggregates of a whole file in memory, indexes sorted
# in memory when they are rebuilt after a first load.
WORK_MEM = "256MB"
MAINTENANCE_WORK_MEM = "1GB"
PROGRESS_INTERVAL_SECONDS = 3.0
# Files below this size load in well under a second: no progress lines for them.
PROGRESS_MIN_BYTES = 16 * BLOCK_SIZE
# A problem string per bad row: "column<US>reason<RS>column<US>reason…" (unit/record separators).
_UNIT_SEPARATOR = "\x1f"
_RECORD_SEPARATOR = "\x1e"
# COPY's end-of-data marker: a data line of just `\.` would silently end the load early.
_END_MARKERS = (b"\n\\.\n", b"\n\\.\r\n")

Progress = Callable[[str], None]


class CopyFailed(Exception):
    """COPY refused the file (field count, quoting, encoding): the caller lists the bad lines in Python."""


@dataclass(frozen=True)
class LoadCounts:
    rows_read: int
    rows_inserted: int
    rows_updated: int


def q(identifier: str) -> str:
    return str(connection.ops.quote_name(identifier))


class Params:
    """Named query parameters: `add(value)` returns the placeholder, so SQL can be composed freely."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


def load_file(
    *,
    spec: FileSpec,
    header: Header,
    stream: ReadableBytes,
    total_bytes: int,
    errors: ErrorList,
    progress: Progress | None,
    rewind: Callable[[], tuple[Header, ReadableBytes]] | None = None,
    await_references: Callable[[], None] | None = None,
) -> LoadCounts:
    """Loads one file whose header is valid; raises FileRejected (with every bad row) or CopyFailed.

    Must run inside the file's transaction (the caller's `transaction.atomic()`). `rewind` gives the file
    again from its start (header read): the direct path, when it gives up, starts over through staging.
    `await_references` returns once the files this one may reference are committed (a parallel import
    loads a file's own rows beside them and waits only before anything reads what they hold); its foreign
    keys set aside by that import (`set_aside_cross_file_keys`) are re-added, validated, in this
    transaction.
    """
    # Given for a file of a parallel import only: other files load beside it.
    cores_shared = await_references is not None
    await_references = await_references or _no_wait
    reporter = _ProgressReporter(spec.file_name, total_bytes, progress)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('TimeZone')")
        previous_time_zone = cursor.fetchone()[0]
        _configure(cursor, cores_shared=cores_shared)
        target_empty = _is_empty(cursor, spec)
        counts: LoadCounts | None = None
        if (
            rewind is not None
            and _direct_eligible(cursor, spec, header)
            and (target_empty or _appends_cheaply(cursor, spec, total_bytes=total_bytes))
        ):
            load = _load_direct if target_empty else _load_appended
            counts = load(cursor, spec, header, stream, reporter, await_references)
            if counts is None:
                reporter.phase("not plainly new and valid; loading through staging")
                header, stream = rewind()
        if counts is None:
            counts = _load_staged(
                cursor,
                spec,
                header,
                stream,
                reporter,
                errors,
                target_empty=target_empty,
                await_references=await_references,
            )
        await_references()
        _restore_set_aside_keys(cursor, spec.table)
        # Only this file's statements run in JST (a dry run shares its transaction with the ImportRun writes).
        cursor.execute("SELECT set_config('TimeZone', %s, true)", [previous_time_zone])
    return counts


def _no_wait() -> None:
    return None


def tables_locked_by_load(spec: FileSpec, *, loaded_tables: frozenset[str] = frozenset()) -> frozenset[str]:
    """The tables a first load of `spec` may lock exclusively until it commits.

    Its own table; the tables its foreign keys reference (dropping a foreign key takes an ACCESS
    EXCLUSIVE lock on the referenced table too); the tables whose foreign keys reference it (set aside
    with its keys); and the tables its rows are checked against, unless they are `loaded_tables` (files
    of the same import: it reads them only after their loads commit). Keys already set aside by the
    import are no longer in the catalog and lock nothing. Two loads whose sets meet would only queue
    behind each other's locks, so they are not run at the same time (`records_import`'s `jobs`).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' "
            "UNION SELECT conrelid::regclass::text FROM pg_constraint WHERE confrelid = %s::regclass AND contype = 'f'",
            [spec.table, spec.table],
        )
        tables = {str(name) for (name,) in cursor.fetchall()}
    tables.add(spec.table)
    tables.update(
        str(model._meta.db_table)
        for column in spec.columns
        if column.subject_of is not None
        for model in SUBJECT_MODELS.values()
        if model._meta.db_table not in loaded_tables
    )
    return frozenset(tables)


# --- Keys between the files of one parallel import ------------------------------------------------


def set_aside_cross_file_keys(tables: frozenset[str]) -> int:
    """Drops the foreign keys from each empty table of `tables` to another of them, in the journal.

    One short transaction, committed: from then on, loads of these tables no longer lock each other's
    tables, so they can run side by side; each load re-adds its own keys, validated, before it commits
    (`_restore_set_aside_keys`). Returns how many keys were set aside.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class r ON r.oid = k.confrelid "
            "WHERE k.contype = 'f' AND k.conrelid <> k.confrelid "
            "AND c.relname = ANY(%s) AND r.relname = ANY(%s) AND c.relnamespace = 'public'::regnamespace "
            "ORDER BY 1, 2",
            [sorted(tables), sorted(tables)],
        )
        keys = [(str(table), str(name), str(definition)) for table, name, definition in cursor.fetchall()]
        empty: dict[str, bool] = {}
        set_aside = 0
        for table, name, definition in keys:
            if table not in empty:
                cursor.execute(f"SELECT NOT EXISTS (SELECT FROM {q(table)})")
                empty[table] = bool(cursor.fetchone()[0])
            if not empty[table]:
                continue
            SetAsideForeignKey.objects.create(table_name=table, constraint_name=name, definition=definition)
            cursor.execute(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}")
            set_aside += 1
    return set_aside


def restore_set_aside_keys() -> int:
    """Re-adds, validated, every key still in the journal (a rejected file's, a killed import's).

    Each table in its own transaction; the table was empty when its keys were set aside and only a load
    that re-adds them in its own transaction writes into it, so they validate. Returns how many.
    """
    restored = 0
    tables = sorted(set(SetAsideForeignKey.objects.values_list("table_name", flat=True)))
    for table in tables:
        with transaction.atomic(), connection.cursor() as cursor:
            restored += _restore_set_aside_keys(cursor, table)
    return restored


def _take_set_aside_keys(table: str) -> tuple[tuple[str, str], ...]:
    """This table's keys in the journal, removed from it (in the caller's transaction): the caller re-adds them."""
    rows = SetAsideForeignKey.objects.select_for_update().filter(table_name=table).order_by("constraint_name")
    keys = tuple((row.constraint_name, row.definition) for row in rows)
    if keys:
        SetAsideForeignKey.objects.filter(table_name=table).delete()
    return keys


def _restore_set_aside_keys(cursor: Any, table: str) -> int:
    keys = _take_set_aside_keys(table)
    for name, definition in keys:
        cursor.execute(f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(name)} {definition} NOT VALID")
        cursor.execute(f"ALTER TABLE {q(table)} VALIDATE CONSTRAINT {q(name)}")
    return len(keys)


def _configure(cursor: Any, *, cores_shared: bool) -> None:
    """Settings for this file's transaction only (SET LOCAL ends with it).

    synchronous_commit = off: a crash in the moment after COMMIT can lose this import's commit (never a
    partial file, never older data); the import is all-or-nothing per file and re-runnable, and its
    ImportRun is lost with it, so nothing claims a load that is not there.
    """
    # These are single-pass queries over fresh data: JIT compilation costs more than it saves.
    cursor.execute("SET LOCAL jit = off")
    cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    cursor.execute(f"SET LOCAL maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
    if cores_shared:
        # Other files load meanwhile and keep the cores busy: parallel index builds would only add their
        # coordination (measured on 2 cores, 1M set: 47.9 -> 42.3 CPU-seconds, 26.6 -> 22.3 s).
        cursor.execute("SET LOCAL max_parallel_maintenance_workers = 0")
    cursor.execute("SET LOCAL synchronous_commit = off")
    # Date-times without an offset are JST: PostgreSQL's own input function then reads every allowed form.
    cursor.execute(
        "SELECT set_config('TimeZone', %s, true), set_config('DateStyle', 'ISO, YMD', true)", [SOURCE_TIME_ZONE_NAME]
    )


def _is_empty(cursor: Any, spec: FileSpec) -> bool:
    cursor.execute(f"SELECT NOT EXISTS (SELECT FROM {q(spec.table)})")
    return bool(cursor.fetchone()[0])


class _NotPlain(Exception):
    """The optimistic path cannot vouch for the file: undo it and take the careful one."""


# --- Direct path: COPY straight into an empty table -----------------------------------------------


def _direct_eligible(cursor: Any, spec: FileSpec, header: Header) -> bool:
    """COPY can store this file as the staged path would: every column present, nothing computed.

    Each row check must be a CHECK constraint of the table (it then holds for the stored rows).
    """
    if any(column.column.subject_of is not None for column in spec.bound_columns):
        return False
    if set(header.names) != set(spec.column_names):
        return False
    wanted = {check.enforced_by for check in spec.row_checks}
    if None in wanted:
        return False
    if wanted:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'c' AND conname = ANY(%s)",
            [spec.table, sorted(name for name in wanted if name is not None)],
        )
        if cursor.fetchone()[0] != len(wanted):
            return False
    return True


def _load_direct(  # noqa: PLR0917 - private helper, called once
    cursor: Any,
    spec: FileSpec,
    header: Header,
    stream: ReadableBytes,
    reporter: _ProgressReporter,
    await_references: Callable[[], None],
) -> LoadCounts | None:
    """First load into an empty table: COPY into it with its keys, indexes and foreign keys set aside.

    The bytes are checked on the way (`line_check`): every value plainly valid, so PostgreSQL's input
    functions store exactly what the staged casts would. What bytes cannot show fails a statement here:
    an unknown reference fails VALIDATE CONSTRAINT, a duplicate id the primary key (or a rebuilt unique
    index), a bad day or too large a number the input function, a too long id its varchar type, a row
    check its CHECK constraint. Any failure undoes everything (savepoint) and returns None.
    """
    try:
        with transaction.atomic():
            restore = _set_aside_indexes_and_keys(cursor, spec, with_keys=True)
            rows = _copy_into_table(cursor, spec, header, stream, reporter)
            reporter.phase(f"{rows:,} rows copied; building indexes and checking references")
            _restore_indexes_and_keys(cursor, restore, await_references)
    except (_NotPlain, CopyFailed, psycopg.Error, DatabaseError):
        return None
    return LoadCounts(rows_read=rows, rows_inserted=rows, rows_updated=0)


def _copy_into_table(
    cursor: Any, spec: FileSpec, header: Header, stream: ReadableBytes, reporter: _ProgressReporter
) -> int:
    """COPYs the file's rows straight into the table (the columns as the header orders them), the bytes
    line-checked on the way; raises _NotPlain at the first value that is not plainly valid."""
    columns = [spec.by_name[name] for name in header.names]
    column_list = ", ".join(q(column.db_column) for column in columns)
    not_null_text = [q(column.db_column) for column in columns if column.kind in TEXT_KINDS and not column.nullable]
    options = "FORMAT csv, HEADER false" + (f", FORCE_NOT_NULL ({', '.join(not_null_text)})" if not_null_text else "")
    return _copy_rows(
        cursor.cursor,
        f"COPY {q(spec.table)} ({column_list}) FROM STDIN ({options})",
        header,
        stream,
        reporter,
        LineChecker(spec, header.names, direct=True),
        stop_when_not_plain=True,
    )


# A file up to this size (an API batch of 10,000 records is 1–2 MB), or this many times smaller than its
# table, is first tried as an append: should it hold a stored id after all, at most this much was sent
# for nothing before it goes through staging.
APPEND_TRIAL_MAX_BYTES = 16 * 1024 * 1024


def _appends_cheaply(cursor: Any, spec: FileSpec, *, total_bytes: int) -> bool:
    if not _id_is_unique(spec):
        return False  # without a unique id nothing would refuse a row already stored
    if total_bytes <= APPEND_TRIAL_MAX_BYTES:
        return True
    cursor.execute("SELECT pg_relation_size(%s::regclass)", [spec.table])
    return PROBE_RATIO * total_bytes < int(cursor.fetchone()[0])


def _load_appended(  # noqa: PLR0917 - private helper, called once
    cursor: Any,
    spec: FileSpec,
    header: Header,
    stream: ReadableBytes,
    reporter: _ProgressReporter,
    await_references: Callable[[], None],
) -> LoadCounts | None:
    """A file of new rows into a table that holds others (an API batch, a day's new charges): COPY straight
    into the table, its keys, indexes, foreign keys and triggers all kept, or undo it and return None.

    Staging would cost a second copy of every row and a join to learn that no row is stored yet. Here the
    bytes are checked as for the direct path, and the table refuses the rest in the COPY itself: a stored
    or repeated id its primary key (the file then goes through staging, which merges it), an unknown
    reference its foreign keys (checked at once, not at commit), a row check its CHECK constraint. The
    audit insert triggers skip the rows (the ImportRun records them), as for the staged INSERT.
    """
    await_references()  # the foreign keys are checked as the rows arrive
    try:
        with (
            transaction.atomic(),
            _foreign_keys_checked_at_once(cursor, spec),
            _audit_inserts_skipped(cursor, spec.model),
        ):
            rows = _copy_into_table(cursor, spec, header, stream, reporter)
    except (_NotPlain, CopyFailed, psycopg.Error, DatabaseError):
        return None
    return LoadCounts(rows_read=rows, rows_inserted=rows, rows_updated=0)


@dataclass(frozen=True)
class _SetAside:
    table: str
    keys: tuple[tuple[str, str], ...] = ()  # primary key / unique constraints (name, definition)
    indexes: tuple[str, ...] = ()  # CREATE INDEX statements
    foreign_keys: tuple[tuple[str, str], ...] = ()  # this table's (name, definition)
    # Other tables' foreign keys that reference `keys` (table, name, definition): dropped with them.
    referencing_keys: tuple[tuple[str, str, str], ...] = ()
    disabled_triggers: tuple[str, ...] = ()  # audit insert triggers (pgids), off while the table fills


def _set_aside_indexes_and_keys(cursor: Any, spec: FileSpec, *, with_keys: bool) -> _SetAside:
    """Drops the table's foreign keys and the indexes no constraint uses, returning how to recreate them.

    Building an index once by sorting is far cheaper than growing it row by row, and one set-based
    VALIDATE is far cheaper than a deferred trigger per row. With `with_keys` (a plain load into the empty
    table: nothing is decided by a conflict), the primary key and unique constraints go too, with the
    other tables' foreign keys that reference them; re-adding them then refuses a repeated id just as the
    kept key would have (measured on 8.25 M charges: COPY 11.1 s with the key, 7.0 s + 1.3 s without it
    and adding it afterwards). Otherwise they stay: upserts are decided by them. Names and definitions are
    kept exactly. The audit insert triggers are disabled meanwhile: an import's creates are recorded by its
    ImportRun (docs/audit.md).
    """
    table = q(spec.table)
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f' ORDER BY conname",
        [spec.table],
    )
    foreign_keys = tuple((str(name), str(definition)) for name, definition in cursor.fetchall())
    # Keys a parallel import already set aside are re-added with the others (and left out of the DROPs).
    journaled = _take_set_aside_keys(spec.table)
    keys: tuple[tuple[str, str], ...] = ()
    referencing_keys: tuple[tuple[str, str, str], ...] = ()
    if with_keys:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype IN ('p', 'u') ORDER BY contype, conname",
            [spec.table],
        )
        keys = tuple((str(name), str(definition)) for name, definition in cursor.fetchall())
        cursor.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE confrelid = %s::regclass AND conrelid <> confrelid AND contype = 'f' ORDER BY 1, 2",
            [spec.table],
        )
        referencing_keys = tuple((str(t), str(name), str(definition)) for t, name, definition in cursor.fetchall())
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
        "WHERE indrelid = %s::regclass "
        "AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
        "ORDER BY 1",
        [spec.table],
    )
    indexes = cursor.fetchall()
    for other_table, name, _definition in referencing_keys:
        cursor.execute(f"ALTER TABLE {other_table} DROP CONSTRAINT {q(name)}")
    for name, _definition in foreign_keys:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {q(name)}")
    for name, _definition in keys:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {q(name)}")
    if indexes:
        cursor.execute(f"DROP INDEX {', '.join(str(name) for name, _definition in indexes)}")
    # The table is empty and locked (ACCESS EXCLUSIVE, by the DROPs above) until this file commits, so its
    # audit insert triggers can be switched off outright rather than merely told to skip each row
    # (`_audit_inserts_skipped`), which still calls them per row. Transactional: a failure re-enables them.
    triggers = insert_audit_trigger_ids(spec.model)
    for pgid in triggers:
        cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {q(pgid)}")
    return _SetAside(
        table=table,
        keys=keys,
        indexes=tuple(str(definition) for _name, definition in indexes),
        foreign_keys=foreign_keys + journaled,
        referencing_keys=referencing_keys,
        disabled_triggers=triggers,
    )


def _restore_indexes_and_keys(
    cursor: Any, set_aside: _SetAside, await_references: Callable[[], None] = _no_wait
) -> None:
    """Re-creates what `_set_aside_indexes_and_keys` dropped; a repeated id or unknown reference fails here.

    The table's own keys and indexes first; the foreign keys once the referenced files are committed.
    """
    table = set_aside.table
    for pgid in set_aside.disabled_triggers:
        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {q(pgid)}")
    for name, definition in set_aside.keys:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {q(name)} {definition}")
    for definition in set_aside.indexes:
        cursor.execute(definition)
    await_references()
    for name, definition in set_aside.foreign_keys:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {q(name)} {definition} NOT VALID")
    for name, _definition in set_aside.foreign_keys:
        cursor.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {q(name)}")
    # The referencing tables' rows were not touched; re-checked all the same (cheap: on a first load
    # into an empty table they hold no reference to it).
    for other_table, name, definition in set_aside.referencing_keys:
        cursor.execute(f"ALTER TABLE {other_table} ADD CONSTRAINT {q(name)} {definition} NOT VALID")
        cursor.execute(f"ALTER TABLE {other_table} VALIDATE CONSTRAINT {q(name)}")


# --- Staged path ----------------------------------------------------------------------------------


def _load_staged(  # noqa: PLR0917 - private helper, called once
    cursor: Any,
    spec: FileSpec,
    header: Header,
    stream: ReadableBytes,
    reporter: _ProgressReporter,
    errors: ErrorList,
    *,
    target_empty: bool,
    await_references: Callable[[], None],
) -> LoadCounts:
    cursor.execute(f"DROP TABLE IF EXISTS {q(STAGING_TABLE)}")
    columns_sql = ", ".join(f"{q(name)} text NOT NULL DEFAULT ''" for name in spec.column_names)
    cursor.execute(
        f"CREATE TEMP TABLE {q(STAGING_TABLE)} "
        f"(line bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 2), {columns_sql})"
    )
    column_list = ", ".join(q(name) for name in header.names)
    checker = LineChecker(spec, header.names, direct=False)
    rows_read = _copy_rows(
        cursor.cursor,
        f"COPY {q(STAGING_TABLE)} ({column_list}) FROM STDIN "
        f"(FORMAT csv, HEADER false, FORCE_NOT_NULL ({column_list}))",
        header,
        stream,
        reporter,
        checker,
        stop_when_not_plain=False,
    )
    counts: tuple[int, int] | None = None
    if checker.valid:
        reporter.phase(f"{rows_read:,} rows staged; writing")
        counts = _try_fast_write(
            cursor, spec, target_empty=target_empty, staged_rows=rows_read, await_references=await_references
        )
    if counts is None:
        # The diagnostics read the referenced tables (references, subjects).
        await_references()
        reporter.phase(f"{rows_read:,} rows staged; validating")
        cursor.execute(f"ANALYZE {q(STAGING_TABLE)}")
        _collect_problems(cursor, spec, errors)
        if errors:
            raise FileRejected(errors, rows_read)
        reporter.phase("writing")
        counts = _upsert(cursor, spec, staged_rows=rows_read)
    cursor.execute(f"DROP TABLE {q(STAGING_TABLE)}")
    return LoadCounts(rows_read=rows_read, rows_inserted=counts[0], rows_updated=counts[1])


def _try_fast_write(
    cursor: Any, spec: FileSpec, *, target_empty: bool, staged_rows: int, await_references: Callable[[], None]
) -> tuple[int, int] | None:
    """Writes a plainly valid staged file in one statement, or undoes it and returns None.

    The bytes matched the formats; the rest fails a statement here: casts (a day the month lacks, too
    large a number), varchar lengths, foreign keys (checked at once, not at commit), CHECK constraints,
    duplicate ids (checked first: an id repeated with unchanged values would slip past the conflict).
    """
    if any(check.enforced_by is None for check in spec.row_checks):
        return None
    # Into an empty table a plain INSERT is written (no conflict to decide), and its primary key or
    # unique constraint refuses a repeated id by itself: no separate duplicate check.
    plain_insert = target_empty and _id_is_unique(spec)
    try:
        with transaction.atomic():
            if spec.id_column is not None and not plain_insert:
                cursor.execute(f"SELECT EXISTS ({_duplicate_ids_query(spec.id_column)})")
                if cursor.fetchone()[0]:
                    raise _NotPlain

            def check_references() -> None:
                await_references()
                if _has_unknown_subjects(cursor, spec):
                    raise _NotPlain

            if target_empty:
                # Rows and indexes first: a parallel import's referenced files may still be loading.
                restore = _set_aside_indexes_and_keys(cursor, spec, with_keys=plain_insert)
                counts = _insert_all(cursor, spec) if plain_insert else _upsert(cursor, spec, staged_rows=staged_rows)
                _restore_indexes_and_keys(cursor, restore, check_references)
            else:
                check_references()
                with _foreign_keys_checked_at_once(cursor, spec):
                    counts = _upsert(cursor, spec, staged_rows=staged_rows)
    except (_NotPlain, psycopg.Error, DatabaseError):
        return None
    return counts


@contextmanager
def _foreign_keys_checked_at_once(cursor: Any, spec: FileSpec) -> Iterator[None]:
    """The table's deferrable foreign keys checked by each statement inside, not at commit, so a bad
    reference fails the statement (and its savepoint) instead of the whole transaction. Set back only on
    success: a failure rolls back to the savepoint around it, which undoes SET CONSTRAINTS with it."""
    cursor.execute(
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f' AND condeferrable",
        [spec.table],
    )
    keys = ", ".join(q(str(name)) for (name,) in cursor.fetchall())
    if keys:
        cursor.execute(f"SET CONSTRAINTS {keys} IMMEDIATE")
    yield
    if keys:
        cursor.execute(f"SET CONSTRAINTS {keys} DEFERRED")


def _has_unknown_subjects(cursor: Any, spec: FileSpec) -> bool:
    """Submissions' subjects are no foreign key: checked on their own (the rest is left to constraints)."""
    for column in spec.bound_columns:
        if column.column.subject_of is None:
            continue
        p = Params()
        joins: list[str] = []
        program = spec.by_name[column.column.subject_of]
        program_index = spec.column_names.index(program.name)
        joins.append(
            f"LEFT JOIN {q(program.referenced_model._meta.db_table)} ref{program_index} "  # type: ignore[union-attr]
            f"ON ref{program_index}.{q(program.referenced_db_column or '')} = s.{q(program.name)}"
        )
        condition, _reason = _subject_check(spec, column, f"s.{q(column.name)}", p, joins)
        cursor.execute(
            f"SELECT EXISTS (SELECT FROM {q(STAGING_TABLE)} s {' '.join(joins)} WHERE {condition})", p.values
        )
        if cursor.fetchone()[0]:
            return True
    return False


def _copy_rows(  # noqa: PLR0917 - private helper
    raw_cursor: Any,
    copy_sql: str,
    header: Header,
    stream: ReadableBytes,
    reporter: _ProgressReporter,
    checker: LineChecker,
    *,
    stop_when_not_plain: bool,
) -> int:
    saw_end_marker = False
    tail = b"\n"  # the header's newline precedes the data
    sent = 0
    try:
        with raw_cursor.copy(copy_sql) as copy:
            block = header.rest
            while block:
                # Checked with the previous block's tail so a marker split across two blocks is seen.
                if any(marker in tail + block for marker in _END_MARKERS):
                    saw_end_marker = True
                if not checker.feed(block) and stop_when_not_plain:
                    raise _NotPlain
                copy.write(block)
                sent += len(block)
                reporter.copied(sent)
                tail = block[-4:]
                block = stream.read(BLOCK_SIZE)
            if tail.endswith((b"\n\\.", b"\n\\.\r")):
                saw_end_marker = True
            if not checker.finish() and stop_when_not_plain:
                raise _NotPlain
    except psycopg.Error as exc:
        raise CopyFailed(str(exc).strip()) from exc
    if saw_end_marker:
        raise CopyFailed("a line consisting of \\. ends COPY early")
    return int(raw_cursor.rowcount)


# --- Validation ---------------------------------------------------------------------------------


def _collect_problems(cursor: Any, spec: FileSpec, errors: ErrorList) -> None:
    has_duplicates = False
    if spec.id_column is not None:
        # Checked first on its own: duplicates are rare, and without them the main query needs no join.
        cursor.execute(f"SELECT EXISTS ({_duplicate_ids_query(spec.id_column)})")
        has_duplicates = bool(cursor.fetchone()[0])
    sql, params = validation_query(spec, limit=errors.cap, has_duplicates=has_duplicates)
    cursor.execute(sql, params)
    total = 0
    for line, problems, problem_total in cursor.fetchall():
        total = int(problem_total)
        for problem in problems.split(_RECORD_SEPARATOR):
            column, _sep, reason = problem.partition(_UNIT_SEPARATOR)
            errors.add(int(line), column, reason)
    # Rows past the cap were not fetched: count their problems all the same.
    errors.count += max(0, total - errors.count)


def _duplicate_ids_query(id_column: BoundColumn) -> str:
    """Ids on more than one line, with their first line; a missing or too long id is reported as that."""
    name = q(id_column.name)
    return (
        f"SELECT {name} AS id, min(line) AS first_line, count(*) AS lines FROM {q(STAGING_TABLE)} "
        f"WHERE {name} <> '' AND char_length({name}) <= {_max_length(id_column)} "
        "GROUP BY 1 HAVING count(*) > 1"
    )


def validation_query(spec: FileSpec, *, limit: int, has_duplicates: bool = True) -> tuple[str, dict[str, Any]]:
    """One query: (line, problems, total problem count) for each bad row, in line order."""
    p = Params()
    joins: list[str] = []
    ctes: list[str] = []
    expressions: list[str] = []
    id_column = spec.id_column
    check_duplicates = id_column is not None and has_duplicates
    if id_column is not None and check_duplicates:
        ctes.append(f"duplicate_ids AS MATERIALIZED ({_duplicate_ids_query(id_column)})")
        joins.append(f"LEFT JOIN duplicate_ids dup ON dup.id = s.{q(id_column.name)}")
    for index, column in enumerate(spec.bound_columns):
        ref = f"s.{q(column.name)}"
        whens = _format_checks(column, ref, p)
        if check_duplicates and id_column is not None and column.name == id_column.name:
            whens.append(("dup.id IS NOT NULL", f"format({p.add(Reason.DUPLICATE_ID)}, dup.first_line, dup.lines)"))
        if column.referenced_model is not None:
            alias = f"ref{index}"
            joins.append(
                f"LEFT JOIN {q(column.referenced_model._meta.db_table)} {alias} "
                f"ON {alias}.{q(column.referenced_db_column or '')} = {ref}"
            )
            reason = Reason.UNKNOWN_REFERENCE % column.referenced_label
            whens.append((f"{alias}.{q(column.referenced_db_column or '')} IS NULL", p.add(reason)))
        if column.column.subject_of is not None:
            whens.append(_subject_check(spec, column, ref, p, joins))
        expressions.append(_case(whens))
    row_check_expressions: list[tuple[str, str]] = []
    for check in spec.row_checks:
        earlier = spec.column_names.index(check.earlier)
        later = spec.column_names.index(check.later)
        row_check_expressions.append(
            (
                check.later,
                f"CASE WHEN e{earlier} IS NULL AND e{later} IS NULL "
                f'AND raw_{later} COLLATE "C" <= raw_{earlier} COLLATE "C" THEN {p.add(check.reason)} END',
            )
        )
    checked_indexes = sorted(
        {spec.column_names.index(name) for check in spec.row_checks for name in (check.earlier, check.later)}
    )
    raw_columns = "".join(f", s.{q(spec.column_names[index])} AS raw_{index}" for index in checked_indexes)
    per_column = ", ".join(f"{expression} AS e{index}" for index, expression in enumerate(expressions))
    labelled = [(name, f"e{index}") for index, name in enumerate(spec.column_names)] + [
        (name, f"({expression})") for name, expression in row_check_expressions
    ]
    problems = ", ".join(f"{p.add(name + _UNIT_SEPARATOR)} || {expression}" for name, expression in labelled)
    with_sql = f"WITH {', '.join(ctes)} " if ctes else ""
    sql = (
        f"{with_sql}SELECT line, problems, sum(problem_count) OVER () FROM ("
        f" SELECT line, concat_ws({p.add(_RECORD_SEPARATOR)}, {problems}) AS problems,"
        f" num_nonnulls({', '.join(expression for _name, expression in labelled)}) AS problem_count"
        f" FROM (SELECT s.line{raw_columns}, {per_column} FROM {q(STAGING_TABLE)} s {' '.join(joins)} OFFSET 0)"
        f" per_column OFFSET 0"
        f") per_row WHERE problem_count > 0 ORDER BY line LIMIT {int(limit)}"
    )
    return sql, p.values


def _case(whens: list[tuple[str, str]]) -> str:
    return "CASE " + " ".join(f"WHEN {condition} THEN {result}" for condition, result in whens) + " END"


def _max_length(column: BoundColumn) -> int:
    return column.max_length if column.max_length is not None else MAX_INTEGER


def _format_checks(column: BoundColumn, ref: str, p: Params) -> list[tuple[str, str]]:
    """(condition, reason) pairs in evaluation order; CASE evaluates them in order, so casts are safe."""
    whens = [(f"{ref} = ''", p.add(Reason.MISSING) if column.required else "NULL")]
    kind = column.kind
    if kind in (Kind.ID, Kind.TEXT, Kind.EMAIL, Kind.PHONE) and column.max_length is not None:
        whens.append((f"char_length({ref}) > {int(column.max_length)}", p.add(Reason.TOO_LONG % column.max_length)))
    if kind in (Kind.EMAIL, Kind.PHONE):
        pattern, reason = (EMAIL_PATTERN, Reason.NOT_EMAIL) if kind is Kind.EMAIL else (PHONE_PATTERN, Reason.NOT_PHONE)
        whens.append((f"{ref} !~ {p.add(f'^({pattern})$')}", p.add(reason)))
    elif kind in (Kind.INTEGER, Kind.POSITIVE_INTEGER):
        whens.append((f"{ref} !~ {p.add(f'^{INTEGER_PATTERN}$')}", p.add(Reason.NOT_INTEGER)))
        whens.append((f"{ref}::bigint > {MAX_INTEGER}", p.add(Reason.TOO_LARGE)))
        if kind is Kind.POSITIVE_INTEGER:
            whens.append((f"{ref}::bigint = 0", p.add(Reason.NOT_POSITIVE)))
    elif kind is Kind.BOOLEAN:
        whens.append((f"NOT ({ref} = ANY({p.add([*TRUE_VALUES, *FALSE_VALUES])}))", p.add(Reason.NOT_BOOLEAN)))
    elif kind is Kind.CHOICE:
        reason = Reason.NOT_CHOICE % ", ".join(column.choices)
        whens.append((f"NOT ({ref} = ANY({p.add(list(column.choices))}))", p.add(reason)))
    elif kind in (Kind.DATE, Kind.DATETIME, Kind.DATE_OR_DATETIME):
        pattern, reason = {
            Kind.DATE: (DATE_PATTERN, Reason.NOT_DATE),
            Kind.DATETIME: (DATETIME_PATTERN, Reason.NOT_DATETIME),
            Kind.DATE_OR_DATETIME: (DATE_OR_DATETIME_PATTERN, Reason.NOT_DATE_OR_DATETIME),
        }[kind]
        reason_param = p.add(reason)
        whens.append((f"{ref} !~ {p.add(f'^{pattern}$')}", reason_param))
        whens.append((_day_missing(ref), reason_param))
    return whens


def _day_missing(ref: str) -> str:
    """True when a YYYY-MM-DD prefix (already pattern-checked, day <= 31) names a day its month lacks."""
    year = f"substr({ref}, 1, 4)::int"
    leap = f"(mod({year}, 4) = 0 AND (mod({year}, 100) <> 0 OR mod({year}, 400) = 0))"
    days = (
        f"CASE substr({ref}, 6, 2) WHEN '02' THEN CASE WHEN {leap} THEN 29 ELSE 28 END "
        "WHEN '04' THEN 30 WHEN '06' THEN 30 WHEN '09' THEN 30 WHEN '11' THEN 30 ELSE 31 END"
    )
    return f"(substr({ref}, 9, 2) COLLATE \"C\" > '28' AND substr({ref}, 9, 2)::int > {days})"


def _subject_check(spec: FileSpec, column: BoundColumn, ref: str, p: Params, joins: list[str]) -> tuple[str, str]:
    """The subject must exist as the customer, coupon or charge its program's policy names."""
    program_index = spec.column_names.index(column.column.subject_of or "")
    program_alias = f"ref{program_index}"
    pairs = ", ".join(f"({p.add(policy)}, {p.add(kind)})" for policy, kind in subject_kind_by_policy().items())
    joins.append(
        f"LEFT JOIN (VALUES {pairs}) AS subject_kind(policy, kind) ON subject_kind.policy = {program_alias}.policy"
    )
    # One existence test per row, of the policy's kind only (a LEFT JOIN per kind probed all three).
    missing: list[str] = []
    for kind, model in SUBJECT_MODELS.items():
        pk = model._meta.pk
        assert pk is not None
        missing.append(
            f"WHEN {p.add(kind)} THEN NOT EXISTS "
            f"(SELECT FROM {q(model._meta.db_table)} subject WHERE subject.{q(str(pk.column))} = {ref})"
        )
    condition = f"subject_kind.kind IS NOT NULL AND CASE subject_kind.kind {' '.join(missing)} END"
    return condition, f"format({p.add(Reason.UNKNOWN_SUBJECT)}, subject_kind.kind, subject_kind.kind)"


# --- Writing ------------------------------------------------------------------------------------


def _id_is_unique(spec: FileSpec) -> bool:
    id_column = spec.id_column
    return id_column is not None and bool(id_column.field.primary_key or id_column.field.unique)


def _insert_all(cursor: Any, spec: FileSpec) -> tuple[int, int]:
    """Every staged row, into an empty table: a plain INSERT (no anti-join, no ON CONFLICT arbitration)."""
    sql, params = insert_query(spec)
    cursor.execute(sql, params)
    return int(cursor.rowcount), 0


# A file this many times smaller than its table looks up the stored rows by key, one index descent per
# staged row, instead of hashing the whole table (below).
PROBE_RATIO = 10
# Bytes per stored row assumed when the table's statistics count fewer rows than its size suggests (rows
# are 60–150 bytes here: the estimate errs low, towards hashing, the plan the planner would choose anyway).
_BYTES_PER_ROW_BOUND = 200


def probes_stored_rows(cursor: Any, spec: FileSpec, *, staged_rows: int) -> bool:
    """Whether the merge should find the stored rows by index rather than by hashing the table.

    The planner, costing random reads as if from disk, hashes the whole table to compare a batch of
    10,000 rows with it: 0.3–0.4 s per batch at 500,000 charges, growing with the table, so an API client
    pushing batches paid more for each (a million charges in 100 batches: quadratic). Probing costs what
    the batch holds. The table's size comes from its statistics, or from its bytes when those lag behind
    (a table grown by many batches since autovacuum last analysed it).
    """
    cursor.execute(
        "SELECT GREATEST(reltuples, pg_relation_size(oid) / %s) FROM pg_class WHERE oid = %s::regclass",
        [_BYTES_PER_ROW_BOUND, spec.table],
    )
    return float(cursor.fetchone()[0]) > PROBE_RATIO * staged_rows


def _upsert(cursor: Any, spec: FileSpec, *, staged_rows: int) -> tuple[int, int]:
    """Writes the staged rows: new ones inserted, changed ones updated; returns (inserted, updated)."""
    insert_new, update_changed, params = merge_queries(spec)
    probe = probes_stored_rows(cursor, spec, staged_rows=staged_rows)
    with _audit_inserts_skipped(cursor, spec.model):
        if probe:
            # For these statements (transaction-local, set back below): joins by index lookups only.
            cursor.execute(
                "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin'),"
                " set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
            )
            hashjoin, mergejoin = cursor.fetchone()[:2]
        cursor.execute(insert_new, params)
        inserted, updated = int(cursor.rowcount), 0
        # An append (the API's batches, a day's new charges) costs its INSERT alone: no join with the stored
        # rows beyond the key's own uniqueness check, which the INSERT makes anyway.
        if update_changed is not None and inserted < staged_rows:
            cursor.execute(update_changed, params)
            updated = int(cursor.rowcount)
        # Only on success: a failed statement rolls back its (sub)transaction, and the settings with it.
        if probe:
            cursor.execute(
                "SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)",
                [hashjoin, mergejoin],
            )
    return inserted, updated


def insert_audit_trigger_ids(model: type[models.Model]) -> tuple[str, ...]:
    """The model's audit *insert* triggers (pghistory), as PostgreSQL names them.

    Rows an import creates are recorded by its ImportRun (who, when, the file's SHA-256, counts), not one
    audit event per row (docs/audit.md), so the import's own INSERT skips these; its updates and every
    later change still fire the update and delete triggers.
    """
    return tuple(
        sorted(
            trigger.get_pgid(registered)
            for registered, trigger in pgtrigger.registry.registered()
            if registered is model and isinstance(trigger, HistoryEvent) and str(trigger.operation) == "INSERT"
        )
    )


@contextmanager
def _audit_inserts_skipped(cursor: Any, model: type[models.Model]) -> Iterator[None]:
    """The model's audit insert triggers skip the rows of the statements inside (pgtrigger's ignore).

    `pgtrigger.ignore()` sets the same transaction-local variable, which every trigger pgtrigger installs
    checks first (`_pgtrigger_should_ignore(TG_NAME)`); its execute wrapper cannot carry the named
    parameters our statements use, so the variable is set here. Cleared only on success: a failure rolls
    back to the savepoint around it, and the variable with it.
    """
    pgids = insert_audit_trigger_ids(model)
    if pgids:
        cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", ["{" + ",".join(pgids) + "}"])
    yield
    if pgids:
        cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", ["{}"])


def _stored_values(spec: FileSpec, p: Params) -> tuple[list[str], list[str]]:
    """(target columns, value expressions over the staged row `s`)."""
    targets: list[str] = []
    values: list[str] = []
    for column in spec.bound_columns:
        targets.append(q(column.db_column))
        values.append(_cast(column, f"s.{q(column.name)}", p))
    return targets, values


def insert_query(spec: FileSpec) -> tuple[str, dict[str, Any]]:
    """A plain INSERT of every staged row (for an empty table whose key refuses repeated ids)."""
    p = Params()
    targets, values = _stored_values(spec, p)
    sql = f"INSERT INTO {q(spec.table)} ({', '.join(targets)}) SELECT {', '.join(values)} FROM {q(STAGING_TABLE)} s"
    return sql, p.values


def _staged_values(values: list[str], names: list[str]) -> str:
    # OFFSET 0: the casts are computed once per staged row, not once per reference to them.
    return (
        f"(SELECT {', '.join(f'{value} AS {name}' for value, name in zip(values, names, strict=True))} "
        f"FROM {q(STAGING_TABLE)} s OFFSET 0) v"
    )


def merge_queries(spec: FileSpec) -> tuple[str, str | None, dict[str, Any]]:
    """(INSERT of the staged rows not stored yet, UPDATE of the stored rows a staged row changes or None,
    params); run in that order in one transaction, after the duplicate-id check.

    With an id column the INSERT skips stored ids (`ON CONFLICT DO NOTHING`) and the UPDATE's WHERE leaves
    rows identical to the stored ones alone (no lock, no new version, no audit event), the ones the INSERT
    just wrote included; a file of new ids skips the UPDATE (`_upsert`). Without an id the natural key
    decides and a stored row is never updated.
    """
    id_column = spec.id_column
    p = Params()
    targets, values = _stored_values(spec, p)
    names = [f"c{index}" for index in range(len(targets))]
    staged = _staged_values(values, names)
    if id_column is None:
        nullable = {q(column.db_column) for column in spec.bound_columns if column.nullable}
        same = " AND ".join(
            f"cur.{target} {'IS NOT DISTINCT FROM' if target in nullable else '='} v.{name}"
            for target, name in zip(targets, names, strict=True)
        )
        insert_missing = (
            f"INSERT INTO {q(spec.table)} ({', '.join(targets)}) SELECT {', '.join(f'v.{name}' for name in names)} "
            f"FROM {staged} WHERE NOT EXISTS (SELECT FROM {q(spec.table)} cur WHERE {same}) ON CONFLICT DO NOTHING"
        )
        return insert_missing, None, p.values
    key = q(id_column.db_column)
    key_name = names[targets.index(key)]
    others = [(target, name) for target, name in zip(targets, names, strict=True) if target != key]
    insert_new = (
        f"INSERT INTO {q(spec.table)} ({', '.join(targets)}) SELECT {', '.join(f'v.{name}' for name in names)} "
        f"FROM {staged} ON CONFLICT ({key}) DO NOTHING"
    )
    if not others:  # nothing but the id: a stored row cannot differ
        return insert_new, None, p.values
    update_changed = (
        f"UPDATE {q(spec.table)} AS target SET {', '.join(f'{target} = v.{name}' for target, name in others)} "
        f"FROM {staged} WHERE target.{key} = v.{key_name} "
        f"AND ({', '.join(f'target.{target}' for target, _ in others)}) "
        f"IS DISTINCT FROM ({', '.join(f'v.{name}' for _, name in others)})"
    )
    return insert_new, update_changed, p.values


def _cast(column: BoundColumn, ref: str, p: Params) -> str:
    """The stored value of a valid cell (the session's TimeZone is JST, DateStyle ISO: see `_configure`)."""
    empty = column.empty_value
    empty_sql = "NULL" if empty is None else p.add(str(empty) if not isinstance(empty, bool) else empty)
    kind = column.kind
    if kind in TEXT_KINDS:
        return ref if empty == "" else f"COALESCE(NULLIF({ref}, ''), {empty_sql})"
    if kind in (Kind.INTEGER, Kind.POSITIVE_INTEGER):
        return f"NULLIF({ref}, '')::integer"
    if kind is Kind.BOOLEAN:
        return (
            f"CASE WHEN {ref} = ANY({p.add(list(TRUE_VALUES))}) THEN true "
            f"WHEN {ref} = ANY({p.add(list(FALSE_VALUES))}) THEN false ELSE {empty_sql}::boolean END"
        )
    if kind is Kind.DATE:
        return f"NULLIF({ref}, '')::date"
    # Date-times: the offset given, else JST (the session's zone); a bare date (effective_at) is JST midnight.
    return f"NULLIF({ref}, '')::timestamptz"


# --- Progress -----------------------------------------------------------------------------------


class _ProgressReporter:
    """At most one line every few seconds, and none for small files."""

    def __init__(self, file_name: str, total_bytes: int, progress: Progress | None) -> None:
        self.file_name = file_name
        self.total_bytes = total_bytes
        self.progress = progress if progress is not None and total_bytes >= PROGRESS_MIN_BYTES else None
        self.started = time.monotonic()
        self.last = self.started

    def copied(self, sent_bytes: int) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if now - self.last < PROGRESS_INTERVAL_SECONDS:
            return
        self.last = now
        share = 100 * sent_bytes / self.total_bytes if self.total_bytes else 100.0
        self.progress(
            f"{self.file_name}: {sent_bytes / 2**20:,.0f} / {self.total_bytes / 2**20:,.0f} MiB copied "
            f"({share:.0f}%, {now - self.started:.0f} s)"
        )

    def phase(self, text: str) -> None:
        if self.progress is not None:
            self.progress(f"{self.file_name}: {text} ({time.monotonic() - self.started:.0f} s)")
