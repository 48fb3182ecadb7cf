"""Provider callbacks: the ATM voucher provider says a voucher was redeemed or expired, the point-code
provider that a code was delivered or failed; each moves the payout along its audited transitions
(`payouts_transition`: PayoutTransition row, history triggers, the actor `provider:<name>`).

A callback is signed (support_portal.api.signing, Stripe's scheme) with the provider's secret
(PAYOUT_WEBHOOK_SECRETS, from the environment); one older than 5 minutes is refused. The payout is found by
the provider's reference; an unknown one is a 404 that stores nothing. A callback's event id is stored
with the move (UNIQUE (provider, event id)), so a replay changes nothing and gets the same 200.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from payouts.models import Payout, PayoutStatus, PayoutTransition, ProviderCallback
from payouts.services import payouts_transition
from support_portal.api.signing import SignatureInvalid, signature_verify
from support_portal.core.audit import audit_context, provider_actor


@dataclasses.dataclass(frozen=True)
class CallbackProvider:
    slug: str
    # Payout.provider values this provider issued under (payouts.providers).
    provider_names: frozenset[str]
    # event type -> the status it moves the payout to
    events: dict[str, str]


CALLBACK_PROVIDERS: dict[str, CallbackProvider] = {
    provider.slug: provider
    for provider in (
        CallbackProvider(
            slug="sevenbank-atm",
            provider_names=frozenset({"sevenbank-atm-simulator"}),
            events={"voucher.redeemed": PayoutStatus.SETTLED, "voucher.expired": PayoutStatus.EXPIRED},
        ),
        CallbackProvider(
            slug="point-codes",
            provider_names=frozenset(
                f"points-{brand}-simulator" for brand in ("amazon", "ponta", "paypay", "edy", "nanaco")
            ),
            events={"code.delivered": PayoutStatus.SETTLED, "code.failed": PayoutStatus.FAILED},
        ),
    )
}


@dataclasses.dataclass(frozen=True)
class CallbackAnswer:
    status_code: int
    body: dict[str, Any]


def _refused(status_code: int, reason: str) -> CallbackAnswer:
    return CallbackAnswer(status_code, {"status": "refused", "reason": reason})


def _parse(body: bytes, provider: CallbackProvider) -> tuple[str, str, str] | CallbackAnswer:
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _refused(400, f"body: not valid JSON: {exc}")
    if not isinstance(event, dict):
        return _refused(400, "body: must be a JSON object")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    reference = data.get("reference") if isinstance(data, dict) else None
    if not isinstance(event_id, str) or not event_id or len(event_id) > 128:
        return _refused(400, "id: required, a string of at most 128 characters")
    if event_type not in provider.events:
        return _refused(400, f"type: not one of: {', '.join(provider.events)}")
    if not isinstance(reference, str) or not reference:
        return _refused(400, "data.reference: required, the provider's reference of the payout")
    return event_id, str(event_type), reference


def provider_callback_receive(
    *, provider: str, body: bytes, signature: str, now: dt.datetime | None = None
) -> CallbackAnswer:
    """Verifies, then applies one callback (one transaction); the answer to send back."""
    known = CALLBACK_PROVIDERS.get(provider)
    if known is None:
        return _refused(404, "unknown provider")
    now = now or timezone.now()
    try:
        signed = signature_verify(
            secrets=settings.PAYOUT_WEBHOOK_SECRETS.get(provider, []),
            body=body,
            header=signature,
            now=now.timestamp(),
            tolerance=settings.PAYOUT_WEBHOOK_TOLERANCE_SECONDS,
        )
    except SignatureInvalid as invalid:
        return _refused(401, invalid.reason)
    parsed = _parse(body, known)
    if isinstance(parsed, CallbackAnswer):
        return parsed
    event_id, event_type, reference = parsed
    with (
        audit_context(actor=provider_actor(name=provider), action="provider_callback", event=event_id),
        transaction.atomic(),
    ):
        return _apply(known, event_id=event_id, event_type=event_type, reference=reference, signed=signed, now=now)


def _apply(
    known: CallbackProvider, *, event_id: str, event_type: str, reference: str, signed: int, now: dt.datetime
) -> CallbackAnswer:
    """In the callback's transaction: find the payout, skip a replay, move it, store the event."""
    provider, target = known.slug, known.events[event_type]
    payout_id = (
        Payout.objects.filter(provider__in=known.provider_names, provider_reference=reference)
        .values_list("pk", flat=True)
        .first()
    )
    if payout_id is None:
        return _refused(404, "no payout with this reference")
    done = ProviderCallback.objects.filter(provider=provider, event_id=event_id).first()
    if done is not None:
        return _answer(done, replay=True)
    moved = payouts_transition(
        notes={payout_id: f"provider callback {provider} {event_id}: {event_type}"}, to=target, actor=None
    )
    if payout_id in moved.refused:
        transaction.set_rollback(True)
        return _refused(409, f"payout is {moved.refused[payout_id]}: {event_type} cannot apply")
    before = target if payout_id in moved.unchanged else _status_before(payout_id)
    # ON CONFLICT: a copy of this callback racing this one waits here for its commit, then finds it.
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO {ProviderCallback._meta.db_table}
                (provider, event_id, event_type, payout_id, status_before, status_after, signed_at, received_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (provider, event_id) DO NOTHING RETURNING id""",
            [provider, event_id, event_type, payout_id, before, target, _utc(signed), now],
        )
        inserted = cursor.fetchone()
    if inserted is None:
        transaction.set_rollback(True)
        return _answer(ProviderCallback.objects.get(provider=provider, event_id=event_id), replay=True)
    return _answer(ProviderCallback.objects.get(pk=inserted[0]), replay=False)


def _status_before(payout_id: int) -> str:
    # The transition just written by payouts_transition names the status it left.
    return str(
        PayoutTransition.objects.filter(payout_id=payout_id).order_by("-pk").values_list("status_before", flat=True)[0]
    )


def _utc(timestamp: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)


def _answer(callback: ProviderCallback, *, replay: bool) -> CallbackAnswer:
    return CallbackAnswer(
        200,
        {
            "status": "duplicate" if replay else "applied",
            "event": callback.event_id,
            "payout": callback.payout_id,
            "payout_status": callback.status_after,
        },
    )
