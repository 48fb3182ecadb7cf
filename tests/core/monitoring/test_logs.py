"""Structured logs under the production configuration: one JSON object per line, request and task ids,
and no personal data in any line of a full demo run."""

import copy
import importlib
import io
import json
import logging
import logging.config
import re
import secrets
import sys

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.http import HttpResponse
from django.test import Client

from payouts.banking.models import BankAccount
from payouts.models import PayoutNotice, PayoutSecret
from support_portal.core.monitoring import middleware as monitoring_middleware
from support_portal.core.monitoring.context import task_id_var, task_name_var
from support_portal.customers.models import Customer
from support_portal.tickets.models import Ticket, TicketMessage


@pytest.fixture
def production_logging(monkeypatch):
    """Production's LOGGING (support_portal/settings/production.py) at DEBUG into a buffer; restored after."""
    for name, value in {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "backoffice.example.jp",
        "PAYOUT_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", settings.DATABASES["default"].get("URL", "") or "postgres://u@h/db")
    sys.modules.pop("support_portal.settings.production", None)
    production = importlib.import_module("support_portal.settings.production")
    sys.modules.pop("support_portal.settings.production", None)
    buffer = io.StringIO()
    config = copy.deepcopy(production.LOGGING)
    config["handlers"]["console"]["stream"] = buffer
    config["root"]["level"] = "DEBUG"
    assert config["handlers"]["console"]["formatter"] == "json"
    logging.config.dictConfig(config)
    try:
        yield buffer
    finally:
        logging.config.dictConfig(settings.LOGGING)


def _lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


@pytest.mark.django_db
def test_log_lines_are_json_with_the_request_id(production_logging, monkeypatch):
    logger = logging.getLogger("tests.monitoring")

    def logging_view(request):
        logger.info("looked up %s", "taro@example.jp", extra={"phone": "090-1234-5678", "payout_id": 7})
        return HttpResponse("ok")

    monkeypatch.setitem(monitoring_middleware.ENDPOINTS, "/healthz", logging_view)

    Client().get("/no-such-page/", HTTP_X_REQUEST_ID="req-0123456789")
    Client().get("/healthz", HTTP_X_REQUEST_ID="req-abcdefghij")

    lines = _lines(production_logging)
    not_found = next(line for line in lines if line["logger"] == "django.request")
    assert (not_found["request_id"], not_found["level"]) == ("req-0123456789", "WARNING")
    looked_up = next(line for line in lines if line["logger"] == "tests.monitoring")
    assert looked_up["request_id"] == "req-abcdefghij"
    assert looked_up["payout_id"] == 7
    assert set(looked_up) >= {"time", "level", "logger", "message", "request_id", "task_id", "task_name"}
    assert "taro@example.jp" not in json.dumps(looked_up, ensure_ascii=False)
    assert "090-1234-5678" not in json.dumps(looked_up, ensure_ascii=False)


@pytest.mark.django_db
def test_log_lines_of_a_task_carry_its_id_and_name(production_logging):
    from support_portal.core.tasks import heartbeat  # noqa: PLC0415

    result = heartbeat.apply(kwargs={"hostname": "worker-1"}, task_id="task-0123456789")

    assert result.successful()
    finished = [line for line in _lines(production_logging) if line["task_id"] == "task-0123456789"]
    assert finished and all(line["task_name"] == "core.heartbeat" for line in finished)
    assert task_id_var.get() is None and task_name_var.get() is None  # reset after the task


def _personal_values() -> dict[str, set[str]]:
    secrets_ = [secret.reveal() for secret in PayoutSecret.objects.all()]
    phones = {phone for phone in Customer.objects.exclude(phone="").values_list("phone", flat=True)}
    return {
        "payout code": {value for s in secrets_ for value in (s.code, s.url) if value},
        "bank account number": {account.account_number() for account in BankAccount.objects.all()},
        "email": (
            set(Customer.objects.exclude(email="").values_list("email", flat=True))
            | set(PayoutNotice.objects.filter(channel="email").values_list("recipient", flat=True))
            | set(Ticket.objects.exclude(requester_email="").values_list("requester_email", flat=True))
            | set(TicketMessage.objects.exclude(author_email="").values_list("author_email", flat=True))
        ),
        "phone number": phones | {re.sub(r"\D", "", phone) for phone in phones},
    }


@pytest.mark.django_db
def test_no_personal_data_in_any_log_line_of_a_full_demo_run(production_logging):
    # Given production's logging at DEBUG, when the whole demo runs (as `make run` does)
    call_command("load_demo", customers=300, seed=3, stdout=io.StringIO())
    call_command("create_demo_users", stdout=io.StringIO())
    call_command("demo_tickets", tickets=120, stdout=io.StringIO())
    call_command("demo_claims", stdout=io.StringIO())
    call_command("demo_payouts", stdout=io.StringIO())
    call_command("demo_banking", stdout=io.StringIO())
    text = production_logging.getvalue()

    # Then it logged, every line is one JSON object, and none holds a code, account number, email or phone
    values = _personal_values()
    assert all(values.values()), {kind: len(found) for kind, found in values.items()}
    lines = text.splitlines()
    assert len(lines) > 20
    assert all(isinstance(json.loads(line), dict) for line in lines)
    leaks = {kind: sorted(v for v in found if v in text)[:5] for kind, found in values.items()}
    assert leaks == {kind: [] for kind in values}


def test_a_task_sent_during_a_request_carries_the_request_id_into_its_log_lines():
    from types import SimpleNamespace  # noqa: PLC0415

    from support_portal.core.monitoring import context  # noqa: PLC0415

    # Given a request being handled: the task message sent gets the request id as a header
    token = context.request_id_var.set("req-0123456789")
    headers: dict[str, str] = {}
    try:
        context._before_publish(headers=headers)
    finally:
        context.request_id_var.reset(token)
    assert headers == {"portal_request_id": "req-0123456789"}

    # When the worker starts the task (Celery copies message headers onto task.request)
    task = SimpleNamespace(name="payouts.issue", request=SimpleNamespace(portal_request_id="req-0123456789"))
    context._task_started(task_id="task-1", task=task)
    try:
        seen = (context.request_id_var.get(), context.task_id_var.get(), context.task_name_var.get())
    finally:
        context._task_finished()

    # Then its log lines name the request, the task and its name; afterwards nothing is left behind
    assert seen == ("req-0123456789", "task-1", "payouts.issue")
    assert (context.request_id_var.get(), context.task_id_var.get()) == (None, None)
