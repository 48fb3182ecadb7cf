"""Fills the seven program templates' parameters, windows and payout settings with the SPEC defaults.

The values are written out here (not imported from claims.parameters) so this migration keeps meaning
what it meant when it was written. Only templates still at their empty defaults are touched.
"""

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import migrations

JST = ZoneInfo("Asia/Tokyo")
POINTS = ["points:amazon", "points:ponta", "points:paypay", "points:edy", "points:nanaco"]
REFUND = {"payout_methods": ["original_method"], "default_payout_method": "original_method"}

TEMPLATE_SETTINGS = {
    "login-outage-2024": {
        "parameters": {
            "first_covered_month_by_plan": {
                "premium": "2024-09",
                "channel": "2024-09",
                "channel_plus": "2024-09",
                "creator_support": "2024-09",
                "zen_study": "2024-10",
            },
            "cap_month": "2024-12",
            "restored_at": "2024-08-05T00:00:00+09:00",
        },
        "application_deadline": dt.date(2025, 1, 31),
        "application_rule": "required",
        "payout_methods": ["atm_cash"],
        "default_payout_method": "atm_cash",
    },
    "coupon-outage-2023": {
        "parameters": {
            "outage_starts_at": "2023-02-24T16:00:00+09:00",
            "outage_ends_at": "2023-02-24T23:59:59+09:00",
            "duplicate_interval_seconds": 120,
            "original_expiry_until": "2023-02-24T23:59:59+09:00",
            "extended_expiry_at": "2023-02-26T23:59:59+09:00",
            "remedy_expiry_at": "2023-03-31T23:59:59+09:00",
            "minimum_balance_jpy": 1,
            "app_notice_from": "2023-04-01",
        },
        # The application site opened on 2023-03-22 (seed 001).
        "opens_at": dt.datetime(2023, 3, 22, tzinfo=JST),
        "application_deadline": dt.date(2023, 4, 30),
        "receipt_deadline": dt.date(2023, 5, 31),
        "application_rule": "not_required_for_app_coupons",
        "payout_methods": [*POINTS, "bank_transfer"],
        "default_payout_method": "",
    },
    "autorenew-60day": {
        "parameters": {
            "window_days": 60,
            "allowed_reasons": ["no_pc", "duplicate_purchase", "competitor", "price", "other"],
        },
        "application_rule": "required",
        **REFUND,
    },
    "cooling-off-7day": {
        "parameters": {"window_days": 7, "processing_fee_jpy": 0, "later_cycle_requires_no_usage": True},
        "application_rule": "required",
        **REFUND,
    },
    "service-failure-prorata": {
        "parameters": {"penalty_percent": 10, "cycle_max_days": 31, "default_fault": "company"},
        "application_rule": "required",
        **REFUND,
    },
    "company-termination": {
        "parameters": {"fee_percent": 10, "minimum_fee_jpy": 100, "cycle_max_days": 31},
        "application_rule": "required",
        **REFUND,
    },
    "overpayment": {
        "parameters": {"member_fault_refund_cost_jpy": 0, "default_fault": "company"},
        "application_rule": "not_required",
        **REFUND,
    },
}


def fill_template_settings(apps, schema_editor):
    Program = apps.get_model("claims", "Program")
    for slug, settings in TEMPLATE_SETTINGS.items():
        Program.objects.filter(slug=slug, parameters={}).update(**settings)


def clear_template_settings(apps, schema_editor):
    Program = apps.get_model("claims", "Program")
    Program.objects.filter(slug__in=TEMPLATE_SETTINGS).update(
        parameters={},
        opens_at=None,
        application_deadline=None,
        receipt_deadline=None,
        application_rule="required",
        payout_methods=[],
        default_payout_method="",
    )


class Migration(migrations.Migration):
    dependencies = [("claims", "0003_claims_engine")]

    operations = [migrations.RunPython(fill_template_settings, clear_template_settings)]
