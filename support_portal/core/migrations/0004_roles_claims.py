"""Roles gain the claims permissions (view claims, run programs, record store confirmations)."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_heartbeat_schedule"),
        ("claims", "0004_program_template_parameters"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
