"""The audit trail: database triggers (django-pghistory) record every change with who and when.

Why triggers: set-based jobs change rows with UPDATE … / INSERT … SELECT and never call save(); only a
trigger sees those changes. See docs/audit.md.

- `decision_history()` — rows that decide money (programs, submissions, claims, payouts): a snapshot on
  insert, on every update and on delete; consecutive snapshots give before/after.
- `source_history()` — imported source data (customers, charges, coupons…): the row before and after
  every update, and the row on delete. Inserts are recorded by the ImportRun that loaded the file (who,
  when, checksum) instead of one event per imported row.
- `audit_context(actor=…)` — every service function that changes state runs inside it, so each event
  names the acting user (the request middleware does the same for admin requests), or a `LabelledActor`
  that is no user: an API key (`api:<prefix>`) or a payout provider's signed callback (`provider:<name>`),
  recorded as the context's `actor`; services nested inside keep it.
"""

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pghistory
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, connections
from django.db.backends.base.base import BaseDatabaseWrapper


def decision_history() -> Callable[[Any], Any]:
    return pghistory.track(
        pghistory.InsertEvent("insert"),
        pghistory.UpdateEvent("update"),
        pghistory.DeleteEvent("delete"),
    )


def source_history() -> Callable[[Any], Any]:
    return pghistory.track(
        pghistory.UpdateEvent("before_update", row=pghistory.Old),
        pghistory.UpdateEvent("update", row=pghistory.New),
        pghistory.DeleteEvent("delete"),
    )


@dataclass(frozen=True)
class LabelledActor:
    """An actor that is not a staff user: `api:<key prefix>` (an API key) or `provider:<name>` (a payout
    provider's signed callback). Its changes record no user; the audit context names it as `actor`."""

    label: str

    # Duck-typed like AnonymousUser where a service asks (an actor id for a user foreign key: none).
    is_authenticated = False
    pk = None

    def __str__(self) -> str:
        return self.label


def api_key_actor(*, prefix: str) -> LabelledActor:
    return LabelledActor(label=f"api:{prefix}")


def provider_actor(*, name: str) -> LabelledActor:
    return LabelledActor(label=f"provider:{name}")


Actor = AbstractBaseUser | AnonymousUser | LabelledActor | None


@contextmanager
def audit_context(*, actor: Actor, **metadata: Any) -> Iterator[None]:
    """Attributes every change made inside the block to `actor` (None: the system, e.g. a beat job).

    A `LabelledActor` is recorded as `actor=<label>` (no user). Nested blocks add their metadata to the
    outer context, so a service called under an API key's block (with actor=None) still names the key.
    """
    if connection.vendor != "postgresql":
        # SQLite (first run only) has no audit triggers, and pghistory's context SQL breaks its cursor.
        yield
        return
    if isinstance(actor, LabelledActor):
        with pghistory.context(user=None, actor=actor.label, **metadata):
            yield
        return
    user_id = actor.pk if actor is not None and actor.is_authenticated else None
    with pghistory.context(user=user_id, **metadata):
        yield


# --- Database functions the triggers call, hardened (installed after every migrate: apps.py) ----------
#
# pgtrigger installs `_pgtrigger_should_ignore` (CREATE OR REPLACE) with every trigger it adds, so a later
# migration would put its permissive version back; `audit_database_functions_install` runs on post_migrate,
# after the last of them. `manage.py pgtrigger install` would do the same: run `migrate` after it.

