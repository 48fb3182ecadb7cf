"""The one way this project sends a Celery task: after the surrounding transaction commits.

A task sent before commit can run before its rows are visible, or for a change that then rolls back.
Outside a transaction (autocommit) the task is sent at once.
"""

import functools
from typing import Any

from celery import Task
from django.db import transaction


def enqueue_on_commit[**P](task: Task[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> None:
    transaction.on_commit(functools.partial(task.delay, *args, **kwargs))
