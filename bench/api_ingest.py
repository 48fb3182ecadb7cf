"""API ingest benchmark (issue 14): charges pushed over real HTTP to gunicorn (2 workers) in batches of
10,000, against `manage.py import_records` of the same rows, in the same run, on the same server.

    scripts/with-services .venv/bin/python bench/api_ingest.py --charges 1000000
    make bench-api N=1000000          # the same with PG_SETTINGS for shared_buffers etc.

Steps: write a data set (customers, one plan, subscriptions, and N charges, 10 per subscription; cached
in bench/out/api-<N>/), create a fresh database on the server of DATABASE_URL, migrate, load customers,
plans and subscriptions with import_records (not timed). Then:

1. `manage.py import_records DIR` of charges.csv alone, in a subprocess (wall time): into the empty
   table, the import's direct COPY path;
2. TRUNCATE the charges (the table is as empty as before 1), then `records_import` in one process for
   each `--batch`-line slice of the same file (no HTTP, no JSON): the import service's own cost of the
   batches (every batch after the first goes into a non-empty table: staging + upsert);
3. TRUNCATE again, CHECKPOINT, start gunicorn
   (`support_portal.wsgi`, 2 sync workers, base settings, no DEBUG), create an API key, and POST the same
   rows as JSON arrays of `--batch` records to /api/v1/ingest/charges from `--concurrency` client
   threads (the bodies are encoded before the clock starts), each with an Idempotency-Key. Wall time
   from the first request to the last answer; every answer must be 200 and the table must hold N rows;
4. TRUNCATE again, then the **append floor**: the same `--batch`-line slices COPYed straight into the
   live table, one transaction each, from plain psycopg connections (once from one, once from as many
   as the API's clients, taking slices in turn) — no staging, no validation, no Python per row, no
   HTTP. Every batch after the first appends to a non-empty table, so its primary key, index, foreign
   key and triggers are kept row by row, as any all-or-nothing batch that keeps them must: the least
   the API's batches can cost, whatever the code above the database does.

Target: API wall time within 1.5x of import_records'. The append floor / import_records ratio says
whether the target can be met at all with the table's constraints kept. Results printed (Markdown) and
saved as JSON.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import platform
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from import_records import checkpoint, connect, create_fresh_database, drop_database  # noqa: E402

SETTINGS_MODULE = "support_portal.settings.base"
TARGET_RATIO = 1.5
CHARGES_PER_SUBSCRIPTION = 10
JST_OFFSET = "+09:00"


def write_data_set(directory: Path, charges: int, seed: int) -> None:
    """customers.csv, plans.csv, subscriptions.csv (prerequisites) and charges.csv."""
    done = directory / ".complete"
    if done.exists():
        return
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    subscriptions = max(1, charges // CHARGES_PER_SUBSCRIPTION)
    with (directory / "plans.csv").open("w", newline="") as out:
        csv.writer(out).writerows([["plan_code", "name", "monthly_fee_jpy"], ["premium", "プレミアム", 550]])
    with (directory / "customers.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["customer_id", "name", "email", "created_at"])
        writer.writerows(
            [f"BC{i:08d}", f"顧客 {i}", f"bc{i}@example.jp", f"2023-01-01T09:00:00{JST_OFFSET}"]
            for i in range(subscriptions)
        )
    with (directory / "subscriptions.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["subscription_id", "customer_id", "plan_code", "payment_method", "started_at", "auto_renew"])
        writer.writerows(
            [f"BS{i:08d}", f"BC{i:08d}", "premium", "card", f"2023-01-01T09:00:00{JST_OFFSET}", "true"]
            for i in range(subscriptions)
        )
    with (directory / "charges.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["charge_id", "subscription_id", "amount_jpy", "charged_at", "period_start", "period_end"])
        for n in range(charges):
            sub, month = divmod(n, CHARGES_PER_SUBSCRIPTION)
            period = date(2023 + month // 12, month % 12 + 1, 1)
            following = date(2023 + (month + 1) // 12, (month + 1) % 12 + 1, 1)
            writer.writerow(
                [
                    f"BCH{n:09d}",
                    f"BS{sub % subscriptions:08d}",
                    rng.choice((550, 550, 550, 980)),
                    f"{period:%Y-%m-%d}T0{rng.randint(0, 9)}:00:00{JST_OFFSET}",
                    f"{period:%Y-%m-%d}",
                    f"{following:%Y-%m-%d}",
                ]
            )
    done.touch()


def batches_of(directory: Path, size: int) -> list[bytes]:
    """charges.csv as JSON array bodies of `size` records (amounts as numbers, the rest strings)."""
    bodies: list[bytes] = []
    with (directory / "charges.csv").open(newline="") as source:
        records: list[dict[str, Any]] = []
        for row in csv.DictReader(source):
            row["amount_jpy"] = int(row["amount_jpy"])
            records.append(row)
            if len(records) == size:
                bodies.append(json.dumps(records, ensure_ascii=False).encode())
                records = []
        if records:
            bodies.append(json.dumps(records, ensure_ascii=False).encode())
    return bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError("gunicorn did not answer")


def create_api_key(env: dict[str, str]) -> str:
    code = (
        "import django; django.setup()\n"
        "from django.contrib.auth.models import User\n"
        "from support_portal.api.services import api_key_create\n"
        "user, _ = User.objects.get_or_create(username='bench', defaults={'is_staff': True})\n"
        "print(api_key_create(name='bench', scopes=['ingest'], actor=user).key)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def push(port: int, key: str, bodies: list[bytes], concurrency: int) -> tuple[float, list[float], list[str]]:
    """POSTs every body; returns (wall seconds, per-request seconds, failures)."""
    work: queue.Queue[tuple[int, bytes]] = queue.Queue()
    for item in enumerate(bodies):
        work.put(item)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        while True:
            try:
                index, body = work.get_nowait()
            except queue.Empty:
                return
            started = time.monotonic()
            conn.request(
                "POST",
                "/api/v1/ingest/charges",
                body=body,
                headers={
                    "Authorization": f"Bearer {key}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": f"bench-charges-{index}",
                },
            )
            response = conn.getresponse()
            answer = response.read()
            with lock:
                latencies.append(time.monotonic() - started)
                if response.status != 200:
                    failures.append(f"batch {index}: {response.status} {answer[:300]!r}")

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, latencies, failures


SERVICE_BATCHES_CODE = """
import io, sys, time, django
django.setup()
from support_portal.core.imports.service import records_import
path, size = sys.argv[1], int(sys.argv[2])
with open(path, 'rb') as source:
    header, lines = source.readline(), source.readlines()
