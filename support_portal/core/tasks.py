import socket

from celery import shared_task
from django.utils import timezone

from support_portal.core.services import worker_heartbeat_record


@shared_task(name="core.heartbeat", soft_time_limit=10, time_limit=20)
def heartbeat(hostname: str | None = None) -> None:
    """Beat runs this every minute; the admin shows when each worker was last seen."""
    worker_heartbeat_record(hostname=hostname or socket.gethostname(), seen_at=timezone.now())
