import datetime as dt
import socket

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from support_portal.core.monitoring.figures import backlog_totals, figures_collect
from support_portal.core.services import backlog_sample_record, backlog_samples_prune, worker_heartbeat_record


@shared_task(name="core.heartbeat", soft_time_limit=10, time_limit=20)
def heartbeat(hostname: str | None = None) -> None:
    """Beat runs this every minute; the admin shows when each worker was last seen."""
    worker_heartbeat_record(hostname=hostname or socket.gethostname(), seen_at=timezone.now())


@shared_task(name="core.backlog_sample", soft_time_limit=60, time_limit=90)
def backlog_sample() -> int:
    """Beat runs this every 5 minutes: one row with the backlog totals (the Operations health chart),
    and samples older than BACKLOG_SAMPLE_RETENTION_DAYS are pruned. Returns how many were pruned."""
    now = timezone.now()
    backlog_sample_record(values=backlog_totals(figures_collect()), sampled_at=now)
    return backlog_samples_prune(older_than=now - dt.timedelta(days=settings.BACKLOG_SAMPLE_RETENTION_DAYS))
