"""Local simulators of the payout providers (the real formats are not public: SPEC "Payout methods").

Each simulator is idempotent by key the way a real provider is: the first call records one
`SimulatorIssuance` row (UNIQUE idempotency key), later calls with the same key return the same result
and only count the request. The same key with a different amount or provider is refused permanently.
Codes are derived from the key with HMAC, so they are stable without storing them in clear anywhere.

The simulator writes in the caller's transaction: a rolled-back issue leaves no issuance (a real provider
would keep it, which is why the key is deterministic and every step is safe to repeat).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from django.db import connection
from django.utils import timezone

from payouts.models import SimulatorIssuance
from payouts.providers.base import IssueResult, ProviderPermanentError

_SIMULATOR_SECRET = b"payout-simulator-not-a-real-provider"


def _digest(*parts: str) -> bytes:
    return hmac.new(_SIMULATOR_SECRET, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def _digits(digest: bytes, count: int) -> str:
    return str(int.from_bytes(digest, "big") % (10**count)).zfill(count)


def _record_issuance(*, provider: str, idempotency_key: str, amount_jpy: int, payee_ref: str, reference: str) -> None:
    """INSERT … ON CONFLICT: one row per key; a repeat only increments `requests`."""
    if amount_jpy <= 0:
        raise ProviderPermanentError(f"{provider}: amount must be positive")
    table = SimulatorIssuance._meta.db_table
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                (provider, idempotency_key, amount_jpy, payee_ref, reference, requests, created_at, last_requested_at)
            VALUES (%s, %s, %s, %s, %s, 1, %s, %s)
            ON CONFLICT (idempotency_key) DO UPDATE
                SET requests = {table}.requests + 1, last_requested_at = EXCLUDED.last_requested_at
            RETURNING provider, amount_jpy, payee_ref
            """,
            [provider, idempotency_key, amount_jpy, payee_ref, reference, now, now],
        )
        row = cursor.fetchone()
    if row is None or tuple(row) != (provider, amount_jpy, payee_ref):
        raise ProviderPermanentError(f"{provider}: idempotency key reused with different parameters")


class SevenBankAtmSimulator:
    """Cash at Seven Bank ATMs: a 16-digit voucher code and a 4-digit PIN."""

    name = "sevenbank-atm-simulator"

    def issue(
        self, *, idempotency_key: str, amount_jpy: int, expires_at: dt.datetime | None, payee_ref: str
    ) -> IssueResult:
        digest = _digest(self.name, idempotency_key)
        reference = f"SBA-{digest[:6].hex().upper()}"
        _record_issuance(
            provider=self.name,
            idempotency_key=idempotency_key,
            amount_jpy=amount_jpy,
            payee_ref=payee_ref,
            reference=reference,
        )
        return IssueResult(
            reference=reference,
            code=_digits(digest[8:20], 16),
            pin=_digits(digest[20:28], 4),
        )


class PointCodeSimulator:
    """Point / gift codes: a receive URL carrying a token, for one brand (amazon, ponta, paypay, edy, nanaco)."""

    def __init__(self, *, brand: str) -> None:
        self.brand = brand
        self.name = f"points-{brand}-simulator"

    def issue(
        self, *, idempotency_key: str, amount_jpy: int, expires_at: dt.datetime | None, payee_ref: str
    ) -> IssueResult:
        digest = _digest(self.name, idempotency_key)
        reference = f"PCS-{self.brand.upper()}-{digest[:6].hex().upper()}"
        _record_issuance(
            provider=self.name,
            idempotency_key=idempotency_key,
            amount_jpy=amount_jpy,
            payee_ref=payee_ref,
            reference=reference,
        )
        token = digest[8:32].hex()
        return IssueResult(reference=reference, url=f"https://points.simulator.invalid/{self.brand}/receive/{token}")
