"""Roles: agents confirm or reject detected duplicate coupon payments; agents and reviewers record the
merge offer's outcome (claims.record_merge_offer) and see coupon remedies (support_portal.core.roles)."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("claims", "0011_coupon_remedies_duplicates"),
        ("core", "0006_roles_payouts"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
