from datetime import datetime

from support_portal.core.models import WorkerHeartbeat


def worker_heartbeat_record(*, hostname: str, seen_at: datetime) -> WorkerHeartbeat:
    heartbeat, _created = WorkerHeartbeat.objects.update_or_create(hostname=hostname, defaults={"seen_at": seen_at})
    return heartbeat
