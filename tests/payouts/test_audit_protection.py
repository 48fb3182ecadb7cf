"""The payout tables are protected in the database: transitions and exports append-only, the rest audited.

Tried as a role like production's application role (tests/db_roles.py) that also tells every trigger to
skip (`pgtrigger.ignore`): refused or recorded all the same, and the event names the database role.
"""

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pytest
from django.apps import apps
from django.db import InternalError, ProgrammingError, connection, transaction
from django.utils import timezone

from payouts import crypto
from payouts.banking.models import ExportStatus, ZenginExport
from payouts.batches import payout_batch_create
from payouts.models import (
    PayoutBatch,
    PayoutBatchTransition,
    PayoutNotice,
    PayoutSecret,
    PayoutTransition,
    ProgramPayoutPolicy,
)
from tests.db_roles import as_role, ignore_every_trigger
from tests.payouts.conftest import approved_claim, make_program
from tests.payouts.test_batches import finance
from tests.payouts.test_notices import issued_payout

pytestmark = pytest.mark.django_db

REFUSED = (ProgrammingError, InternalError)


def raw_as_app_role(role: str, sql: str, params: Sequence[Any]) -> None:
    with as_role(role), transaction.atomic(), connection.cursor() as cursor:
        ignore_every_trigger(cursor)
        cursor.execute(sql, params)


def refused_as_app_role(role: str, sql: str, params: Sequence[Any]) -> None:
    with pytest.raises(REFUSED, match="Cannot"):
        raw_as_app_role(role, sql, params)


def zengin_export() -> ZenginExport:
    return ZenginExport.objects.create(
        transfer_date=dt.date(2026, 12, 10),
        sender_key="main",
        sender_label="みずほ ****567",
        file_name="zengin-20261210.txt",
        content_ciphertext=crypto.encrypt_bytes(b"1210..."),
        sha256="a" * 64,
        total_count=1,
        total_amount_jpy=5000,
        created_by=finance(),
        created_at=timezone.now(),
    )


def test_payout_transitions_cannot_be_edited_or_deleted(app_role):
    # Given an issued payout and its transitions
    payout = issued_payout()
    before = list(PayoutTransition.objects.filter(payout=payout).values_list("id", "status_before", "status_after"))
    assert before

    # When the application's role tries to rewrite or erase them (every trigger told to skip), it is refused
    refused_as_app_role(app_role, "UPDATE payouts_payouttransition SET status_after = 'settled'", [])
    refused_as_app_role(app_role, "DELETE FROM payouts_payouttransition WHERE payout_id = %s", [payout.pk])
    # and so is the database owner through the ORM
    with pytest.raises(REFUSED, match="Cannot"), transaction.atomic():
        PayoutTransition.objects.filter(payout=payout).delete()

    # Then the transitions are exactly as they were
    assert list(PayoutTransition.objects.filter(payout=payout).values_list("id", "status_before", "status_after")) == (
        before
    )


def test_batch_transitions_cannot_be_edited_or_deleted(app_role):
    # Given a started batch (its transitions: scheduled, running)
    program = make_program()
    approved_claim(program)
    batch = payout_batch_create(program=program, actor=finance(), start=True)
    before = list(PayoutBatchTransition.objects.filter(batch=batch).values_list("id", "status_after", "note"))
    assert before

    # When the application's role tries to rewrite or erase them, it is refused
    refused_as_app_role(app_role, "UPDATE payouts_payoutbatchtransition SET note = 'nothing happened'", [])
    refused_as_app_role(app_role, "DELETE FROM payouts_payoutbatchtransition WHERE batch_id = %s", [batch.pk])

    # Then they are unchanged
    assert list(PayoutBatchTransition.objects.filter(batch=batch).values_list("id", "status_after", "note")) == before


