"""``<out>/index.html`` (docs/product.md §8): every site's latest status, its area chart and carats,
and links to each month's map and exports, to ``timeseries.csv`` and to the run manifests.

Built from ``timeseries.csv``, the volume CSVs and the files present on disk, after a run:
nothing is recomputed. Carats are shown to two significant figures (:func:`significant`): the
assumptions behind them are known to a factor of several (README, "From area to carats"), so
the figures are an order of magnitude; the volume CSVs keep them unrounded.
The page has no script at all; its chart is inline SVG (:mod:`kpgeo.products.svg_chart`), so it
works offline and a site title holding markup can only ever be text (escaped by Jinja's autoescape).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from .. import __version__
from ..methods.composite import MEASURED
from ..months import MonthRange, parse_month
from . import timeseries
from .htmlsafe import write_html
from .map_page import coverage_text, seasons_text
from .offline import check_offline
from .svg_chart import Series, line_chart
from .synthetic_label import EXPLANATION, LABEL, any_synthetic

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

#: The run's STAC catalog (kpgeo.products.catalog.FILE_NAME; not imported: the catalog module
#: needs pystac, the page does not).
CATALOG_NAME = "catalog.json"
#: Significant figures of the carats shown.
CARAT_DIGITS = 2
#: The volume CSV's cumulative carats, P10, P50 and P90 (kpgeo.methods.volume.COLUMNS).
CARAT_COLUMNS = ("cumulative_carats_p10", "cumulative_carats_p50", "cumulative_carats_p90")


def significant(value: float, digits: int = CARAT_DIGITS) -> str:
    """``value`` rounded to ``digits`` significant figures, with thousands separators.

    Examples
    --------
    >>> significant(1234), significant(0.0456), significant(6750), significant(0)
    ('1,200', '0.046', '6,800', '0')
    """
    if value == 0 or not math.isfinite(value):
        return "0" if value == 0 else str(value)
    rounded = float(f"{value:.{digits - 1}e}")
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))
    return f"{rounded:,.{decimals}f}"


_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
_ENV.filters["significant"] = significant
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
    volume_href: str | None
    carats: tuple[float, float, float] | None
    """Carats of the new digging since the baseline (cumulative): P10, P50, P90."""
    measured_month: str | None = None
    """A month not measured: the latest month before it that was, whose digging areas its
    map and export show (docs/product.md §8)."""

    @property
    def measured(self) -> bool:
        """Whether the month's digging areas were measured (by optical imagery, or by radar
        where clouds hid it)."""
        return self.status in MEASURED


@dataclass(frozen=True)
class RunLink:
    """A run manifest as the index lists it."""

    href: str
    time: str
    status: str
    site_months: int | None


def write_index(out_dir: str | Path, sites: Sequence[tuple[str, str]],
                offline: bool = True, manifest: Path | None = None,
                catalog: bool = False) -> Path:
    """Write ``<out_dir>/index.html`` for ``sites``.

    Parameters
    ----------
    out_dir
        The run's output folder, holding ``timeseries.csv``.
    sites
        ``(name, title)`` of each site, in display order; titles are plain text.
    offline
        Check that the page loads nothing from outside itself (it never needs to).
    manifest
        The manifest of the run writing the page, listed with those of earlier runs in
        ``runs/`` though it is written just after the page.
    catalog
        Link ``catalog.json`` though it is not there yet: the run writes it just after the
        page (it is linked anyway when present).

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
    volumes = _volumes(out)
    coverages = _coverages(out, [name for name, _ in sites])
    sections = [_site_section(out, name, title, by_site.get(name, []), baseline, volumes,
                              coverages.get(name))
                for name, title in sites]
    series = out / "timeseries.csv"
    page = _TEMPLATE.render(sites=sections, version=__version__, baseline=baseline,
                            areas=TABLE_AREAS, runs=_runs(out, manifest),
                            timeseries_href=series.name if series.is_file() else None,
                            catalog_href=(CATALOG_NAME if catalog or (out / CATALOG_NAME).is_file()
                                          else None),
                            synthetic=LABEL if any_synthetic(rows) else "",
                            label=LABEL, synthetic_note=EXPLANATION)
    if offline:
        check_offline(page)
    return write_html(out / "index.html", page)


def _number(text: str | None) -> float | None:
    """An area cell: None when empty (a gap month's areas are unknown, not zero)."""
    if text is None or text.strip() == "":
        return None
    return float(text)


