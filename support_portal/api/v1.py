"""/api/v1/: the NinjaAPI (OpenAPI 3 at /api/v1/openapi.json, docs at /api/v1/docs), API-key auth, the
scope check, the ingest endpoints, and the routers other apps register (`api_router_register`, called in
their AppConfig.ready(): this core-level app knows nothing of claims or payouts).

Requests carry `Authorization: Bearer spk_<prefix>_<secret>`; staff sessions are never accepted. Token
auth needs no CSRF token (django-ninja's views are CSRF-exempt) and no session, so the sign-in and
two-factor middleware leave these paths alone. Rate limit per key: API_RATE_LIMIT (default 600/min).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import NinjaAPI, Router
from ninja.errors import HttpError
from ninja.security import HttpBearer
from ninja.throttling import AuthRateThrottle

from support_portal.api.ingest import KINDS, MAX_RECORDS, Answer, idempotent_answer, records_ingest
from support_portal.api.models import ApiKey, ApiScope
from support_portal.api.services import api_key_authenticate

# The request body of an ingest batch is read by the view (a JSON array), at most this many bytes.
MAX_BODY_BYTES = 64 * 1024 * 1024


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        return api_key_authenticate(key=token)


class ApiKeyRateThrottle(AuthRateThrottle):
    """API_RATE_LIMIT requests per API key (by its prefix), counted in the cache (Redis in production);
    the rate is read from the settings at each request. Unauthenticated requests count per address."""

    scope = "api_key"

    def __init__(self) -> None:
        super().__init__(settings.API_RATE_LIMIT)

    def allow_request(self, request: HttpRequest) -> bool:
        if self.rate != settings.API_RATE_LIMIT:
            self.rate = settings.API_RATE_LIMIT
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request)

    def get_cache_key(self, request: HttpRequest) -> str:
        api_key = getattr(request, "auth", None)
        ident = api_key.prefix if isinstance(api_key, ApiKey) else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


def api_key_of(request: HttpRequest, *, scope: str) -> ApiKey:
    """The request's API key, refused (403) unless it has `scope`."""
    api_key = getattr(request, "auth", None)
    if not isinstance(api_key, ApiKey):  # pragma: no cover - the auth of every keyed route sets it
        raise HttpError(401, "Unauthorized")
    if not api_key.has_scope(scope):
        raise HttpError(403, f"this API key lacks the '{scope}' scope")
    return api_key


def answer_response(answer: Answer) -> HttpResponse:
    return JsonResponse(answer.body, status=answer.status_code)


_routers: list[tuple[str, Callable[[], Router]]] = []


def api_router_register(prefix: str, router: Callable[[], Router]) -> None:
    """Adds an app's router under /api/v1/<prefix> (call from AppConfig.ready())."""
    if prefix not in {known for known, _factory in _routers}:
        _routers.append((prefix, router))


def _read_body(request: HttpRequest) -> bytes:
    declared = int(request.META.get("CONTENT_LENGTH") or 0)
    if declared > MAX_BODY_BYTES:
        raise HttpError(413, f"request body larger than {MAX_BODY_BYTES:,} bytes")
    # request.body would stop at DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, right for forms); a batch of 10,000
    # records is larger. The stream is bounded by Content-Length.
    return request.read(MAX_BODY_BYTES + 1)


def _parse_json(body: bytes) -> Any:
    """The body as JSON: orjson first (a 10,000-record batch in ~3 ms instead of ~10); what it refuses
    (integers past 64 bits, NaN, lone surrogates, malformed text) is decided by `json.loads`, so the API
    accepts and words its errors exactly as the standard library does."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "maxItems": MAX_RECORDS,
                    "items": {
                        "type": "object",
                        "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
                    },
                    "description": "Records with the columns of docs/formats.md for this kind",
                }
            }
        },
    },
    "parameters": [
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "maxLength": 255},
            "description": "Same key + same body: the stored answer again; same key + another body: 409",
        }
    ],
}


def _ingest_view(kind: str) -> Callable[[HttpRequest], HttpResponse]:
    def ingest(request: HttpRequest) -> HttpResponse:
        api_key = api_key_of(request, scope=ApiScope.INGEST)
        body = _read_body(request)
        if len(body) > MAX_BODY_BYTES:
            raise HttpError(413, f"request body larger than {MAX_BODY_BYTES:,} bytes")
        try:
            records = _parse_json(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return JsonResponse(
                {"status": "rejected", "error_count": 1, "errors": [f"body: not valid JSON: {exc}"]}, status=400
            )
        if not isinstance(records, list):
            return JsonResponse(
                {"status": "rejected", "error_count": 1, "errors": ["body: must be a JSON array of records"]},
                status=400,
            )
        key = request.headers.get("Idempotency-Key", "").strip()

        def compute() -> Answer:
            return records_ingest(kind=kind, records=records, api_key=api_key)

        if not key:
            return answer_response(compute())
        if len(key) > 255:
            raise HttpError(400, "Idempotency-Key: longer than 255 characters")
        answer = idempotent_answer(
            api_key=api_key,
            key=key,
            operation=f"ingest:{kind}",
            body_sha256=hashlib.sha256(body).hexdigest(),
            compute=compute,
        )
        return answer_response(answer)

    ingest.__name__ = f"ingest_{kind}"
    ingest.__doc__ = (
        f"Loads a batch of up to {MAX_RECORDS:,} {kind} records (the columns of {KINDS[kind]}), all-or-nothing, "
        "through the import service. 400 names every bad record as `records[i]: column: reason`."
    )
    return ingest


def _ingest_router() -> Router:
    router = Router(tags=["ingest"])
    for kind in KINDS:
        router.post(f"/{kind}", response={200: Any, 400: Any, 409: Any, 413: Any}, openapi_extra=_BATCH_BODY)(
            _ingest_view(kind)
        )
    return router


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="Support Portal API",
        version="1",
        description="Source systems push records; integrations read claim, payout and program figures; "
        "payout providers call back (signed). docs/api.md.",
        urls_namespace="api-v1",
        auth=ApiKeyAuth(),
        throttle=[ApiKeyRateThrottle()],
    )
    api.add_router("/ingest", _ingest_router())
    for prefix, factory in _routers:
        api.add_router(prefix, factory())
    return api


def json_body(request: HttpRequest) -> Any:
    """Helper for routers that read a small JSON body themselves (400 on malformed JSON)."""
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, f"body: not valid JSON: {exc}") from exc
