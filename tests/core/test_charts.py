"""Server-rendered SVG charts: exact structure, escaping, and refusal of bad series."""

import re

import pytest

from support_portal.core.charts import bar_chart_svg, line_chart_svg, nice_ceiling


@pytest.mark.parametrize(("value", "expected"), [(0, 1), (1, 1), (7, 10), (10, 10), (11, 20), (199, 200), (201, 500)])
def test_nice_ceiling_rounds_up_to_1_2_5(value: int, expected: int) -> None:
    assert nice_ceiling(value) == expected


def test_bar_chart_has_one_bar_per_label_and_series_and_escapes_text() -> None:
    # given two series over three labels, one label hostile
    svg = bar_chart_svg(
        title="件数 <b>", labels=["1月", "2月", "<script>"], series=[("受付", [10, 12, 3]), ("解決", [8, 11, 0])]
    )
    # then
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" role="img"')
    assert 'data-chart="bar"' in svg and 'data-series="受付|解決"' in svg and 'data-points="3"' in svg
    assert len(re.findall(r'<rect class="bar"', svg)) == 6
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert "<title>件数 &lt;b&gt;</title>" in svg
    assert "style=" not in svg  # CSP: presentation attributes only


def test_line_chart_has_one_polyline_per_series_and_a_point_per_value() -> None:
    svg = line_chart_svg(title="SLA", labels=["d1", "d2"], series=[("達成率", [90, 100])], unit="%")
    assert svg.count('<polyline class="line"') == 1
    assert svg.count('<circle class="point"') == 2
    assert "d2 · 達成率: 100%" in svg


def test_mismatched_or_non_integer_series_are_refused() -> None:
    with pytest.raises(ValueError, match="has 1 values for 2 labels"):
        bar_chart_svg(title="t", labels=["a", "b"], series=[("s", [1])])
    with pytest.raises(ValueError, match="must be integers"):
        line_chart_svg(title="t", labels=["a"], series=[("s", [1.5])])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one series"):
        bar_chart_svg(title="t", labels=["a"], series=[])
