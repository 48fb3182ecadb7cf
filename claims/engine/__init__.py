"""The entitlement engine: every subject of a program, set-based (a handful of SQL statements per run).

`compute_entitlements(program=…, as_of=…, calendar=…)` returns one `Entitlement` per subject that has
an entitlement or a submission, with lines already excluded where another program holds the grant
key. It reads only; writing is `claims.services.program_run`. PostgreSQL only (raw SQL).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence

from django.db import connection

from claims.engine import coupon_outage, login_outage, refunds
from claims.engine.common import fetch_all
from claims.engine.types import Entitlement, Line, Reason
from claims.models import Policy, Program
from support_portal.core.business_days import BusinessCalendar

__all__ = ["Entitlement", "Line", "Reason", "compute_entitlements", "grants_held_elsewhere", "stream_entitlements"]

# Each engine returns or yields its entitlements (the request-driven refund engines stream theirs).
POLICY_ENGINES: dict[str, Callable[..., Iterable[Entitlement]]] = {
    Policy.LOGIN_OUTAGE_2024: login_outage.compute,
    Policy.COUPON_OUTAGE_2023: coupon_outage.compute,
    **refunds.POLICIES,
}

OTHER_GRANTS_SQL = """
SELECT g.grant_key, p.slug
  FROM claims_grant g
  JOIN claims_program p ON p.id = g.program_id
 WHERE g.program_id <> %(program)s AND g.grant_key = ANY(%(keys)s)
"""


def grants_held_elsewhere(program: Program, keys: list[str]) -> dict[str, str]:
    """Grant key -> slug of the other program that already compensates it (one query)."""
    if not keys:
        return {}
    return dict(fetch_all(OTHER_GRANTS_SQL, {"program": program.pk, "keys": keys}))


class EngineNeedsPostgreSQL(Exception):
    """The engine is set-based PostgreSQL SQL; the SQLite first-run default cannot compute programs."""


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise EngineNeedsPostgreSQL(
            "program previews and runs need PostgreSQL: set DATABASE_URL=postgres://… (see README, Production)"
        )


def compute_entitlements(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> list[Entitlement]:
    """Every subject's entitlement, or (`scope`) those of the given subjects only: the same answer for each."""
    require_postgresql()
    entitlements = list(POLICY_ENGINES[program.policy](program=program, as_of=as_of, calendar=calendar, scope=scope))
    keys = sorted({line.grant_key for e in entitlements if e.eligible for line in e.lines if line.grant_key})
    owners = grants_held_elsewhere(program, keys)
    for entitlement in entitlements:
        entitlement.exclude_keys(owners)
        finalize(entitlement)
    entitlements.sort(key=lambda e: e.subject)
    return entitlements


def stream_entitlements(
    *, program: Program, as_of: dt.datetime, calendar: BusinessCalendar, scope: Sequence[str] | None = None
) -> Iterator[Entitlement]:
    """The engine's entitlements one by one, finalized, in the engine's order and *before* exclusion by
    other programs' grants: for the run's stage, which excludes them set-based afterwards
    (claims.engine.staging.exclude_held_elsewhere, the same rule as `Entitlement.exclude_keys`)."""
    require_postgresql()
    for entitlement in POLICY_ENGINES[program.policy](program=program, as_of=as_of, calendar=calendar, scope=scope):
        finalize(entitlement)
        yield entitlement


def finalize(entitlement: Entitlement) -> None:
    """A claim's total is the sum of its lines: an ineligible claim keeps only excluded lines (amount 0)."""
    if not entitlement.eligible:
        entitlement.lines = [line for line in entitlement.lines if line.excluded_reason]
        for line in entitlement.lines:
            line.amount_jpy = 0
