"""Request ids, request latency and the monitoring endpoints."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from support_portal.core.monitoring import views
from support_portal.core.monitoring.context import request_id_accept, request_id_var
from support_portal.core.monitoring.prometheus import REQUEST_LATENCY

ENDPOINTS: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": views.healthz,
    "/readyz": views.readyz,
    "/metrics": views.metrics,
}
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestContextMiddleware:
    """First in MIDDLEWARE: takes X-Request-ID (or makes one), answers with it, puts it on every log line
    of the request, and times the request into `portal_http_request_duration_seconds` labelled by the
    URL name (never the raw path, which carries ids), the method and the status class."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Normally set by the request_started signal (context.py) so it covers Django's own log lines too.
        request_id = request_id_var.get()
        if request_id is None:
            request_id = request_id_accept(request.META.get("HTTP_X_REQUEST_ID"))
            request_id_var.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        REQUEST_LATENCY.labels(
            view=self._view(request),
            method=request.method if request.method in METHODS else "other",
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response

    @staticmethod
    def _view(request: HttpRequest) -> str:
        monitoring = getattr(request, "monitoring_endpoint", None)
        if monitoring:
            return str(monitoring)
        match = getattr(request, "resolver_match", None)
        if match is None:
            return "<unmatched>"
        return match.view_name or (match.route or "<unnamed>")


class MonitoringEndpointsMiddleware:
    """Answers /healthz, /readyz and /metrics before host validation, the HTTPS redirect, sessions,
    sign-in and two-factor (a probe sends none of what they need); everything else passes on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view = ENDPOINTS.get(request.path_info.rstrip("/") or "/")
        if view is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        request.monitoring_endpoint = request.path_info.strip("/")  # type: ignore[attr-defined]
        return view(request)
