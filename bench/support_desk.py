"""Support desk benchmark (issue 3): inbox, customer search by phone and the customer 360 page,
at 10,000 customers and at N (default 1,000,000) customers in the same run.

    scripts/with-services .venv/bin/python bench/support_desk.py --customers 1000000
    make bench-desk N=1000000            # the same with PG_SETTINGS for shared_buffers etc.

For each size (the small one first): generate the demo data set if missing (cached in
bench/out/<N>-<seed>/, as bench/import_records.py does), create a fresh database, migrate it, load it with
`manage.py import_records` (untimed here), add tickets set-based (`INSERT … SELECT … generate_series`,
0.3 per customer: 300,000 at a million) spread over three queues, statuses and ten years of created_at,
`VACUUM ANALYZE`, then measure in a child process (`--measure`) with Django's test Client signed in as an
agent who is a member of every queue:

- inbox — GET the ticket changelist (`/admin/tickets/ticket/`, its default ordering and filters);
- search by phone — GET the customer changelist with `?q=` a random customer's phone typed with hyphens;
- customer 360 — GET a random customer's change page (the 360 page).

Each page: `--warmup` requests, then `--requests` timed requests (wall time of `client.get`, i.e. the
whole Django stack including the database, without a network hop). p50/p95 per page and size are
printed as a Markdown table and saved as JSON in bench/out/. Target: p95 < 150 ms at N and at most
1.5x the p95 at 10,000.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import import_records as base  # bench/ is not a package: its sibling, by path

ROOT = base.ROOT
SETTINGS_MODULE = base.SETTINGS_MODULE
SMALL = 10_000
TICKETS_PER_CUSTOMER = 0.3
TARGET_P95_MS = 150.0
TARGET_RATIO = 1.5
PAGES = ("inbox", "search_phone", "customer_360")

QUEUES_SQL = """
INSERT INTO tickets_queue (name, slug, first_response_minutes, resolution_minutes, opens_at, closes_at, open_weekends)
VALUES ('ログイン・パスワード', 'login', 240, 1440, '10:00', '18:00', true),
       ('補償・返金', 'compensation', 480, 2880, '10:00', '18:00', false),
       ('リーダー', 'lead', 120, 960, '10:00', '18:00', false)
"""

# Customer ids of the generated data are C00000001 … C<N>; every ticket names one of them.
TICKETS_SQL = """
INSERT INTO tickets_ticket (queue_id, category, channel, priority, status, subject, customer_id, requester_email,
                            created_at, updated_at, first_response_due_at, resolution_due_at, first_responded_at,
                            resolved_at, closed_at)
SELECT q.id,
       (ARRAY['login', 'compensation', 'refund', 'double_charge', 'other'])[1 + g % 5],
       (ARRAY['web', 'email', 'phone', 'chat'])[1 + g % 4],
       1 + g % 3,
       s.status,
       'お問い合わせ #' || g,
       'C' || lpad((1 + (g::bigint * 7919) % %(customers)s)::text, 8, '0'),
       '',
       t.created_at, t.created_at,
       t.created_at + interval '4 hours', t.created_at + interval '3 days',
       CASE WHEN s.status <> 'new' THEN t.created_at + interval '2 hours' END,
       CASE WHEN s.status IN ('resolved', 'closed') THEN t.created_at + interval '1 day' END,
       CASE WHEN s.status = 'closed' THEN t.created_at + interval '2 days' END
  FROM generate_series(1, %(tickets)s) AS g
  CROSS JOIN LATERAL (SELECT now() - (g::double precision / %(tickets)s) * interval '3650 days' AS created_at) t
  CROSS JOIN LATERAL (
      SELECT CASE WHEN g % 10 < 6 THEN 'closed' WHEN g % 10 = 6 THEN 'resolved' WHEN g % 10 = 7 THEN 'new'
                  WHEN g % 10 = 8 THEN 'open' ELSE 'pending_customer' END AS status) s
  JOIN tickets_queue q ON q.slug = (ARRAY['login', 'compensation', 'lead'])[1 + g % 3]
