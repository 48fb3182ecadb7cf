"""Personal data is masked in log records; data exports are recorded (append-only)."""

import logging

import pytest
from django.db import ProgrammingError, transaction

from support_portal.accounts.logging import PersonalDataMaskingFilter, mask_text
from support_portal.accounts.models import ExportRecord
from support_portal.accounts.services import export_audit_record
from tests.factories import UserFactory


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("mail to taro.yamada@example.jp failed", "mail to t***@example.jp failed"),
        ("SMS to 090-1234-5678 queued", "SMS to *******5678 queued"),
        ("called +81 90 1234 5678", "called ********5678"),
        ("landline 03-1234-5678", "landline ******5678"),
        ("issued code 7Q2K-99XZ-ABCD-1234 for payout 12", "issued code •••••••••••••••1234 for payout 12"),
        ("ATM reservation 123456789012", "ATM reservation ••••••••9012"),
        ("program login-outage-2024 run 42 done", "program login-outage-2024 run 42 done"),
    ],
)
def test_mask_text(raw, masked):
    assert mask_text(raw) == masked


def test_filter_masks_formatted_records_and_keeps_them():
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "notice sent to %s (%s)", ("a.b@example.jp", "09011112222"), None
    )
    assert PersonalDataMaskingFilter().filter(record) is True
    assert record.getMessage() == "notice sent to a***@example.jp (*******2222)"


def test_configured_handlers_add_request_context_then_mask(settings):
    # The context filter runs first so the ids it adds pass through the mask like every other field.
    assert settings.LOGGING["handlers"]["console"]["filters"] == ["request_context", "mask_personal_data"]


@pytest.mark.django_db
def test_export_audit_record_is_append_only():
    # Given a manager exporting 3 rows
    user = UserFactory.create()
    record = export_audit_record(actor=user, what="audit trail of claim 1 (CSV)", row_count=3)

    # Then the export is recorded
    assert list(ExportRecord.objects.values_list("actor_id", "what", "row_count")) == [
        (user.pk, "audit trail of claim 1 (CSV)", 3)
    ]
    # and can be neither changed nor deleted
    with pytest.raises(ProgrammingError), transaction.atomic():
        ExportRecord.objects.filter(pk=record.pk).update(row_count=0)
    with pytest.raises(ProgrammingError), transaction.atomic():
        ExportRecord.objects.filter(pk=record.pk).delete()
    assert ExportRecord.objects.get().row_count == 3
