"""Agents open and work identity recovery cases; managers (leads) also review and unlock locked ones."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0006_roles_payouts"),
        ("identity", "0001_initial"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
