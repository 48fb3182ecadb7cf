"""Claims benchmark (issue 4): login-outage-2024 preview and run against a one-statement SQL floor.

    scripts/with-services .venv/bin/python bench/claims_login_outage.py --customers 1000000
    make bench-claims N=1000000          # the same with PG_SETTINGS for shared_buffers etc.

Steps: generate the demo data set if missing (cached in bench/out/<N>-<seed>/), create a fresh
database on the server of DATABASE_URL, migrate it, load the data with `manage.py import_records`
(untimed here: see bench/import_records.py), open the login-outage-2024 program, then in the same run:

1. floor — ONE hand-written SQL statement (`CREATE TEMP TABLE … AS …`) computing the per-customer
   totals as SPEC defines them (covered months per plan from the plan's first covered month to
   min(JST month of the first login at/after restored_at, cap month); non-promotional charges whose
   period starts in a covered month; only customers with an on-time submission); its customer count
   and total are checked against the preview's and the run's;
2. preview — `manage.py program_dry_run login-outage-2024 --out FILE`: wall time, peak RSS;
3. run — `manage.py program_run login-outage-2024`: wall time, peak RSS;
4. re-run — the same again over unchanged data (must create and update nothing): no input changed since
   the run, so it skips computing (claims.inputs);
5. recompute — `program_run --recompute`: the re-run computing everything anyway (for comparison);
6. write floor — the run's rows copied by one INSERT … SELECT per table into fresh tables with only the
   keys the issue requires (no foreign keys, history or other index), dropped after: the least any
   run must write, to set beside the read-only floor;
7. incremental (issue 15, claims.inputs) — 1 % of the customers (by a hash of the id) gain a new login
   (a third), a new charge (a third) or a new submission (a third), committed by plain SQL, then
   `program_run` recomputes only them; beside it the floor statement restricted to those customers
   (`changed floor`, best of three); then one more submission alone and a run (`single`), and another
   through the admin's path: enqueued by `program_run_start` to a Celery worker already running, timed
   queued → finished by the run row (`single (worker)`);
8. other policies — each of the six other programs runs once (`first`) and again over unchanged inputs
   (`rerun`), the re-run set beside the floor.

The floor statement runs three times (a fresh TEMP table each time) and the fastest counts: the first
reads the tables into shared buffers, which the preview and runs then find warm. Its first (cold)
time is reported beside it.

Peak memory is measured as in bench/import_records.py (each command runs under its `--measure` mode
and reports its own getrusage). PostgreSQL's memory is not included. Results are printed as a
Markdown table and saved as JSON in bench/out/.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_records as base  # bench/ is not a package: its sibling, by path

ROOT = base.ROOT
SETTINGS_MODULE = base.SETTINGS_MODULE
BENCH_DATABASE = "bench_claims"
PROGRAM = "login-outage-2024"
TARGET_RATIO = 2.0
TARGET_SECONDS = 60.0
TARGET_PEAK_MB = 500
# System checks are not what is measured (and a check error in another app's work in progress must not
# stop the benchmark): every manage.py command here runs with --skip-checks.
NO_CHECKS = ["--skip-checks"]

# The floor: one statement, SPEC's rule written out by hand (parameters of migration 0004, literal).
FLOOR_SQL = """
CREATE TEMP TABLE floor_totals AS
WITH plan_start(plan_id, first_month) AS (
    VALUES ('premium', date '2024-09-01'), ('channel', date '2024-09-01'),
           ('channel_plus', date '2024-09-01'), ('creator_support', date '2024-09-01'),
           ('zen_study', date '2024-10-01')
),
first_login AS (
    SELECT customer_id, min(logged_in_at) AS first_at
      FROM customers_login
     WHERE logged_in_at >= timestamptz '2024-08-05 00:00:00+09'
     GROUP BY customer_id
),
applicants AS (
    SELECT DISTINCT subject AS customer_id
      FROM claims_submission
     WHERE program_id = 'login-outage-2024'
       AND submitted_at < timestamptz '2025-02-01 00:00:00+09'
)
SELECT s.customer_id, sum(c.amount_jpy)::bigint AS total
  FROM customers_subscription s
  JOIN plan_start ps ON ps.plan_id = s.plan_id
  JOIN applicants a ON a.customer_id = s.customer_id
  JOIN customers_charge c ON c.subscription_id = s.subscription_id
  LEFT JOIN first_login fl ON fl.customer_id = s.customer_id
 WHERE NOT c.promotional
   AND c.period_start >= ps.first_month
   AND c.period_start < LEAST(COALESCE(date_trunc('month', fl.first_at AT TIME ZONE 'Asia/Tokyo')::date,
                                       date '2024-12-01'),
                              date '2024-12-01') + interval '1 month'
 GROUP BY s.customer_id
