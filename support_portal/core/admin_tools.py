"""Admin building blocks shared by every app's admin."""

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Never runs COUNT(*) over a whole big table.

    An unfiltered changelist on PostgreSQL asks the planner's row estimate (pg_class.reltuples) instead
    of counting; filtered querysets are counted up to a cap, so a narrow filter still shows an exact
    number while a broad one stops early.
    """

    count_cap = 10_000

    @cached_property
    def count(self) -> int:
        qs: Any = self.object_list
        query = getattr(qs, "query", None)
        if query is None:
            return len(self.object_list)
        if connection.vendor == "postgresql" and not query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [qs.model._meta.db_table]
                )
                row = cursor.fetchone()
            estimate = int(row[0]) if row else -1
            if estimate >= self.count_cap:
                return estimate
        return qs.order_by()[: self.count_cap + 1].count() if hasattr(qs, "order_by") else len(qs)


class BigTableAdmin(admin.ModelAdmin):
    """Changelist settings for tables with millions of rows."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened (events, transitions, imports, payouts, files): never added, changed or
    deleted through the admin — services write them. Seeing them still needs the model's view permission."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    """A record's history shown on its page (decisions, transitions, events): read-only rows."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
