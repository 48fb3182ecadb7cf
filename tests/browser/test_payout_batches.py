"""Finance builds and starts a payout batch in a real browser and watches a real Celery worker finish it."""

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group

from payouts.models import BatchStatus, Payout, PayoutBatch, PayoutNotice, PayoutStatus
from support_portal.core.roles import roles_sync
from tests.browser.conftest import admin_login
from tests.core.test_celery_worker import celery_worker_process  # noqa: F401 - fixture
from tests.factories import UserFactory
from tests.payouts.conftest import bulk_claims, make_program

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

USER_PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory


def test_finance_starts_a_batch_and_watches_it_reach_100_percent(page, live_server, celery_worker_process):  # noqa: F811
    # Given 450 approved claims without payouts, a finance user and a worker on the real broker
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete("celery")
    roles_sync()
    program = make_program(name="ログイン障害補償")
    bulk_claims(program, 450)
    user = UserFactory.create(username="finance-browser")
    user.groups.add(Group.objects.get(name="finance"))
    admin_login(page, live_server.url, "finance-browser", USER_PASSWORD)

    # When finance opens the batches, builds one for the program and starts it at once
    page.goto(f"{live_server.url}/admin/payouts/payoutbatch/")
    page.click("a[href$='/admin/payouts/payoutbatch/build/']")
    page.select_option("#id_program", str(program.pk))
    page.check("#id_start")
    with page.expect_navigation():
        page.click("#batch-build-form input[type=submit]")

    # Then the progress screen polls the worker's progress up to 100 %, without reloading the page
    assert "/progress/" in page.url
    page.wait_for_selector("#batch-progress[data-finished='true']", timeout=60_000)
    assert page.text_content("[data-field='percent']") == "100"
    assert page.text_content("[data-field='issued']") == "450"
    assert page.get_attribute("#batch-progress", "data-status") == "completed"
    assert page.get_attribute("#batch-progress-bar", "value") == "100"

    # And the database agrees: one batch, every payout issued once, one notice each
    batch = PayoutBatch.objects.get()
    assert (batch.status, batch.total_count, batch.issued_count, batch.created_by) == (
        BatchStatus.COMPLETED,
        450,
        450,
        user,
    )
    assert Payout.objects.filter(batch=batch).exclude(status=PayoutStatus.CREATED).count() == 450
    assert PayoutNotice.objects.filter(kind="issued", sequence=1).count() == 450
