import datetime as dt

from django.db.models import F
from django.db.models.functions import Greatest

from support_portal.core.models import BacklogSample, SweepRun, WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str, seen_at: dt.datetime) -> WorkerHeartbeat:
    heartbeat, _created = WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"seen_at": seen_at})
    return heartbeat


def sweep_run_record(*, sweep: str, reenqueued: int, ran_at: dt.datetime) -> None:
    """A sweep (the system job `sweep`, its Celery task name) ran and re-enqueued `reenqueued` tasks."""
    updated = SweepRun.objects.filter(sweep=sweep).update(
        last_run_at=Greatest(F("last_run_at"), ran_at),
        last_reenqueued=reenqueued,
        reenqueued_total=F("reenqueued_total") + reenqueued,
        runs_total=F("runs_total") + 1,
    )
    if not updated:
        _run, created = SweepRun.objects.get_or_create(
            sweep=sweep,
            defaults={
                "last_run_at": ran_at,
                "last_reenqueued": reenqueued,
                "reenqueued_total": reenqueued,
                "runs_total": 1,
            },
        )
        if not created:  # another worker created it meanwhile
            sweep_run_record(sweep=sweep, reenqueued=reenqueued, ran_at=ran_at)


def backlog_sample_record(*, values: dict[str, int], sampled_at: dt.datetime) -> BacklogSample:
    """One backlog sample (the system job `core.backlog_sample`)."""
    return BacklogSample.objects.create(sampled_at=sampled_at, values=values)


def backlog_samples_prune(*, older_than: dt.datetime) -> int:
    deleted, _by_model = BacklogSample.objects.filter(sampled_at__lt=older_than).delete()
    return deleted
