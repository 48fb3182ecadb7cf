"""`/healthz`, `/readyz` and `/metrics` (dispatched by MonitoringEndpointsMiddleware, before host checks,
HTTPS redirects, sessions, sign-in and two-factor: a load balancer or Prometheus has none of them)."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from support_portal.core.monitoring.health import readiness_checks
from support_portal.core.monitoring.prometheus import metrics_exposition

NO_STORE = "no-store"


def _json(payload: dict[str, object], status: int) -> JsonResponse:
    response = JsonResponse(payload, status=status)
    response["Cache-Control"] = NO_STORE
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers (no database, no Redis)."""
    return _json({"status": "ok"}, 200)


def readyz(request: HttpRequest) -> HttpResponse:
    """200 when every readiness check passes, else 503 with the first failed check's reason."""
    results = readiness_checks()
    failed = [result for result in results if not result.ok]
    payload: dict[str, object] = {
        "status": "unavailable" if failed else "ok",
        "checks": {result.name: ("ok" if result.ok else "failed") for result in results},
    }
    if failed:
        payload["reason"] = failed[0].reason
        payload["reasons"] = {result.name: result.reason for result in failed}
    return _json(payload, 503 if failed else 200)


def _address_allowed(request: HttpRequest, networks: list[str]) -> bool:
    from support_portal.accounts.selectors import client_ip  # noqa: PLC0415 - app registry; honours proxies

    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def _token_valid(request: HttpRequest, token: str) -> bool:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _sep, presented = header.partition(" ")
    # Constant time: compare_digest on bytes of any length; the scheme check leaks nothing secret.
    return hmac.compare_digest(presented.strip().encode(), token.encode()) and scheme.lower() == "bearer"


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS set there is no
    endpoint (404); otherwise every configured condition must hold (403)."""
    token: str = settings.METRICS_TOKEN
    networks: list[str] = settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return HttpResponse("Not Found", status=404, content_type="text/plain")
    if (token and not _token_valid(request, token)) or (networks and not _address_allowed(request, networks)):
        return HttpResponse("Forbidden", status=403, content_type="text/plain")
    response = HttpResponse(metrics_exposition(), content_type=CONTENT_TYPE_LATEST)
    response["Cache-Control"] = NO_STORE
    return response
