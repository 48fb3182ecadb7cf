"""Staff role groups (agent, reviewer, manager, finance) with the permissions in core/roles.py.

Reversing leaves the groups in place: who is in which role is data managers curate in the admin, and
dropping the groups on a rollback would lose it. Re-applying syncs the permissions again.
"""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("core", "0001_initial"),
        ("customers", "0001_initial"),
        ("claims", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]
