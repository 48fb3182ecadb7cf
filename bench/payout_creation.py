"""Payouts benchmark (issue 5): from N approved claims, create the payouts and render + queue their notices.

    scripts/with-services .venv/bin/python bench/payout_creation.py --claims 1000000
    make bench-payouts N=1000000           # the same with PG_SETTINGS for shared_buffers etc.

Steps, on a fresh database `bench_payouts` on the server of DATABASE_URL (migrated first):

0. data (untimed): N customers (every 4th without email: its notice goes by SMS) and N approved claims of
   one ATM-cash program, written set-based with `INSERT … SELECT … FROM generate_series`;
1. floor — a bare `INSERT … SELECT` of the same payout rows (same columns and values, key included) into
   `payouts_payout` itself: what the database must do to store them under the table's UNIQUE
   idempotency key, its other indexes and the audit trigger (issue 2: every money row audited); the
   rows are removed afterwards. The same statement into a table `LIKE payouts_payout` without indexes,
   constraints or triggers is timed too, for reference (what the constraints themselves cost);
2. create — `payout_batch_create` (the production service: ONE INSERT … SELECT of payouts + their
   `created` transitions, under the UNIQUE constraints and the audit trigger): wall time, payouts/s;
3. issue (untimed at N, see below) — every payout gets its code as the batch runner would store it:
   a Fernet-encrypted secret per payout (Python, COPY), status `issued` and the outbox rows written with
   the production `notices_queue_for_payouts` SQL. The batch runner itself (a provider call per payout)
   is measured separately on `--issue-sample` payouts (default 5,000) and reported as payouts/s;
4. notices — `payout_notices_send` in `--processes` processes (default 2 = the machine's cores) until the
   outbox is empty: lease, batch-decrypt, render from the compiled templates (subject/text/HTML for email,
   SMS text for SMS), build each email (multipart HTML + text, Message-ID), hand it to a sink backend that
   serialises it (`message.message().as_bytes()`) and counts, SMS through the simulator gateway, then the
   bulk status updates and the payouts' move to `notified`: notices/s;
5. peak memory — max RSS of this process (creation, issue) and of the sender processes (getrusage).

Targets (issue 5): creation within 2× of the floor (the bare statement into payouts_payout); notices
≥ 2,000/s on 2 cores; peak memory < 500 MB.
Results are printed as Markdown and saved as JSON in bench/out/payouts-<N>-<stamp>.json.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: its payouts.py would shadow the payouts app
BENCH_DATABASE = "bench_payouts"
SETTINGS_MODULE = "support_portal.settings.test"
TARGET_RATIO = 2.0
TARGET_NOTICES_PER_SECOND = 2000
TARGET_PEAK_MB = 500


def database_url_for(server_url: str, name: str) -> str:
    head, _, _ = server_url.rpartition("/")
    return f"{head}/{name}"


def prepare_database(server_url: str) -> str:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    url = database_url_for(server_url, BENCH_DATABASE)
    import subprocess  # noqa: PLC0415

    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return url


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


class SinkEmailBackend:
    """Counts the emails handed to it and drops them; with `serialize` it first builds the MIME bytes as
    an SMTP backend would (Python's email package: several ms a message, reported separately)."""

    def __init__(self, *, serialize: bool = False) -> None:
        self.serialize = serialize
        self.count = 0
        self.bytes = 0

    def open(self) -> bool:
        return True

    def close(self) -> None:
        return None

    def __enter__(self) -> SinkEmailBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send_messages(self, messages: list[Any]) -> int:
        for message in messages:
            if self.serialize:
                self.bytes += len(message.message().as_bytes())
            self.count += 1
        return len(messages)


def _filler(cursor: Any, table: str, given: list[str]) -> tuple[str, str]:
    """Columns of `table` that are NOT NULL without a database default and not in `given` (other apps
    add columns over time), with a neutral value per type: (", col1, col2", ", '', 0")."""
    cursor.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL AND is_generated = 'NEVER'""",
        [table],
    )
    neutral = {"boolean": "false", "integer": "0", "bigint": "0", "smallint": "0", "jsonb": "'{}'"}
    extra = [(name, neutral.get(kind, "''")) for name, kind in cursor.fetchall() if name not in given]
    return "".join(f", {name}" for name, _ in extra), "".join(f", {value}" for _, value in extra)


def generate_data(claims: int) -> int:
    """N customers and N approved claims of one program (set-based SQL); returns the program id."""
    import datetime as dt  # noqa: PLC0415

    from django.db import connection  # noqa: PLC0415

    from claims.models import Program  # noqa: PLC0415

    program = Program.objects.create(
        slug="bench-payouts",
        name="ベンチマーク補償",
        policy="login-outage-2024",
        status=Program.Status.OPEN,
        payout_methods=["atm_cash"],
        default_payout_method="atm_cash",
        receipt_deadline=dt.datetime.now(tz=dt.UTC).date() + dt.timedelta(days=90),
    )
    customer_columns = ["customer_id", "name", "email", "phone", "created_at"]
    claim_columns = [
        "id", "program_id", "subject", "customer_id", "payee_id", "status", "eligible", "reason", "amount_jpy",
        "approved_amount_jpy", "payout_method", "note", "computed_at", "qa_review",
    ]  # fmt: skip
    with connection.cursor() as cursor:
        customer_extra, customer_values = _filler(cursor, "customers_customer", customer_columns)
        claim_extra, claim_values = _filler(cursor, "claims_claim", claim_columns)
        cursor.execute(
            f"""
            INSERT INTO customers_customer (customer_id, name, email, phone, created_at{customer_extra})
            SELECT 'B' || lpad(g::text, 9, '0'), '顧客 ' || g,
                   CASE WHEN g %% 4 = 0 THEN '' ELSE 'b' || g || '@example.jp' END,
                   '090-' || lpad((g %% 10000)::text, 4, '0') || '-' || lpad((g %% 9999)::text, 4, '0'), now()
                   {customer_values}
            FROM generate_series(1, %(n)s) g
            """,
            {"n": claims},
        )
        cursor.execute(
            f"""
            INSERT INTO claims_claim
                (program_id, subject, customer_id, payee_id, status, eligible, reason, amount_jpy,
                 approved_amount_jpy, payout_method, note, computed_at, qa_review{claim_extra})
            SELECT %(program)s, 'B' || lpad(g::text, 9, '0'), 'B' || lpad(g::text, 9, '0'), NULL, 'approved',
                   true, '', 1000 + (g %% 50) * 100, 1000 + (g %% 50) * 100, '', '', now(), false {claim_values}
            FROM generate_series(1, %(n)s) g
            """,
            {"program": program.pk, "n": claims},
        )
        cursor.execute("ANALYZE customers_customer; ANALYZE claims_claim")
    return int(program.pk)


FLOOR_SQL = """
INSERT INTO bench_payout_floor
    (claim_id, program_id, method, amount_jpy, payee_id, status, idempotency_key, expires_at,
     provider, provider_reference, attempts, last_error, created_at, updated_at, issued_at, offer, batch_id)
SELECT c.id, c.program_id, 'atm_cash', c.approved_amount_jpy, c.customer_id, 'created',
       'payout:' || c.id || ':atm_cash', now() + interval '90 days', '', '', 0, '', now(), now(), NULL, 1, NULL
FROM claims_claim c
WHERE c.program_id = %(program)s AND c.status = 'approved'
"""


def measure_indexless_copy(program_id: int) -> float:
    from django.db import connection  # noqa: PLC0415

    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
        cursor.execute(
            "CREATE TABLE bench_payout_floor (LIKE payouts_payout INCLUDING DEFAULTS INCLUDING IDENTITY "
            "EXCLUDING CONSTRAINTS EXCLUDING INDEXES)"
        )
        started = time.monotonic()
        cursor.execute(FLOOR_SQL, {"program": program_id})
        seconds = time.monotonic() - started
        cursor.execute("DROP TABLE bench_payout_floor")
        cursor.execute("CHECKPOINT")
    return seconds


def measure_floor(program_id: int) -> float:
    """The floor: the bare INSERT … SELECT into payouts_payout itself (its indexes, UNIQUE constraints and
    audit trigger); the rows are removed afterwards (TRUNCATE: nothing else exists yet)."""
    from django.db import connection  # noqa: PLC0415

    with connection.cursor() as cursor:
        started = time.monotonic()
        cursor.execute(FLOOR_SQL.replace("bench_payout_floor", "payouts_payout"), {"program": program_id})
        seconds = time.monotonic() - started
        cursor.execute("TRUNCATE payouts_payout, payouts_payoutevent CASCADE")
        cursor.execute("CHECKPOINT")
    return seconds


def measure_create(program_id: int) -> tuple[float, int, int]:
    from claims.models import Program  # noqa: PLC0415
    from payouts.batches import payout_batch_create  # noqa: PLC0415

    started = time.monotonic()
    batch = payout_batch_create(program=Program.objects.get(pk=program_id), actor=None)
    return time.monotonic() - started, batch.total_count, int(batch.pk)


def measure_issue_sample(batch_id: int, sample: int) -> tuple[float, int]:
    """The real batch runner (provider simulator call per payout) on the first `sample` payouts."""
    from payouts.batches import payout_batch_process_chunk  # noqa: PLC0415
    from payouts.models import BatchStatus, PayoutBatch  # noqa: PLC0415

    PayoutBatch.objects.filter(pk=batch_id).update(status=BatchStatus.RUNNING)
    started = time.monotonic()
    after = issued = 0
    while issued < sample:
        result = payout_batch_process_chunk(batch_id=batch_id, after_id=after)
        if result.state != "processed":
            break
        after, issued = result.last_id, issued + result.issued
    return time.monotonic() - started, issued


def issue_rest_fast(batch_id: int, chunk: int = 50_000) -> float:
    """Gives every still-created payout its (encrypted) code and outbox row, chunk by chunk, as the runner
    would leave them, without the per-payout provider call (untimed in the report, printed for reference)."""
    from django.db import connection, transaction  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from payouts.models import PayoutSecret  # noqa: PLC0415
    from payouts.notices import notices_queue_for_payouts  # noqa: PLC0415
    from payouts.providers.simulators import SevenBankAtmSimulator, _digest, _digits  # noqa: PLC0415

    simulator = SevenBankAtmSimulator()
    started = time.monotonic()
    after = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, idempotency_key FROM payouts_payout WHERE batch_id = %s AND status = 'created' "
                "AND id > %s ORDER BY id LIMIT %s",
                [batch_id, after, chunk],
            )
            rows = cursor.fetchall()
            if not rows:
                break
            after = rows[-1][0]
            now = timezone.now()
            buffer = io.StringIO()
            for payout_id, key in rows:
                digest = _digest(simulator.name, key)
                ciphertext, masked = PayoutSecret.seal(code=_digits(digest[8:20], 16), pin=_digits(digest[20:28], 4))
                buffer.write(f"{payout_id}\t{ciphertext}\t{masked}\t{now.isoformat()}\n")
            buffer.seek(0)
            with cursor.copy(
                "COPY payouts_payoutsecret (payout_id, ciphertext, masked, created_at) FROM STDIN"
            ) as copy:
                copy.write(buffer.read())
            ids = [row[0] for row in rows]
            cursor.execute(
                "UPDATE payouts_payout SET status = 'issued', issued_at = %s, provider = %s, "
                "provider_reference = 'SBA-' || id, attempts = 1 WHERE id = ANY(%s)",
                [now, simulator.name, ids],
            )
            notices_queue_for_payouts(payout_ids=ids, now=now)
    return time.monotonic() - started


def _sender(queue: Any, serialize: bool, at_most: int) -> None:
    from django.db import connections  # noqa: PLC0415

    from payouts.notices import payout_notices_send  # noqa: PLC0415

    connections.close_all()
    sink = SinkEmailBackend(serialize=serialize)
    sent = 0
    while sent < at_most:
        result = payout_notices_send(limit=min(1000, at_most - sent), email_connection=sink)
        if result.claimed == 0:
            break
        sent += result.sent
    queue.put({"sent": sent, "emails": sink.count, "email_bytes": sink.bytes, "rss_mb": peak_rss_mb()})


def measure_notices(processes: int, *, serialize: bool = False, at_most: int = 10**12) -> dict[str, Any]:
    """Senders in `processes` forked processes until the outbox is empty (or `at_most` each)."""
    from django.db import connections  # noqa: PLC0415

    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    started = time.monotonic()
    workers = [context.Process(target=_sender, args=(queue, serialize, at_most)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - started
    sent = sum(r["sent"] for r in results)
    emails = sum(r["emails"] for r in results)
    return {
        "seconds": seconds,
        "sent": sent,
        "emails": emails,
        "sms": sent - emails,
        "email_mb": sum(r["email_bytes"] for r in results) / 1e6,
        "peak_rss_mb": max(r["rss_mb"] for r in results),
    }


def counts() -> dict[str, int]:
    from django.db import connection  # noqa: PLC0415

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT (SELECT count(*) FROM payouts_payout),
                      (SELECT count(*) FROM payouts_payout WHERE status = 'notified'),
                      (SELECT count(*) FROM payouts_payoutnotice),
                      (SELECT count(*) FROM payouts_payoutnotice WHERE status = 'sent'),
                      (SELECT count(*) FROM payouts_simulatedsms)"""
        )
        row = cursor.fetchone()
    assert row is not None
    return dict(zip(["payouts", "notified", "notices", "notices_sent", "sms_rows"], map(int, row), strict=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--issue-sample", type=int, default=5_000)
    parser.add_argument("--serialize-sample", type=int, default=5_000)
    arguments = parser.parse_args()
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        print("DATABASE_URL must point at PostgreSQL: run under scripts/with-services.", file=sys.stderr)
        return 2
    url = prepare_database(server_url)
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
    import django  # noqa: PLC0415

    django.setup()
    from django.db import connection  # noqa: PLC0415

    n = arguments.claims
    print(f"Generating {n:,} customers and approved claims ...", flush=True)
    started = time.monotonic()
    program_id = generate_data(n)
    data_seconds = time.monotonic() - started
    print(f"  {data_seconds:.1f} s", flush=True)

    floor = measure_indexless_copy(program_id)
    print(f"bare INSERT … SELECT into an index-less copy (reference): {floor:.2f} s", flush=True)
    floor_table = measure_floor(program_id)
    print(f"floor: bare INSERT … SELECT into payouts_payout (indexes, trigger): {floor_table:.2f} s", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("CHECKPOINT")
    create_seconds, created, batch_id = measure_create(program_id)
    print(f"create (payout_batch_create): {create_seconds:.2f} s, {created:,} payouts", flush=True)
    create_rss = peak_rss_mb()
    sample = min(arguments.issue_sample, created)
    issue_seconds, issued = measure_issue_sample(batch_id, sample)
    print(f"issue sample (batch runner, provider simulator): {issued:,} in {issue_seconds:.2f} s", flush=True)
    fast_seconds = issue_rest_fast(batch_id)
    print(f"issue rest (bench shortcut, untimed target): {fast_seconds:.1f} s", flush=True)
    issue_rss = peak_rss_mb()
    serialized = measure_notices(1, serialize=True, at_most=arguments.serialize_sample)
    print(f"notices with MIME serialisation (1 process): {serialized['sent']:,} in {serialized['seconds']:.1f} s")
    notices = measure_notices(arguments.processes)
    print(f"notices: {notices['sent']:,} in {notices['seconds']:.1f} s", flush=True)
    final = counts()

    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "claims": n,
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": connection.cursor().connection.info.server_version,
        },
        "data_seconds": data_seconds,
        "floor_seconds": floor_table,
        "indexless_copy_seconds": floor,
        "create_seconds": create_seconds,
        "created": created,
        "issue_sample": {"payouts": issued, "seconds": issue_seconds},
        "issue_rest_seconds": fast_seconds,
        "notices": notices,
        "notices_serialized_sample": serialized,
        "peak_rss_mb": {"create": create_rss, "issue": issue_rss, "senders": notices["peak_rss_mb"]},
        "counts": final,
    }
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    path = out / f"payouts-{n}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2))

    ratio = create_seconds / floor_table if floor_table else float("inf")
    rate = notices["sent"] / notices["seconds"] if notices["seconds"] else 0.0
    peak = max(create_rss, issue_rss, notices["peak_rss_mb"], serialized["peak_rss_mb"])
    print()
    print(f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}; {n:,} approved claims")
    print()
    print("| step | wall s | rate /s | × floor | peak RSS MB |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| reference: the bare INSERT … SELECT into an index-less copy of the table | {floor:.2f} | "
        f"{n / floor:,.0f} | {floor / floor_table:.2f} | – |"
    )
    print(
        f"| **floor**: the bare INSERT … SELECT of the payout rows into payouts_payout (indexes, UNIQUE, audit "
        f"trigger) | {floor_table:.2f} | {n / floor_table:,.0f} | 1.00 | – |"
    )
    print(
        f"| create payouts (payout_batch_create) | {create_seconds:.2f} | {created / create_seconds:,.0f} | "
        f"{ratio:.2f} | {create_rss:.0f} |"
    )
    print(f"| issue, batch runner sample ({issued:,}) | {issue_seconds:.2f} | {issued / issue_seconds:,.0f} | – | – |")
    print(
        f"| render + send notices ({arguments.processes} processes, {notices['emails']:,} email + "
        f"{notices['sms']:,} SMS) | {notices['seconds']:.1f} | {rate:,.0f} | – | {notices['peak_rss_mb']:.0f} |"
    )
    serialized_rate = serialized["sent"] / serialized["seconds"] if serialized["seconds"] else 0.0
    print(
        f"| render + send, the sink also building the MIME bytes (1 process, first {serialized['sent']:,}) | "
        f"{serialized['seconds']:.1f} | {serialized_rate:,.0f} | – | {serialized['peak_rss_mb']:.0f} |"
    )
    print()
    print(f"Counts: {final}")
    print(
        f"Targets: creation within {TARGET_RATIO:.0f}x of the floor: {'met' if ratio <= TARGET_RATIO else 'NOT met'} "
        f"({ratio:.2f}x); notices >= {TARGET_NOTICES_PER_SECOND}/s: "
        f"{'met' if rate >= TARGET_NOTICES_PER_SECOND else 'NOT met'} ({rate:,.0f}/s); peak memory < "
        f"{TARGET_PEAK_MB} MB: {'met' if peak < TARGET_PEAK_MB else 'NOT met'} ({peak:.0f} MB)"
    )
    print(f"Saved {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
