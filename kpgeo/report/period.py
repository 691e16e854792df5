"""A period's figures, per site and for all sites, from a run's time series and volume rows.

Pure: rows in, figures out; every figure names the rows it came from (:class:`Figure`).

- **New digging in the period**: the sum of the measured months' ``new_ha`` (the footprint:
  pixels at least half dug) and ``new_dug_ha`` (the dug area: the sum of dug shares). A gap
  month's digging is counted in the next measured month, as ``timeseries.csv`` counts it; digging
  of a gap at the period's end is not in the period's figures (the months are named).
- **At the period's end**: ``cumulative_new_ha``, ``active_ha`` and ``preexisting_ha`` of the
  last measured month of the period.
- **Production volume**: the sums of the measured months' ``new_gravel_m3_p*`` and
  ``new_carats_p*``. All rows of a run use the same Monte Carlo draws, so each percentile scales
  exactly with area and the sum of the months' P10 is the P10 of the period's area (the same
  holds for P50 and P90).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..methods.composite import MEASURED

#: Volume columns summed over the period: gravel m³ and carats, P10, P50, P90.
VOLUME_COLUMNS = tuple(f"new_{what}_{q}" for what in ("gravel_m3", "carats")
                       for q in ("p10", "p50", "p90"))


@dataclass(frozen=True)
class Figure:
    """A number of the report and where it came from."""

    value: float | None
    """None: not measured (no month of the period was)."""
    file: str
    """The run file, relative to its output folder, or a pattern (``exports/volume-*.csv``)."""
    source: str
    """Its column and rows, e.g. ``new_ha, sum over tw 2024-01..2024-04 (ok months)``."""


@dataclass
class SiteFigures:
    """One site's (or all sites') figures of the period."""

    site: str
    months: list[str]
    new_ha: Figure
    new_dug_ha: Figure
    cumulative_new_ha: Figure
    active_ha: Figure
    preexisting_ha: Figure
    end_month: str | None
    """The last measured month of the period, whose state the end figures give."""
    volume: dict[str, Figure]
    gaps: list[str] = field(default_factory=list)
    radar: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)


def _float(text: str | None) -> float | None:
    if text is None or str(text).strip() == "":
        return None
    return float(text)


def _span(months: Sequence[str]) -> str:
    return f"{months[0]}..{months[-1]}" if len(months) > 1 else months[0]


def site_figures(site: str, months: Sequence[str], rows: Mapping[str, Mapping[str, str]],
                 volumes: Mapping[str, Mapping[str, str]]) -> SiteFigures:
    """The period's figures of ``site``.

    Parameters
    ----------
    site
        Its name.
    months
        The period's months, in order.
    rows
        Month -> the site's ``timeseries.csv`` row.
    volumes
        Month -> the site's row of that month's volume CSV.
    """
    measured = [m for m in months if rows[m]["status"] in MEASURED]
    span = _span(months)
    where = f"{site} {span}, measured months"

    def total(column: str) -> Figure:
        values = [_float(rows[m].get(column)) for m in measured]
        known = [v for v in values if v is not None]
        return Figure(sum(known) if known else None, "timeseries.csv",
                      f"{column}: sum over {where}")

    end = measured[-1] if measured else None

    def at_end(column: str) -> Figure:
        value = _float(rows[end].get(column)) if end else None
        return Figure(value, "timeseries.csv", f"{column}: {site} {end or '(none measured)'}")

    volume = {}
    for column in VOLUME_COLUMNS:
        values = [_float(volumes.get(m, {}).get(column)) for m in measured]
        known = [v for v in values if v is not None]
        volume[column] = Figure(sum(known) if known else None, "exports/volume-*.csv",
                                f"{column}: sum over {where}")
    return SiteFigures(
        site=site, months=list(months), new_ha=total("new_ha"),
        new_dug_ha=total("new_dug_ha"), cumulative_new_ha=at_end("cumulative_new_ha"),
        active_ha=at_end("active_ha"), preexisting_ha=at_end("preexisting_ha"),
        end_month=end, volume=volume,
        gaps=[m for m in months if rows[m]["status"] not in MEASURED],
        radar=[m for m in months if rows[m]["status"] == "radar"],
        measured=measured,
    )


def all_sites(figures: Sequence[SiteFigures]) -> SiteFigures:
    """The sum of the sites' figures (a total is None where no site has the figure)."""

    def add(pick: str, source: str, file: str = "timeseries.csv") -> Figure:
        values = [getattr(f, pick).value for f in figures]
        known = [v for v in values if v is not None]
        return Figure(sum(known) if known else None, file, f"{source}: sum over sites")

    volume = {}
    for column in VOLUME_COLUMNS:
        known = [v for f in figures if (v := f.volume[column].value) is not None]
        volume[column] = Figure(sum(known) if known else None, "exports/volume-*.csv",
                                f"{column}: sum over sites and measured months")
    months = figures[0].months if figures else []
    return SiteFigures(
        site="all sites", months=months,
        new_ha=add("new_ha", "new_ha"), new_dug_ha=add("new_dug_ha", "new_dug_ha"),
        cumulative_new_ha=add("cumulative_new_ha", "cumulative_new_ha at each site's end"),
        active_ha=add("active_ha", "active_ha at each site's end"),
        preexisting_ha=add("preexisting_ha", "preexisting_ha at each site's end"),
        end_month=max((f.end_month for f in figures if f.end_month), default=None),
        volume=volume,
        gaps=sorted({m for f in figures for m in f.gaps}),
        radar=sorted({m for f in figures for m in f.radar}),
        measured=sorted({m for f in figures for m in f.measured}),
    )


def carats_over(figures: Sequence[SiteFigures], months: Sequence[str],
                volumes: Mapping[tuple[str, str], Mapping[str, str]],
                rows: Mapping[tuple[str, str], Mapping[str, str]]) -> tuple[float, float, float]:
    """P10, P50 and P90 carats of the new digging of ``figures``' sites over ``months`` (a
    declared period within the report's), summed as :func:`site_figures` sums them."""
    sums = []
    for q in ("p10", "p50", "p90"):
        total = 0.0
        for f in figures:
            for m in months:
                if rows[(f.site, m)]["status"] in MEASURED:
                    total += _float(volumes.get((f.site, m), {}).get(f"new_carats_{q}")) or 0.0
        sums.append(total)
    return sums[0], sums[1], sums[2]
