"""``timeseries.csv`` (docs/product.md §8): one row per site and month, merged across runs.

A gap month keeps its status, scene count and coverage but leaves every area empty: too little
was seen to say, and an empty cell can never be mistaken for "no digging". A ``radar`` month
(clouds, but Sentinel-1 saw) gives the digging areas radar measures and leaves the others
(worked ground and water of the month, dug shares: optical measures) empty. The first column,
``source_kind``, says what the row was measured from: ``synthetic`` for the scenes of a
``kpgeo synth`` archive (:mod:`kpgeo.products.synthetic_label`), else ``stac`` or
``sentinelhub``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..methods.composite import RADAR_AREAS
from .export import write_csv

#: Its name in the output folder.
FILE_NAME = "timeseries.csv"
COLUMNS = ("source_kind", "site", "month", "status", "scenes", "valid_pct", "preexisting_ha", "new_ha",
           "cumulative_new_ha", "active_ha", "water_ha", "new_dug_ha", "cumulative_new_dug_ha")
AREA_COLUMNS = COLUMNS[COLUMNS.index("preexisting_ha"):]


def row(site: str, month: str, status: str, scenes: int, valid_pct: float,
        areas: Mapping[str, float], source_kind: str = "") -> dict[str, Any]:
    """One row; areas rounded to 0.01 ha, left empty for a gap, and those radar does not
    measure left empty for a ``radar`` month."""
    out: dict[str, Any] = {"source_kind": source_kind, "site": site, "month": month, "status": status, "scenes": scenes,
                           "valid_pct": f"{valid_pct:.2f}"}
    for column in AREA_COLUMNS:
        known = status == "ok" or (status == "radar" and column in RADAR_AREAS)
        out[column] = f"{areas[column]:.2f}" if known else ""
    return out


def read(path: Path) -> list[dict[str, str]]:
    """Rows of an existing ``timeseries.csv`` (none if there is no file).

    Raises
    ------
    InputError
        If the file is not a time series as kpgeo writes it (another program's CSV, a binary
        file, rows without the header): its rows cannot be merged, and the file is not
        kpgeo's to replace.
    """
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError:
        raise _foreign(path, "it is not UTF-8 text") from None
    except csv.Error as exc:
        raise _foreign(path, f"it is not CSV ({exc})") from None
    if not lines or tuple(lines[0]) != COLUMNS:
        first = ",".join(lines[0]) if lines else ""
        shown = first if len(first) <= 60 else first[:57] + "..."
        raise _foreign(path, f"its first line {shown!r} is not kpgeo's header "
                             f"({','.join(COLUMNS[:3])},...)")
    for number, fields in enumerate(lines[1:], start=2):
        if len(fields) != len(COLUMNS):
            raise _foreign(path, f"line {number} has {len(fields)} fields, not {len(COLUMNS)}")
    return [dict(zip(COLUMNS, fields, strict=True)) for fields in lines[1:]]


def _foreign(path: Path, why: str) -> InputError:
    return InputError(
        f"{str(path)!r} is not a kpgeo time series: {why}; move it out of the output folder "
        "(a run writes the rows of the months it covers anew) or give another --out."
    )


def merge(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``path`` with ``rows`` replacing earlier rows of the same site and month.

    Rows are sorted by site and month, so rerunning a month rewrites identical rows.
    """
    merged = {(r["site"], r["month"]): {k: str(r.get(k, "")) for k in COLUMNS} for r in read(path)}
    for r in rows:
        merged[(str(r["site"]), str(r["month"]))] = {k: str(r.get(k, "")) for k in COLUMNS}
    return write_csv(path, [merged[k] for k in sorted(merged)], COLUMNS)
