"""The report's trend chart: a site's digging areas by month, drawn with matplotlib as SVG.

Gap months are gaps in the lines and shaded grey, never zeros; the report's period is shaded
and the baseline named. The colours are the index page's (:data:`CHART_SERIES`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from matplotlib.figure import Figure

from ..methods.composite import MEASURED
from ..products.index_page import CHART_SERIES

#: Chart size, inches (the width of an A4 page's text).
CHART_SIZE_IN = (7.0, 2.9)
#: Shade of a month not measured, and of the report's period.
GAP_SHADE = "#d9d9d9"
PERIOD_SHADE = "#fff2b3"


def _value(text: str | None) -> float | None:
    return None if text is None or str(text).strip() == "" else float(text)


def trend_chart(months: Sequence[str], rows: Mapping[str, Mapping[str, str]],
                period: tuple[str, str], title: str, baseline: str = "") -> str:
    """An SVG document: pre-existing, cumulative new and active digging (ha) of each month.

    Parameters
    ----------
    months
        Every month of the run for the site, in order.
    rows
        Month -> its ``timeseries.csv`` row.
    period
        First and last month of the report, shaded.
    title
        The chart's title (plain text).
    baseline
        The baseline months (``YYYY-MM..YYYY-MM``), named on the chart.
    """
    figure = Figure(figsize=CHART_SIZE_IN)
    axes = figure.add_subplot()
    x = list(range(len(months)))
    index = {m: i for i, m in enumerate(months)}
    first, last = index[period[0]], index[period[1]]
    axes.axvspan(first - 0.5, last + 0.5, color=PERIOD_SHADE, zorder=0, label="report period")
    gap_label = "not measured (gap)"
    for m in months:
        if rows[m]["status"] not in MEASURED:
            axes.axvspan(index[m] - 0.5, index[m] + 0.5, color=GAP_SHADE, zorder=0.5,
                         label=gap_label)
            gap_label = "_"
    for column, label, colour, dashed in CHART_SERIES:
        values = [_value(rows[m].get(column)) for m in months]
        axes.plot(x, [float("nan") if v is None else v for v in values], color=colour,
                  linestyle="--" if dashed else "-", marker="o", markersize=2.5, linewidth=1.4,
                  label=label)
    if baseline and ".." in baseline:
        start, end = baseline.split("..")
        if start in index or end in index:
            axes.axvline(index.get(end, len(months) - 1) + 0.5, color="#888888", linewidth=0.8)
            axes.text(index.get(end, len(months) - 1) + 0.4, 0.98, "baseline ends",
                      transform=axes.get_xaxis_transform(), ha="right", va="top", fontsize=7,
                      color="#555555")
    step = max(1, len(months) // 12)
    axes.set_xticks(x[::step], [m for m in months][::step], fontsize=7, rotation=0)
    axes.set_xlim(-0.5, len(months) - 0.5)
    axes.set_ylim(bottom=0)
    axes.set_ylabel("hectares", fontsize=8)
    axes.tick_params(axis="y", labelsize=7)
    axes.set_title(title, fontsize=9, loc="left")
    axes.grid(axis="y", color="#e6e6e6", linewidth=0.6)
    # Below the axes: over them it would hide the lines.
    axes.legend(fontsize=6.5, ncols=5, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                frameon=False)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()
