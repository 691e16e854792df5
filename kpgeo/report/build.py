"""``kpgeo report``: a period's findings as one document, from a finished run's products.

Everything the user gave is checked before anything is written (the run folder, the months, the
site, the declared-production file); then the report's figures are read from the run's files
(:mod:`kpgeo.report.run_files`, :mod:`kpgeo.report.period`), its charts and maps drawn from them
(:mod:`kpgeo.report.chart`, :mod:`kpgeo.report.site_map`), and ``report.html`` and
``report.pdf`` written (:mod:`kpgeo.report.document`) into
``<run>/reports/<first>_<last>[_<site>]/``. The report holds the run folder's lock while it reads,
so a run cannot change the products under it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import KpgeoError
from ..months import MonthRange
from ..products.checksums import sha256
from ..products.index_page import significant
from ..products.synthetic_label import EXPLANATION, LABEL, any_synthetic
from .accuracy import QUOTED, find_results, read_accuracy
from .chart import trend_chart
from .declared import Declaration, read_declared
from .document import render_html, write_documents
from .period import (
    MEASURED,
    VOLUME_COLUMNS,
    Figure,
    SiteFigures,
    all_sites,
    carats_over,
    site_figures,
)
from .run_files import RunFiles, latest, lock_path
from .site_map import site_map

#: The reports' folder in a run's output folder.
REPORTS_FOLDER = "reports"
#: Shown for a figure that was not measured.
NOT_MEASURED = "n/m"


@dataclass(frozen=True)
class Report:
    """What :func:`write_report` wrote."""

    html: Path
    pdf: Path
    synthetic: bool


def report_folder(out: Path, months: MonthRange, site: str | None) -> Path:
    """Where a report of ``months`` (and ``site``) goes in the run folder ``out``."""
    name = f"{months.first}_{months.last}" + (f"_{site}" if site else "")
    return out / REPORTS_FOLDER / name


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold the run folder's lock (if it has one) while reading it."""
    path = lock_path(out)
    if path is None:
        yield
        return
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KpgeoError(f"a kpgeo run is writing {out}; wait for it to finish, then make "
                             "the report.") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_report(out: str | Path, months: MonthRange, *, site: str | None = None,
                 declared: str | Path | None = None) -> Report:
    """Write the report of ``months`` of the finished run in ``out``.

    Parameters
    ----------
    out
        The run's output folder.
    months
        The report's period.
    site
        Only this site (default: every site of the run).
    declared
        A declared-production CSV (:mod:`kpgeo.report.declared`) to compare with.

    Returns
    -------
    Report
        The paths of ``report.html`` and ``report.pdf``.

    Raises
    ------
    InputError
        ``out`` is not a finished run, a month or the site is not in it, or the declared
        file is malformed: nothing is written.

    Examples
    --------
    >>> from kpgeo.months import parse_month_range
    >>> write_report("outputs/demo", parse_month_range("2024-01..2024-12"))  # doctest: +SKIP
    Report(html=PosixPath('outputs/demo/reports/2024-01_2024-12/report.html'), ...)
    """
    out = Path(out)
    files = RunFiles.open(out)
    sites = files.check_request(months, site)
    with _run_lock(out):
        catalog = files.catalog_sites()
        countries = {s: str(catalog.get(s, {}).get("country", "")) for s in sites}
        declarations = (read_declared(declared, sites=sites, countries=countries, period=months)
                        if declared is not None else [])
        context = _context(files, months, sites, catalog, declarations,
                           Path(declared).name if declared is not None else "")
        html, pdf = write_documents(report_folder(out, months, site), render_html(context))
    return Report(html, pdf, bool(context["synthetic"]))


def _ha(value: float | None) -> str:
    return NOT_MEASURED if value is None else f"{value:.2f}"


def _sig(value: float | None) -> str:
    return NOT_MEASURED if value is None else significant(value)


def _cell(row: dict[str, str], column: str) -> str:
    text = row.get(column, "")
    return text if text.strip() else NOT_MEASURED


