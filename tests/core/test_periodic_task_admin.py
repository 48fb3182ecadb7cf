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
