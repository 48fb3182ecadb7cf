"""Celery task outcomes (succeeded / failed / retried, by task name), counted where they happen.

The counting happens in the worker processes, the exposition in the web processes, often on other
machines (compose: separate containers). Instead of prometheus_client's multiprocess mode (files shared
by processes of one host) each outcome is one `HINCRBY` on a Redis hash, and `/metrics` reads the hash
at scrape time: any number of workers on any number of hosts add to the same counters, which survive
worker restarts (a Redis restart resets them, which Prometheus' rate() treats as a counter reset).
Without REDIS_URL (the first-run default) nothing is counted.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import signals
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from support_portal.core.monitoring.figures import Figure

logger = logging.getLogger(__name__)

HASH_KEY = "portal:metrics:celery_tasks"
OUTCOMES = ("succeeded", "failed", "retried")
_SEPARATOR = "|"
_clients: dict[str, redis.Redis] = {}


def redis_client() -> redis.Redis | None:
    """A client for REDIS_URL with short timeouts (a metric must never hang a task), or None."""
    url = settings.REDIS_URL
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return client


def task_outcome_count(*, task_name: str, outcome: str) -> None:
    client = redis_client()
    if client is None:
        return
    try:
        client.hincrby(HASH_KEY, f"{task_name}{_SEPARATOR}{outcome}", 1)
    except redis.RedisError:
        logger.warning("task outcome not counted (Redis unavailable)", extra={"task_name": task_name})


def task_outcome_counts() -> dict[tuple[str, str], int]:
    """{(task name, outcome): count} as recorded so far (empty without Redis)."""
    client = redis_client()
    if client is None:
        return {}
    raw: dict[bytes, bytes] = client.hgetall(HASH_KEY)  # type: ignore[assignment]
    counts: dict[tuple[str, str], int] = {}
    for field, value in raw.items():
        task_name, _sep, outcome = field.decode().rpartition(_SEPARATOR)
        counts[(task_name, outcome)] = int(value)
    return counts


def task_figures() -> list[Figure]:
    counts = task_outcome_counts()
    return [
        Figure(
            name="portal_celery_tasks",
            kind="counter",
            help=_("Celery tasks finished, by task name and outcome (succeeded, failed, retried)"),
            labels=("task", "outcome"),
            samples=tuple(((task, outcome), count) for (task, outcome), count in sorted(counts.items())),
        )
    ]


def _name(sender: Any) -> str:
    return str(getattr(sender, "name", None) or sender or "unknown")


def _on_success(sender: Any = None, **kwargs: Any) -> None:
    task_outcome_count(task_name=_name(sender), outcome="succeeded")


def _on_failure(sender: Any = None, **kwargs: Any) -> None:
    task_outcome_count(task_name=_name(sender), outcome="failed")


def _on_retry(sender: Any = None, **kwargs: Any) -> None:
    task_outcome_count(task_name=_name(sender), outcome="retried")


def task_signals_connect() -> None:
    signals.task_success.connect(_on_success, dispatch_uid="core_metrics_task_success", weak=False)
    signals.task_failure.connect(_on_failure, dispatch_uid="core_metrics_task_failure", weak=False)
    signals.task_retry.connect(_on_retry, dispatch_uid="core_metrics_task_retry", weak=False)