HAVING sum(c.amount_jpy) > 0
"""


FLOOR_RUNS = 3

# Issue 15: the changed 1 % of the customers (by a hash of the id), split in three.
CHANGED_SQL = """
CREATE TABLE bench_changed AS
SELECT customer_id, row_number() OVER (ORDER BY customer_id) % 3 AS kind
  FROM customers_customer
 WHERE abs(hashtext(customer_id)) % 100 = 0
"""
CHANGES_SQL = (
    # a login earlier than any covered month ends: fewer months covered
    "INSERT INTO customers_login (customer_id, logged_in_at)"
    " SELECT customer_id, timestamptz '2024-09-20 12:00:00.123+09' FROM bench_changed WHERE kind = 0"
    " ON CONFLICT DO NOTHING",
    # a charge in November on the customer's first subscription
    "INSERT INTO customers_charge (charge_id, subscription_id, amount_jpy, charged_at, period_start, period_end,"
    " payment_method, promotional)"
    " SELECT 'BENCH-' || b.customer_id, min(s.subscription_id), 100, timestamptz '2024-11-15 03:00+09',"
    " date '2024-11-15', date '2024-12-15', '', false"
    " FROM bench_changed b JOIN customers_subscription s ON s.customer_id = b.customer_id WHERE b.kind = 1"
    " GROUP BY b.customer_id",
    # a re-submission (on time)
    "INSERT INTO claims_submission (submission_id, program_id, subject, submitted_at, channel, contact_email,"
    " contact_phone, payout_method, reason, fault)"
    " SELECT 'BENCH-' || customer_id, 'login-outage-2024', customer_id, timestamptz '2025-01-20 12:00+09', 'web',"
    " '', '', 'bank_transfer', '', '' FROM bench_changed WHERE kind = 2",
)
SINGLE_SQL = (
    "INSERT INTO claims_submission (submission_id, program_id, subject, submitted_at, channel, contact_email,"
    " contact_phone, payout_method, reason, fault)"
    " SELECT 'BENCH-SINGLE', 'login-outage-2024', min(customer_id), timestamptz '2025-01-21 12:00+09', 'web',"
    " '', '', '', '', '' FROM customers_customer"
)
# The operator's path for the same change: the admin's "Run" (program_run_start) records a run and
# enqueues it after commit; a Celery worker already running executes it. Seconds are the run row's own
# timestamps, queued_at → finished_at (what the run's progress page shows), so the measuring process's
# start-up is outside them. A first enqueue over unchanged inputs warms the worker up (its imports and
# database connection), as any worker that has run a task before is.
WORKER_RUN_CODE = """
import json, time
from claims.models import Program, ProgramRun
from claims.services import program_run_start
program = Program.objects.get(slug=%(program)r)
def wait(run):
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in (ProgramRun.Status.SUCCEEDED, ProgramRun.Status.FAILED):
            return run
        time.sleep(0.01)
    raise SystemExit("the worker did not finish the run within 600 s")
wait(program_run_start(program=program, actor=None))
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute(%(single_sql)r)
run = wait(program_run_start(program=program, actor=None))
print(json.dumps({"status": run.status, "error": run.error, "created": run.created, "updated": run.updated,
                  "total": run.total, "seconds": (run.finished_at - run.queued_at).total_seconds(),
                  "queue_seconds": (run.started_at - run.queued_at).total_seconds()}))
