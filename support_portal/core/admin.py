from django.contrib import admin
from django.http import HttpRequest
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from support_portal.core.models import ClosedDay, WorkerHeartbeat


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


class GuardedPeriodicTaskAdmin(PeriodicTaskAdmin):
    """django-celery-beat's admin with "run selected tasks" for superusers only: a task run by hand runs
    without the permission of the screen that would start it (a manager could build a payout batch)."""

    def get_actions(self, request: HttpRequest) -> dict[str, object]:
        actions = super().get_actions(request)
        if not request.user.is_superuser:
            actions.pop("run_tasks", None)
        return actions


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, GuardedPeriodicTaskAdmin)


from support_portal.core.imports import admin as _imports_admin  # noqa: F401,E402
