"""A monthly line chart as inline SVG: no script, no library, works in any browser offline.

Used by the index page (:mod:`kpgeo.products.index_page`). A month without a value (a gap month,
whose areas are unknown, or a month not run) breaks each line rather than bridging it or dropping to
zero: docs/product.md §7 says a gap is never reported as zero. Gap months are shaded and labelled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .htmlsafe import text

#: Chart size and margins in CSS pixels (the SVG scales to its container's width).
WIDTH_PX, HEIGHT_PX = 760, 260
MARGIN_LEFT_PX, MARGIN_RIGHT_PX, MARGIN_TOP_PX, MARGIN_BOTTOM_PX = 56, 16, 30, 44
#: About this many labelled ticks on each axis.
TARGET_TICKS = 5


@dataclass(frozen=True)
class Series:
    """One line: a label, a colour and one value per month (None = unknown)."""

    label: str
    colour: str
    values: Sequence[float | None]
    dashed: bool = False


def nice_step(span: float, ticks: int = TARGET_TICKS) -> float:
    """A round tick step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` ticks.

    Examples
    --------
    >>> nice_step(37.0)
    10.0
    """
    if span <= 0:
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive known values as ``(index, value)`` runs: each run is one unbroken line.

    Examples
    --------
    >>> runs([1.0, None, 2.0, 3.0])
    [[(0, 1.0)], [(2, 2.0), (3, 3.0)]]
    """
    out: list[list[tuple[int, float]]] = []
    current: list[tuple[int, float]] = []
    for i, value in enumerate(values):
        if value is None or not math.isfinite(value):
            if current:
                out.append(current)
            current = []
        else:
            current.append((i, float(value)))
    if current:
        out.append(current)
    return out


def line_chart(months: Sequence[str], series: Sequence[Series], *, unit: str,
               shaded: Mapping[str, str] | None = None,
               span: tuple[str, str, str] | None = None, title: str = "") -> str:
    """An SVG line chart of monthly values.

    Parameters
    ----------
    months
        The x axis, ``YYYY-MM``, consecutive and in order.
    series
        The lines; ``values`` aligned with ``months``.
    unit
        Label of the y axis, e.g. ``"ha"``.
    shaded
        Month -> label of months to shade (e.g. ``{"2024-07": "gap"}``).
    span
        ``(first, last, label)``: a bracket over those months above the plot (the baseline).
    title
        Accessible name of the chart.

    Returns
    -------
    str
        An ``<svg>`` element; every text in it is escaped.
    """
    shaded = dict(shaded or {})
    plot_w = WIDTH_PX - MARGIN_LEFT_PX - MARGIN_RIGHT_PX
    plot_h = HEIGHT_PX - MARGIN_TOP_PX - MARGIN_BOTTOM_PX
    known = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    step = nice_step(max(known, default=0.0))
    top = max(step, math.ceil(max(known, default=0.0) / step) * step)
    slot = plot_w / max(len(months), 1)

    def x(i: float) -> float:
        return MARGIN_LEFT_PX + (i + 0.5) * slot

    def y(v: float) -> float:
        return MARGIN_TOP_PX + plot_h * (1 - v / top)

    parts = [(f'<svg class="kpgeo-chart" viewBox="0 0 {WIDTH_PX} {HEIGHT_PX}" role="img" '
              f'aria-label="{text(title)}" xmlns="http://www.w3.org/2000/svg">'),
             f"<title>{text(title)}</title>"]
    for i, month in enumerate(months):
        if month in shaded:
            parts.append(f'<rect class="kpgeo-shade" x="{x(i) - slot / 2:.1f}" '
                         f'y="{MARGIN_TOP_PX}" width="{slot:.1f}" height="{plot_h}">'
                         f"<title>{text(month)}: {text(shaded[month])}</title></rect>")
    tick = 0.0
    while tick <= top + 1e-9:
        parts.append(f'<line class="kpgeo-grid" x1="{MARGIN_LEFT_PX}" x2="{WIDTH_PX - MARGIN_RIGHT_PX}" '
                     f'y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
                     f'<text class="kpgeo-ytick" x="{MARGIN_LEFT_PX - 6}" y="{y(tick) + 4:.1f}">'
                     f"{tick:g}</text>")
        tick += step
    parts.append(f'<text class="kpgeo-yunit" x="{MARGIN_LEFT_PX - 6}" y="{MARGIN_TOP_PX - 16}">'
                 f"{text(unit)}</text>")
    if span is not None:
        parts.append(_span(months, span, x, slot))
    every = max(1, math.ceil(len(months) / 12))
    for i, month in enumerate(months):
        if i % every == 0:  # about 12 labels at most; more would overlap
            parts.append(f'<text class="kpgeo-xtick" x="{x(i):.1f}" '
                         f'y="{HEIGHT_PX - MARGIN_BOTTOM_PX + 16}">{text(month)}</text>')
        if month in shaded:
            parts.append(f'<text class="kpgeo-shade-label" x="{x(i):.1f}" '
                         f'y="{HEIGHT_PX - MARGIN_BOTTOM_PX - 4}">{text(shaded[month])}</text>')
    for s in series:
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        for run in runs(s.values):
            points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            if len(run) > 1:
                parts.append(f'<polyline class="kpgeo-line" fill="none" stroke="{text(s.colour)}"'
                             f' stroke-width="2"{dash} points="{points}"/>')
            for i, v in run:
                parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.6" '
                             f'fill="{text(s.colour)}"><title>{text(s.label)} '
                             f"{text(months[i])}: {v:.2f} {text(unit)}</title></circle>")
    parts.append(_legend(series))
    parts.append("</svg>")
    return "".join(parts)


def _span(months: Sequence[str], span: tuple[str, str, str], x: Any, slot: float) -> str:
    first, last, label = span
    inside = [i for i, m in enumerate(months) if first <= m <= last]
    if not inside:
        return ""
    x0, x1 = x(inside[0]) - slot / 2 + 2, x(inside[-1]) + slot / 2 - 2
    y0 = MARGIN_TOP_PX - 8
    return (f'<path class="kpgeo-span" d="M{x0:.1f},{y0 + 5} V{y0} H{x1:.1f} V{y0 + 5}" '
            f'fill="none"/><text class="kpgeo-span-label" x="{(x0 + x1) / 2:.1f}" '
            f'y="{y0 - 3}">{text(label)}</text>')


def _legend(series: Sequence[Series]) -> str:
    x0 = MARGIN_LEFT_PX
    out = []
    for s in series:
        y0 = HEIGHT_PX - 10
        dash = ' stroke-dasharray="5 3"' if s.dashed else ""
        out.append(f'<line x1="{x0}" x2="{x0 + 18}" y1="{y0 - 4}" y2="{y0 - 4}" '
                   f'stroke="{text(s.colour)}" stroke-width="2"{dash}/>'
                   f'<text class="kpgeo-legend-text" x="{x0 + 23}" y="{y0}">{text(s.label)}</text>')
        x0 += 30 + 7 * len(s.label)
    return "".join(out)
