"""The request id and the Celery task of the code running now, for log lines (contextvars)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar
from typing import Any

from celery import signals

request_id_var: ContextVar[str | None] = ContextVar("portal_request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("portal_task_id", default=None)
task_name_var: ContextVar[str | None] = ContextVar("portal_task_name", default=None)

# An incoming X-Request-ID is kept when it looks like an id (a proxy's or a client's), else replaced:
# a header is attacker-controlled and ends up in every log line of the request.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")
TASK_HEADER = "portal_request_id"


def request_id_accept(incoming: str | None) -> str:
    if incoming and _SAFE_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def _request_started(sender: Any = None, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Set for the whole request, including what Django logs after the middleware (django.request's
    "Not Found" lines); cleared when the response is closed (request_finished)."""
    incoming = None
    if environ is not None:
        incoming = environ.get("HTTP_X_REQUEST_ID")
    else:
        scope = kwargs.get("scope") or {}
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"x-request-id")
        incoming = raw.decode("latin-1") if raw else None
    request_id_var.set(request_id_accept(incoming))


def _request_finished(**kwargs: Any) -> None:
    request_id_var.set(None)


def _before_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """A task sent while handling a request carries the request id (its log lines name it too)."""
    request_id = request_id_var.get()
    if headers is not None and request_id and TASK_HEADER not in headers:
        headers[TASK_HEADER] = request_id


def _task_started(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    task_id_var.set(task_id)
    task_name_var.set(getattr(task, "name", None))
    request = getattr(task, "request", None)
    incoming = getattr(request, TASK_HEADER, None) or (getattr(request, "headers", None) or {}).get(TASK_HEADER)
    request_id_var.set(incoming if isinstance(incoming, str) and _SAFE_ID.match(incoming) else None)


def _task_finished(**kwargs: Any) -> None:
    task_id_var.set(None)
    task_name_var.set(None)
    request_id_var.set(None)


def context_signals_connect() -> None:
    from django.core.signals import request_finished, request_started  # noqa: PLC0415

    request_started.connect(_request_started, dispatch_uid="core_log_request_started", weak=False)
    request_finished.connect(_request_finished, dispatch_uid="core_log_request_finished", weak=False)
    signals.before_task_publish.connect(_before_publish, dispatch_uid="core_log_before_publish", weak=False)
    signals.task_prerun.connect(_task_started, dispatch_uid="core_log_task_started", weak=False)
    signals.task_postrun.connect(_task_finished, dispatch_uid="core_log_task_finished", weak=False)
