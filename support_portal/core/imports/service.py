"""`records_import`: loads the source CSV files (FORMATS.md) and records an ImportRun per file.

The management command and the admin upload screen only adapt their input and call this. Files load in
dependency order, each in its own transaction (all-or-nothing); a rejected file does not stop the
following ones, so one run shows every problem at once.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from django.db import connection, connections, transaction
from django.utils import timezone

from support_portal.core.audit import audit_context
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
    actor: User | None,
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


def _import_in_parallel(
    specs: list[FileSpec],
    inputs: Mapping[str, FileInput],
    *,
    jobs: int,
    actor: User | None,
    source: str,
    progress: Progress | None,
) -> list[FileOutcome]:
    """Loads `specs` on up to `jobs` threads (one connection each); outcomes in `specs` order.

    A file starts when every prerequisite present in this import has finished, succeeded or not (as in a
    sequential run, a rejected file does not stop the files after it: their references to it are then
    named as unknown), and when no running load locks a table it would lock (`tables_locked_by_load`:
    it would only wait for that load's commit). Among startable files the one heading the longest chain
    of bytes still to load goes first, so the critical path (customers → subscriptions → charges →
    submissions) is never held up by a lane; with the 1M demo set, logins, coupons and coupon
    transactions load beside charges.
    """
    names = [spec.file_name for spec in specs]
    by_name = {spec.file_name: spec for spec in specs}
    prerequisites = {name: file_prerequisites(by_name[name]) & set(names) for name in names}
    dependents = {name: {other for other in names if name in prerequisites[other]} for name in names}
    chain_bytes: dict[str, int] = {}

    def chain(name: str) -> int:
        if name not in chain_bytes:
            chain_bytes[name] = _size(inputs[name]) + max((chain(other) for other in dependents[name]), default=0)
        return chain_bytes[name]

    def load(spec: FileSpec) -> FileOutcome:
        try:
            return _import_file(
                spec, inputs[spec.file_name], actor=actor, source=source, progress=progress, dry_run=False
            )
        finally:
            connections.close_all()  # this thread's connections only

    locks = {name: postgres.tables_locked_by_load(by_name[name]) for name in names}
    pending = sorted(names, key=chain, reverse=True)
    finished: dict[str, FileOutcome] = {}
    running: dict[Future[FileOutcome], str] = {}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="import") as pool:
        while pending or running:
            # In priority order; a file that is about to be ready (its prerequisites are finished or
            # running) but cannot start yet reserves its tables, so a smaller file does not take a lock
            # the critical path is about to need (logins would hold up subscriptions by holding customers).
            reserved: set[str] = set()
            for name in list(pending):
                locked = set().union(*(locks[other] for other in running.values()))
                ready = prerequisites[name] <= finished.keys()
                if len(running) < jobs and ready and not locks[name] & (locked | reserved):
                    pending.remove(name)
                    running[pool.submit(load, by_name[name])] = name
                elif prerequisites[name] <= finished.keys() | set(running.values()):
                    reserved |= locks[name]
            # Prerequisites form no cycle, so with nothing running something is always ready.
            assert running, f"no file can start: {pending}"
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                finished[running.pop(future)] = future.result()
    return [finished[name] for name in names]


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


def _start_run(name: str, *, actor: User | None, source: str) -> ImportRun:
    return ImportRun.objects.create(
        actor=actor if actor is not None and actor.pk is not None else None,
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
    name: str, file_input: FileInput, *, actor: User | None, source: str, dry_run: bool
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
    actor: User | None,
    source: str,
    progress: Progress | None,
    dry_run: bool,
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
