"""The payouts app's part of /api/v1/ (registered in PayoutsConfig.ready()): a payout's status (never
its code), and the providers' signed callbacks (no API key: the signature is the authentication)."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Router
from ninja.errors import HttpError

from payouts.callbacks import provider_callback_receive
from payouts.selectors import payout_status
from support_portal.api.models import ApiScope
from support_portal.api.signing import SIGNATURE_HEADER
from support_portal.api.v1 import api_key_of


def payouts_router() -> Router:
    router = Router(tags=["payouts"])

    @router.get("/{payout_id}")
    def payout(request: HttpRequest, payout_id: int) -> dict[str, Any]:
        """A payout's status, method, amount and dates — never its code, URL, PIN or provider reference."""
        api_key_of(request, scope=ApiScope.READ)
        view = payout_status(payout_id=payout_id)
        if view is None:
            raise HttpError(404, "no such payout")
        return dataclasses.asdict(view)

    return router


def webhooks_router() -> Router:
    router = Router(tags=["provider callbacks"])

    @router.post(
        "/{provider}",
        auth=None,
        openapi_extra={
            "parameters": [
                {
                    "in": "header",
                    "name": SIGNATURE_HEADER,
                    "required": True,
                    "schema": {"type": "string"},
                    "description": "t=<unix seconds>,v1=<hex HMAC-SHA256 of t + '.' + body>",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    )
    def callback(request: HttpRequest, provider: str) -> HttpResponse:
        """A provider's signed callback (sevenbank-atm: voucher.redeemed / voucher.expired; point-codes:
        code.delivered / code.failed) with body {"id", "type", "created", "data": {"reference"}}."""
        answer = provider_callback_receive(
            provider=provider, body=request.body, signature=request.headers.get(SIGNATURE_HEADER, "")
        )
        return JsonResponse(answer.body, status=answer.status_code)

    return router
