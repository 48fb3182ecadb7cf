"""The audit trail: database triggers (django-pghistory) record every change with who and when.

Why triggers: set-based jobs change rows with UPDATE … / INSERT … SELECT and never call save(); only a
trigger sees those changes. See docs/audit.md.

- `decision_history()` — rows that decide money (programs, submissions, claims, payouts): a snapshot on
  insert, on every update and on delete; consecutive snapshots give before/after.
- `source_history()` — imported source data (customers, charges, coupons…): the row before and after
  every update, and the row on delete. Inserts are recorded by the ImportRun that loaded the file (who,
  when, checksum) instead of one event per imported row.
- `audit_context(actor=…)` — every service function that changes state runs inside it, so each event
  names the acting user (the request middleware does the same for admin requests).
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pghistory
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection


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


@contextmanager
def audit_context(*, actor: AbstractBaseUser | AnonymousUser | None, **metadata: Any) -> Iterator[None]:
    """Attributes every change made inside the block to `actor` (None: the system, e.g. a beat job)."""
    if connection.vendor != "postgresql":
        # SQLite (first run only) has no audit triggers, and pghistory's context SQL breaks its cursor.
        yield
        return
    user_id = actor.pk if actor is not None and actor.is_authenticated else None
    with pghistory.context(user=user_id, **metadata):
        yield
