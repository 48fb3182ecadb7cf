"""Agents work tickets; managers also manage queues, surges and canned replies and see the dashboard."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0001_initial"),
        ("core", "0006_roles_payouts"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
