"""The seam to the main service's password reset (the product whose users could not log in, `000`).

The main service sends the reset link itself to the address we give it; we only ask for it. A gateway is
idempotent by key: asked again with the same key it returns the same reference and sends nothing new.
Errors are temporary (retry later with the same key) or permanent (retrying will not help).

`password_reset_gateway()` returns the configured gateway: the dotted path in the setting
`IDENTITY_PASSWORD_RESET_GATEWAY`, or the local simulator when unset (development, tests, demo).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Protocol, runtime_checkable

from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.module_loading import import_string

from support_portal.identity.models import PasswordResetSimulation


class PasswordResetError(Exception):
    """The main service refused or could not answer. Messages never contain the address."""


class PasswordResetTemporaryError(PasswordResetError):
    """Try again later with the same idempotency key (timeouts, 5xx, rate limits)."""


class PasswordResetPermanentError(PasswordResetError):
    """Retrying will not help (unknown account, key reused with other parameters)."""


@runtime_checkable
class PasswordResetGateway(Protocol):
    name: str

    def request_reset(self, *, idempotency_key: str, customer_id: str, email: str) -> str:
        """Asks the main service to send a reset link to `email`; returns the service's reference."""
        ...


_SIMULATOR_SECRET = b"password-reset-simulator-not-the-main-service"


class PasswordResetSimulator:
    """Records each request in `PasswordResetSimulation` (one row per key, `requests` counts repeats).

    Writes in the caller's transaction; the same key with another customer or address is refused.
    """

    name = "simulator"

    def request_reset(self, *, idempotency_key: str, customer_id: str, email: str) -> str:
        digest = hmac.new(_SIMULATOR_SECRET, idempotency_key.encode(), hashlib.sha256).hexdigest()
        reference = f"SIM-RESET-{digest[:16].upper()}"
        table = PasswordResetSimulation._meta.db_table
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                INSERT INTO {table}
                    (idempotency_key, customer_id, email, reference, requests, created_at, last_requested_at)
                VALUES (%s, %s, %s, %s, 1, %s, %s)
                ON CONFLICT (idempotency_key) DO UPDATE
                    SET requests = {table}.requests + 1, last_requested_at = EXCLUDED.last_requested_at
                RETURNING customer_id, email, reference
                """,
                [idempotency_key, customer_id, email, reference, now, now],
            )
            row = cursor.fetchone()
        if row is None or tuple(row[:2]) != (customer_id, email):
            raise PasswordResetPermanentError("idempotency key reused with a different customer or address")
        return str(row[2])


def password_reset_gateway() -> PasswordResetGateway:
    path = getattr(settings, "IDENTITY_PASSWORD_RESET_GATEWAY", "")
    if not path:
        return PasswordResetSimulator()
    gateway: PasswordResetGateway = import_string(path)()
    return gateway
