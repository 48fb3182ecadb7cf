"""Running a scheduled task by hand from the admin (django-celery-beat's `run_tasks`) is for superusers:
the task would run with no one's permission checked (a manager could build a payout batch)."""

from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from payouts.models import PayoutBatch
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def build_batches_task() -> PeriodicTask:
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    return PeriodicTask.objects.create(name="build batches", task="payouts.build_batches", interval=every)


def _run(client: Client, task: PeriodicTask):
    return client.post(
        reverse("admin:django_celery_beat_periodictask_changelist"),
        {"action": "run_tasks", "_selected_action": [str(task.pk)]},
    )


def test_a_manager_cannot_run_a_task_from_the_admin(build_batches_task):
    # Given a manager (may change schedules, may not build payout batches)
    manager = UserFactory.create(username="mgr", is_staff=True)
    manager.groups.set([Group.objects.get(name="manager")])
    assert not manager.has_perm("payouts.start_payoutbatch")
    client = Client()
    client.force_login(manager)

    # When the manager posts the run action for the batch-building task
    with mock.patch("celery.app.task.Task.apply_async") as apply_async:
        response = _run(client, build_batches_task)

    # Then nothing is sent to the broker and no batch exists
    assert response.status_code in (200, 302)
    apply_async.assert_not_called()
    assert not PayoutBatch.objects.exists()


def test_a_superuser_can_run_a_task_from_the_admin(build_batches_task):
    root = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)

    with mock.patch("celery.app.task.Task.apply_async") as apply_async:
        response = _run(client, build_batches_task)

    assert response.status_code == 302
    apply_async.assert_called_once()
    assert apply_async.call_args.kwargs["headers"] == {"periodic_task_name": "build batches"}


def _manager_client() -> Client:
    manager = UserFactory.create(username="mgr", is_staff=True)
    manager.groups.set([Group.objects.get(name="manager")])
    client = Client()
    client.force_login(manager)
    return client


def test_a_manager_moves_a_schedule_but_cannot_change_what_runs(build_batches_task):
    # Given a schedule for the ticket escalation sweep, and a manager
    build_batches_task.task = "tickets.escalate_breaches"
    build_batches_task.args = "[]"
    build_batches_task.save()
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    client = _manager_client()

    # When the manager posts the change form pointing it at the batch builder with arguments, and a new interval
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_change", args=[build_batches_task.pk]),
        {
            "name": "renamed",
            "regtask": "payouts.build_batches",
            "task": "payouts.build_batches",
            "args": "[1]",
            "kwargs": '{"program_id": 1}',
            "queue": "other",
            "enabled": "on",
            "description": "every hour",
            "interval": str(hourly.pk),
        },
    )

    # Then the schedule moved, and the task, its name, arguments and routing are as they were
    assert response.status_code == 302, response.content.decode()[:2000]
    build_batches_task.refresh_from_db()
    assert build_batches_task.interval_id == hourly.pk
    assert build_batches_task.description == "every hour"
    assert (build_batches_task.name, build_batches_task.task) == ("build batches", "tickets.escalate_breaches")
    assert (build_batches_task.args, build_batches_task.kwargs, build_batches_task.queue) == ("[]", "{}", None)


def test_a_manager_cannot_add_a_periodic_task():
    # Given a manager
    client = _manager_client()
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)

    # When the manager opens the add page and posts a new task that would build payout batches
    page = client.get(reverse("admin:django_celery_beat_periodictask_add"))
    response = client.post(
        reverse("admin:django_celery_beat_periodictask_add"),
        {"name": "sneaky", "task": "payouts.build_batches", "interval": str(every.pk), "enabled": "on"},
    )

    # Then both are refused and no task exists
    assert (page.status_code, response.status_code) == (403, 403)
    assert not PeriodicTask.objects.filter(name="sneaky").exists()


def test_a_superuser_still_changes_what_runs(build_batches_task):
    root = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)

    response = client.post(
        reverse("admin:django_celery_beat_periodictask_change", args=[build_batches_task.pk]),
        {
            "name": "build batches",
            "regtask": "payouts.build_batches",
            "task": "",
            "args": "[]",
            "kwargs": "{}",
            "enabled": "on",
            "interval": str(build_batches_task.interval_id),
            "expire_seconds": "",
            "priority": "",
            "headers": "{}",
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    build_batches_task.refresh_from_db()
    assert build_batches_task.task == "payouts.build_batches"
