"""Roles gain the review permissions (reviewers decide claims, managers give second approvals)."""

from django.db import migrations

from support_portal.core.roles import roles_sync


def sync_roles(apps, schema_editor):
    roles_sync(apps=apps, using=schema_editor.connection.alias, skip_missing=True)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0004_roles_claims"),
        ("claims", "0005_review"),
    ]

    operations = [migrations.RunPython(sync_roles, migrations.RunPython.noop)]
