"""Roles gain the claims permissions (view claims, run programs, record store confirmations)."""

from django.db import migrations

from support_portal.core.roles import roles_sync


def sync_roles(apps, schema_editor):
    roles_sync(apps=apps, using=schema_editor.connection.alias, skip_missing=True)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_heartbeat_schedule"),
        ("claims", "0004_program_template_parameters"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
