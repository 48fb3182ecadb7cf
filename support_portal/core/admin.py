from django.contrib import admin

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


from support_portal.core.imports import admin as _imports_admin  # noqa: F401,E402
