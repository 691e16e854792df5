"""``timeseries.csv`` (docs/product.md §8): one row per site and month, merged across runs.

A gap month keeps its status, scene count and coverage but leaves every area empty: too little
was seen to say, and an empty cell can never be mistaken for "no digging". The first column,
``source_kind``, says what the row was measured from: ``synthetic`` for the scenes of a
``kpgeo synth`` archive (:mod:`kpgeo.products.synthetic_label`), else ``stac`` or
``sentinelhub``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .export import write_csv

COLUMNS = ("source_kind", "site", "month", "status", "scenes", "valid_pct", "preexisting_ha", "new_ha",
           "cumulative_new_ha", "active_ha", "water_ha", "new_dug_ha", "cumulative_new_dug_ha")
AREA_COLUMNS = COLUMNS[COLUMNS.index("preexisting_ha"):]


def row(site: str, month: str, status: str, scenes: int, valid_pct: float,
        areas: Mapping[str, float], source_kind: str = "") -> dict[str, Any]:
    """One row; areas rounded to 0.01 ha and left empty for a gap."""
    out: dict[str, Any] = {"source_kind": source_kind, "site": site, "month": month, "status": status, "scenes": scenes,
                           "valid_pct": f"{valid_pct:.2f}"}
    for column in AREA_COLUMNS:
        out[column] = "" if status != "ok" else f"{areas[column]:.2f}"
    return out


def read(path: Path) -> list[dict[str, str]]:
    """Rows of an existing ``timeseries.csv`` (none if there is no file)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def merge(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write ``path`` with ``rows`` replacing earlier rows of the same site and month.

    Rows are sorted by site and month, so rerunning a month rewrites identical rows.
    """
    merged = {(r["site"], r["month"]): {k: str(r.get(k, "")) for k in COLUMNS} for r in read(path)}
    for r in rows:
        merged[(str(r["site"]), str(r["month"]))] = {k: str(r.get(k, "")) for k in COLUMNS}
    return write_csv(path, [merged[k] for k in sorted(merged)], COLUMNS)
