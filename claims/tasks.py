from celery import shared_task

from claims.models import ProgramRun
from claims.services import program_run_execute


@shared_task(name="claims.program_run", soft_time_limit=3000, time_limit=3300)
def program_run_task(run_id: int) -> None:
    """Runs a recorded ProgramRun; quietly does nothing when the run is gone or already finished."""
    run = ProgramRun.objects.select_related("program", "actor").filter(pk=run_id).first()
    if run is None or run.status not in (ProgramRun.Status.QUEUED, ProgramRun.Status.FAILED):
        return
    program_run_execute(run=run)
