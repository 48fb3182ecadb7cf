"""Managers no longer add periodic tasks (a new schedule decides what runs: superusers only)."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0008_importrun_api_actor"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
