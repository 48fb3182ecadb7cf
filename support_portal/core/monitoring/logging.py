"""Structured logs: one JSON object per line, with the request id and the Celery task.

    {"time": "2026-12-06T03:04:05.678Z", "level": "INFO", "logger": "payouts.tasks",
     "message": "payout sweep re-enqueued", "request_id": null, "task_id": "…", "task_name": "payouts.sweep",
     "count": 3}

Fields given with `extra=` are kept (values that are not JSON become strings). Every text — message,
extra values, exception — is masked (support_portal.accounts.logging.mask_text) on top of the masking
filter, so an email address, phone number, code or account number never reaches a log line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from support_portal.accounts.logging import mask_text
from support_portal.core.monitoring.context import request_id_var, task_id_var, task_name_var

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_CONTEXT = ("request_id", "task_id", "task_name")


class RequestContextFilter(logging.Filter):
    """Adds request_id / task_id / task_name from the running request or task (None outside them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        record.task_name = task_name_var.get()
        return True


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _masked(item) for key, item in value.items()}
    return mask_text(str(value))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
        }
        for name in _CONTEXT:
            entry[name] = getattr(record, name, None)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("_"):
                entry[key] = _masked(value)
        if record.exc_info:
            entry["exception"] = mask_text(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = mask_text(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)
