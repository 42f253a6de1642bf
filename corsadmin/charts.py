"""Bar charts as inline SVG, drawn on the server: no JavaScript, no external file.

A chart has a ``<title>`` and ``<desc>`` (read by screen readers), a legend, a y axis
with three ticks (0, half, top), x labels every ``label_every`` groups, and a
``<title>`` on every bar (a tooltip: "14:00 refused: 5"). Bars are grouped side by
side, one per series; their heights are ``value / top * PLOT_HEIGHT``, where ``top``
is the smallest 1, 2 or 5 × 10ⁿ at least the largest value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

WIDTH = 720
PLOT_HEIGHT = 120
LEFT = 60  # room for the y ticks (up to 6 digits) and the axis label
TOP = 28  # room for the legend
BOTTOM = 34  # room for the x labels and the axis label
RIGHT = 8
PLOT_WIDTH = WIDTH - LEFT - RIGHT
HEIGHT = TOP + PLOT_HEIGHT + BOTTOM


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: Sequence[int]


def nice_top(largest: float) -> int:
    """The axis' top: the smallest 1, 2 or 5 × 10ⁿ ≥ ``largest`` (1 for an empty chart)."""
    if largest <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= largest:
                return step * scale
        scale *= 10


def _n(value: float) -> str:
    """A coordinate: at most one decimal, no trailing zero."""
    return f"{round(value, 1):g}"


def bar_chart(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    bar_titles: Sequence[str] | None = None,
    label_every: int = 1,
    x_label: str = "",
    y_label: str | None = None,
) -> SafeString:
    """``labels[i]`` names group i; ``bar_titles[i]`` (default: the label) starts its bars' tooltips."""
    if y_label is None:
        y_label = gettext("requests")
    groups = len(labels)
    top = nice_top(max((v for s in series for v in s.values), default=0))
    group_width = PLOT_WIDTH / max(groups, 1)
    bar_width = group_width * 0.8 / max(len(series), 1)
    base = TOP + PLOT_HEIGHT
    totals = ", ".join(f"{s.name} {sum(s.values)}" for s in series)
    desc = gettext("%(title)s: %(totals)s in total.") % {"title": title, "totals": totals}
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" class="corsadmin-chart" id="{escape(chart_id)}" '
            f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc">'
        ),
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]
    # legend
    x = LEFT
    for s in series:
        out.append(
            f'<rect class="legend" x="{x}" y="6" width="12" height="12" fill="{escape(s.colour)}"></rect>'
            f'<text x="{x + 16}" y="16" font-size="12">{escape(s.name)}</text>'
        )
        x += 24 + 8 * len(s.name)
    # y axis: ticks and grid lines at 0, half and top
    for value in sorted({0, top / 2, top}):
        y = base - value / top * PLOT_HEIGHT
        text = _n(value)
        out.append(
            f'<line x1="{LEFT}" y1="{_n(y)}" x2="{LEFT + PLOT_WIDTH}" y2="{_n(y)}" stroke="#ccc"></line>'
            f'<text class="y-tick" x="{LEFT - 4}" y="{_n(y + 4)}" font-size="11" text-anchor="end">'
            f"{text}</text>"
        )
    out.append(
        f'<text x="12" y="{_n(TOP + PLOT_HEIGHT / 2)}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 12 {_n(TOP + PLOT_HEIGHT / 2)})">{escape(y_label)}</text>'
    )
    # bars and x labels
    for i, label in enumerate(labels):
        left = LEFT + i * group_width + group_width * 0.1
        name = bar_titles[i] if bar_titles is not None else label
        for j, s in enumerate(series):
            value = s.values[i]
            height = value / top * PLOT_HEIGHT
            out.append(
                f'<rect class="bar" x="{_n(left + j * bar_width)}" y="{_n(base - height)}" '
                f'width="{_n(bar_width)}" height="{_n(height)}" fill="{escape(s.colour)}">'
                f"<title>{escape(name)} {escape(s.name)}: {value}</title></rect>"
            )
        if i % label_every == 0:
            out.append(
                f'<text class="x-label" x="{_n(LEFT + (i + 0.5) * group_width)}" y="{base + 14}" '
                f'font-size="11" text-anchor="middle">{escape(label)}</text>'
            )
    out.append(f'<line x1="{LEFT}" y1="{base}" x2="{LEFT + PLOT_WIDTH}" y2="{base}" stroke="#333"></line>')
    if x_label:
        out.append(
            f'<text x="{_n(LEFT + PLOT_WIDTH / 2)}" y="{HEIGHT - 4}" font-size="11" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
    out.append("</svg>")
    return mark_safe("".join(out))  # every text above is escaped
