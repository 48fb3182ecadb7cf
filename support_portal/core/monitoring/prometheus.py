"""`/metrics`: the figures of every provider plus prometheus_client's default REGISTRY.

The default REGISTRY holds what processes count in memory: the request latency histogram below, and
counters other modules add (e.g. `portal_enqueue_failures_total` in support_portal/core/enqueue.py).
Those are per process: with several gunicorn workers set PROMETHEUS_MULTIPROC_DIR (prometheus_client's
multiprocess mode, one directory per host, emptied at start) and each scrape reads every worker's
values. The figures are computed at scrape time from the database and Redis, so every process answers
the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from django.utils import translation
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from support_portal.core.monitoring.figures import Figure, figures_collect

REQUEST_LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (URL name, never the path), method and status class",
    ["view", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def figure_metric(figure: Figure) -> Metric:
    with translation.override("en"):
        documentation = str(figure.help)
    family: GaugeMetricFamily | CounterMetricFamily
    if figure.kind == "counter":
        family = CounterMetricFamily(figure.name, documentation, labels=figure.labels)
    else:
        family = GaugeMetricFamily(figure.name, documentation, labels=figure.labels)
    for labels, value in figure.samples:
        family.add_metric(list(labels), value)
    return family


class FiguresCollector(Collector):
    def __init__(self, figures: Iterable[Figure] | None = None) -> None:
        self._figures = figures

    def collect(self) -> Iterator[Metric]:
        for figure in self._figures if self._figures is not None else figures_collect():
            yield figure_metric(figure)


class _DefaultRegistry(Collector):
    """The default REGISTRY's metrics inside the scrape registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def metrics_exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_DefaultRegistry())
    registry.register(FiguresCollector())
    return generate_latest(registry)