chunks = [header + b''.join(lines[i:i + size]) for i in range(0, len(lines), size)]
started = time.monotonic()
for chunk in chunks:
    result = records_import(files={'charges.csv': io.BytesIO(chunk)}, actor=None, source='command')
    assert result.ok, result.errors[:3]
print(time.monotonic() - started)
"""


def service_in_batches(env: dict[str, str], charges_csv: Path, size: int) -> float:
    """`records_import` called in one process for each `size`-line slice of charges.csv (no HTTP, no
    JSON): what the API's batches cost the import service itself."""
    out = subprocess.run(
        [sys.executable, "-c", SERVICE_BATCHES_CODE, str(charges_csv), str(size)],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


CHARGE_COLUMNS = (
    "charge_id, subscription_id, amount_jpy, charged_at, period_start, period_end, payment_method, promotional"
)


def append_floor(url: str, charges_csv: Path, size: int, connections: int) -> float:
    """Each `size`-line slice of charges.csv COPYed into customers_charge, a transaction per slice, from
    `connections` connections at once (as many as the API's clients), taking slices in turn."""
    import psycopg  # noqa: PLC0415

    with charges_csv.open("rb") as source:
        header = source.readline().decode().strip().split(",")
        # The data set leaves payment_method and promotional to their defaults (as the import does):
        # the table has no database defaults, so they are written out, before the clock starts.
        assert header == CHARGE_COLUMNS.split(", ")[:6], header
        lines = [line.rstrip(b"\r\n") + b",,false\n" for line in source]
    chunks = [b"".join(lines[i : i + size]) for i in range(0, len(lines), size)]
    copy_sql = f"COPY customers_charge ({CHARGE_COLUMNS}) FROM STDIN (FORMAT csv, FORCE_NOT_NULL (payment_method))"
    todo: queue.Queue[bytes] = queue.Queue()
    for chunk in chunks:
        todo.put(chunk)
    failures: list[BaseException] = []

    def append(connection: Any) -> None:
        try:
            while True:
                try:
                    chunk = todo.get_nowait()
                except queue.Empty:
                    return
                with connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    copy.write(chunk)
                connection.commit()
        except BaseException as exc:  # reported below, after the other threads end
            failures.append(exc)

    opened = [psycopg.connect(url) for _ in range(connections)]
    try:
        threads = [threading.Thread(target=append, args=(connection,)) for connection in opened]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.monotonic() - started
    finally:
        for connection in opened:
            connection.close()
    if failures:
        raise RuntimeError(f"append floor failed: {failures[0]!r}")
    return seconds


def empty_charges(url: str) -> None:
    with connect(url) as connection:
        connection.execute("TRUNCATE customers_charge CASCADE")
        connection.execute("VACUUM ANALYZE customers_charge")
        checkpoint(connection)


def count_charges(url: str) -> int:
    with connect(url) as connection:
        return int(connection.execute("SELECT count(*) FROM customers_charge").fetchone()[0])


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds else "-"


def run(options: argparse.Namespace) -> int:
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at PostgreSQL: run under scripts/with-services.", file=sys.stderr)
        return 2
    directory = ROOT / "bench" / "out" / f"api-{options.charges}-{options.seed}"
    print(f"Data set: {options.charges:,} charges in {directory}", flush=True)
    write_data_set(directory, options.charges, options.seed)
    charges_only = directory / "charges-only"
    charges_only.mkdir(exist_ok=True)
    if not (charges_only / "charges.csv").exists():
        (charges_only / "charges.csv").symlink_to(directory / "charges.csv")
    prerequisites = directory / "prerequisites"
    prerequisites.mkdir(exist_ok=True)
    for name in ("customers.csv", "plans.csv", "subscriptions.csv"):
        if not (prerequisites / name).exists():
            (prerequisites / name).symlink_to(directory / name)

    database_url = create_fresh_database(server_url)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "DJANGO_DEBUG": "false",
        "API_RATE_LIMIT": "100000/m",
        "LOG_LEVEL": "WARNING",
    }
    gunicorn: subprocess.Popen[bytes] | None = None
    try:
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True)
        print("Loading customers, plans, subscriptions (not timed) ...", flush=True)
        subprocess.run([*manage, "import_records", str(prerequisites), "-v", "0"], env=env, cwd=ROOT, check=True)
        with connect(database_url) as connection:
            connection.execute("VACUUM ANALYZE")
            checkpoint(connection)

        print(f"1. manage.py import_records {charges_only}", flush=True)
        started = time.monotonic()
        subprocess.run([*manage, "import_records", str(charges_only), "-v", "0"], env=env, cwd=ROOT, check=True)
        command_seconds = time.monotonic() - started
        loaded = count_charges(database_url)
        print(f"   {command_seconds:.1f} s, {loaded:,} charges", flush=True)
        assert loaded == options.charges, loaded

        empty_charges(database_url)
        print(f"2. records_import in-process, batches of {options.batch:,} lines of charges.csv", flush=True)
        service_seconds = service_in_batches(env, directory / "charges.csv", options.batch)
        print(f"   {service_seconds:.1f} s, {count_charges(database_url):,} charges", flush=True)
        empty_charges(database_url)
        bodies = batches_of(directory, options.batch)
        print(
            f"3. {len(bodies)} batches of {options.batch:,} ({sum(map(len, bodies)) / 1e6:.0f} MB of JSON)", flush=True
        )
        port = free_port()
        gunicorn = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "support_portal.wsgi",
                "--workers",
                str(options.workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--timeout",
                "600",
                "--log-level",
                "warning",
            ],
            env=env,
            cwd=ROOT,
        )
        wait_for(port)
        key = create_api_key(env)
        api_seconds, latencies, failures = push(port, key, bodies, options.concurrency)
        loaded = count_charges(database_url)
        print(f"   {api_seconds:.1f} s, {loaded:,} charges, {len(failures)} failed batches", flush=True)
        for failure in failures[:5]:
            print("   ", failure)
        floors: dict[int, float] = {}
        for connections in sorted({1, options.concurrency}):
            empty_charges(database_url)
            print(
                f"4. append floor: {len(bodies)} COPYs of {options.batch:,} rows into the live table, "
                f"{connections} connection(s)",
                flush=True,
            )
            floors[connections] = append_floor(database_url, directory / "charges.csv", options.batch, connections)
            floor_loaded = count_charges(database_url)
            print(f"   {floors[connections]:.1f} s, {floor_loaded:,} charges", flush=True)
            assert floor_loaded == options.charges, floor_loaded
        floor_seconds = floors[options.concurrency]
    finally:
        if gunicorn is not None:
            gunicorn.send_signal(signal.SIGTERM)
            gunicorn.wait(timeout=60)
        if not options.keep_database:
            drop_database(server_url)

    latencies.sort()
    ratio = api_seconds / command_seconds
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "charges": options.charges,
        "batch": options.batch,
        "concurrency": options.concurrency,
        "gunicorn_workers": options.workers,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average": os.getloadavg()},
        "import_records_seconds": command_seconds,
        "service_batches_seconds": service_seconds,
        "api_seconds": api_seconds,
        "ratio": ratio,
        "append_floor_seconds": {str(connections): seconds for connections, seconds in floors.items()},
        "append_floor_ratio": floor_seconds / command_seconds,
        "batch_p50_seconds": latencies[len(latencies) // 2] if latencies else None,
        "batch_p95_seconds": latencies[int(len(latencies) * 0.95) - 1] if latencies else None,
        "failed_batches": len(failures),
        "charges_loaded_by_api": loaded,
    }
    out = directory.parent / f"result-api-{options.charges}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2))
    print()
    api_label = f"API, {len(bodies)} x {options.batch:,} over HTTP, {options.concurrency} clients"
    api_label += f", gunicorn {options.workers} workers"
    print("| path | rows | wall (s) | rows/s |")
    print("|---|---:|---:|---:|")
    print(
        "| import_records (charges.csv) "
        f"| {options.charges:,} | {command_seconds:.1f} | {rate(options.charges, command_seconds)} |"
    )
    print(
        f"| records_import in-process, {len(bodies)} x {options.batch:,} (no HTTP) | {options.charges:,} "
        f"| {service_seconds:.1f} | {rate(options.charges, service_seconds)} |"
    )
    print(f"| {api_label} | {loaded:,} | {api_seconds:.1f} | {rate(loaded, api_seconds)} |")
    for connections, seconds in floors.items():
        print(
            f"| append floor: {len(bodies)} x COPY of {options.batch:,} into the live table, {connections} "
            f"connection(s) (no checks, no HTTP) | {options.charges:,} | {seconds:.1f} "
            f"| {rate(options.charges, seconds)} |"
        )
    p50, p95 = result["batch_p50_seconds"] or 0, result["batch_p95_seconds"] or 0
    print(
        f"\nratio API / import_records: {ratio:.2f}x (target <= {TARGET_RATIO}x); "
        f"batch p50 {p50:.2f} s, p95 {p95:.2f} s"
    )
    print(
        f"append floor ({options.concurrency} connections) / import_records: {floor_seconds / command_seconds:.2f}x; "
        f"API / append floor: {api_seconds / floor_seconds:.2f}x"
    )
    print(f"load average at the end: {os.getloadavg()}")
    print(f"Saved {out}")
    return 0 if not failures and loaded == options.charges else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charges", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=2, help="client threads posting at once")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-database", action="store_true")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
