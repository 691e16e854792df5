"""``<out>/index.html`` (docs/product.md §8): every site's latest status, its area chart, and links to
each month's map and export.

Built from ``timeseries.csv`` and the files present on disk, after a run: nothing is recomputed.
The page has no script at all; its chart is inline SVG (:mod:`kpgeo.products.svg_chart`), so it
works offline and a site title holding markup can only ever be text (escaped by Jinja's autoescape).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..months import MonthRange, parse_month
from . import timeseries
from .htmlsafe import write_html
from .offline import check_offline
from .svg_chart import Series, line_chart

#: The chart's lines: column of ``timeseries.csv``, label, colour, dashed.
CHART_SERIES = (
    ("preexisting_ha", "pre-existing", "#1f78b4", False),
    ("cumulative_new_ha", "new since the baseline (cumulative)", "#e31a1c", False),
    ("active_ha", "active (bare gravel or water seen)", "#ff7f00", True),
)
#: Columns of the month table: column, heading.
TABLE_AREAS = (("preexisting_ha", "pre-existing"), ("new_ha", "new this month"),
               ("cumulative_new_ha", "new, cumulative"), ("active_ha", "active"),
               ("water_ha", "water"))

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
_TEMPLATE = _ENV.from_string(
    (Path(__file__).with_name("index_page.html")).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class MonthRow:
    """One month of a site as the index shows it."""

    month: str
    status: str
    scenes: str
    valid_pct: str
    areas: dict[str, float | None]
    map_href: str | None
    export_href: str | None


def write_index(out_dir: str | Path, sites: Sequence[tuple[str, str]],
                offline: bool = True) -> Path:
    """Write ``<out_dir>/index.html`` for ``sites``.

    Parameters
    ----------
    out_dir
        The run's output folder, holding ``timeseries.csv``.
    sites
        ``(name, title)`` of each site, in display order; titles are plain text.
    offline
        Check that the page loads nothing from outside itself (it never needs to).

    Returns
    -------
    Path
        The index page.

    Examples
    --------
    >>> write_index("outputs/demo", [("bobi-seguela", "Bobi-Séguéla"),
    ...                              ("tortiya", "Tortiya")])  # doctest: +SKIP
    PosixPath('outputs/demo/index.html')
    """
    out = Path(out_dir)
    rows = timeseries.read(out / "timeseries.csv")
    by_site: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_site.setdefault(row["site"], []).append(row)
    baseline = _baseline(out)
    sections = [_site_section(out, name, title, by_site.get(name, []), baseline)
                for name, title in sites]
    page = _TEMPLATE.render(sites=sections, version=__version__, baseline=baseline,
                            areas=TABLE_AREAS)
    if offline:
        check_offline(page)
    return write_html(out / "index.html", page)


def _number(text: str | None) -> float | None:
    """An area cell: None when empty (a gap month's areas are unknown, not zero)."""
    if text is None or text.strip() == "":
        return None
    return float(text)


def _site_section(out: Path, name: str, title: str, rows: list[dict[str, str]],
                  baseline: str) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: r["month"])
    if not rows:
        return {"name": name, "title": title, "latest": None, "rows": [], "chart": ""}
    months = [str(m) for m in MonthRange(parse_month(rows[0]["month"]),
                                         parse_month(rows[-1]["month"])).months()]
    by_month = {r["month"]: r for r in rows}
    table = [_month_row(out, name, by_month[m]) for m in reversed(months) if m in by_month]
    shaded = {m: (by_month[m]["status"] if m in by_month else "not run") for m in months
              if m not in by_month or by_month[m]["status"] != "ok"}
    series = [Series(label, colour, [_number(by_month.get(m, {}).get(column)) for m in months],
                     dashed)
              for column, label, colour, dashed in CHART_SERIES]
    first, _, last = baseline.partition("..")
    chart = line_chart(months, series, unit="ha", shaded=shaded,
                       span=(first, last or first, "baseline") if baseline else None,
                       title=f"Digging areas of {title} by month, hectares")
    latest = table[0]
    last_ok = next((r for r in table if r.status == "ok"), None)
    return {"name": name, "title": title, "latest": latest, "last_ok": last_ok,
            "rows": table, "chart": chart}


def _month_row(out: Path, name: str, row: Mapping[str, str]) -> MonthRow:
    month = row["month"]
    map_path = out / name / month / "map.html"
    export = out / "exports" / f"disturbed-{month}.geojson"
    return MonthRow(
        month=month, status=row.get("status", ""), scenes=row.get("scenes", ""),
        valid_pct=row.get("valid_pct", ""),
        areas={column: _number(row.get(column)) for column, _ in TABLE_AREAS},
        map_href=f"{name}/{month}/map.html" if map_path.is_file() else None,
        export_href=f"exports/{export.name}" if export.is_file() else None,
    )


def _baseline(out: Path) -> str:
    """The baseline months recorded in the latest export (``kpgeo`` member), if any."""
    exports = sorted((out / "exports").glob("disturbed-*.geojson"))
    if not exports:
        return ""
    try:
        return str(json.loads(exports[-1].read_text(encoding="utf-8"))["kpgeo"]["baseline"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
