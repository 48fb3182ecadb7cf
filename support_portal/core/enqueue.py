"""The one way this project sends a Celery task: after the surrounding transaction commits.

A task sent before commit can run before its rows are visible, or for a change that then rolls back.
Outside a transaction (autocommit) the task is sent at once.

Sending never fails the caller: the work is already committed and the database is the record of what
is due, so a broker that is down (Redis stopped, unreachable, refusing) is logged without personal data
(the task name and the count of arguments only), counted in `portal_enqueue_failures_total{task=…}` and
left to the periodic sweeps, which find the due rows and enqueue them again (docs/operations.md).
"""

import functools
import logging
from typing import Any

import redis.exceptions
from celery import Task
from django.db import transaction
from kombu.exceptions import OperationalError as KombuOperationalError
from prometheus_client import Counter

logger = logging.getLogger(__name__)

# What the broker raises when it cannot take a message: kombu wraps most connection errors in its
# OperationalError; redis-py's and the socket's own errors can surface unwrapped.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuOperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    OSError,
)

ENQUEUE_FAILURES = Counter(
    "portal_enqueue_failures",
    "Tasks that could not be handed to the broker after commit (the database sweeps pick the work up).",
    ["task"],
)


def enqueue_failure_count(task_name: str) -> float:
    """The counter's current value for one task (0 before the first failure)."""
    return ENQUEUE_FAILURES.labels(task=task_name)._value.get()


class _SendAfterCommit:
    """`task.delay` that never raises a broker error (see the module docstring).

    The on-commit callback is `functools.partial(_SendAfterCommit(task), *args)`: like `task.delay`, it
    names its task as `__self__` and compares equal to `task.delay`, so captured callbacks read the same.
    """

    __slots__ = ("task",)

    def __init__(self, task: Task[Any, Any]) -> None:
        self.task = task

    @property
    def __self__(self) -> Task[Any, Any]:
        return self.task

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _SendAfterCommit):
            return bool(other.task == self.task)
        return getattr(other, "__name__", "") == "delay" and bool(getattr(other, "__self__", None) == self.task)

    def __hash__(self) -> int:
        return hash(self.task)

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.task.delay(*args, **kwargs)
        except BROKER_ERRORS as exc:
            ENQUEUE_FAILURES.labels(task=self.task.name).inc()
            logger.warning(
                "task not enqueued: broker unavailable; the sweep will pick the work up",
                extra={"task": self.task.name, "error": type(exc).__name__},
            )


def enqueue_on_commit[**P](task: Task[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
    transaction.on_commit(functools.partial(_SendAfterCommit(task), *args, **kwargs))
