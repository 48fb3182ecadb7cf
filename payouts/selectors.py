"""Read-only queries over payouts."""

from __future__ import annotations

import dataclasses
import datetime as dt

from claims.models import ClaimStatus, PayoutMethod
from payouts.models import BATCH_HOLDING_STATUSES, Payout, PayoutSecret, PayoutStatus
from payouts.providers import registered_methods


def payout_ids_due_for_issue(*, older_than: dt.datetime, limit: int) -> list[int]:
    """Payouts still `created` and in no batch, last touched at or before `older_than`, whose claim is
    approved and whose method has a provider — one set-based query, ascending id."""
    return list(
        Payout.objects.filter(
            status=PayoutStatus.CREATED,
            batch__isnull=True,  # batched payouts are issued by their batch (paused ones must wait)
            updated_at__lte=older_than,
            method__in=registered_methods(),
            claim__status=ClaimStatus.APPROVED,
        )
        # Bank transfers are issued by a Zengin transfer export (payouts.banking), never one by one.
        .exclude(method=PayoutMethod.BANK_TRANSFER)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )


def payout_held_by_batch(*, payout_id: int) -> bool:
    """Whether the payout's batch is scheduled, paused or cancelled (it must wait for its batch)."""
    return Payout.objects.filter(pk=payout_id, batch__status__in=BATCH_HOLDING_STATUSES).exists()


def payout_masked_code(*, payout: Payout) -> str:
    """The masked code or URL of an issued payout ('' when none); never decrypts."""
    return PayoutSecret.objects.filter(payout=payout).values_list("masked", flat=True).first() or ""


@dataclasses.dataclass(frozen=True)
class PayoutStatusView:
    """What an integration may read of a payout: never its code, URL, PIN or provider reference."""

    id: int
    claim_id: int  # values_list names it "claim_id"
    method: str
    amount_jpy: int
    status: str
    offer: int
    issued_at: dt.datetime | None
    expires_at: dt.datetime | None
    updated_at: dt.datetime


def payout_status(*, payout_id: int) -> PayoutStatusView | None:
    fields = [field.name for field in dataclasses.fields(PayoutStatusView)]
    row = Payout.objects.filter(pk=payout_id).values_list(*fields).first()
    return PayoutStatusView(*row) if row is not None else None