"""
SINGLE_WORKER_SQL = SINGLE_SQL.replace("'BENCH-SINGLE'", "'BENCH-SINGLE-WORKER'").replace(
    "min(customer_id)", "max(customer_id)"
)

OTHER_PROGRAMS = (
    "coupon-outage-2023",
    "autorenew-60day",
    "cooling-off-7day",
    "service-failure-prorata",
    "company-termination",
    "overpayment",
)


def changed_floor_sql() -> str:
    """The floor statement limited to the changed customers (what an incremental run must read at least)."""
    return FLOOR_SQL.replace(
        "JOIN applicants a ON a.customer_id = s.customer_id",
        "JOIN applicants a ON a.customer_id = s.customer_id\n  JOIN bench_changed bc ON bc.customer_id = s.customer_id",
    ).replace(
        "WHERE logged_in_at >= timestamptz '2024-08-05 00:00:00+09'",
        "WHERE logged_in_at >= timestamptz '2024-08-05 00:00:00+09'"
        " AND customer_id IN (SELECT customer_id FROM bench_changed)",
    )


def apply_changes(url: str) -> tuple[int, float]:
    """Commits the 1 % changes (one statement each); returns the changed customers and the changed floor."""
    with base.connect(url) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_changed")
        connection.execute(CHANGED_SQL)
        connection.execute("ANALYZE bench_changed")
        for statement in CHANGES_SQL:
            connection.execute(statement)
        [(changed,)] = connection.execute("SELECT count(*) FROM bench_changed").fetchall()
        runs = []
        for _ in range(FLOOR_RUNS):
            connection.execute("DROP TABLE IF EXISTS floor_totals")
            started = time.monotonic()
            connection.execute(changed_floor_sql())
            runs.append(time.monotonic() - started)
        connection.execute("DROP TABLE IF EXISTS floor_totals")
    return int(changed), min(runs)


def measure_floor(url: str) -> tuple[list[float], int, int]:
    """Seconds of each of FLOOR_RUNS executions (the first cold), and the customers and total computed."""
    runs: list[float] = []
    with base.connect(url) as connection:
        base.checkpoint(connection)
        for _ in range(FLOOR_RUNS):
            connection.execute("DROP TABLE IF EXISTS floor_totals")
            started = time.monotonic()
            connection.execute(FLOOR_SQL)
            runs.append(time.monotonic() - started)
        customers, total = connection.execute("SELECT count(*), COALESCE(sum(total), 0) FROM floor_totals").fetchone()
    return runs, int(customers), int(total)


# The least any run must write: the run's rows copied, by one INSERT … SELECT each, into fresh tables that
# carry only the keys the issue itself requires (one claim per program and subject; one line per claim
# and position; a UNIQUE grant key) — no foreign keys, no audit history, no secondary index.
WRITE_FLOOR_SQL = (
    "CREATE TABLE wf_grant (LIKE claims_grant INCLUDING DEFAULTS INCLUDING IDENTITY)",
    "ALTER TABLE wf_grant ADD PRIMARY KEY (id), ADD UNIQUE (grant_key)",
    "CREATE TABLE wf_claim (LIKE claims_claim INCLUDING DEFAULTS INCLUDING IDENTITY)",
    "ALTER TABLE wf_claim ADD PRIMARY KEY (id), ADD UNIQUE (program_id, subject)",
    "CREATE TABLE wf_line (LIKE claims_claimline INCLUDING DEFAULTS INCLUDING IDENTITY)",
    "ALTER TABLE wf_line ADD PRIMARY KEY (id), ADD UNIQUE (claim_id, position)",
    "CHECKPOINT",
    "INSERT INTO wf_grant SELECT g.* FROM claims_grant g JOIN claims_program p ON p.id = g.program_id"
    " WHERE p.slug = %(program)s ORDER BY g.grant_key",
    "INSERT INTO wf_claim SELECT c.* FROM claims_claim c JOIN claims_program p ON p.id = c.program_id"
    " WHERE p.slug = %(program)s ORDER BY c.subject",
    "INSERT INTO wf_line SELECT l.* FROM claims_claimline l JOIN wf_claim c ON c.id = l.claim_id",
)


def measure_write_floor(url: str) -> dict[str, float]:
    """Seconds of each INSERT of WRITE_FLOOR_SQL (grants, claims, lines); the tables are dropped after.

    Each statement commits on its own, as the run's real tables are written: a table created in the
    same transaction as its rows would skip the WAL (wal_level=minimal) and undercount.
    """
    seconds: dict[str, float] = {}
    with base.connect(url) as connection:
        try:
            for statement in WRITE_FLOOR_SQL:
                started = time.monotonic()
                connection.execute(statement, {"program": PROGRAM} if "%(" in statement else None)
                if statement.startswith("INSERT"):
                    seconds[statement.split()[2]] = time.monotonic() - started
        finally:
            connection.execute("DROP TABLE IF EXISTS wf_grant, wf_claim, wf_line")
    return seconds


def claim_counts(url: str) -> dict[str, int]:
    query = """
        SELECT count(c.id), count(*) FILTER (WHERE c.eligible), COALESCE(sum(c.amount_jpy), 0),
               (SELECT count(*) FROM claims_claimline l JOIN claims_claim c2 ON c2.id = l.claim_id
                 WHERE c2.program_id = p.id),
               (SELECT count(*) FROM claims_grant g WHERE g.program_id = p.id)
          FROM claims_program p LEFT JOIN claims_claim c ON c.program_id = p.id
         WHERE p.slug = %s
         GROUP BY p.id
    """
    with base.connect(url) as connection:
        claims, eligible, total, lines, grants = connection.execute(query, (PROGRAM,)).fetchone()
    return {"claims": claims, "eligible": eligible, "total_jpy": int(total), "lines": lines, "grants": grants}


def output_figures(log_path: Path, pattern: str) -> dict[str, int]:
    match = re.search(pattern, log_path.read_text(encoding="utf-8")) if log_path.exists() else None
    return {key: int(value) for key, value in match.groupdict().items()} if match else {}


PREVIEW_PATTERN = r"(?P<subjects>\d+) subjects, (?P<eligible>\d+) eligible, ¥(?P<total_jpy>\d+)"
RUN_PATTERN = (
    r"total=(?P<total>\d+) created=(?P<created>\d+) updated=(?P<updated>\d+) "
    r"sent_to_rereview=(?P<sent_to_rereview>\d+) unchanged=(?P<unchanged>\d+)"
)


def fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "–" if value is None else pattern.format(value)


def print_report(result: dict[str, Any]) -> None:
    machine = result["machine"]
    floor = result["floor"]
    print()
    print(f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gb']} GB RAM, ", end="")
    print(f"PostgreSQL {machine['postgresql']}, Python {machine['python']}")
    print("PostgreSQL settings: " + ", ".join(f"{k}={v}" for k, v in machine["postgresql_settings"].items()))
    print(f"Data: {result['customers']:,} customers, seed {result['seed']}; import {result['import_seconds']:.1f} s")
    print()
    print("| step | wall s | × floor | peak RSS MB | eligible customers | total ¥ | matches floor | counts |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    cold = f"first (cold) run {floor['runs'][0]:.2f} s" if floor.get("runs") else ""
    print(
        f"| floor (one SQL statement) | {floor['seconds']:.2f} | 1.00 | – | {floor['customers']:,} | "
        f"{floor['total_jpy']:,} | – | {cold} |"
    )
    for step in ("preview", "run", "rerun", "recompute"):
        figures = result.get(step)
        if not figures:
            continue
        ratio = figures["seconds"] / floor["seconds"] if floor["seconds"] else None
        matches = figures["eligible"] == floor["customers"] and figures["total_jpy"] == floor["total_jpy"]
        print(
            f"| {step} | {figures['seconds']:.2f} | {fmt(ratio, '{:.2f}')} | {figures['peak_rss_mb']:.0f} | "
            f"{fmt(figures['eligible'], '{:,}')} | {fmt(figures['total_jpy'], '{:,}')} | "
            f"{'yes' if matches else 'NO'} | {figures['counts']} |"
        )
    write_floor = result.get("write_floor")
    if write_floor:
        bare = sum(write_floor.values())
        print()
        print(
            "Write floor (the run's grants, claims and lines copied by INSERT … SELECT into tables with only "
            f"their required keys; no foreign keys, history or other index): {bare:.2f} s "
            f"({', '.join(f'{table} {s:.2f}' for table, s in write_floor.items())}) = {bare / floor['seconds']:.2f}x "
            f"the floor; floor + write floor = {(floor['seconds'] + bare) / floor['seconds']:.2f}x"
        )
    run, rerun, recompute = result.get("run"), result.get("rerun"), result.get("recompute")
    if run:
        ratio_ok = run["seconds"] <= TARGET_RATIO * floor["seconds"]
        print()
        print(
            f"Targets: run within {TARGET_RATIO:.0f}x of the floor: {'met' if ratio_ok else 'NOT met'}; "
            f"run under {TARGET_SECONDS:.0f} s: {'met' if run['seconds'] < TARGET_SECONDS else 'NOT met'}; "
            f"peak memory under {TARGET_PEAK_MB} MB: {'met' if run['peak_rss_mb'] < TARGET_PEAK_MB else 'NOT met'}"
            + (
                f"; re-run within {TARGET_RATIO:.0f}x of the floor: "
                f"{'met' if rerun['seconds'] <= TARGET_RATIO * floor['seconds'] else 'NOT met'}"
                if rerun
                else ""
            )
            + (
                f" (recomputing: {recompute['seconds'] / floor['seconds']:.2f}x)"
                if recompute and floor["seconds"]
                else ""
            )
        )


def measured_run(
    result: dict[str, Any], step: str, argv: list[str], env: dict[str, str], reports: Path, stamp: str, url: str
) -> int:
    """Runs one `manage.py program_run` measured, recording its wall time, peak RSS and printed counts."""
    print(f"{step}: manage.py {' '.join(argv)}", flush=True)
    log_path = reports / f"claims-{step.replace(' ', '-')}-{stamp}.log"
    measured = base.run_measured([*argv, *NO_CHECKS], env, reports / "claims-step.json", log_path)
    figures: dict[str, Any] = asdict(measured)
    figures["result"] = output_figures(log_path, RUN_PATTERN)
    figures["log"] = log_path.read_text(encoding="utf-8")[-2000:] if log_path.exists() else ""
    # The run's own seconds (its steps, as program_run prints them), without the process start-up
    figures["in_run_seconds"] = sum(float(value) for value in re.findall(r"=([0-9.]+)s\b", figures["log"]))
    result.setdefault("steps", {})[step] = figures
    print(f"  {measured.seconds:.2f} s, {measured.peak_rss_mb:.0f} MB: {figures['result']}", flush=True)
    return measured.exit_code


def measure_worker_single(env: dict[str, str]) -> dict[str, Any]:
    """One more submission, run the way the admin runs it: enqueued to a Celery worker already running."""
    print("single (worker): program_run_start → a running Celery worker", flush=True)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "support_portal",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--hostname=bench@claims",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        code = WORKER_RUN_CODE % {"program": PROGRAM, "single_sql": SINGLE_WORKER_SQL}
        completed = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=ROOT,
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    if completed.returncode != 0:
        raise RuntimeError(f"the worker's single-submission run failed:\n{completed.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    if figures["status"] != "succeeded" or figures["updated"] + figures["created"] != 1:
        raise RuntimeError(f"the worker's single-submission run did not change exactly one claim: {figures}")
    print(f"  {figures['seconds']:.3f} s queued → finished ({figures['queue_seconds']:.3f} s in the queue)", flush=True)
    return figures


def print_incremental(result: dict[str, Any]) -> None:
    steps, floor = result.get("steps", {}), result["floor"]["seconds"]
    if not steps:
        return
    run = result.get("run", {}).get("seconds")  # the full run (wall; its in-run steps are in its log)
    changed = result.get("changed", {})
    print()
    print("| step | wall s | in-run s | × read floor | × full run | × changed floor | peak RSS MB | counts |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for step, figures in steps.items():
        seconds = figures["in_run_seconds"]
        changed_ratio = seconds / changed["floor_seconds"] if step == "incremental" and changed else None
        print(
            f"| {step} | {figures['seconds']:.2f} | {seconds:.3f} | {seconds / floor:.3f} | "
            f"{fmt(seconds / run if run else None, '{:.3f}')} | "
            f"{fmt(changed_ratio, '{:.2f}')} | {figures['peak_rss_mb']:.0f} | {figures['result']} |"
        )
    if changed:
        print(f"\nChanged: {changed['customers']:,} customers; changed floor {changed['floor_seconds']:.3f} s")
    worker = result.get("single_worker")
    if worker:
        print(
            f"Single submission through a running worker (admin's Run): {worker['seconds']:.3f} s queued → "
            f"finished, {worker['queue_seconds']:.3f} s of it in the queue"
        )


def ensure_data(customers: int, seed: int, workers: int | None) -> Path:
    from support_portal.core.demo.generator import generate_demo_data, is_complete  # noqa: PLC0415

    directory = ROOT / "bench" / "out" / f"{customers}-{seed}"
    if is_complete(directory):
        print(f"Using the cached data set in {directory}")
    else:
        print(f"Generating {customers:,} customers into {directory} ...", flush=True)
        generate_demo_data(directory, customers=customers, seed=seed, workers=workers)
    return directory


def run_benchmark(arguments: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """One size (arguments.customers): every step; returns the exit code and the figures."""
    server_url = os.environ["DATABASE_URL"]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    directory = ensure_data(arguments.customers, arguments.seed, arguments.workers)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    reports = directory.parent / "runs"
    reports.mkdir(exist_ok=True)

    with base.connect(server_url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    database_url = base.database_url_for(server_url, BENCH_DATABASE)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "customers": arguments.customers,
        "seed": arguments.seed,
        "program": PROGRAM,
    }
    exit_codes: list[int] = []
    try:
        print("Migrating a fresh database ...", flush=True)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0", "--skip-checks"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        result["machine"] = base.machine_description(database_url)
        print(f"Loading: manage.py import_records {directory}", flush=True)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "manage.py", "import_records", str(directory), "--skip-checks"],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        result["import_seconds"] = time.monotonic() - started
        with base.connect(database_url) as connection:
            connection.execute("UPDATE claims_program SET status = 'open' WHERE slug = %s", (PROGRAM,))
            connection.execute("VACUUM ANALYZE")

        print("Floor: one SQL statement ...", flush=True)
        runs, customers, total = measure_floor(database_url)
        seconds = min(runs)
        result["floor"] = {"seconds": seconds, "runs": runs, "customers": customers, "total_jpy": total}
        print(f"  {seconds:.2f} s (runs: {', '.join(f'{r:.2f}' for r in runs)}): {customers:,} customers, ¥{total:,}")

        steps = [
            ("preview", ["program_dry_run", PROGRAM, "--out", str(reports / f"preview-{stamp}.csv"), *NO_CHECKS]),
            ("run", ["program_run", PROGRAM, *NO_CHECKS]),
            ("rerun", ["program_run", PROGRAM, *NO_CHECKS]),
            ("recompute", ["program_run", PROGRAM, "--recompute", *NO_CHECKS]),
        ]
        for step, argv in steps:
            if arguments.skip_rerun and step in ("rerun", "recompute"):
                continue
            with base.connect(database_url) as connection:
                base.checkpoint(connection)
            print(f"{step}: manage.py {' '.join(argv)}", flush=True)
            log_path = reports / f"claims-{step}-{stamp}.log"
            measured = base.run_measured(argv, env, reports / f"claims-{step}.json", log_path)
            exit_codes.append(measured.exit_code)
            figures: dict[str, Any] = asdict(measured)
            if step == "preview":
                printed = output_figures(log_path, PREVIEW_PATTERN)
                figures.update(eligible=printed.get("eligible"), total_jpy=printed.get("total_jpy"))
                figures["counts"] = f"{printed.get('subjects', 0):,} subjects"
            else:
                printed = output_figures(log_path, RUN_PATTERN)
                stored = claim_counts(database_url)
                figures.update(eligible=stored["eligible"], total_jpy=stored["total_jpy"], stored=stored)
                figures["result"] = printed
                figures["counts"] = (
                    f"{printed.get('created', 0):,} created, {printed.get('updated', 0):,} updated, "
                    f"{printed.get('unchanged', 0):,} unchanged; {stored['claims']:,} claims, "
                    f"{stored['lines']:,} lines, {stored['grants']:,} grants"
                )
            result[step] = figures
            if measured.exit_code != 0:
                break
        if "run" in result and result["run"]["exit_code"] == 0:
            print("Write floor: the run's rows into tables with the required keys only ...", flush=True)
            result["write_floor"] = measure_write_floor(database_url)
        if "run" in result and result["run"]["exit_code"] == 0 and not arguments.skip_incremental:
            print("Incremental: 1 % of the customers change ...", flush=True)
            changed, changed_floor = apply_changes(database_url)
            result["changed"] = {"customers": changed, "floor_seconds": changed_floor}
            print(f"  {changed:,} customers; changed floor {changed_floor:.3f} s", flush=True)
            exit_codes.append(
                measured_run(result, "incremental", ["program_run", PROGRAM], env, reports, stamp, database_url)
            )
            with base.connect(database_url) as connection:
                connection.execute(SINGLE_SQL)
            exit_codes.append(
                measured_run(result, "single", ["program_run", PROGRAM], env, reports, stamp, database_url)
            )
            result["single_worker"] = measure_worker_single(env)
            for slug in OTHER_PROGRAMS:
                with base.connect(database_url) as connection:
                    connection.execute("UPDATE claims_program SET status = 'open' WHERE slug = %s", (slug,))
                for step in ("first", "rerun"):
                    exit_codes.append(
                        measured_run(result, f"{slug} {step}", ["program_run", slug], env, reports, stamp, database_url)
                    )
    finally:
        if not arguments.keep_database:
            with base.connect(server_url) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")

    result_path = directory.parent / f"claims-{arguments.customers}-{arguments.seed}-{stamp}.json"
    result_path.write_text(json.dumps(result, indent=2, default=str))
    print_report(result)
    print_incremental(result)
    print(f"\nSaved {result_path}")
    return (0 if all(code == 0 for code in exit_codes) else 1), result


# The steps whose growth with the data set the scale curve shows (issue 15 §3).
SCALE_STEPS = (
    "floor",
    "preview",
    "run",
    "rerun",
    "recompute",
    "incremental",
    "single",
    "single (worker)",
    *(f"{slug} {step}" for slug in OTHER_PROGRAMS for step in ("first", "rerun")),
)


def scale_figures(result: dict[str, Any]) -> dict[str, tuple[float, float | None]]:
    """Step -> (seconds, peak RSS MB of the Python process; None for SQL-only steps)."""
    figures: dict[str, tuple[float, float | None]] = {"floor": (result["floor"]["seconds"], None)}
    for step in SCALE_STEPS[1:]:
        measured = result.get(step) or result.get("steps", {}).get(step)
        if measured:
            figures[step] = (measured["seconds"], measured["peak_rss_mb"])
    if "single_worker" in result:  # timed by the run row, in a worker process that is not measured
        figures["single (worker)"] = (result["single_worker"]["seconds"], None)
    return figures


def print_scale(results: list[dict[str, Any]]) -> None:
    """Time and peak memory per step at each size, and each size's ratio to the first."""
    per_size = [scale_figures(result) for result in results]
    sizes = [result["customers"] for result in results]
    print()
    print(f"Scale curve: {', '.join(f'{n:,}' for n in sizes)} customers (ratios against {sizes[0]:,})")
    header = " | ".join(f"{n:,}: s / MB / ×" for n in sizes)
    print(f"| step | {header} |")
    print("|---|" + "---:|" * len(sizes))
    for step in SCALE_STEPS:
        if step not in per_size[0]:
            continue
        first = per_size[0][step][0]
        cells = []
        for figures in per_size:
            if step not in figures:
                cells.append("–")
                continue
            seconds, rss = figures[step]
            ratio = seconds / first if first else None
            cells.append(f"{seconds:.2f} / {fmt(rss, '{:.0f}')} / {fmt(ratio, '{:.2f}')}")
        print(f"| {step} | " + " | ".join(cells) + " |")
    growth = sizes[-1] / sizes[0]
    print(
        f"(data grows {growth:.1f}×: linear means each step's × about {growth:.1f}; target run ≤ {growth * 1.1:.1f}×)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--customers",
        default="100000",
        help="one size, or a comma-separated list run one after another in this invocation (e.g. 1000000,3000000)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="generator processes")
    parser.add_argument("--keep-database", action="store_true", help=f"keep the {BENCH_DATABASE} database")
    parser.add_argument("--skip-rerun", action="store_true")
    parser.add_argument("--skip-incremental", action="store_true", help="no incremental or other-policy steps")
    parser.add_argument(
        "--from-json", nargs="+", metavar="FILE", help="only print the scale curve of results saved by earlier runs"
    )
    arguments = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at PostgreSQL: run under scripts/with-services.", file=sys.stderr)
        return 2
    try:
        sizes = [int(size.replace("_", "")) for size in str(arguments.customers).split(",") if size.strip()]
    except ValueError:
        parser.error(f"--customers: not a number or a list of numbers: {arguments.customers!r}")
    if arguments.from_json:
        print_scale([json.loads(Path(path).read_text()) for path in arguments.from_json])
        return 0
    codes, results = [], []
    for size in sizes:
        code, result = run_benchmark(argparse.Namespace(**{**vars(arguments), "customers": size}))
        codes.append(code)
        results.append(result)
    if len(results) > 1:
        print_scale(results)
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
