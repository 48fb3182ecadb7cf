"""The refund run's beat schedule (editable in the admin) and the roles' banking permissions."""

from django.db import migrations

from support_portal.core.roles import roles_sync_migration

SCHEDULES = [
    # name, task, every, period
    ("Refunds to the original method (send, flag due soon)", "banking.refunds_send", 15, "minutes"),
]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, period in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def remove_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("banking", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("core", "0006_roles_payouts"),
    ]

    operations = [
        migrations.RunPython(create_schedules, remove_schedules),
        migrations.RunPython(roles_sync_migration, migrations.RunPython.noop),
    ]
