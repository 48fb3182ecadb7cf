"""Charts as server-rendered SVG: no JavaScript, no CDN, nothing inline that a strict CSP would block.

Colours and sizes are SVG presentation attributes (`fill`, `stroke`), not `style=""`, so the pages work
under `style-src 'self'`. Every chart is an `<svg role="img">` with a `<title>` (the accessible name),
a legend and `data-chart` / `data-series` attributes that browser tests assert on. Pages show the same
numbers as a table and as CSV; the chart is never the only place a number appears.

    bar_chart_svg(title="件数", labels=["1月", "2月"], series=[("受付", [10, 12]), ("解決", [8, 11])])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Colour-blind-safe palette (Okabe–Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

WIDTH = 720
HEIGHT = 300
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 36
MARGIN_BOTTOM = 56
TICKS = 5

Series = Sequence[tuple[str, Sequence[int]]]


def nice_ceiling(value: int) -> int:
    """The smallest 1/2/5 × 10^k at or above `value` (≥ 1), so axis ticks are round numbers."""
    if value <= 0:
        return 1
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent  # unreachable: value <= 10 × exponent by construction


def _check(labels: Sequence[str], series: Series) -> int:
    if not series:
        raise ValueError("a chart needs at least one series")
    for name, values in series:
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")
        if any(not isinstance(v, int) for v in values):
            raise ValueError(f"series {name!r}: values must be integers")
    return max((v for _, values in series for v in values), default=0)


def _frame(*, kind: str, title: str, labels: Sequence[str], series: Series, unit: str, top: int) -> list[str]:
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    names = "|".join(name for name, _ in series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" class="chart chart-{kind}" '
        f'data-chart="{kind}" data-series="{escape(names)}" data-points="{len(labels)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{MARGIN_LEFT}" y="20" font-size="14" font-weight="bold" fill="#333">{escape(title)}</text>',
    ]
    for i in range(TICKS + 1):
        value = top * i // TICKS
        y = MARGIN_TOP + plot_h - plot_h * i / TICKS
        parts.append(
            f'<line x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#555">'
            f"{value:,}{escape(unit)}</text>"
        )
    # Legend along the bottom edge.
    x = MARGIN_LEFT
    for index, (name, _) in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT - 7}" font-size="11" fill="#333">{escape(name)}</text>'
        )
        x += 24 + 8 * len(name) + 6 * sum(1 for ch in name if ord(ch) > 0x2E7F)
    return parts


def _label_every(count: int, plot_w: float) -> int:
    """Show every n-th category label so they do not overlap (about 48 px per label)."""
    return max(1, math.ceil(count * 48 / plot_w)) if count else 1


def bar_chart_svg(*, title: str, labels: Sequence[str], series: Series, unit: str = "") -> SafeString:
    """Grouped vertical bars: one group per label, one bar per series."""
    top = nice_ceiling(_check(labels, series))
    parts = _frame(kind="bar", title=title, labels=labels, series=series, unit=unit, top=top)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    group_w = plot_w / max(len(labels), 1)
    bar_w = group_w * 0.8 / len(series)
    every = _label_every(len(labels), plot_w)
    for li, label in enumerate(labels):
        gx = MARGIN_LEFT + li * group_w + group_w * 0.1
        for si, (name, values) in enumerate(series):
            h = plot_h * values[li] / top
            parts.append(
                f'<rect class="bar" x="{gx + si * bar_w:.1f}" y="{MARGIN_TOP + plot_h - h:.1f}" '
                f'width="{max(bar_w - 1, 1):.1f}" height="{h:.1f}" fill="{PALETTE[si % len(PALETTE)]}">'
                f"<title>{escape(label)} · {escape(name)}: {values[li]:,}{escape(unit)}</title></rect>"
            )
        if li % every == 0:
            parts.append(
                f'<text x="{gx + group_w * 0.4:.1f}" y="{MARGIN_TOP + plot_h + 16}" font-size="11" '
                f'text-anchor="middle" fill="#555">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above


def line_chart_svg(*, title: str, labels: Sequence[str], series: Series, unit: str = "") -> SafeString:
    """One polyline per series over the labels (e.g. days), with a dot per point."""
    top = nice_ceiling(_check(labels, series))
    parts = _frame(kind="line", title=title, labels=labels, series=series, unit=unit, top=top)
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    step = plot_w / max(len(labels) - 1, 1)
    every = _label_every(len(labels), plot_w)
    for si, (name, values) in enumerate(series):
        colour = PALETTE[si % len(PALETTE)]
        points = [
            (MARGIN_LEFT + i * step, MARGIN_TOP + plot_h - plot_h * value / top) for i, value in enumerate(values)
        ]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline class="line" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for (x, y), label, value in zip(points, labels, values, strict=True):
            parts.append(
                f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                f"<title>{escape(label)} · {escape(name)}: {value:,}{escape(unit)}</title></circle>"
            )
    for li, label in enumerate(labels):
        if li % every == 0:
            parts.append(
                f'<text x="{MARGIN_LEFT + li * step:.1f}" y="{MARGIN_TOP + plot_h + 16}" font-size="11" '
                f'text-anchor="middle" fill="#555">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped above
