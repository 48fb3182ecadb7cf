"""`records_import`: loads the source CSV files (FORMATS.md) and records an ImportRun per file.

The management command and the admin upload screen only adapt their input and call this. Files load in
dependency order, each in its own transaction (all-or-nothing); a rejected file does not stop the
following ones, so one run shows every problem at once.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from django.db import connection, connections, transaction
from django.utils import timezone

from support_portal.core.audit import LabelledActor, audit_context
from support_portal.core.imports import postgres, python_path
from support_portal.core.imports.csv_files import (
    STORED_ERRORS_CAP,
    ErrorList,
    FileRejected,
    Header,
    RowError,
    header_errors,
    iter_records,
    read_header,
)
from support_portal.core.imports.schema import FILE_SPECS, SPECS_BY_FILE_NAME, FileSpec, Reason, file_prerequisites
from support_portal.core.models import ImportRun

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    ImportActor = User | LabelledActor | None

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
FileInput = BinaryIO | Path


@dataclass(frozen=True)
class FileOutcome:
    file_name: str
    status: str  # ImportRun.Status
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    errors: tuple[RowError, ...] = ()
    error_count: int = 0
    sha256: str = ""
    run_id: int | None = None  # None for a dry run (its records are rolled back with the data)

    @property
    def succeeded(self) -> bool:
        return self.status == ImportRun.Status.SUCCEEDED


@dataclass(frozen=True)
class ImportResult:
    files: tuple[FileOutcome, ...] = field(default=())
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(outcome.succeeded for outcome in self.files)

    @property
    def errors(self) -> list[RowError]:
        return [error for outcome in self.files for error in outcome.errors]

    @property
    def error_count(self) -> int:
        return sum(outcome.error_count for outcome in self.files)


def records_import(
    *,
    directory: Path | None = None,
    files: Mapping[str, FileInput] | None = None,
    actor: ImportActor,
    source: str,
    progress: Progress | None = None,
    dry_run: bool = False,
    jobs: int = 1,
) -> ImportResult:
    """Loads the known files of `directory` (or the named `files`) in dependency order.

    Any other `*.csv` name is reported as an error. With `dry_run`, everything is validated and counted
    exactly as a real run would (later files see earlier files' rows), then rolled back, ImportRuns too.

    `jobs` > 1 loads up to that many files at once, each on its own connection, a file starting only when
    every file it may reference has finished (`file_prerequisites`): on PostgreSQL, outside any
    transaction (a dry run, or a caller's transaction, needs one connection that sees everything).
    """
    if (directory is None) == (files is None):
        raise ValueError("pass exactly one of directory= or files=")
    inputs: dict[str, FileInput] = (
        {path.name: path for path in sorted(directory.glob("*.csv")) if path.is_file()}
        if directory is not None
        else dict(files or {})
    )
    outcomes: list[FileOutcome] = []
    with transaction.atomic() if dry_run else nullcontext():
        for name in sorted(set(inputs) - set(SPECS_BY_FILE_NAME)):
            outcomes.append(_record_unknown_file(name, inputs[name], actor=actor, source=source, dry_run=dry_run))
        specs = [spec for spec in FILE_SPECS if spec.file_name in inputs]
        parallel = jobs > 1 and not dry_run and connection.vendor == "postgresql" and not connection.in_atomic_block
        if parallel and len(specs) > 1:
            outcomes.extend(
                _import_in_parallel(specs, inputs, jobs=jobs, actor=actor, source=source, progress=progress)
            )
        else:
            for spec in specs:
                outcomes.append(
                    _import_file(
                        spec, inputs[spec.file_name], actor=actor, source=source, progress=progress, dry_run=dry_run
                    )
                )
        if dry_run:
            transaction.set_rollback(True)
    return ImportResult(files=tuple(outcomes), dry_run=dry_run)


# --- Several files at once -------------------------------------------------------------------------


def restore_set_aside_keys() -> int:
    """Re-adds the foreign keys an interrupted parallel import left set aside; returns how many."""
    if connection.vendor != "postgresql":
        return 0
    with _parallel_import_lock():
        return postgres.restore_set_aside_keys()


def _import_in_parallel(
    specs: list[FileSpec],
    inputs: Mapping[str, FileInput],
    *,
    jobs: int,
    actor: ImportActor,
    source: str,
    progress: Progress | None,
) -> list[FileOutcome]:
    """Loads `specs` on up to `jobs` threads (one connection each); outcomes in `specs` order.

    First, one short transaction sets aside the foreign keys between the empty tables of this import
    (`postgres.set_aside_cross_file_keys`): dropping a key locks the table it references until commit,
    which would otherwise keep every file that references customers from loading beside any other. A file
    then starts whenever a lane is free and each file it may reference is finished or running, loads and
    indexes its own rows, and waits for those files to finish (succeeded or not, as in a sequential run)
    only before it reads them: its foreign keys are re-added and validated, its subjects and references
    checked, in its own transaction. Two loads that would lock the same table still never run together
    (`tables_locked_by_load`). Among startable files the largest goes first, or the one the largest is
    waiting for: a file no longer waits for the files it references to start, so the longest single load
    (charges) is the critical path. Keys
    a failed file leaves in the journal are re-added at the end (and by the next import after a crash).
    Parallel imports take turns (an advisory lock): each would otherwise re-add the other's keys.
    """
    names = [spec.file_name for spec in specs]
    by_name = {spec.file_name: spec for spec in specs}
    prerequisites = {name: file_prerequisites(by_name[name]) & set(names) for name in names}
    dependents = {name: {other for other in names if name in prerequisites[other]} for name in names}
    urgency: dict[str, int] = {}

    def urgent(name: str) -> int:
        # A file is as urgent as the largest file waiting for it: plans.csv must not hold up charges.csv.
        if name not in urgency:
            urgency[name] = max([_size(inputs[name]), *(urgent(other) for other in dependents[name])])
        return urgency[name]

    sizes = {name: _size(inputs[name]) for name in names}
    priority = sorted(names, key=lambda name: (urgent(name), sizes[name]), reverse=True)

    done_events = {name: threading.Event() for name in names}

    def load(spec: FileSpec) -> FileOutcome:
        def await_references() -> None:
            waiting = [other for other in sorted(prerequisites[spec.file_name]) if not done_events[other].is_set()]
            if waiting and progress is not None:
                progress(f"{spec.file_name}: waiting for {', '.join(waiting)}")
            for other in waiting:
                done_events[other].wait()

        try:
            return _import_file(
                spec,
                inputs[spec.file_name],
                actor=actor,
                source=source,
                progress=progress,
                dry_run=False,
                await_references=await_references,
            )
        finally:
            connections.close_all()  # this thread's connections only
            done_events[spec.file_name].set()

    with _parallel_import_lock():
        postgres.restore_set_aside_keys()
        loaded_tables = frozenset(spec.table for spec in specs)
        postgres.set_aside_cross_file_keys(loaded_tables)
        try:
            locks = {name: postgres.tables_locked_by_load(by_name[name], loaded_tables=loaded_tables) for name in names}
            finished = _run_scheduled(priority, prerequisites, locks, load, by_name, jobs)
        finally:
            postgres.restore_set_aside_keys()
    return [finished[name] for name in names]


def _run_scheduled[Item](  # noqa: PLR0917 - private helper, called once
    names: list[str],
    prerequisites: Mapping[str, frozenset[str]],
    locks: Mapping[str, frozenset[str]],
    load: Callable[[Item], FileOutcome],
    by_name: Mapping[str, Item],
    jobs: int,
) -> dict[str, FileOutcome]:
    """Runs the loads in the order of `names`, so that no load ever waits for one that cannot end.

    A load waits only for its prerequisites, so a file normally starts when each of them is finished or
    running unblocked (itself not waiting, transitively, for a queued file); files that need not wait at
    all go before those that would. One exception keeps the
    largest load from queueing behind its small prerequisites: a file whose tables no other load of this
    import locks may start before them, on at most `jobs - 1` lanes; the last lane then always serves
    files that can finish, the prerequisites among them. No running load locks a table another needs.
    """
    pending = list(names)
    finished: dict[str, FileOutcome] = {}
    running: dict[Future[FileOutcome], str] = {}
    loners = {name for name in names if not any(locks[name] & locks[other] for other in names if other != name)}

    def unblocked(name: str) -> bool:
        return all(
            other in finished or (other in running.values() and unblocked(other)) for other in prerequisites[name]
        )

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="import") as pool:
        while pending or running:
            # In priority order; first the files that can load to the end without waiting, then those
            # that would wait for a running load (submissions for charges must not hold a lane that usage
            # events could use meanwhile). A file that is ready but cannot start yet reserves its tables,
            # so a smaller file does not take a lock the critical path is about to need.
            reserved: set[str] = set()
            for may_wait in (False, True):
                for name in list(pending):
                    locked = set().union(*(locks[other] for other in running.values()))
                    ready = unblocked(name)
                    blocked = sum(1 for other in running.values() if not unblocked(other))
                    early = not ready and name in loners and blocked < jobs - 1
                    startable = early or (ready and (may_wait or prerequisites[name] <= finished.keys()))
                    if len(running) < jobs and startable and not locks[name] & (locked | reserved):
                        pending.remove(name)
                        running[pool.submit(load, by_name[name])] = name
                    elif ready and may_wait:
                        reserved |= locks[name]
            # Prerequisites form no cycle, so with nothing running something is always ready.
            assert running, f"no file can start: {pending}"
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                finished[running.pop(future)] = future.result()
    return finished


# Any fixed number: the key of the session lock parallel imports take turns on.
_PARALLEL_IMPORT_LOCK_KEY = 7_421_001


@contextmanager
def _parallel_import_lock() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_PARALLEL_IMPORT_LOCK_KEY])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_PARALLEL_IMPORT_LOCK_KEY])


# --- One file -----------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """Reads a binary stream while hashing every byte, so the checksum costs no second pass."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        self.sha256.update(data)
        self.bytes_read += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self.sha256.update(data)
        self.bytes_read += len(data)
        return data

    def finish(self) -> str:
        """The whole file's checksum, reading what is left unread."""
        while block := self.read(1024 * 1024):
            del block
        return self.sha256.hexdigest()


@contextmanager
def _opened(file_input: FileInput) -> Iterator[BinaryIO]:
    """A binary stream at the start of the file; paths are opened and closed, streams rewound and kept."""
    if isinstance(file_input, Path):
        with file_input.open("rb") as stream:
            yield stream
    else:
        file_input.seek(0)
        yield file_input


def _size(file_input: FileInput) -> int:
    if isinstance(file_input, Path):
        return file_input.stat().st_size
    position = file_input.tell()
    size = file_input.seek(0, io.SEEK_END)
    file_input.seek(position)
    return int(size)


def _start_run(name: str, *, actor: ImportActor, source: str) -> ImportRun:
    return ImportRun.objects.create(
        actor=actor if actor is not None and not isinstance(actor, LabelledActor) and actor.pk is not None else None,
        actor_label=actor.label if isinstance(actor, LabelledActor) else "",
        source=source,
        file_name=name[:255],
        status=ImportRun.Status.RUNNING,
    )


def _finish_run(run: ImportRun, outcome: FileOutcome) -> None:
    run.status = outcome.status
    run.sha256 = outcome.sha256
    run.rows_read = outcome.rows_read
    run.rows_inserted = outcome.rows_inserted
    run.rows_updated = outcome.rows_updated
    run.errors = [error.as_dict() for error in outcome.errors[:STORED_ERRORS_CAP]]
    run.error_count = outcome.error_count
    run.finished_at = timezone.now()
    run.save()


def _record_unknown_file(
    name: str, file_input: FileInput, *, actor: ImportActor, source: str, dry_run: bool
) -> FileOutcome:
    run = _start_run(name, actor=actor, source=source)
    errors = ErrorList(name)
    errors.add(0, "", Reason.UNKNOWN_FILE % ", ".join(spec.file_name for spec in FILE_SPECS))
    with _opened(file_input) as stream:
        sha256 = _HashingReader(stream).finish()
    outcome = FileOutcome(
        file_name=name,
        status=ImportRun.Status.REJECTED,
        errors=tuple(errors.items),
        error_count=errors.count,
        sha256=sha256,
        run_id=None if dry_run else run.pk,
    )
    _finish_run(run, outcome)
    return outcome


def _import_file(
    spec: FileSpec,
    file_input: FileInput,
    *,
    actor: ImportActor,
    source: str,
    progress: Progress | None,
    dry_run: bool,
    await_references: Callable[[], None] | None = None,
) -> FileOutcome:
    run = _start_run(spec.file_name, actor=actor, source=source)
    errors = ErrorList(spec.file_name)
    outcome_fields: dict[str, Any] = {}
    status: str = ImportRun.Status.SUCCEEDED
    copy_failure: str | None = None
    with _opened(file_input) as raw_stream:
        stream = _HashingReader(raw_stream)
        try:
            header = read_header(stream)
            if header is None:
                errors.add(1, "", Reason.EMPTY_FILE)
            else:
                header_errors(spec, header, errors)
            if errors:
                raise FileRejected(errors, rows_read=0)
            assert header is not None
            on_postgresql = connection.vendor == "postgresql"
            # Audit rows of updates name the run.
            with audit_context(actor=actor, import_run=run.pk, command="import_records"), transaction.atomic():
                if on_postgresql:

                    def rewind() -> tuple[Header, _HashingReader]:
                        # Read again from the start; the checksum is then taken afresh (`_finish_hash`).
                        raw_stream.seek(0)
                        again = _HashingReader(raw_stream)
                        header_again = read_header(again)
                        assert header_again is not None
                        return header_again, again

                    counts: postgres.LoadCounts | python_path.LoadCounts = postgres.load_file(
                        spec=spec,
                        header=header,
                        stream=stream,
                        total_bytes=_size(file_input),
                        errors=errors,
                        progress=progress,
                        rewind=rewind,
                        await_references=await_references,
                    )
                else:
                    raw_stream.seek(0)  # the Python path reads the file whole, header included
                    counts = python_path.load_file(
                        spec=spec,
                        header=header,
                        stream=raw_stream,
                        errors=errors,
                        progress=progress,
                    )
            outcome_fields = {
                "rows_read": counts.rows_read,
                "rows_inserted": counts.rows_inserted,
                "rows_updated": counts.rows_updated,
            }
        except FileRejected as rejected:
            status = ImportRun.Status.REJECTED
            outcome_fields = {"rows_read": rejected.rows_read}
        except postgres.CopyFailed as failure:
            status = ImportRun.Status.REJECTED
            copy_failure = str(failure)
        except Exception as exc:
            logger.exception("import of %s failed", spec.file_name)
            status = ImportRun.Status.FAILED
            errors.add(0, "", f"unexpected error: {exc}")
        sha256 = _finish_hash(stream, raw_stream)
    if copy_failure is not None:
        outcome_fields = {"rows_read": _list_structure_errors(file_input, errors, copy_failure)}
    outcome = FileOutcome(
        file_name=spec.file_name,
        status=status,
        errors=tuple(errors.items),
        error_count=errors.count,
        sha256=sha256,
        run_id=None if dry_run else run.pk,
        **outcome_fields,
    )
    _finish_run(run, outcome)
    return outcome


def _finish_hash(stream: _HashingReader, raw_stream: BinaryIO) -> str:
    """The checksum of the whole file, whichever path read it and however far."""
    if raw_stream.tell() != stream.bytes_read:
        # The Python path read the file again from the start: hash it afresh.
        raw_stream.seek(0)
        return _HashingReader(raw_stream).finish()
    return stream.finish()


def _list_structure_errors(file_input: FileInput, errors: ErrorList, copy_failure: str) -> int:
    """COPY refused the file: a Python CSV pass names every line it cannot read."""
    with _opened(file_input) as stream:
        header = read_header(stream)
        assert header is not None
        stream.seek(0)
        rows_read = sum(1 for _record in iter_records(stream, len(header.names), errors))
    if not errors:
        errors.add(0, "", f"the file could not be read: {copy_failure}")
    return rows_read + errors.count