# pgtrigger's own function, with one more condition: `pgtrigger.ignore` (a variable any session may set)
# is honoured only for a member of the role that owns the database (migrations, the import's owner path).
# The application's role, which owns nothing, cannot switch a trigger off: its UPDATE / DELETE is recorded
# or refused whatever it sets. Unchanged (and as cheap) when the variable is not set.
HARDENED_IGNORE_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION "public"._pgtrigger_should_ignore(trigger_name NAME)
RETURNS BOOLEAN AS $$
    DECLARE
        _pgtrigger_ignore TEXT[];
    BEGIN
        BEGIN
            SELECT INTO _pgtrigger_ignore CURRENT_SETTING('pgtrigger.ignore');
            EXCEPTION WHEN OTHERS THEN
        END;
        IF _pgtrigger_ignore IS NOT NULL THEN
            IF trigger_name = ANY(_pgtrigger_ignore) THEN
                -- audit hardening (support_portal.core.audit): only the database owner's members may
                -- ignore (pg_database_owner: the current database's owner, implicitly; cached per session)
                RETURN pg_has_role(current_user, 'pg_database_owner', 'MEMBER');
            END IF;
            RETURN FALSE;
        ELSE
            RETURN FALSE;
        END IF;
    END;
$$ LANGUAGE plpgsql;
"""

# pghistory's context function, with two changes so that every event names who made the change:
# - an application context (audit_context / the middleware) also records `db_user`, the database role
#   that ran the statement (the one name the session cannot forge);
# - with no application context (raw SQL in psql, a job outside audit_context) the event is attached to a
#   context of its transaction naming `db_user` and the client's `application_name` (a Celery task sets
#   it to `system:<task name>`, a management command to `manage.py <command>`) instead of none.
HARDENED_CONTEXT_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION _pgh_attach_context()
RETURNS pghistory_context.id%TYPE AS $$
    DECLARE
        _pgh_context_id UUID;
        _pgh_context_metadata JSONB;
    BEGIN
        BEGIN
            SELECT INTO _pgh_context_id CURRENT_SETTING('pghistory.context_id');
            SELECT INTO _pgh_context_metadata CURRENT_SETTING('pghistory.context_metadata');
            EXCEPTION WHEN OTHERS THEN
        END;
        IF _pgh_context_id IS NOT NULL AND _pgh_context_metadata IS NOT NULL THEN
            _pgh_context_metadata := _pgh_context_metadata || jsonb_build_object('db_user', current_user::text);
            INSERT INTO pghistory_context (id, metadata, created_at, updated_at)
                VALUES (_pgh_context_id, _pgh_context_metadata, NOW(), NOW())
                ON CONFLICT (id) DO UPDATE
                    SET metadata = EXCLUDED.metadata, updated_at = EXCLUDED.updated_at
                    WHERE pghistory_context.metadata != EXCLUDED.metadata;
            RETURN _pgh_context_id;
        END IF;
        -- audit hardening (support_portal.core.audit): no application context, one per transaction
        -- (and per role and application_name within it, so a task's writes are not attributed to another)
        _pgh_context_id := md5(
            'pgh-db:' || txid_current()::text || ':' || pg_backend_pid()::text || ':' || NOW()::text
            || ':' || current_user::text || ':' || CURRENT_SETTING('application_name')
        )::uuid;
        INSERT INTO pghistory_context (id, metadata, created_at, updated_at)
            VALUES (
                _pgh_context_id,
                jsonb_build_object(
                    'db_user', current_user::text,
                    'application_name', CURRENT_SETTING('application_name')
                ),
                NOW(),
                NOW()
            )
            ON CONFLICT (id) DO NOTHING;
        RETURN _pgh_context_id;
    END;
$$ LANGUAGE plpgsql;
"""


def audit_database_functions_install(*, using: str = "default", **_signal_kwargs: Any) -> None:
    """Installs the hardened trigger functions (idempotent). A post_migrate receiver: runs after the
    last migration of every `migrate`, which may have re-installed pgtrigger's permissive version."""
    target = connections[using]
    if target.vendor != "postgresql":
        return
    with target.cursor() as cursor:
        cursor.execute(HARDENED_IGNORE_FUNCTION_SQL)
        cursor.execute(HARDENED_CONTEXT_FUNCTION_SQL)


# --- Who a change with no application context came from: the session's application_name ---------------
# A Celery task is `system:<task name>` while it runs; anything else is named after its process
# (`manage.py <command>`, `gunicorn`, …). Recorded by `_pgh_attach_context()` above when the change ran
# outside audit_context. Set on every new connection and, for a task, on the open one.


def _process_label() -> str:
    argv = sys.argv or [""]
    program = os.path.basename(argv[0])
    if program == "manage.py" and len(argv) > 1:
        return f"manage.py {argv[1]}"
    return program or "python"


_label = threading.local()


def audit_session_label() -> str:
    label: str = getattr(_label, "value", None) or _process_label()
    return label[:63]  # PostgreSQL keeps 63 bytes of application_name; ASCII names only here


def audit_session_label_apply(*, connection: BaseDatabaseWrapper, **_signal_kwargs: Any) -> None:
    """connection_created receiver: names the new session (`application_name`)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('application_name', %s, false)", [audit_session_label()])


def audit_session_label_set(*, label: str | None) -> None:
    """Names this thread's sessions `label` (None: back to the process name), the open one included."""
    _label.value = label
    if connection.connection is not None:
        audit_session_label_apply(connection=connection)


def audit_task_started(*, task: Any = None, **_signal_kwargs: Any) -> None:
    """Celery task_prerun receiver."""
    audit_session_label_set(label=f"system:{getattr(task, 'name', 'task')}")


def audit_task_finished(**_signal_kwargs: Any) -> None:
    """Celery task_postrun receiver."""
    audit_session_label_set(label=None)