"""


def ensure_data(customers: int, seed: int, workers: int | None) -> Path:
    from support_portal.core.demo.generator import generate_demo_data, is_complete  # noqa: PLC0415

    directory = ROOT / "bench" / "out" / f"{customers}-{seed}"
    if is_complete(directory):
        print(f"Using the cached data set in {directory}", flush=True)
    else:
        print(f"Generating {customers:,} customers into {directory} ...", flush=True)
        generate_demo_data(directory, customers=customers, seed=seed, workers=workers)
    return directory


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# -- measuring child (Django set up against one database) ---------------------------------------------
def measure(database_url: str, requests: int, warmup: int, seed: int, out: Path) -> int:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    sys.path.insert(0, str(ROOT))
    import django  # noqa: PLC0415

    django.setup()
    from django.conf import settings  # noqa: PLC0415
    from django.contrib.auth.models import Group, User  # noqa: PLC0415
    from django.db import connection  # noqa: PLC0415
    from django.test import Client  # noqa: PLC0415

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    agent, _created = User.objects.get_or_create(username="bench-agent", defaults={"is_staff": True})
    agent.groups.add(Group.objects.get(name="agent"))
    from support_portal.tickets.models import Queue  # noqa: PLC0415

    for queue in Queue.objects.all():
        queue.members.add(agent)
    client = Client()
    client.force_login(agent)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM customers_customer")
        customers = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM tickets_ticket")
        tickets = cursor.fetchone()[0]
    rng = random.Random(seed)

    def random_customers(count: int) -> list[tuple[str, str]]:
        ids = [f"C{rng.randint(1, customers):08d}" for _ in range(count)]
        with connection.cursor() as cursor:
            cursor.execute("SELECT customer_id, phone FROM customers_customer WHERE customer_id = ANY(%s)", [ids])
            found = dict(cursor.fetchall())
        return [(customer_id, found.get(customer_id, "")) for customer_id in ids]

    def hyphenated(phone: str) -> str:
        digits = "".join(ch for ch in phone if ch.isdigit())
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}" if len(digits) == 11 else phone

    total = warmup + requests
    picks = random_customers(total)
    with_phone = [pick for pick in picks if pick[1]] or picks
    urls: dict[str, list[str]] = {
        "inbox": ["/admin/tickets/ticket/"] * total,
        "search_phone": [
            f"/admin/customers/customer/?q={hyphenated(with_phone[i % len(with_phone)][1])}" for i in range(total)
        ],
        "customer_360": [f"/admin/customers/customer/{customer_id}/change/" for customer_id, _phone in picks],
    }
    figures: dict[str, Any] = {"customers": customers, "tickets": tickets, "pages": {}}
    for page in PAGES:
        timings: list[float] = []
        statuses: set[int] = set()
        for index, url in enumerate(urls[page]):
            started = time.perf_counter()
            try:
                status = client.get(url).status_code
            except Exception as exc:
                print(f"  {page}: {url} failed: {exc!r}", file=sys.stderr, flush=True)
                status = 599
            elapsed = (time.perf_counter() - started) * 1000
            statuses.add(status)
            if index >= warmup:
                timings.append(elapsed)
        figures["pages"][page] = {
            "requests": len(timings),
            "p50_ms": statistics.median(timings),
            "p95_ms": percentile(timings, 0.95),
            "max_ms": max(timings),
            "statuses": sorted(statuses),
            "example": urls[page][-1],
        }
        print(
            f"  {page}: p50 {figures['pages'][page]['p50_ms']:.1f} ms, p95 {figures['pages'][page]['p95_ms']:.1f} ms "
            f"(HTTP {sorted(statuses)})",
            flush=True,
        )
    # One more request per page with the SQL captured: how many queries, and the slowest one.
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    for page in PAGES:
        with CaptureQueriesContext(connection) as captured:
            client.get(urls[page][-1])
        slowest = max(captured.captured_queries, key=lambda query: float(query["time"]))
        figures["pages"][page]["queries"] = len(captured.captured_queries)
        figures["pages"][page]["slowest_query_ms"] = float(slowest["time"]) * 1000
        figures["pages"][page]["slowest_query"] = slowest["sql"][:300]
    # The plan of the phone search at this size (it must be an index scan, whatever the table size).
    from support_portal.customers.models import Customer  # noqa: PLC0415
    from support_portal.customers.selectors import customer_search  # noqa: PLC0415

    typed = hyphenated(with_phone[0][1])
    sql, params = customer_search(Customer.objects.all(), typed).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
        figures["phone_search_plan"] = [row[0] for row in cursor.fetchall()]
    print("  phone search plan: " + " / ".join(line.strip() for line in figures["phone_search_plan"][:4]), flush=True)
    out.write_text(json.dumps(figures))
    return 0


# -- orchestration ------------------------------------------------------------------------------------
def load(server_url: str, size: int, arguments: argparse.Namespace) -> str:
    directory = ensure_data(size, arguments.seed, arguments.workers)
    name = f"bench_desk_{size}"
    with base.connect(server_url) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {name}")
    database_url = base.database_url_for(server_url, name)
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}
    print(f"[{size:,}] migrating, importing {directory} ...", flush=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0", "--skip-checks"], env=env, cwd=ROOT, check=True
    )
    import_log = ROOT / "bench" / "out" / f"desk-import-{size}.log"
    with import_log.open("w") as log:
        imported = subprocess.run(
            [sys.executable, "manage.py", "import_records", str(directory), "--skip-checks"],
            env=env,
            cwd=ROOT,
            check=False,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    if imported.returncode != 0:
        print(import_log.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"import_records failed at {size:,} customers (log: {import_log})")
    tickets = round(size * TICKETS_PER_CUSTOMER)
    print(f"[{size:,}] adding {tickets:,} tickets set-based, VACUUM ANALYZE ...", flush=True)
    started = time.monotonic()
    with base.connect(database_url) as connection:
        connection.execute(QUEUES_SQL)
        connection.execute(TICKETS_SQL.replace("%(customers)s", str(size)).replace("%(tickets)s", str(tickets)))
        connection.execute("VACUUM ANALYZE")
    print(f"[{size:,}] tickets and analyze: {time.monotonic() - started:.1f} s", flush=True)
    return database_url


def print_report(result: dict[str, Any]) -> None:
    small, large = result["sizes"]
    machine = result.get("machine", {})
    print()
    if machine:
        print(f"Machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['memory_gb']} GB RAM, ", end="")
        print(f"PostgreSQL {machine['postgresql']}, Python {machine['python']}")
    s, lg = result[str(small)], result[str(large)]
    print(f"Data: {s['customers']:,} customers / {s['tickets']:,} tickets vs {lg['customers']:,} / {lg['tickets']:,}")
    print()
    print(
        f"| page | {small:,} p50 ms | {small:,} p95 ms | {large:,} p50 ms | {large:,} p95 ms | p95 ratio | "
        "queries | target |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for page in PAGES:
        a, b = s["pages"][page], lg["pages"][page]
        ratio = b["p95_ms"] / a["p95_ms"] if a["p95_ms"] else float("inf")
        met = b["p95_ms"] < TARGET_P95_MS and ratio <= TARGET_RATIO
        if a["statuses"] != [200] or b["statuses"] != [200]:
            # A page that answered anything but 200 was not measured as the real page.
            print(f"| {page} | HTTP {a['statuses']} | | HTTP {b['statuses']} | | | not measured |")
            continue
        print(
            f"| {page} | {a['p50_ms']:.1f} | {a['p95_ms']:.1f} | {b['p50_ms']:.1f} | {b['p95_ms']:.1f} | "
            f"{ratio:.2f} | {b.get('queries', '–')} | {'met' if met else 'NOT met'} |"
        )


def run_benchmark(arguments: argparse.Namespace) -> int:
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at PostgreSQL: run under scripts/with-services.", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = ROOT / "bench" / "out"
    sizes = [arguments.small, arguments.customers]
    result: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sizes": sizes,
        "requests": arguments.requests,
        "warmup": arguments.warmup,
    }
    code = 0
    for size in sizes:
        database_url = load(server_url, size, arguments)
        try:
            result.setdefault("machine", base.machine_description(database_url))
            report = out_dir / f"desk-{size}-{stamp}.json"
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
                    "--seed",
                    str(arguments.seed),
                    "--out",
                    str(report),
                ],
                cwd=ROOT,
                env={**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE},
                check=False,
            )
            code = code or child.returncode
            if child.returncode == 0:
                result[str(size)] = json.loads(report.read_text())
        finally:
            if not arguments.keep_database:
                with base.connect(server_url) as connection:
                    connection.execute(f"DROP DATABASE IF EXISTS bench_desk_{size} WITH (FORCE)")
    result_path = out_dir / f"desk-{arguments.customers}-{arguments.seed}-{stamp}.json"
    result_path.write_text(json.dumps(result, indent=2, default=str))
    if all(str(size) in result for size in sizes):
        print_report(result)
    print(f"\nSaved {result_path}")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=SMALL, help="the comparison size (default 10,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None, help="generator processes")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per page and size")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--measure", metavar="DATABASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.measure:
        return measure(arguments.measure, arguments.requests, arguments.warmup, arguments.seed, arguments.out)
    return run_benchmark(arguments)


if __name__ == "__main__":
    sys.exit(main())
