"""Managers create, see and revoke API keys."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("api", "0001_api_keys_idempotency"),
        ("core", "0008_importrun_api_actor"),
        ("payouts", "0008_provider_callbacks"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
