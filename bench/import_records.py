"""Import benchmark (issue 2): `manage.py import_records` against a bare COPY floor, same run, same files.

    scripts/with-services .venv/bin/python bench/import_records.py --customers 1000000
    make bench-import N=1000000          # the same with PG_SETTINGS for shared_buffers etc.

Steps: generate the demo data set (cached in bench/out/<N>-<seed>/), create a fresh database on the
server of DATABASE_URL and migrate it, measure the floor (COPY ... FROM STDIN (FORMAT csv, HEADER) of
every file into unindexed typed tables in a separate schema), run `manage.py import_records DIR` in a
subprocess (wall time, peak RSS of that process tree), then run it again on the same files (must
change nothing). Per-file import times and counts come from the ImportRun rows the import writes.
Results are printed as a Markdown table and saved as JSON next to the data.

Peak memory: each measured command runs under this script's `--measure` mode, which runs manage.py
in-process and reports its own getrusage(RUSAGE_SELF) (and RUSAGE_CHILDREN, for any helper
processes it starts), so the figure belongs to that one command. PostgreSQL's memory is not included.
"""

import argparse
import contextlib
import json
import os
import platform
import resource
import runpy
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SETTINGS_MODULE = "support_portal.settings.base"
BENCH_DATABASE = "bench_import"
FLOOR_SCHEMA = "bench_floor"
TARGET_RATIO = 2.0
TARGET_PEAK_MB = 500


