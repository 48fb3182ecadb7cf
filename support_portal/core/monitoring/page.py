"""What the Operations health admin page shows: readiness, every figure, and the backlog of 24 hours."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from support_portal.core.charts import line_chart_svg
from support_portal.core.models import BacklogSample
from support_portal.core.monitoring.figures import Figure, figures_collect
from support_portal.core.monitoring.health import CheckResult, readiness_checks

CHART_HOURS = 24


@dataclass(frozen=True)
class FigureRow:
    figure: Figure
    labels: str
    value: float


@dataclass(frozen=True)
class OperationsHealth:
    checks: list[CheckResult]
    rows: list[FigureRow]
    chart: SafeString | None
    samples: int


def backlog_chart(figures: list[Figure], *, now: dt.datetime) -> tuple[SafeString | None, int]:
    """A line per backlog figure over the samples of the last 24 hours (None without samples)."""
    names = {figure.name: str(figure.backlog) for figure in figures if figure.backlog is not None}
    samples = list(
        BacklogSample.objects.filter(sampled_at__gte=now - dt.timedelta(hours=CHART_HOURS)).order_by("sampled_at")
    )
    if not samples or not names:
        return None, len(samples)
    labels = [f"{timezone.localtime(sample.sampled_at):%H:%M}" for sample in samples]
    series = [(label, [int(sample.values.get(name, 0)) for sample in samples]) for name, label in names.items()]
    chart = line_chart_svg(title=_("Backlog over the last 24 hours"), labels=labels, series=series)
    return chart, len(samples)


def operations_health(*, now: dt.datetime | None = None) -> OperationsHealth:
    now = now or timezone.now()
    figures = [figure for figure in figures_collect() if figure.name != "portal_figure_estimated"]
    rows = [
        FigureRow(
            figure=figure,
            labels=", ".join(f"{name}={value}" for name, value in zip(figure.labels, labels, strict=True)),
            value=value,
        )
        for figure in figures
        for labels, value in figure.samples
    ]
    chart, count = backlog_chart(figures, now=now)
    return OperationsHealth(checks=readiness_checks(now), rows=rows, chart=chart, samples=count)
