"""Counting without scanning big tables: exact up to a cap, then the planner's estimate."""

import pytest
from django.db import connection

from support_portal.core.models import ImportRun
from support_portal.core.monitoring.counts import count_or_estimate, value_counts

pytestmark = pytest.mark.django_db


def _runs(statuses: list[str]) -> None:
    ImportRun.objects.bulk_create(
        ImportRun(source="command", file_name=f"f{i}.csv", sha256="a" * 64, status=status)
        for i, status in enumerate(statuses)
    )


def test_an_exact_count_below_the_cap_and_an_estimate_above_it():
    _runs(["succeeded"] * 5)

    assert count_or_estimate(ImportRun.objects.all(), cap=10) == (5, False)
    count, estimated = count_or_estimate(ImportRun.objects.all(), cap=2)
    assert estimated is True
    assert count >= 3  # at least cap + 1, whatever the planner guesses


def test_value_counts_are_exact_on_small_tables_and_from_statistics_on_big_ones():
    _runs(["succeeded"] * 6 + ["rejected"] * 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE core_importrun")

    assert value_counts(ImportRun, "status") == ({"succeeded": 6, "rejected": 2}, False)
    # A table the statistics call big (here: any size) is read from pg_stats, not counted.
    assert value_counts(ImportRun, "status", exact_below=0) == ({"succeeded": 6, "rejected": 2}, True)
