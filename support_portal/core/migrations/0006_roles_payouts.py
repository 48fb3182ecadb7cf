"""Finance sees payouts and their transitions (issuing and settling permissions come with those screens)."""

from django.db import migrations

from support_portal.core.roles import roles_sync


def sync_roles(apps, schema_editor):
    roles_sync(apps=apps, using=schema_editor.connection.alias, skip_missing=True)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0005_roles_review"),
        ("payouts", "0002_sweep_schedule"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
