"""Finance sees payouts and their transitions (issuing and settling permissions come with those screens)."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0005_roles_review"),
        ("payouts", "0002_sweep_schedule"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
