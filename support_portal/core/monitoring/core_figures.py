"""Core's own figures: worker heartbeats, sweeps, import runs, Celery task outcomes."""

from __future__ import annotations

from django.db.models import Count, Max, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from support_portal.core.models import ImportRun, SweepRun, WorkerHeartbeat
from support_portal.core.monitoring.figures import Figure
from support_portal.core.monitoring.health import sweeps_overdue
from support_portal.core.monitoring.tasks import task_figures


def core_figures() -> list[Figure]:
    now = timezone.now()
    heartbeats = tuple(
        ((hostname,), max((now - seen_at).total_seconds(), 0.0))
        for hostname, seen_at in WorkerHeartbeat.objects.order_by("hostname").values_list("hostname", "seen_at")
    )
    sweeps = list(SweepRun.objects.order_by("sweep"))
    overdue = set(sweeps_overdue(now))
    runs = dict(ImportRun.objects.order_by().values_list("status").annotate(n=Count("pk")))
    import_totals = ImportRun.objects.aggregate(errors=Sum("error_count"), last=Max("finished_at"))
    last_finished = import_totals["last"]
    return [
        Figure(
            name="portal_worker_heartbeat_age_seconds",
            help=_("Seconds since each worker last ran the heartbeat task (beat sends it every minute)"),
            labels=("worker",),
            samples=heartbeats,
        ),
        Figure(
            name="portal_sweep_last_run_timestamp_seconds",
            help=_("When each sweep last ran (Unix time)"),
            labels=("sweep",),
            samples=tuple(((run.sweep,), run.last_run_at.timestamp()) for run in sweeps),
        ),
        Figure(
            name="portal_sweep_last_reenqueued",
            help=_("Tasks the last run of each sweep re-enqueued"),
            labels=("sweep",),
            samples=tuple(((run.sweep,), float(run.last_reenqueued)) for run in sweeps),
        ),
        Figure(
            name="portal_sweep_reenqueued",
            kind="counter",
            help=_("Tasks each sweep re-enqueued in total"),
            labels=("sweep",),
            samples=tuple(((run.sweep,), float(run.reenqueued_total)) for run in sweeps),
        ),
        Figure(
            name="portal_sweep_overdue",
            help=_("1 when a sweep's schedule is enabled but it has not run within HEALTH_SWEEP_OVERDUE_MINUTES"),
            labels=("sweep",),
            samples=tuple(((run.sweep,), 1.0 if run.sweep in overdue else 0.0) for run in sweeps),
        ),
        Figure(
            name="portal_import_runs",
            help=_("Import runs (file loads) by status"),
            labels=("status",),
            samples=tuple(((status,), float(runs.get(status, 0))) for status in ImportRun.Status.values),
        ),
        Figure(
            name="portal_import_row_errors",
            help=_("Bad rows reported by all import runs"),
            samples=(((), float(import_totals["errors"] or 0)),),
        ),
        Figure(
            name="portal_import_last_finished_timestamp_seconds",
            help=_("When the last import run finished (Unix time; 0: none yet)"),
            samples=(((), last_finished.timestamp() if last_finished else 0.0),),
        ),
        *task_figures(),
    ]