def test_a_zengin_export_cannot_be_altered_or_deleted_but_its_status_moves(app_role):
    # Given a written export
    export = zengin_export()

    # When the application's role tries to swap the file's identity or delete it, it is refused
    refused_as_app_role(
        app_role,
        "UPDATE banking_zenginexport SET sha256 = %s, file_name = 'other.txt' WHERE id = %s",
        ["b" * 64, export.pk],
    )
    refused_as_app_role(app_role, "UPDATE banking_zenginexport SET total_amount_jpy = %s WHERE id = %s", [1, export.pk])
    refused_as_app_role(app_role, "DELETE FROM banking_zenginexport WHERE id = %s", [export.pk])

    # Then the export is as written; its status alone may still move (results imported)
    export.refresh_from_db()
    assert (export.sha256, export.file_name, export.total_amount_jpy, export.file_bytes()) == (
        "a" * 64,
        "zengin-20261210.txt",
        5000,
        b"1210...",
    )
    ZenginExport.objects.filter(pk=export.pk).update(status=ExportStatus.RESULTS_IMPORTED)
    export.refresh_from_db()
    assert export.status == ExportStatus.RESULTS_IMPORTED


def _events(model_name: str, obj_id: object) -> list[tuple[str, dict | None]]:
    event_model = apps.get_model("payouts", f"{model_name}Event")
    return [
        (e.pgh_label, e.pgh_context.metadata if e.pgh_context else None)
        for e in event_model.objects.filter(pgh_obj_id=obj_id).select_related("pgh_context").order_by("pgh_id")
    ]


def test_notice_secret_batch_and_policy_changes_are_recorded_with_who(app_role):
    # Given an issued payout (its notice and secret), a batch and a program's payout policy
    payout = issued_payout()
    notice = PayoutNotice.objects.get(payout=payout)
    program = make_program()
    approved_claim(program)
    batch = payout_batch_create(program=program, actor=finance(username="finance-2"))
    policy = ProgramPayoutPolicy.objects.create(program=program)

    tracked = [
        ("PayoutNotice", notice.pk, ["update"]),
        ("PayoutSecret", payout.pk, ["update"]),
        ("PayoutBatch", batch.pk, ["update"]),
        ("ProgramPayoutPolicy", policy.pk, ["update", "delete"]),
    ]
    already = {name: len(_events(name, obj_id)) for name, obj_id, _labels in tracked}
    assert all(already.values())  # their creation was recorded too

    # When the application's role edits each of them with raw SQL, every trigger told to skip
    for sql, params in [
        ("UPDATE payouts_payoutnotice SET recipient = 'thief@example.jp' WHERE id = %s", [notice.pk]),
        ("UPDATE payouts_payoutsecret SET ciphertext = 'forged' WHERE payout_id = %s", [payout.pk]),
        ("UPDATE payouts_payoutbatch SET note = 'moved' WHERE id = %s", [batch.pk]),
        ("UPDATE payouts_programpayoutpolicy SET max_offers = 9 WHERE program_id = %s", [program.pk]),
        ("DELETE FROM payouts_programpayoutpolicy WHERE program_id = %s", [program.pk]),
    ]:
        raw_as_app_role(app_role, sql, params)

    # Then each change is a new event naming the database role that made it
    for model_name, obj_id, labels in tracked:
        new_events = _events(model_name, obj_id)[already[model_name] :]
        assert [label for label, _context in new_events] == labels, model_name
        assert [context and context["db_user"] for _label, context in new_events] == [app_role] * len(labels)
    NoticeEvent = apps.get_model("payouts", "PayoutNoticeEvent")
    assert NoticeEvent.objects.filter(pgh_obj_id=notice.pk, pgh_label="update").get().recipient == "thief@example.jp"
    # The secret's events never copy the encrypted code
    assert "ciphertext" not in {f.name for f in apps.get_model("payouts", "PayoutSecretEvent")._meta.fields}
    assert PayoutSecret.objects.get(payout=payout).ciphertext == "forged"
    assert PayoutBatch.objects.get(pk=batch.pk).note == "moved"
