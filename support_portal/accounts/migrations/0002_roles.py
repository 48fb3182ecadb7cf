"""Managers see the audit viewer, sign-in events and the data-export log."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("core", "0006_roles_payouts"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
