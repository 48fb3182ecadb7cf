"""Roles gain the review permissions (reviewers decide claims, managers give second approvals)."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_roles_claims"),
        ("claims", "0005_review"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
