"""Operational records: import runs, the company's own closed days, worker heartbeats."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportRun(models.Model):
    """One `import_records` file load: who, when, which file (by checksum), and what it changed.

    A refused file is recorded too, with every bad row, so a manager can see why nothing changed.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        REJECTED = "rejected", _("Rejected (bad rows)")
        FAILED = "failed", _("Failed")

    class Source(models.TextChoices):
        COMMAND = "command", _("Management command")
        ADMIN = "admin", _("Admin upload")
        API = "api", _("API")

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True)
    # Who loaded it when that is no user: the API key (`api:<prefix>`) of an API batch.
    actor_label = models.CharField(_("actor (not a user)"), max_length=64, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    file_name = models.CharField(_("file"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    rows_read = models.BigIntegerField(_("rows read"), default=0)
    rows_inserted = models.BigIntegerField(_("rows inserted"), default=0)
    rows_updated = models.BigIntegerField(_("rows updated"), default=0)
    # [{"line": 3, "column": "amount_jpy", "reason": "..."}], capped; error_count has the full number.
    errors = models.JSONField(_("errors"), default=list, blank=True)
    error_count = models.IntegerField(_("error count"), default=0)

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"


class ClosedDay(models.Model):
    """A day the company does not work although the national calendar says it is a business day."""

    date = models.DateField(_("date"), unique=True)
    reason = models.CharField(_("reason"), max_length=200)

    class Meta:
        verbose_name = _("company closed day")
        verbose_name_plural = _("company closed days")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.reason}"


class WorkerHeartbeat(models.Model):
    """Written by the `core.heartbeat` task: shows in the admin whether workers and beat are alive."""

    hostname = models.CharField(_("worker"), max_length=255, unique=True)
    seen_at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self) -> str:
        return self.hostname


class SetAsideForeignKey(models.Model):
    """A foreign key a parallel `import_records` dropped between two empty tables it loads (a journal).

    Dropping a foreign key locks the referenced table exclusively until commit, so loads that drop keys
    into the same table cannot overlap. A parallel import drops the keys between the empty tables it
    loads once, up front, in one short committed transaction recorded here; each file's own transaction
    re-adds (and validates) its keys and deletes their rows, so the load and its keys commit together.
    A row left here (a rejected file, a killed process) is re-added by the next import, and `manage.py
    check` reports it until then.
    """

    table_name = models.CharField(_("table"), max_length=63)
    constraint_name = models.CharField(_("constraint"), max_length=63)
    definition = models.TextField(_("definition"))
    set_aside_at = models.DateTimeField(_("set aside at"), auto_now_add=True)

    class Meta:
        verbose_name = _("foreign key set aside by an import")
        verbose_name_plural = _("foreign keys set aside by an import")
        constraints = [
            models.UniqueConstraint(fields=["table_name", "constraint_name"], name="set_aside_fk_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.table_name}.{self.constraint_name}"


class SweepRun(models.Model):
    """The last run of each sweep (a beat task that re-enqueues what the database says is due).

    One row per sweep, overwritten by every run (`sweep_run_record`): `/readyz` reports a sweep whose
    schedule is enabled but which has not run for HEALTH_SWEEP_OVERDUE_MINUTES, `/metrics` exposes when it
    last ran and how many tasks it re-enqueued.
    """

    sweep = models.CharField(_("sweep"), max_length=200, unique=True)  # the Celery task name
    last_run_at = models.DateTimeField(_("last run at"))
    last_reenqueued = models.BigIntegerField(_("re-enqueued by the last run"), default=0)
    reenqueued_total = models.BigIntegerField(_("re-enqueued in total"), default=0)
    runs_total = models.BigIntegerField(_("runs"), default=0)

    class Meta:
        verbose_name = _("sweep run")
        verbose_name_plural = _("sweep runs")

    def __str__(self) -> str:
        return self.sweep


class BacklogSample(models.Model):
    """One sample of the backlogs (notices waiting, claims awaiting review, …) taken by the
    `core.backlog_sample` beat task every few minutes; the Operations health page charts the last 24 hours.
    `values` maps a figure name (a Prometheus metric name) to its total at `sampled_at`."""

    sampled_at = models.DateTimeField(_("sampled at"), db_index=True)
    values = models.JSONField(_("values"), default=dict)

    class Meta:
        verbose_name = _("backlog sample")
        verbose_name_plural = _("backlog samples")
        ordering = ["sampled_at"]
        permissions = [("view_operations_health", _("Can view the Operations health page"))]

    def __str__(self) -> str:
        return f"{self.sampled_at:%Y-%m-%d %H:%M}"
