from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.translation import gettext_lazy as _
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from support_portal.core.admin_tools import ReadOnlyAdmin
from support_portal.core.models import BacklogSample, ClosedDay, SweepRun, WorkerHeartbeat
from support_portal.core.monitoring.page import operations_health

OPERATIONS_HEALTH_PERMISSION = "core.view_operations_health"


@admin.register(ClosedDay)
class ClosedDayAdmin(admin.ModelAdmin):
    list_display = ["date", "reason"]
    search_fields = ["reason"]
    date_hierarchy = "date"


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["hostname", "seen_at"]
    readonly_fields = ["hostname", "seen_at"]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(SweepRun)
class SweepRunAdmin(ReadOnlyAdmin):
    list_display = ["sweep", "last_run_at", "last_reenqueued", "reenqueued_total", "runs_total"]


@admin.register(BacklogSample)
class BacklogSampleAdmin(ReadOnlyAdmin):
    """Its entry in the admin opens the Operations health page (a process screen, get_urls)."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(OPERATIONS_HEALTH_PERMISSION)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.operations_health_view)
        return [path("operations-health/", view, name="core_operations_health"), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        # The admin index links here: the samples are shown as the page, not as a table.
        return self.operations_health_view(request)

    def operations_health_view(self, request: HttpRequest) -> HttpResponse:
        """For managers: readiness, every figure of /metrics, and the backlog chart of the last 24 hours."""
        if not request.user.has_perm(OPERATIONS_HEALTH_PERMISSION):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Operations health"),
            "health": operations_health(),
        }
        return TemplateResponse(request, "admin/core/operations_health.html", context)


class GuardedPeriodicTaskAdmin(PeriodicTaskAdmin):
    """django-celery-beat's admin, where only superusers decide WHAT runs.

    A task run by hand, or a schedule pointed at another task or given other arguments, runs without
    the permission of the screen that would start it (a manager could build a payout batch). So
    "run selected tasks", adding a periodic task and changing a task's name, arguments or routing are for
    superusers; the other roles holding the change permission move WHEN a job runs (its schedule, start,
    one-off, enabled) and its description.
    """

    # Changeable by non-superusers; everything else on the page is shown read-only to them.
    SCHEDULE_FIELDS = (
        "enabled",
        "description",
        "interval",
        "crontab",
        "solar",
        "clocked",
        "start_time",
        "one_off",
    )
    WHAT_RUNS_FIELDS = (
        "name",
        "task",
        "args",
        "kwargs",
        "expires",
        "expire_seconds",
        "queue",
        "exchange",
        "routing_key",
        "priority",
        "headers",
    )

    def get_actions(self, request: HttpRequest) -> dict[str, object]:
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("run_tasks", None)
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def get_fieldsets(self, request: HttpRequest, obj: PeriodicTask | None = None) -> Any:
        if request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return (
            (None, {"fields": ("name", "task", "enabled", "description")}),
            (
                _("Schedule"),
                {"fields": ("interval", "crontab", "solar", "clocked", "start_time", "last_run_at", "one_off")},
            ),
            (
                _("Arguments and execution options"),
                {"fields": tuple(f for f in self.WHAT_RUNS_FIELDS if f not in ("name", "task"))},
            ),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: PeriodicTask | None = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        return (*readonly, *self.WHAT_RUNS_FIELDS)

    def get_form(
        self, request: HttpRequest, obj: PeriodicTask | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if not request.user.is_superuser:
            # The library's form requires a task name in the POST (its "registered task" chooser);
            # here the task is read-only, so a plain model form over the schedule fields.
            kwargs["form"] = forms.ModelForm
            kwargs["fields"] = self.SCHEDULE_FIELDS
        return super().get_form(request, obj, change=change, **kwargs)


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, GuardedPeriodicTaskAdmin)


from support_portal.core.imports import admin as _imports_admin  # noqa: F401,E402
