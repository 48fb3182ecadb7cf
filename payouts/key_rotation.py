"""Re-encrypting every stored payout token with the current PAYOUT_ENCRYPTION_KEY (its first key).

`manage.py rotate_payout_key` runs `payout_key_rotate` after a new key was put in front of the old one;
once it is done the old key can be dropped from the variable. Chunk by chunk (rows locked, one
transaction each), so it can be stopped and run again: a token already under the current key is
rewritten under it once more, which changes nothing.
"""

from __future__ import annotations

import logging

from django.apps import apps
from django.db import connection, models, transaction

from payouts import crypto
from support_portal.core.audit import audit_context

logger = logging.getLogger(__name__)

# Every column holding a payout-key Fernet token: (model, column). A new encrypted column belongs here.
ENCRYPTED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("payouts.PayoutSecret", "ciphertext"),
    ("banking.BankAccount", "account_number_ciphertext"),
    ("banking.ZenginExport", "content_ciphertext"),
    ("banking.BankResultImport", "content_ciphertext"),
    ("banking.SettlementImport", "content_ciphertext"),
)


def _write(model: type[models.Model], column: str, rotated: list[tuple[int, str]]) -> None:
    """One UPDATE … FROM unnest for the chunk (set-based, not one statement per row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {model._meta.db_table} t SET {column} = v.token"
            f" FROM unnest(%s::bigint[], %s::text[]) AS v(id, token) WHERE t.{model._meta.pk.column} = v.id",
            [[pk for pk, _ in rotated], [token for _, token in rotated]],
        )


def payout_key_rotate(*, chunk_size: int = 500) -> dict[str, int]:
    """Rewrites every token of ENCRYPTED_COLUMNS under the current key; returns the rows per column.
    Raises InvalidToken (that chunk rolled back) for a token no configured key opens."""
    crypto.require_key()
    counts = {}
    for label, column in ENCRYPTED_COLUMNS:
        model = apps.get_model(label)
        after, done = None, 0
        while True:
            with audit_context(actor=None, action="payout_key_rotate"), transaction.atomic():
                rows = model._default_manager.select_for_update().order_by("pk")
                if after is not None:
                    rows = rows.filter(pk__gt=after)
                chunk = list(rows.values_list("pk", column)[:chunk_size])
                rotated = [(pk, crypto.rotate(token)) for pk, token in chunk if token]
                if rotated:
                    _write(model, column, rotated)
            if not chunk:
                break
            after, done = chunk[-1][0], done + len(chunk)
        counts[f"{label}.{column}"] = done
        logger.info("payout key rotated", extra={"column": f"{label}.{column}", "rows": done})
    return counts
