"""The Operations health admin page (managers) and the backlog samples behind its chart."""

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from support_portal.core.models import BacklogSample
from support_portal.core.services import sweep_run_record, worker_heartbeat_record
from support_portal.core.tasks import backlog_sample
from tests.claims.factories import ClaimFactory
from tests.factories import UserFactory
from tests.payouts.conftest import make_program

pytestmark = pytest.mark.django_db


def _client_for(role: str) -> Client:
    user = UserFactory.create(username=f"{role}-1", is_staff=True)
    user.groups.set([Group.objects.get(name=role)])
    client = Client()
    client.force_login(user)
    return client


def test_an_agent_may_not_open_the_page():
    response = _client_for("agent").get(reverse("admin:core_operations_health"))

    assert response.status_code == 403


def test_a_manager_sees_readiness_figures_and_the_backlog_chart():
    # Given two claims awaiting review, a fresh heartbeat, and three backlog samples in the last 24 hours
    now = timezone.now()
    program = make_program(slug="outage-2026")
    ClaimFactory.create_batch(2, program=program)
    worker_heartbeat_record(hostname="worker-1", seen_at=now)
    sweep_run_record(sweep="payouts.sweep", reenqueued=0, ran_at=now)
    for hours, waiting in ((30, 9), (3, 4), (1, 2)):  # the first is older than the chart's 24 hours
        BacklogSample.objects.create(
            sampled_at=now - dt.timedelta(hours=hours),
            values={"portal_claims_awaiting_review": waiting, "portal_payout_notices_pending": 1},
        )

    # When a manager opens the page (Japanese is the default language)
    response = _client_for("manager").get(reverse("admin:core_operations_health"))

    # Then it shows the readiness checks, every figure, and a chart of the two recent samples
    assert response.status_code == 200
    page = response.content.decode()
    assert "運用状況" in page
    assert '<tr class="check-database"><td>database</td><td>OK</td>' in page
    assert (
        '<tr data-metric="portal_claims_awaiting_review"><td>審査待ちの請求（審査待ち・二次承認待ち・再審査）、'
        "プログラム・状態別</td><td><code>portal_claims_awaiting_review</code></td>"
        '<td>program=outage-2026, status=pending_review</td>\n          <td class="num">2</td></tr>'
    ) in page
    chart = response.context["health"].chart
    assert 'data-chart="line"' in chart
    assert 'data-points="2"' in chart
    assert 'data-series="審査待ちの請求|発行待ちの支払|送信待ちの通知"' in chart


def test_the_page_is_in_english_when_asked():
    response = _client_for("manager").get(reverse("admin:core_operations_health"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "Operations health" in response.content.decode()


def test_the_admin_entry_shows_managers_the_page_and_refuses_agents():
    response = _client_for("manager").get(reverse("admin:core_backlogsample_changelist"))
    refused = _client_for("agent").get(reverse("admin:core_backlogsample_changelist"))

    assert response.status_code == 200
    assert "運用状況" in response.content.decode()
    assert refused.status_code == 403


def test_the_backlog_sample_task_writes_one_row_and_prunes_old_ones(settings):
    # Given one sample older than the retention and two claims awaiting review
    settings.BACKLOG_SAMPLE_RETENTION_DAYS = 7
    old = BacklogSample.objects.create(sampled_at=timezone.now() - dt.timedelta(days=8), values={})
    ClaimFactory.create_batch(2, program=make_program())

    # When beat's task runs
    pruned = backlog_sample.apply().get()

    # Then one new row holds the backlog totals and the old one is gone
    assert pruned == 1
    assert not BacklogSample.objects.filter(pk=old.pk).exists()
    (sample,) = BacklogSample.objects.all()
    assert sample.values == {
        "portal_claims_awaiting_review": 2,
        "portal_payouts_to_issue": 0,
        "portal_payout_notices_pending": 0,
    }


def test_the_backlog_schedule_is_a_default_periodic_task():
    task = PeriodicTask.objects.get(name="Backlog samples (Operations health chart)")

    assert (task.task, task.enabled, task.interval.every, task.interval.period) == (
        "core.backlog_sample",
        True,
        5,
        "minutes",
    )
