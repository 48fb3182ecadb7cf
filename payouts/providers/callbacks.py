"""The simulators' callbacks: what the ATM voucher and point-code providers send when a voucher is
redeemed / expires or a code is delivered / fails — a real signed request (X-Signature, the first secret
of PAYOUT_WEBHOOK_SECRETS for the provider).

With PAYOUT_PROVIDER_CALLBACK_URL set (e.g. https://backoffice.example.jp/api/v1/webhooks/) it is POSTed
there over HTTP, `<url><provider>`; without it, it is handed to the receiving service
(`payouts.callbacks.provider_callback_receive`) in process, through the same signature verification.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from django.conf import settings

from payouts.callbacks import CALLBACK_PROVIDERS, provider_callback_receive
from payouts.models import Payout
from support_portal.api.signing import SIGNATURE_HEADER, signature_header


@dataclasses.dataclass(frozen=True)
class CallbackSent:
    status_code: int
    body: dict[str, Any]
    event_id: str


def callback_provider_for(payout: Payout) -> str:
    """The callback provider slug of the payout's issuing provider (ValueError when it has none)."""
    for slug, provider in CALLBACK_PROVIDERS.items():
        if payout.provider in provider.provider_names:
            return slug
    raise ValueError(f"payout {payout.pk}: its provider {payout.provider or '(none)'} sends no callbacks")


def provider_callback_send(
    *, payout: Payout, event_type: str, event_id: str | None = None, timestamp: int | None = None
) -> CallbackSent:
    """Sends one signed callback about `payout` as its provider would; returns the receiver's answer."""
    provider = callback_provider_for(payout)
    event_id = event_id or f"evt_{uuid.uuid4().hex}"
    t = int(time.time()) if timestamp is None else timestamp
    body = json.dumps(
        {"id": event_id, "type": event_type, "created": t, "data": {"reference": payout.provider_reference}},
        separators=(",", ":"),
    ).encode()
    secrets = settings.PAYOUT_WEBHOOK_SECRETS.get(provider, [])
    signature = signature_header(secret=secrets[0] if secrets else "", body=body, timestamp=t)
    url = settings.PAYOUT_PROVIDER_CALLBACK_URL
    if not url:
        answer = provider_callback_receive(provider=provider, body=body, signature=signature)
        return CallbackSent(answer.status_code, answer.body, event_id)
    request = urllib.request.Request(  # noqa: S310 - an operator-configured https URL
        url.rstrip("/") + "/" + provider,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return CallbackSent(response.status, json.loads(response.read() or b"{}"), event_id)
    except urllib.error.HTTPError as error:
        return CallbackSent(error.code, json.loads(error.read() or b"{}"), event_id)