def _context(files: RunFiles, months: MonthRange, sites: Sequence[str],
             catalog: dict[str, dict[str, Any]], declarations: Sequence[Declaration],
             declared_file: str) -> dict[str, Any]:
    period = [str(m) for m in months.months()]
    files.read_volumes(period)
    rows = {(r["site"], r["month"]): r for r in files.rows}
    chosen = [r for r in files.rows if r["site"] in sites]
    synthetic = any_synthetic(chosen)
    manifests = files.manifests()
    newest = latest(manifests) if manifests else None
    export = _export_member(files, sites, period)
    titles = {s: str(catalog.get(s, {}).get("title") or s) for s in sites}
    if synthetic:
        titles = {s: t.removeprefix(f"{LABEL}: ") for s, t in titles.items()}
    figures = [site_figures(s, period, {m: rows[(s, m)] for m in period},
                            {m: files.volumes.get((s, m), {}) for m in period}) for s in sites]
    total = all_sites(figures) if len(figures) > 1 else None
    summary = [_summary(f, titles.get(f.site, f.site), False) for f in figures]
    if total is not None:
        summary.append(_summary(total, "all sites", True))
    baseline = str(export.get("baseline", "")) if export else ""
    source = _source_text(export)
    title = (f"Artisanal diamond digging at {', '.join(titles[s] for s in sites)}: "
             f"{months.first} to {months.last}")
    context: dict[str, Any] = {
        "title": title, "period": str(months), "period_months": len(period),
        "version": __version__, "made": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "run_folder": files.out.name or str(files.out), "baseline": baseline,
        "source": source, "synthetic": synthetic, "label": LABEL,
        "synthetic_note": EXPLANATION,
        "page_label": (f"{LABEL}: not a measurement of real digging" if synthetic
                       else f"kpgeo report {months}"),
        "footer": f"kpgeo {__version__}: report of {months}",
        "summary": summary,
        "any_radar": any(f.radar for f in figures),
        "sites": [_site_section(files, s, titles[s], period, rows, catalog, months, baseline)
                  for s in sites],
        "declared": [_declared_row(d, figures, files, rows) for d in declarations],
        "declared_file": declared_file,
        **_assumptions(newest),
        "accuracy": _accuracy(),
        "software": _software(newest, export),
        "manifests": [{"file": str(p.relative_to(files.out)), "status": d.get("status", ""),
                       "site_months": len(d.get("site_months") or []), "sha256": sha256(p)}
                      for p, d in reversed(manifests)],
        "scenes": _scenes(files, sites, period),
        "trace": _trace(figures, total),
    }
    # Last: every file read by now, the charts' and maps' included.
    context["files"] = [{"file": f, "sha256": h, "what": w} for f, h, w in files.digests()]
    return context


def _summary(f: SiteFigures, title: str, total: bool) -> dict[str, Any]:
    not_measured = ", ".join(f"{m} ({'radar' if m in f.radar else 'gap'})" for m in f.gaps)
    return {"site": f.site, "title": title, "total": total, "new_ha": _ha(f.new_ha.value),
            "new_dug_ha": _ha(f.new_dug_ha.value),
            "cumulative_new_ha": _ha(f.cumulative_new_ha.value),
            "active_ha": _ha(f.active_ha.value), "preexisting_ha": _ha(f.preexisting_ha.value),
            "end_month": f.end_month or NOT_MEASURED, "not_measured": not_measured or "none",
            "volume": [_sig(f.volume[c].value) for c in VOLUME_COLUMNS]}


def _site_section(files: RunFiles, site: str, title: str, period: list[str],
                  rows: dict[tuple[str, str], dict[str, str]],
                  catalog: dict[str, dict[str, Any]], months: MonthRange,
                  baseline: str) -> dict[str, Any]:
    run_months = files.months_of(site)
    by_month = {m: rows[(site, m)] for m in run_months}
    svg = trend_chart(run_months, by_month, (period[0], period[-1]),
                      f"Digging areas of {title} by month, hectares", baseline)
    import base64

    chart = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
    outline = catalog.get(site, {}).get("outline")
    maps = []
    for when, month in (("start", period[0]), ("end", period[-1])):
        shown = _measured_at_or_before(month, run_months, by_month)
        folder = files.out / site / shown
        areas = files.areas(site, shown)
        if not (folder / "composite.tif").is_file():
            continue
        files.note(folder.relative_to(files.out) / "composite.tif", "true colour of the maps")
        files.note(folder.relative_to(files.out) / "disturbed.geojson",
                   "digging areas of the maps")
        note = "" if shown == month else f" (the last measured month before {month})"
        caption = (f"{title}, {when} of the period: {shown}{note}. Digging areas over the "
                   "month's true-colour composite.")
        maps.append({"caption": caption, "uri": site_map(
            folder / "composite.tif", areas, outline, f"{title}: {shown}", str(months.first),
            shown)})
    table = []
    for m in period:
        r = rows[(site, m)]
        volume = files.volumes.get((site, m), {})
        table.append({"month": m, "status": r["status"], "scenes": r["scenes"],
                      "valid_pct": r["valid_pct"], "new_ha": _cell(r, "new_ha"),
                      "new_dug_ha": _cell(r, "new_dug_ha"),
                      "cumulative_new_ha": _cell(r, "cumulative_new_ha"),
                      "active_ha": _cell(r, "active_ha"),
                      "preexisting_ha": _cell(r, "preexisting_ha"),
                      "carats": _sig(_float(volume.get("new_carats_p50")))
                      if r["status"] in MEASURED else NOT_MEASURED})
    return {"name": site, "title": title, "chart": chart, "maps": maps, "rows": table}


def _float(text: str | None) -> float | None:
    return None if text is None or str(text).strip() == "" else float(text)


def _measured_at_or_before(month: str, run_months: list[str],
                           by_month: dict[str, dict[str, str]]) -> str:
    """``month`` if it was measured, else the latest measured month before it (else itself)."""
    earlier = [m for m in run_months if m <= month and by_month[m]["status"] in MEASURED]
    return earlier[-1] if earlier else month


