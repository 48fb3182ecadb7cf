"""A database role like production's application role (DML only, owns nothing), for the audit tests.

The suite connects as the `postgres` superuser, which owns the test database; production's web and
workers connect as a role that owns nothing (docs/audit.md). Tests switch to such a role with SET ROLE.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

EVERY_TRIGGER_SQL = "SELECT '{' || string_agg(tgname, ',') || '}' FROM pg_trigger WHERE NOT tgisinternal"


def app_role_create() -> str:
    """A role like production's application role: SELECT/INSERT/UPDATE/DELETE on every table, nothing owned
    (no TRUNCATE, no DDL). Created inside the test's transaction, so it is gone afterwards."""
    role = f"audit_probe_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {role} NOLOGIN NOSUPERUSER NOINHERIT")
        cursor.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    return role


@contextmanager
def as_role(role: str) -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute(f"SET ROLE {role}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")


def ignore_every_trigger(cursor: Any) -> None:
    """What an insider would try: tell every trigger pgtrigger installed to skip (its documented escape)."""
    cursor.execute(EVERY_TRIGGER_SQL)
    cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", [cursor.fetchone()[0]])