# -- measured child ----------------------------------------------------------------------------------
def measure_child(report_path: str, argv: list[str]) -> int:
    """Run `manage.py ARGS` in this process, then write this process's peak RSS to report_path."""
    os.chdir(ROOT)
    sys.argv = ["manage.py", *argv]
    code = 0
    try:
        runpy.run_path(str(ROOT / "manage.py"), run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    # Linux reports ru_maxrss in KiB.
    report = {
        "self_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "children_maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        "exit_code": code,
    }
    Path(report_path).write_text(json.dumps(report))
    return code


@dataclass
class CommandRun:
    seconds: float
    peak_rss_mb: float
    exit_code: int


def run_measured(argv: list[str], env: dict[str, str], report_path: Path, log_path: Path) -> CommandRun:
    """Run `manage.py ARGV` measured; its output is shown and kept in log_path (the phase timings)."""
    started = time.monotonic()
    with (
        log_path.open("w", encoding="utf-8") as log,
        subprocess.Popen(
            [sys.executable, __file__, "--measure", str(report_path), "--", *argv],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as child,
    ):
        assert child.stdout is not None
        for line in child.stdout:
            elapsed = time.monotonic() - started
            sys.stdout.write(line)
            sys.stdout.flush()
            log.write(f"[{elapsed:8.1f} s] {line}")
        returncode = child.wait()
    seconds = time.monotonic() - started
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    peak_kb = max(report.get("self_maxrss_kb", 0), report.get("children_maxrss_kb", 0))
    return CommandRun(seconds, peak_kb / 1024, returncode)


# -- database helpers --------------------------------------------------------------------------------
def database_url_for(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def connect(url: str) -> Any:
    import psycopg  # noqa: PLC0415

    return psycopg.connect(url, autocommit=True)


def checkpoint(connection: Any) -> None:
    # Start every timed phase with no dirty buffers left over from the previous one.
    with contextlib.suppress(Exception):
        connection.execute("CHECKPOINT")


def create_fresh_database(server_url: str) -> str:
    with connect(server_url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    return database_url_for(server_url, BENCH_DATABASE)


def drop_database(server_url: str) -> None:
    with connect(server_url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


def column_type(column: str) -> str:
    if column.endswith("_at"):
        return "timestamptz"
    if column.endswith("_jpy"):
        return "integer"
    if column in {"period_start", "period_end"}:
        return "date"
    if column in {"auto_renew", "promotional", "via_app", "app_withdrawn"}:
        return "boolean"
    return "text"


@dataclass
class FileFigures:
    file: str
    rows: int
    floor_seconds: float = 0.0
    import_seconds: float | None = None
    import_status: str = ""
    inserted: int | None = None
    updated: int | None = None
    reimport_seconds: float | None = None
    reimport_inserted: int | None = None
    reimport_updated: int | None = None


def measure_floor(url: str, directory: Path, files: list[str]) -> dict[str, float]:
    """COPY every file into unindexed typed tables of a scratch schema; seconds per file."""
    from support_portal.core.demo.generator import FILE_COLUMNS  # noqa: PLC0415

    seconds: dict[str, float] = {}
    with connect(url) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {FLOOR_SCHEMA} CASCADE")
        connection.execute(f"CREATE SCHEMA {FLOOR_SCHEMA}")
        for file_name in files:
            table = file_name.removesuffix(".csv")
            columns = FILE_COLUMNS[table]
            definition = ", ".join(f"{column} {column_type(column)}" for column in columns)
            connection.execute(f"CREATE TABLE {FLOOR_SCHEMA}.{table} ({definition})")
        checkpoint(connection)
        for file_name in files:
            table = file_name.removesuffix(".csv")
            column_list = ", ".join(FILE_COLUMNS[table])
            started = time.monotonic()
            with (
                connection.cursor() as cursor,
                cursor.copy(f"COPY {FLOOR_SCHEMA}.{table} ({column_list}) FROM STDIN (FORMAT csv, HEADER)") as copy,
                (directory / file_name).open("rb") as source,
            ):
                while block := source.read(1 << 20):
                    copy.write(block)
            seconds[file_name] = time.monotonic() - started
        connection.execute(f"DROP SCHEMA {FLOOR_SCHEMA} CASCADE")
        checkpoint(connection)
    return seconds


def import_runs_after(url: str, after_id: int) -> tuple[int, list[dict[str, Any]]]:
    query = (
        "SELECT id, file_name, status, rows_read, rows_inserted, rows_updated, started_at, finished_at, error_count"
        " FROM core_importrun WHERE id > %s ORDER BY id"
    )
    with connect(url) as connection:
        rows = connection.execute(query, (after_id,)).fetchall()
    runs = [
        {
            "file": Path(row[1]).name,
            "status": row[2],
            "rows_read": row[3],
            "inserted": row[4],
            "updated": row[5],
            "seconds": (row[7] - row[6]).total_seconds() if row[7] else None,
            "errors": row[8],
        }
        for row in rows
    ]
    return (rows[-1][0] if rows else after_id), runs


def machine_description(url: str) -> dict[str, Any]:
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = int(line.split()[1]) / 1024 / 1024
    with connect(url) as connection:
        version = connection.execute("SHOW server_version").fetchone()[0]
        settings = {
            name: connection.execute(f"SHOW {name}").fetchone()[0]
            for name in (
                "shared_buffers",
                "max_wal_size",
                "work_mem",
                "maintenance_work_mem",
                "fsync",
                "synchronous_commit",
            )
        }
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "memory_gb": round(memory_gb, 1),
        "python": platform.python_version(),
        "postgresql": version,
        "postgresql_settings": settings,
    }


# -- report ------------------------------------------------------------------------------------------
def fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "–" if value is None else pattern.format(value)


def print_report(result: dict[str, Any]) -> None:
    machine = result["machine"]
    print()
    print(f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gb']} GB RAM, ", end="")
    print(f"PostgreSQL {machine['postgresql']}, Python {machine['python']}")
    print("PostgreSQL settings: " + ", ".join(f"{k}={v}" for k, v in machine["postgresql_settings"].items()))
    print(f"Data: {result['customers']:,} customers, seed {result['seed']}, {result['data_mb']:.0f} MB of CSV")
    print()
    print(
        "| file | rows | floor s | import s | import/floor | rows/s | inserted | updated "
        "| re-import s | re-import ins/upd |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for figures in result["files"]:
        ratio = (
            figures["import_seconds"] / figures["floor_seconds"]
            if figures["import_seconds"] is not None and figures["floor_seconds"] > 0
            else None
        )
        rate = figures["rows"] / figures["import_seconds"] if figures["import_seconds"] else None
        reimport_counts = (
            f"{figures['reimport_inserted']}/{figures['reimport_updated']}"
            if figures["reimport_inserted"] is not None
            else "–"
        )
        print(
            f"| {figures['file']} | {figures['rows']:,} | {figures['floor_seconds']:.2f} | "
            f"{fmt(figures['import_seconds'], '{:.2f}')} | {fmt(ratio, '{:.2f}')} | {fmt(rate, '{:,.0f}')} | "
            f"{fmt(figures['inserted'], '{:,}')} | {fmt(figures['updated'], '{:,}')} | "
            f"{fmt(figures['reimport_seconds'], '{:.2f}')} | {reimport_counts} |"
        )
    total = result["total"]
    print(
        f"| **total** | {total['rows']:,} | {total['floor_seconds']:.2f} | {fmt(total['import_seconds'])} | "
        f"{fmt(total['ratio'], '{:.2f}')} | {fmt(total['rows_per_second'], '{:,.0f}')} | | | "
        f"{fmt(total['reimport_seconds'])} | |"
    )
    print()
    print(
        f"Import: wall {fmt(total['import_seconds'])} s (exit {result['import']['exit_code']}), "
        f"peak RSS {result['import']['peak_rss_mb']:.0f} MB; re-import: wall {fmt(total['reimport_seconds'])} s "
        f"(exit {result['reimport']['exit_code'] if result['reimport'] else '–'}), "
        f"peak RSS {result['reimport']['peak_rss_mb'] if result['reimport'] else 0:.0f} MB"
    )
    ratio_ok = total["ratio"] is not None and total["ratio"] <= TARGET_RATIO
    memory_ok = result["import"]["peak_rss_mb"] < TARGET_PEAK_MB
    print(
        f"Targets: import within {TARGET_RATIO:.0f}x of the floor: {'met' if ratio_ok else 'NOT met'}; "
        f"peak memory under {TARGET_PEAK_MB} MB: {'met' if memory_ok else 'NOT met'}"
    )


@dataclass
class Options:
    customers: int
    seed: int
    workers: int | None
    keep_database: bool
    skip_reimport: bool


def run_benchmark(options: Options) -> int:
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at PostgreSQL: run under scripts/with-services.", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from support_portal.core.demo.generator import FILE_NAMES, generate_demo_data, is_complete  # noqa: PLC0415

    directory = ROOT / "bench" / "out" / f"{options.customers}-{options.seed}"
    generation_seconds = None
    if is_complete(directory):
        print(f"Using the cached data set in {directory}")
    else:
        print(f"Generating {options.customers:,} customers into {directory} ...", flush=True)
        started = time.monotonic()
        data_set = generate_demo_data(
            directory, customers=options.customers, seed=options.seed, workers=options.workers
        )
        generation_seconds = time.monotonic() - started
        print(f"  generated in {generation_seconds:.1f} s: {data_set.rows}", flush=True)
    row_counts = {}
    for file_name in FILE_NAMES:
        with (directory / file_name).open("rb") as source:
            row_counts[file_name] = sum(block.count(b"\n") for block in iter(lambda: source.read(1 << 20), b"")) - 1
    data_mb = sum((directory / name).stat().st_size for name in FILE_NAMES) / 1024 / 1024

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    database_url = create_fresh_database(server_url)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}
    try:
        print("Migrating a fresh database ...", flush=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        machine = machine_description(database_url)
        last_id, _ = import_runs_after(database_url, 0)

        print("Measuring the floor (bare COPY into unindexed typed tables) ...", flush=True)
        floor = measure_floor(database_url, directory, list(FILE_NAMES))
        for file_name, seconds in floor.items():
            print(f"  {file_name:<24} {row_counts[file_name]:>12,} rows {seconds:8.1f} s", flush=True)

        reports = directory.parent / "runs"
        reports.mkdir(exist_ok=True)
        with connect(database_url) as connection:
            checkpoint(connection)
        print(f"Importing: manage.py import_records {directory}", flush=True)
        first = run_measured(
            ["import_records", str(directory)], env, reports / "import.json", reports / f"import-{stamp}.log"
        )
        last_id, first_runs = import_runs_after(database_url, last_id)

        second: CommandRun | None = None
        second_runs: list[dict[str, Any]] = []
        if not options.skip_reimport and first.exit_code == 0:
            with connect(database_url) as connection:
                checkpoint(connection)
            print("Re-importing the same files (must change nothing) ...", flush=True)
            second = run_measured(
                ["import_records", str(directory)], env, reports / "reimport.json", reports / f"reimport-{stamp}.log"
            )
            last_id, second_runs = import_runs_after(database_url, last_id)
    finally:
        if not options.keep_database:
            drop_database(server_url)

    files = []
    for file_name in FILE_NAMES:
        figures = FileFigures(file_name, row_counts[file_name], floor_seconds=floor[file_name])
        run = next((run for run in reversed(first_runs) if run["file"] == file_name), None)
        if run:
            figures.import_seconds, figures.import_status = run["seconds"], run["status"]
            figures.inserted, figures.updated = run["inserted"], run["updated"]
        again = next((run for run in reversed(second_runs) if run["file"] == file_name), None)
        if again:
            figures.reimport_seconds = again["seconds"]
            figures.reimport_inserted, figures.reimport_updated = again["inserted"], again["updated"]
        files.append(asdict(figures))
    floor_total = sum(floor.values())
    import_total = first.seconds if first.exit_code == 0 else None
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "customers": options.customers,
        "seed": options.seed,
        "data_mb": data_mb,
        "generation_seconds": generation_seconds,
        "machine": machine,
        "files": files,
        "import": asdict(first),
        "reimport": asdict(second) if second else None,
        "import_runs": first_runs,
        "reimport_runs": second_runs,
        "total": {
            "rows": sum(row_counts.values()),
            "floor_seconds": floor_total,
            "import_seconds": import_total,
            "ratio": import_total / floor_total if import_total and floor_total else None,
            "rows_per_second": sum(row_counts.values()) / import_total if import_total else None,
            "reimport_seconds": second.seconds if second else None,
        },
    }
    result_path = directory.parent / f"result-{options.customers}-{options.seed}-{stamp}.json"
    result_path.write_text(json.dumps(result, indent=2, default=str))
    print_report(result)
    print(f"\nSaved {result_path}")
    return 0 if first.exit_code == 0 and (second is None or second.exit_code == 0) else 1


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        separator = sys.argv.index("--")
        return measure_child(sys.argv[2], sys.argv[separator + 1 :])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="generator processes")
    parser.add_argument("--keep-database", action="store_true", help=f"keep the {BENCH_DATABASE} database")
    parser.add_argument("--skip-reimport", action="store_true")
    arguments = parser.parse_args()
    return run_benchmark(
        Options(
            customers=arguments.customers,
            seed=arguments.seed,
            workers=arguments.workers,
            keep_database=arguments.keep_database,
            skip_reimport=arguments.skip_reimport,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