def _declared_row(d: Declaration, figures: Sequence[SiteFigures], files: RunFiles,
                  rows: dict[tuple[str, str], dict[str, str]]) -> dict[str, str]:
    chosen = [f for f in figures if f.site in d.sites]
    p10, p50, p90 = carats_over(chosen, [str(m) for m in d.months.months()], files.volumes, rows)
    ratio = (f"{significant(p10 / d.carats)} to {significant(p90 / d.carats)} "
             f"(P50 {significant(p50 / d.carats)})")
    return {"scope": d.scope + ("" if d.sites == (d.scope,) else f" ({', '.join(d.sites)})"),
            "period": str(d.months), "declared": significant(d.carats), "p10": significant(p10),
            "p50": significant(p50), "p90": significant(p90), "ratio": ratio}


def _export_member(files: RunFiles, sites: Sequence[str], period: list[str]) -> dict[str, Any]:
    """The ``kpgeo`` member of the period's last month's ``disturbed.geojson`` of a site."""
    for month in reversed(period):
        for site in sites:
            doc = files.areas(site, month)
            if doc is not None and isinstance(doc.get("kpgeo"), dict):
                files.note(Path(site) / month / "disturbed.geojson",
                           "source, baseline and software (kpgeo member)")
                return dict(doc["kpgeo"])
    return {}


def _source_text(member: dict[str, Any]) -> str:
    source = member.get("source") or {}
    if not isinstance(source, dict) or not source:
        return "unknown"
    kind = str(source.get("kind", ""))
    parts = [kind]
    if source.get("catalog"):
        parts.append(f"catalog {source['catalog']}")
    if source.get("collection") and kind != "synthetic":
        parts.append(f"collection {source['collection']}")
    if member.get("synthetic"):
        parts.append("simulated Sentinel-2 scenes")
    return ", ".join(parts)


def _software(newest: tuple[Path, Any] | None, member: dict[str, Any]) -> str:
    if newest is None:
        return str(member.get("software") or "unknown")
    versions = newest[1].get("versions") or {}
    shown = ", ".join(f"{k} {v}" for k, v in versions.items()
                      if k in ("kpgeo", "python", "gdal", "numpy", "dask", "rasterio"))
    return f"{shown} (run manifest {newest[0].name})"


def _assumptions(newest: tuple[Path, Any] | None) -> dict[str, Any]:
    config = ((newest[1].get("config") or {}).get("volume") or {}) if newest else {}
    found = []
    for name, value in config.items():
        if isinstance(value, dict) and {"low", "high"} <= set(value):
            found.append({"name": name, "low": value["low"], "high": value["high"],
                          "source": value.get("source", "")})
    note = (f"From the configuration in run manifest {newest[0].name}: {config.get('draws')} "
            f"draws, seed {config.get('seed')}." if newest and found
            else "No run manifest records the assumptions.")
    return {"assumptions": found, "assumptions_note": note}


def _accuracy() -> dict[str, Any] | None:
    path = find_results()
    if path is None:
        return None
    accuracy = read_accuracy(path)
    if not accuracy.families:
        return None
    return {"families": accuracy.families, "metrics": [m for m in QUOTED if any(
        m in f for f in accuracy.families.values())], "file": "benchmarks/RESULTS.md",
        "sha256": sha256(path), "command": accuracy.command.replace("`", "")}


def _scenes(files: RunFiles, sites: Sequence[str], period: list[str]) -> list[dict[str, Any]]:
    found = []
    for site in sites:
        for month in period:
            doc = files.areas(site, month) or {}
            entry = ((doc.get("kpgeo") or {}).get("sites") or {}).get(site) or {}
            ids = [str(i) for i in entry.get("scene_ids") or []]
            if doc:
                files.note(Path(site) / month / "disturbed.geojson",
                           "scene ids (kpgeo member)")
            found.append({"site": site, "month": month, "count": len(ids),
                          "ids": ", ".join(ids) or "none recorded"})
    return found


def _trace(figures: Sequence[SiteFigures], total: SiteFigures | None) -> list[dict[str, str]]:
    found = []
    labels = (("new_ha", "new digging, footprint"), ("new_dug_ha", "new digging, dug area"),
              ("cumulative_new_ha", "new since the baseline, at the end"),
              ("active_ha", "active at the end"), ("preexisting_ha", "pre-existing"))
    for f in [*figures, *([total] if total else [])]:
        for attribute, label in labels:
            figure: Figure = getattr(f, attribute)
            found.append({"figure": f"{f.site}: {label}", "file": figure.file,
                          "source": figure.source})
        for column in VOLUME_COLUMNS:
            figure = f.volume[column]
            found.append({"figure": f"{f.site}: {column}", "file": figure.file,
                          "source": figure.source})
    found.append({"figure": "months table, carats P50", "file": "exports/volume-<month>.csv",
                  "source": "new_carats_p50 of the site's row"})
    found.append({"figure": "maps", "file": "<site>/<month>/composite.tif, disturbed.geojson",
                  "source": "red, green, blue bands; digging areas; outline from catalog.json"})
    found.append({"figure": "scenes used", "file": "<site>/<month>/disturbed.geojson",
                  "source": "kpgeo.sites.<site>.scene_ids"})
    return found
