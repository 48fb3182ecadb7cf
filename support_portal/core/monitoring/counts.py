"""Counting rows without scanning big tables.

A gauge computed at every scrape must not COUNT(*) over a million rows. Two tools:

- `count_or_estimate(queryset)`: an exact count up to `cap` (an index-backed filter reads at most `cap`
  index entries), above it the planner's estimate for the same filter (EXPLAIN, no execution);
- `value_counts(model, column)`: rows per value of one column — exact (GROUP BY) while the table holds
  fewer than `exact_below` rows by the planner's statistics, above that the statistics themselves
  (pg_stats most common values × pg_class.reltuples, refreshed by autovacuum's ANALYZE).

Both say whether the figure is an estimate. On SQLite (the first-run default) counts are exact.
"""

import json
from typing import Any

from django.db import connection, models
from django.db.models import Count

COUNT_CAP = 10_000
EXACT_BELOW_ROWS = 100_000


def table_row_estimate(model: type[models.Model]) -> int:
    """pg_class.reltuples of the model's table (-1: never analysed; 0 on SQLite)."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


def planner_estimate(queryset: "models.QuerySet[Any]") -> int:
    """The planner's row estimate for the queryset (EXPLAIN without ANALYZE: nothing is read)."""
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


def count_or_estimate(queryset: "models.QuerySet[Any]", *, cap: int = COUNT_CAP) -> tuple[int, bool]:
    """(count, estimated): exact up to `cap`, else the planner's estimate (at least cap + 1)."""
    exact = queryset.order_by()[: cap + 1].count()
    if exact <= cap or connection.vendor != "postgresql":
        return exact, False
    return max(planner_estimate(queryset), cap + 1), True


def value_counts(
    model: type[models.Model], column: str, *, exact_below: int = EXACT_BELOW_ROWS
) -> tuple[dict[str, int], bool]:
    """({value: rows}, estimated) for one column of the model's table."""
    if connection.vendor == "postgresql":
        rows = table_row_estimate(model)
        if rows >= exact_below:
            field = model._meta.get_field(column)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT most_common_vals::text::text[], most_common_freqs FROM pg_stats "
                    "WHERE schemaname = current_schema() AND tablename = %s AND attname = %s",
                    [model._meta.db_table, field.column],  # type: ignore[union-attr]
                )
                stats = cursor.fetchone()
            if stats and stats[0] is not None:
                return {value: round(freq * rows) for value, freq in zip(stats[0], stats[1], strict=True)}, True
    counted = model._default_manager.order_by().values_list(column).annotate(n=Count("pk"))
    return {str(value): n for value, n in counted}, False