def _site_section(out: Path, name: str, title: str, rows: list[dict[str, str]],
                  baseline: str, volumes: Mapping[tuple[str, str], Mapping[str, str]],
                  coverage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    rows = sorted(rows, key=lambda r: r["month"])
    synthetic = any_synthetic(rows)
    seen = {"coverage": coverage_text(coverage) if coverage else "",
            "not_seen": seasons_text(int((coverage or {}).get("seasons_min") or 12),
                                     "not seen")}
    if not rows:
        return {"name": name, "title": title, "latest": None, "rows": [], "chart": "",
                "synthetic": synthetic, **seen}
    months = [str(m) for m in MonthRange(parse_month(rows[0]["month"]),
                                         parse_month(rows[-1]["month"])).months()]
    by_month = {r["month"]: r for r in rows}
    measured: dict[str, str | None] = {}
    latest_ok = None
    for m in months:  # a gap month's map and export show the latest month measured before it
        measured[m] = m if by_month.get(m, {}).get("status") in MEASURED else latest_ok
        latest_ok = measured[m]
    table = [_month_row(out, name, by_month[m], volumes.get((name, m), {}), measured[m])
             for m in reversed(months) if m in by_month]
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
    last_ok = next((r for r in table if r.measured), None)
    return {"name": name, "title": title, "latest": latest, "last_ok": last_ok,
            "rows": table, "chart": chart, "synthetic": synthetic, **seen}


def _month_row(out: Path, name: str, row: Mapping[str, str],
               volume: Mapping[str, str], measured_month: str | None = None) -> MonthRow:
    month = row["month"]
    map_path = out / name / month / "map.html"
    export = out / "exports" / f"disturbed-{month}.geojson"
    volume_csv = out / "exports" / f"volume-{month}.csv"
    p10, p50, p90 = (_number(volume.get(column)) for column in CARAT_COLUMNS)
    return MonthRow(
        month=month, status=row.get("status", ""), scenes=row.get("scenes", ""),
        valid_pct=row.get("valid_pct", ""),
        areas={column: _number(row.get(column)) for column, _ in TABLE_AREAS},
        map_href=f"{name}/{month}/map.html" if map_path.is_file() else None,
        export_href=f"exports/{export.name}" if export.is_file() else None,
        volume_href=f"exports/{volume_csv.name}" if volume_csv.is_file() else None,
        carats=None if p10 is None or p50 is None or p90 is None else (p10, p50, p90),
        measured_month=measured_month,
    )


def _volumes(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    """``(site, month)`` -> its row of ``exports/volume-YYYY-MM.csv``."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for path in sorted((out / "exports").glob("volume-*.csv")):
        try:
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    found[(row.get("site", ""), row.get("month", ""))] = row
        except (OSError, ValueError, csv.Error):
            continue
    return found


#: The timestamp of a run manifest's name (kpgeo.products.manifest).
MANIFEST_STAMP = "%Y%m%dT%H%M%S%fZ"


def _runs(out: Path, pending: Path | None) -> list[RunLink]:
    """The run manifests in ``runs/``, and ``pending`` (this run's, written after the page),
    newest first."""
    paths = {p for p in (out / "runs").glob("*.json") if not p.name.startswith(".")}
    if pending is not None:
        paths.add(out / "runs" / pending.name)
    links = []
    for path in sorted(paths, key=lambda p: p.name, reverse=True):
        try:
            when = dt.datetime.strptime(path.stem, MANIFEST_STAMP)
            time = when.strftime("%Y-%m-%d %H:%M:%S UTC")
        except ValueError:
            time = path.stem
        status, site_months = "this run", None
        if path.is_file():
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
                status = str(doc.get("status", ""))
                site_months = len(doc.get("site_months") or [])
            except (OSError, ValueError, AttributeError):
                status = "unreadable"
        links.append(RunLink(f"runs/{path.name}", time, status, site_months))
    return links


def _coverages(out: Path, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Site -> how well the baseline saw it (``baseline_coverage``, with the ``baseline``
    months), from the latest export that records it (newest first, until every site of
    ``names`` is found)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((out / "exports").glob("disturbed-*.geojson"), reverse=True):
        if set(names) <= set(found):
            break
        try:
            member = json.loads(path.read_text(encoding="utf-8"))["kpgeo"]
            for site, entry in member["sites"].items():
                coverage = entry.get("baseline_coverage")
                if isinstance(coverage, dict) and site not in found:
                    found[site] = {**coverage, "baseline": str(member.get("baseline", ""))}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return found


def _baseline(out: Path) -> str:
    """The baseline months recorded in the latest export (``kpgeo`` member), if any."""
    exports = sorted((out / "exports").glob("disturbed-*.geojson"))
    if not exports:
        return ""
    try:
        return str(json.loads(exports[-1].read_text(encoding="utf-8"))["kpgeo"]["baseline"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
