"""Cost of the hardened `_pgtrigger_should_ignore` (issue 16) against pgtrigger's own, per row.

    scripts/with-services .venv/bin/python bench/audit_ignore_function.py --rows 500000

On the server of DATABASE_URL, in a scratch schema: a table with one row trigger that calls the ignore
function first (as every pgtrigger trigger does) and then does nothing. Times an INSERT … SELECT of
`--rows` rows with `pgtrigger.ignore` unset (every audited write) and set to the trigger's name (the
import's per-row insert skip), with pgtrigger's function and with ours, interleaved; best of 7 each.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import django
import psycopg

sys.path[0] = str(Path(__file__).resolve().parent.parent)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "support_portal.settings.base")
django.setup()
from support_portal.core.audit import HARDENED_IGNORE_FUNCTION_SQL  # noqa: E402 - after setup

PGTRIGGER_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION "public"._pgtrigger_should_ignore(trigger_name NAME) RETURNS BOOLEAN AS $$
    DECLARE _pgtrigger_ignore TEXT[]; _result BOOLEAN;
    BEGIN
        BEGIN
            SELECT INTO _pgtrigger_ignore CURRENT_SETTING('pgtrigger.ignore');
            EXCEPTION WHEN OTHERS THEN
        END;
        IF _pgtrigger_ignore IS NOT NULL THEN
            SELECT trigger_name = ANY(_pgtrigger_ignore) INTO _result;
            RETURN _result;
        ELSE
            RETURN FALSE;
        END IF;
    END;
$$ LANGUAGE plpgsql;
"""

ROUNDS = 7

SETUP_SQL = """
DROP SCHEMA IF EXISTS bench_ignore CASCADE;
CREATE SCHEMA bench_ignore;
CREATE TABLE bench_ignore.t (id bigint, v text);
CREATE FUNCTION bench_ignore.noop() RETURNS TRIGGER AS $$
    BEGIN
        IF ("public"._pgtrigger_should_ignore(TG_NAME) IS TRUE) THEN RETURN NEW; END IF;
        RETURN NEW;
    END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER bench_trigger BEFORE INSERT ON bench_ignore.t FOR EACH ROW EXECUTE FUNCTION bench_ignore.noop();
"""


def timed(rows: int, *, ignore: bool) -> float:
    """One INSERT in a new session (a session that set the variable before pays more on later unset
    statements, whichever function: measured separately they would favour the one timed first)."""
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn, conn.transaction(), conn.cursor() as cursor:
        cursor.execute("TRUNCATE bench_ignore.t")
        if ignore:
            cursor.execute("SELECT set_config('pgtrigger.ignore', '{bench_trigger}', true)")
        start = time.perf_counter()
        cursor.execute("INSERT INTO bench_ignore.t SELECT g, 'x' FROM generate_series(1, %s) g", [rows])
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=500_000)
    rows = parser.parse_args().rows
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute(SETUP_SQL)
        functions = (("pgtrigger", PGTRIGGER_FUNCTION_SQL), ("hardened", HARDENED_IGNORE_FUNCTION_SQL))
        results = {name: [float("inf"), float("inf")] for name, _sql in functions}
        for _round in range(ROUNDS):  # interleaved, best of ROUNDS: the machine is shared
            for name, sql in functions:
                conn.execute(sql)
                for slot, ignore in enumerate((False, True)):
                    results[name][slot] = min(results[name][slot], timed(rows, ignore=ignore))
        conn.execute("DROP SCHEMA bench_ignore CASCADE")
    print(f"rows: {rows}")
    print("| function | ignore unset: s (µs/row) | ignore set, trigger skipped: s (µs/row) |")
    print("|---|---|---|")
    for name, (unset, skipped) in results.items():
        print(f"| {name} | {unset:.3f} ({unset / rows * 1e6:.2f}) | {skipped:.3f} ({skipped / rows * 1e6:.2f}) |")
    base_unset, base_set = results["pgtrigger"]
    ours_unset, ours_set = results["hardened"]
    print(f"hardened / pgtrigger: unset {ours_unset / base_unset:.2f}x, set {ours_set / base_set:.2f}x")


if __name__ == "__main__":
    main()
