"""`make run`'s service script (scripts/with-local-services) from a checkout the postgres user cannot enter.

As root, PostgreSQL runs as `postgres`; a clone in a `mktemp -d` directory (mode 700) or under /root is out of
its reach, so the cluster must live elsewhere, and when PostgreSQL cannot start at all the command still runs
on the embedded defaults with one line saying why.
"""

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "with-local-services"
# Prints the database the command was given and, for PostgreSQL, proves it answers.
SHOW_DATABASE = (
    "import os, psycopg\n"
    "url = os.environ.get('DATABASE_URL', '')\n"
    "print(url.split('@')[-1] if url else 'embedded')\n"
    "if url:\n"
    "    print(psycopg.connect(url).execute('SELECT current_database()').fetchone()[0])\n"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clone_out_of_postgres_reach(tmp_path: Path) -> Path:
    """A checkout in a private directory (like `mktemp -d`): only its owner may enter it."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    checkout = private / "x"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, checkout / "scripts" / "with-local-services")
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    return checkout


def _run(checkout: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "LOCAL_PG_DATA"}}
    env |= {"LOCAL_PG_PORT": str(port), "LOCAL_REDIS_PORT": str(_free_port())}
    return subprocess.run(
        [str(checkout / "scripts" / "with-local-services"), sys.executable, "-c", SHOW_DATABASE],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _cluster_dir(stderr: str) -> Path:
    found = re.search(r"cluster in (\S+)\)", stderr)
    assert found, stderr
    return Path(found.group(1))


def test_checkout_the_postgres_user_cannot_enter_gets_a_cluster_it_can(tmp_path):
    checkout = _clone_out_of_postgres_reach(tmp_path)
    port = _free_port()

    result = _run(checkout, port)

    cluster = _cluster_dir(result.stderr)
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"127.0.0.1:{port}/portal", "portal"]
        assert "could not start" not in result.stderr
        if os.geteuid() == 0:
            # Root: the cluster is the postgres user's, in its home, one per checkout.
            home = Path(pwd.getpwnam("postgres").pw_dir)
            assert cluster.parent.parent == home
            assert cluster.owner() == "postgres"
            assert not (checkout / "var" / "postgres").exists()
        else:
            assert cluster == checkout / "var" / "postgres"
        assert (cluster / "PG_VERSION").is_file()
        # The second start reuses the cluster (the demo data survives restarts).
        again = _run(checkout, port)
        assert again.returncode == 0, again.stderr
        assert "creating the local PostgreSQL cluster" not in again.stderr
        assert _cluster_dir(again.stderr) == cluster
    finally:
        if cluster != checkout / "var" / "postgres":
            shutil.rmtree(cluster.parent, ignore_errors=True)


def test_postgres_that_cannot_start_falls_back_to_the_embedded_defaults_with_one_line(tmp_path):
    checkout = _clone_out_of_postgres_reach(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = int(busy.getsockname()[1])

        result = _run(checkout, port)

    created = re.search(r"creating the local PostgreSQL cluster in (\S+)", result.stderr)
    try:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["embedded"]
        fallback = [line for line in result.stderr.splitlines() if "could not start" in line]
        assert len(fallback) == 1, result.stderr
        assert fallback[0].startswith(f"with-local-services: PostgreSQL could not start (port {port} busy?")
        assert fallback[0].endswith("running on the embedded defaults (SQLite db.sqlite3, filesystem broker).")
        assert "Traceback" not in result.stderr
    finally:
        if created and Path(created.group(1)) != checkout / "var" / "postgres":
            shutil.rmtree(Path(created.group(1)).parent, ignore_errors=True)
