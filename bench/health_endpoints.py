"""Health and metrics benchmark (issue 14): `/readyz` p95 < 20 ms and `/metrics` p95 < 100 ms with the
1M-customer data set loaded.

    scripts/with-services .venv/bin/python bench/health_endpoints.py --customers 1000000
    make bench-health N=1000000          # the same with PG_SETTINGS for shared_buffers etc.

Loads the data set as bench/support_desk.py does (generate once into bench/out/<N>-<seed>/, fresh
database, migrate, `manage.py import_records`, 0.3 tickets per customer), then adds set-based the rows the
metrics read, sized by N: claims of login-outage-2024 for every customer (20 % pending review, 5 % awaiting
a second approval, 60 % approved, the rest computed / rejected), a payout for every approved claim (50 %
notified, 30 % settled, 10 % created and unbatched, 5 % issued, 5 % expired), a notice for every issued or
notified payout (a third of them pending), 500 import runs, a fresh worker heartbeat and sweep runs, then
`VACUUM ANALYZE`. The bulk rows skip the audit triggers (session_replication_role = replica: the owner's
bench load, not the application's path).

It then measures in a child process (`--measure`) with Django's test Client: `--warmup` requests, then
`--requests` timed GETs of `/readyz` and of `/metrics` (bearer token), wall time of `client.get` (the whole
Django stack with the database and Redis, no network hop). Every answer must be 200. p50/p95/max are
printed and saved as JSON in bench/out/, with the query count and the slowest query of one scrape.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_records as base  # bench/ is not a package: its siblings, by path
import support_desk as desk

ROOT = base.ROOT
SETTINGS_MODULE = base.SETTINGS_MODULE
TARGETS_MS = {"readyz": 20.0, "metrics": 100.0}
TOKEN = "bench-metrics-token-0123456789abcdefghij"

MONITORING_SQL = [
    "SET session_replication_role = replica",
    # Claims of login-outage-2024 for every customer, by customer number: 20 % pending review, 5 % awaiting
    # a second approval, 60 % approved, 10 % computed, 5 % rejected; computed over the last 30 days.
    """
    INSERT INTO claims_claim (program_id, subject, customer_id, payee_id, status, eligible, reason, amount_jpy,
                              approved_amount_jpy, payout_method, note, computed_at, qa_review, lines_hash)
    SELECT p.id, c.customer_id, c.customer_id, c.customer_id, s.status, true, '', 1000,
           CASE WHEN s.status = 'approved' THEN 1000 END, 'atm_cash', '',
           now() - (n % 43200) * interval '1 minute', false, ''
      FROM (SELECT customer_id, row_number() OVER (ORDER BY customer_id) AS n FROM customers_customer) c
      CROSS JOIN LATERAL (SELECT CASE WHEN c.n % 20 < 4 THEN 'pending_review'
                                      WHEN c.n % 20 = 4 THEN 'awaiting_second_approval'
                                      WHEN c.n % 20 < 17 THEN 'approved'
                                      WHEN c.n % 20 < 19 THEN 'computed'
                                      ELSE 'rejected' END AS status) s
      JOIN claims_program p ON p.slug = 'login-outage-2024'
    """,
    # A payout for every approved claim: 50 % notified, 30 % settled, 10 % created (unbatched), 5 % issued,
    # 5 % expired.
    """
    INSERT INTO payouts_payout (claim_id, program_id, method, amount_jpy, payee_id, status, idempotency_key,
                                provider, provider_reference, attempts, last_error, created_at, updated_at,
                                issued_at, offer)
    SELECT cl.id, cl.program_id, 'atm_cash', 1000, cl.payee_id, s.status, 'payout:' || cl.id || ':atm_cash',
           '', '', 0, '', cl.computed_at, cl.computed_at,
           CASE WHEN s.status NOT IN ('created') THEN cl.computed_at END, 1
      FROM claims_claim cl
      CROSS JOIN LATERAL (SELECT (cl.id / 20) % 20 AS k) h
      CROSS JOIN LATERAL (SELECT CASE WHEN h.k < 10 THEN 'notified' WHEN h.k < 16 THEN 'settled'
                                      WHEN h.k < 18 THEN 'created' WHEN h.k = 18 THEN 'issued'
                                      ELSE 'expired' END AS status) s
     WHERE cl.status = 'approved'
    """,
    # A notice for every issued or notified payout; a third still pending (the outbox after a big batch).
    """
    INSERT INTO payouts_payoutnotice (payout_id, kind, sequence, channel, language, recipient, status,
                                      send_attempts, message_id, provider_id, last_error, created_at, sent_at)
    SELECT py.id, 'issued', 1, 'email', 'ja', 'bench@example.jp',
           CASE WHEN py.id % 3 = 0 THEN 'pending' ELSE 'sent' END, 0, '', '', '', py.updated_at,
           CASE WHEN py.id % 3 = 0 THEN NULL ELSE py.updated_at END
      FROM payouts_payout py WHERE py.status IN ('issued', 'notified')
    """,
    """
    INSERT INTO core_importrun (source, file_name, sha256, status, started_at, finished_at, rows_read, rows_inserted,
                                rows_updated, errors, error_count)
    SELECT 'command', 'charges-' || g || '.csv', md5(g::text) || md5(g::text),
           CASE WHEN g % 10 = 0 THEN 'rejected' ELSE 'succeeded' END, now() - g * interval '1 hour',
           now() - g * interval '1 hour', 10000, 10000, 0, '[]', CASE WHEN g % 10 = 0 THEN 3 ELSE 0 END
      FROM generate_series(1, 500) g
    """,
    "SET session_replication_role = DEFAULT",
]


def _fresh_state_sql() -> list[str]:
    """A live heartbeat and sweeps that just ran, so that /readyz measures its 200 path."""
    return [
        "INSERT INTO core_workerheartbeat (hostname, seen_at) VALUES ('bench-worker', now()) "
        "ON CONFLICT (hostname) DO UPDATE SET seen_at = now()",
        "INSERT INTO core_sweeprun (sweep, last_run_at, last_reenqueued, reenqueued_total, runs_total) "
        "SELECT s, now(), 0, 0, 1 FROM unnest(ARRAY['payouts.sweep', 'identity.reset_sweep', "
        "'tickets.escalate_breaches']) s ON CONFLICT (sweep) DO UPDATE SET last_run_at = now()",
    ]


# -- measuring child ----------------------------------------------------------------------------------
def measure(database_url: str, requests: int, warmup: int, out: Path) -> int:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    sys.path.insert(0, str(ROOT))
    import django  # noqa: PLC0415

    django.setup()
    from django.conf import settings  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    settings.METRICS_TOKEN = TOKEN
    client = Client()
    with connection.cursor() as cursor:
        for statement in _fresh_state_sql():
            cursor.execute(statement)
        counts = {}
        for table in ("customers_customer", "claims_claim", "payouts_payout", "payouts_payoutnotice"):
            cursor.execute(f"SELECT count(*) FROM {table}")
            counts[table] = cursor.fetchone()[0]
    figures: dict[str, Any] = {"rows": counts, "endpoints": {}}
    headers: dict[str, dict[str, Any]] = {"readyz": {}, "metrics": {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}}
    for endpoint in TARGETS_MS:
        timings: list[float] = []
        statuses: set[int] = set()
        for index in range(warmup + requests):
            started = time.perf_counter()
            response = client.get(f"/{endpoint}", **headers[endpoint])
            elapsed = (time.perf_counter() - started) * 1000
            statuses.add(response.status_code)
            if response.status_code != 200 and index == 0:
                print(f"  {endpoint}: HTTP {response.status_code}: {response.content[:500]!r}", file=sys.stderr)
            if index >= warmup:
                timings.append(elapsed)
        with CaptureQueriesContext(connection) as captured:
            body = client.get(f"/{endpoint}", **headers[endpoint]).content
        slowest = max(captured.captured_queries, key=lambda query: float(query["time"]))
        figures["endpoints"][endpoint] = {
            "requests": len(timings),
            "p50_ms": statistics.median(timings),
            "p95_ms": desk.percentile(timings, 0.95),
            "max_ms": max(timings),
            "statuses": sorted(statuses),
            "queries": len(captured.captured_queries),
            "slowest_query_ms": float(slowest["time"]) * 1000,
            "slowest_query": slowest["sql"][:300],
            "bytes": len(body),
        }
        row = figures["endpoints"][endpoint]
        print(
            f"  {endpoint}: p50 {row['p50_ms']:.1f} ms, p95 {row['p95_ms']:.1f} ms, max {row['max_ms']:.1f} ms, "
            f"{row['queries']} queries (HTTP {row['statuses']})",
            flush=True,
        )
    # What the figures would cost as full counts (the alternative to capped counts and estimates), and
    # the exact values to compare the estimates with.
    full_counts = {
        "payouts by status": "SELECT status, count(*) FROM payouts_payout GROUP BY status ORDER BY status",
        "claims awaiting review": "SELECT status, count(*) FROM claims_claim WHERE status IN "
        "('pending_review', 'awaiting_second_approval', 'needs_rereview') GROUP BY status ORDER BY status",
        "notices pending": "SELECT count(*) FROM payouts_payoutnotice WHERE status = 'pending'",
    }
    figures["full_counts"] = {}
    with connection.cursor() as cursor:
        for name, sql in full_counts.items():
            runs = []
            for _ in range(5):
                started = time.perf_counter()
                cursor.execute(sql)
                rows = cursor.fetchall()
                runs.append((time.perf_counter() - started) * 1000)
            figures["full_counts"][name] = {"median_ms": statistics.median(runs), "rows": [list(r) for r in rows]}
            print(f"  full count, {name}: {statistics.median(runs):.1f} ms -> {rows}", flush=True)
    scrape = client.get("/metrics", **headers["metrics"]).content.decode()
    figures["sample_lines"] = [
        line
        for line in scrape.splitlines()
        if line.startswith(("portal_payouts{", "portal_payout_notices_pending ", "portal_claims_awaiting_review{"))
        or line.startswith("portal_figure_estimated{")
    ]
    out.write_text(json.dumps(figures))
    return 0


# -- orchestration ------------------------------------------------------------------------------------
def run_benchmark(arguments: argparse.Namespace) -> int:
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at PostgreSQL: run under scripts/with-services.", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    size = arguments.customers
    database_url = desk.load(server_url, size, arguments)
    try:
        print(f"[{size:,}] adding claims, payouts, notices and import runs set-based ...", flush=True)
        started = time.monotonic()
        with base.connect(database_url) as connection:
            for statement in MONITORING_SQL:
                connection.execute(statement)
            connection.execute("VACUUM ANALYZE")
        print(f"[{size:,}] monitoring rows and analyze: {time.monotonic() - started:.1f} s", flush=True)
        result: dict[str, Any] = {
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "customers": size,
            "machine": base.machine_description(database_url),
            "load_average_before": os.getloadavg(),
        }
        report = out_dir / f"health-{size}-{stamp}.json"
        print(f"[{size:,}] measuring ...", flush=True)
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure",
                database_url,
                "--requests",
                str(arguments.requests),
                "--warmup",
                str(arguments.warmup),
                "--out",
                str(report),
            ],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE},
            check=False,
        )
        result["load_average_after"] = os.getloadavg()
        if child.returncode != 0:
            return child.returncode
        result.update(json.loads(report.read_text()))
    finally:
        if not arguments.keep_database:
            with base.connect(server_url) as connection:
                connection.execute(f"DROP DATABASE IF EXISTS bench_desk_{size} WITH (FORCE)")
    result_path = out_dir / f"health-{size}-{arguments.seed}-{stamp}.json"
    result_path.write_text(json.dumps(result, indent=2, default=str))
    print_report(result)
    print(f"\nSaved {result_path}")
    met = all(
        result["endpoints"][name]["statuses"] == [200] and result["endpoints"][name]["p95_ms"] < target
        for name, target in TARGETS_MS.items()
    )
    return 0 if met else 1


def print_report(result: dict[str, Any]) -> None:
    machine = result["machine"]
    print()
    print(f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gb']} GB RAM, ", end="")
    print(f"PostgreSQL {machine['postgresql']}, Python {machine['python']}")
    print("Rows: " + ", ".join(f"{table} {n:,}" for table, n in result["rows"].items()))
    print(f"Load average before/after: {result['load_average_before']} / {result['load_average_after']}")
    print()
    print("| endpoint | p50 ms | p95 ms | max ms | queries | slowest query ms | target p95 | met |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, target in TARGETS_MS.items():
        row = result["endpoints"][name]
        met = row["statuses"] == [200] and row["p95_ms"] < target
        print(
            f"| /{name} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['max_ms']:.1f} | {row['queries']} | "
            f"{row['slowest_query_ms']:.1f} | < {target:.0f} | {'met' if met else 'NOT met'} |"
        )
    print()
    print("\n".join(result.get("sample_lines", [])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="generator processes")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--measure", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        return measure(arguments.measure, arguments.requests, arguments.warmup, arguments.out)
    return run_benchmark(arguments)


if __name__ == "__main__":
    sys.exit(main())
