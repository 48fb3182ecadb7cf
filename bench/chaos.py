"""Chaos benchmark (issue 16 §8): exactly-once payouts and notices under worker, broker and database kills.

    scripts/with-services .venv/bin/python bench/chaos.py --claims 1500 --runs 3

Per run, on a fresh database (a copy of a migrated template) and the Redis of REDIS_URL:

1. data: three programs of claims/3 approved claims each (every 4th customer without email: SMS);
2. two real Celery workers (subprocesses, solo pool, settings `bench.chaos_settings`: messages captured at
   the provider boundary by bench/chaos_capture.py, one line per message handed over) build the batches
   (`payouts.build_batches`), issue the payouts and send the notices;
3. chaos for `--chaos-seconds`: every 0.5–2.5 s one of — SIGKILL a worker (restarted 0.5–2 s later),
   SIGKILL the Redis server (no persistence: every queued message is lost; restarted 1–3 s later),
   `pg_terminate_backend` every other connection to the database; meanwhile the bench plays beat,
   sending `payouts.sweep` and `payouts.build_batches` every 2 s (failures while Redis is down ignored);
4. recovery: everything up, the sweep every 2 s until every claim has a notified payout and no notice is
   pending / being sent (or `--settle-seconds` pass);
5. counts: duplicate payouts (claims with more than one payout, provider keys asked for more than one
   payout), duplicate notices (lines at the boundary beyond the first per notice), lost claims (approved
   claims without an issued / notified payout), attempts that became uncertain (and how many the
   provider check settled), notices left uncertain.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)
TEMPLATE = "bench_chaos_template"


def server_url() -> str:
    return os.environ["DATABASE_URL"]


def url_for(name: str) -> str:
    head, _, _ = server_url().rpartition("/")
    return f"{head}/{name}"


def admin_connect() -> Any:
    import psycopg  # noqa: PLC0415

    return psycopg.connect(server_url(), autocommit=True)


def prepare_template() -> None:
    with admin_connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE}")
    env = {**os.environ, "DATABASE_URL": url_for(TEMPLATE), "DJANGO_SETTINGS_MODULE": "bench.chaos_settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


def fresh_database(name: str) -> str:
    with admin_connect() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
    return url_for(name)


class Redis:
    """The Redis server of REDIS_URL, killed and restarted on the same port."""

    def __init__(self, workdir: Path) -> None:
        import redis  # noqa: PLC0415

        self.url = os.environ["REDIS_URL"]
        self.client = redis.Redis.from_url(self.url)
        self.port = self.client.connection_pool.connection_kwargs["port"]
        self.workdir = workdir

    def pid(self) -> int | None:
        try:
            return int(self.client.info("server")["process_id"])
        except Exception:
            return None

    def kill(self) -> None:
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            for _ in range(50):
                if self.pid() is None:
                    break
                time.sleep(0.05)

    def start(self) -> None:
        if self.pid() is not None:
            return
        subprocess.run(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "yes",
                "--dir",
                str(self.workdir),
                "--logfile",
                str(self.workdir / "redis.log"),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            if self.pid() is not None:
                return
            time.sleep(0.05)
        raise RuntimeError("redis did not restart")


class Workers:
    def __init__(self, env: dict[str, str], count: int, logdir: Path) -> None:
        self.env, self.count, self.logdir = env, count, logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills = 0

    def start(self, name: str) -> None:
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 - the worker owns it
        self.procs[name] = subprocess.Popen(
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
                f"--hostname={name}@chaos",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_all(self) -> None:
        for i in range(self.count):
            name = f"w{i}"
            if name not in self.procs or self.procs[name].poll() is not None:
                self.start(name)

    def kill_one(self, rng: random.Random) -> str:
        alive = [n for n, p in self.procs.items() if p.poll() is None]
        if not alive:
            return ""
        name = rng.choice(alive)
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()
        self.kills += 1
        return name

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def terminate_backends(database: str) -> int:
    with admin_connect() as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        ).fetchall()
    return len(rows)


def beat() -> None:
    """What beat would send: the sweep and the batch build (a broker that is down only loses the tick)."""
    from payouts.tasks import payout_batches_build_task, payouts_sweep  # noqa: PLC0415

    for task, kwargs in (
        (payouts_sweep, {"min_age_seconds": 0, "batch_stall_seconds": 5}),
        (payout_batches_build_task, {}),
    ):
        try:
            task.apply_async(kwargs=kwargs)
        except Exception:
            continue


def done() -> bool:
    from claims.models import Claim, ClaimStatus  # noqa: PLC0415
    from payouts.models import Payout, PayoutNotice, PayoutNoticeAttempt  # noqa: PLC0415

    approved = Claim.objects.filter(status=ClaimStatus.APPROVED).count()
    notified = Payout.objects.filter(status="notified").values("claim_id").distinct().count()
    busy = (
        PayoutNotice.objects.filter(status="pending").exists()
        or PayoutNoticeAttempt.objects.filter(status="claimed").exists()
    )
    return notified == approved and not busy


def captured(path: str) -> list[tuple[str, int]]:
    """(channel, notice id) per line of a capture file (bench/chaos_capture.py writes them)."""
    out = []
    with open(path, encoding="ascii") as handle:
        for line in handle:
            channel, notice, _rest = line.split(" ", 2)
            out.append((channel, int(notice)))
    return out


def counts(capture: Path) -> dict[str, Any]:
    from django.db import connection  # noqa: PLC0415

    from claims.models import Claim, ClaimStatus  # noqa: PLC0415
    from payouts.models import (  # noqa: PLC0415
        Payout,
        PayoutNotice,
        PayoutNoticeAttempt,
        PayoutNoticeTransition,
        SimulatorIssuance,
    )

    per_claim = Counter(Payout.objects.exclude(status="cancelled").values_list("claim_id", flat=True))
    lines = captured(str(capture)) if capture.exists() else []
    per_notice = Counter(notice for _, notice in lines)
    approved = set(Claim.objects.filter(status=ClaimStatus.APPROVED).values_list("pk", flat=True))
    paid = set(Payout.objects.filter(status__in=["issued", "notified", "settled"]).values_list("claim_id", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM {SimulatorIssuance._meta.db_table} s "
            f"JOIN {Payout._meta.db_table} p ON p.idempotency_key = s.idempotency_key"
        )
        (issuances,) = cursor.fetchone()
    return {
        "claims": len(approved),
        "payouts": sum(per_claim.values()),
        "duplicate_payouts": sum(n - 1 for n in per_claim.values() if n > 1)
        + max(0, SimulatorIssuance.objects.count() - issuances),
        "notices": PayoutNotice.objects.count(),
        "messages_handed_over": len(lines),
        "duplicate_notices": sum(n - 1 for n in per_notice.values() if n > 1),
        "lost_claims": len(approved - paid),
        "not_notified": len(approved) - Payout.objects.filter(status="notified").count(),
        "attempts": PayoutNoticeAttempt.objects.count(),
        "became_uncertain": PayoutNoticeTransition.objects.filter(status_after="uncertain").count(),
        "settled_by_provider_check": PayoutNoticeTransition.objects.filter(
            status_before="uncertain", actor_label="system:payouts.sweep"
        ).count(),
        "left_uncertain": PayoutNotice.objects.filter(status="uncertain").count(),
        "notices_failed": PayoutNotice.objects.filter(status="failed").count(),
    }


def run_once(index: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    name = f"bench_chaos_{index}"
    url = fresh_database(name)
    capture = workdir / f"capture-{index}.txt"
    os.environ["DATABASE_URL"] = url
    os.environ["CHAOS_CAPTURE_FILE"] = str(capture)
    import django  # noqa: PLC0415
    from django.db import connections  # noqa: PLC0415

    if not hasattr(run_once, "setup"):
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.chaos_settings"
        django.setup()
        run_once.setup = True  # type: ignore[attr-defined]
    from django.conf import settings  # noqa: PLC0415

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = name
    connections["default"].settings_dict["NAME"] = name

    from tests.payouts.conftest import bulk_claims, make_program  # noqa: PLC0415

    for _ in range(3):
        bulk_claims(make_program(), args.claims // 3)
    connections.close_all()

    rng = random.Random(args.seed + index)
    redis = Redis(workdir)
    redis.start()
    redis.client.flushall()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.chaos_settings",
        "DATABASE_URL": url,
        "CHAOS_TRANSPORT_DELAY": str(args.transport_delay),
        "CHAOS_PROVIDER_CHECK": "0" if args.no_provider_check else "1",
    }
    workers = Workers(env, args.workers, workdir)
    workers.start_all()
    events: Counter[str] = Counter()
    started = time.monotonic()
    beat()
    last_beat = time.monotonic()
    restart_at: dict[str, float] = {}
    work_done_s = None
    try:
        while time.monotonic() - started < args.chaos_seconds:
            time.sleep(rng.uniform(0.5, 2.5))
            if work_done_s is None:
                connections.close_all()
                if done():
                    work_done_s = round(time.monotonic() - started, 1)
            what = rng.choice(["worker", "worker", "redis", "db"])
            if what == "worker" and workers.kill_one(rng):
                events["worker_sigkill"] += 1
                restart_at["workers"] = time.monotonic() + rng.uniform(0.5, 2)
            elif what == "redis" and redis.pid() is not None:
                redis.kill()
                events["redis_sigkill"] += 1
                restart_at["redis"] = time.monotonic() + rng.uniform(1, 3)
            elif what == "db":
                events["db_connections_terminated"] += terminate_backends(name)
                events["db_terminations"] += 1
            now = time.monotonic()
            if restart_at.get("redis", 1e18) <= now:
                redis.start()
                restart_at.pop("redis")
            if restart_at.get("workers", 1e18) <= now:
                workers.start_all()
                restart_at.pop("workers")
            if now - last_beat >= 2:
                beat()
                last_beat = now
        chaos_end = time.monotonic()
        redis.start()
        workers.start_all()
        while time.monotonic() - chaos_end < args.settle_seconds:
            connections.close_all()
            if done():
                work_done_s = work_done_s or round(time.monotonic() - started, 1)
                break
            beat()
            time.sleep(2)
        settle = time.monotonic() - chaos_end
    finally:
        workers.stop()
    connections.close_all()
    result = {
        "run": index + 1,
        **dict(events),
        "all_notified_after_s": work_done_s,
        "settle_s": round(settle, 1),
        **counts(capture),
    }
    result["duplicate_notices_per_1000"] = round(1000 * result["duplicate_notices"] / max(1, result["notices"]), 2)
    connections.close_all()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--claims", type=int, default=1500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chaos-seconds", type=float, default=60)
    parser.add_argument("--settle-seconds", type=float, default=240)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument(
        "--transport-delay", type=float, default=0.04, help="seconds per message at the boundary (keeps senders busy)"
    )
    parser.add_argument("--no-provider-check", action="store_true", help="leave uncertain attempts for a person")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="chaos-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.chaos_settings"
    prepare_template()
    results = []
    for index in range(args.runs):
        result = run_once(index, args, workdir)
        results.append(result)
        print(json.dumps(result), flush=True)
    columns = [
        "run",
        "worker_sigkill",
        "redis_sigkill",
        "db_terminations",
        "claims",
        "payouts",
        "duplicate_payouts",
        "messages_handed_over",
        "duplicate_notices",
        "duplicate_notices_per_1000",
        "lost_claims",
        "not_notified",
        "became_uncertain",
        "settled_by_provider_check",
        "left_uncertain",
        "settle_s",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---:|" * len(columns))
    for result in results:
        print("| " + " | ".join(str(result.get(c, 0)) for c in columns) + " |")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / f"chaos-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
