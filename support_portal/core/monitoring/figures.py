"""The operational figures `/metrics` and the Operations health page show, from providers.

Core knows nothing of claims or payouts: each app registers a provider in its AppConfig.ready()::

    from support_portal.core.monitoring.figures import figure_provider_register
    figure_provider_register("payouts", payouts.monitoring.figures)

A provider is a function returning `Figure`s, computed when asked (at scrape time, when the page opens,
when the backlog is sampled) with cheap, index-backed queries (see `counts`). A provider that raises
is logged and reported as `portal_figures_provider_up{provider="…"} 0`; the others still show.
Figures carry no personal data: labels are program slugs, statuses, task names, worker host names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger(__name__)

type Text = str | Promise
type Sample = tuple[tuple[str, ...], float]


@dataclass(frozen=True)
class Figure:
    """One metric family: `name` (Prometheus, without `_total` for counters), `help` (translated on the
    page, English in /metrics), its label names and samples. `backlog` names the series on the page's
    24-hour chart (the sum of the samples is sampled); `estimated` says a count came from statistics."""

    name: str
    help: Text
    samples: tuple[Sample, ...] = ()
    labels: tuple[str, ...] = ()
    kind: Literal["gauge", "counter"] = "gauge"
    backlog: Text | None = None
    estimated: bool = False

    def total(self) -> float:
        return sum(value for _labels, value in self.samples)


type FigureProvider = Callable[[], Iterable[Figure]]

_PROVIDERS: dict[str, FigureProvider] = {}


def figure_provider_register(name: str, provider: FigureProvider) -> None:
    """Adds (or replaces, by name: ready() may run twice in tests) a provider of figures."""
    _PROVIDERS[name] = provider


def figure_providers() -> dict[str, FigureProvider]:
    return dict(_PROVIDERS)


def figures_collect() -> list[Figure]:
    """Every provider's figures, in registration order, plus `portal_figures_provider_up`."""
    figures: list[Figure] = []
    up: list[Sample] = []
    for name, provider in _PROVIDERS.items():
        try:
            figures.extend(provider())
        except Exception:
            logger.exception("figure provider failed", extra={"provider": name})
            up.append(((name,), 0))
        else:
            up.append(((name,), 1))
    figures.append(
        Figure(
            name="portal_figure_estimated",
            help=_("1 when a figure is an estimate from the planner's statistics (a big table), 0 when exact"),
            labels=("figure",),
            samples=tuple(((figure.name,), 1.0 if figure.estimated else 0.0) for figure in figures),
        )
    )
    figures.append(
        Figure(
            name="portal_figures_provider_up",
            help=_("1 when the provider of these figures answered, 0 when it failed (see the logs)"),
            labels=("provider",),
            samples=tuple(up),
        )
    )
    return figures


def backlog_totals(figures: Iterable[Figure]) -> dict[str, int]:
    """{figure name: total} of the figures charted as backlogs."""
    return {figure.name: round(figure.total()) for figure in figures if figure.backlog is not None}
