"""Beat schedules of payouts (editable in the admin) and the finance role's new permissions."""

from typing import Any

from django.db import migrations

from support_portal.core.roles import roles_sync_migration

SCHEDULES = [
    # name, task, every, period
    ("Payout batches (build and start)", "payouts.build_batches", 15, "minutes"),
    ("Payout notices (send the outbox)", "payouts.send_notices", 1, "minutes"),
    ("Payout reminders (before the receipt deadline)", "payouts.reminders", 1, "days"),
    ("Payout expiry (unclaimed after the deadline, re-offers)", "payouts.expire", 1, "days"),
]


def create_schedules(apps: Any, schema_editor: Any) -> None:
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, every, period in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": interval, "enabled": True})


def remove_schedules(apps: Any, schema_editor: Any) -> None:
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payouts", "0003_batches_notices"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
        ("core", "0006_roles_payouts"),
    ]

    operations = [
        migrations.RunPython(create_schedules, remove_schedules),
        migrations.RunPython(roles_sync_migration, migrations.RunPython.noop),
    ]
