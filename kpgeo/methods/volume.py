"""Production-volume inputs (docs/product.md §7): gravel volume and carats from digging area, as ranges.

The area route of ``docs/domain.md`` §1.7::

    gravel m³ = area m² × gravel fraction × gravel thickness
    carats    = gravel m³ × grade (ct/m³) × recovery

Each assumption is a range in the pipeline file (``[volume]``, with its source); a seeded Monte
Carlo draws every assumption uniformly from its range, and the 10th, 50th and 90th percentiles
of the results are reported. The same draws serve every row of a run, so for fixed assumptions
the figures scale exactly with area, and the same seed gives the same figures. The spread says
how little the assumptions are known; it does not include the error of the mapped area
(``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..config import VolumeConfig
from .composite import MEASURED

PERCENTILES = (10, 50, 90)
#: Columns of ``exports/volume-YYYY-MM.csv``: ``source_kind`` first, as in ``timeseries.csv``
#: (``synthetic`` for rows measured from a synthetic archive).
COLUMNS = (
    "source_kind", "site", "month", "status", "new_ha", "cumulative_new_ha",
    *(f"{what}_{q}" for what in ("new_gravel_m3", "new_carats", "cumulative_gravel_m3",
                                  "cumulative_carats")
      for q in ("p10", "p50", "p90")),
)


def draw_factors(config: VolumeConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per draw: gravel m³ per m² of digging, and carats per m³ of gravel."""
    rng = np.random.default_rng(config.seed)
    a = config.assumptions()

    def uniform(name: str) -> np.ndarray:
        return rng.uniform(a[name].low, a[name].high, config.draws)

    gravel_per_m2 = uniform("gravel_fraction") * uniform("gravel_thickness_m")
    carats_per_m3 = uniform("grade_ct_per_m3") * uniform("recovery")
    return gravel_per_m2, carats_per_m3


def quantiles(area_ha: float, gravel_per_m2: np.ndarray,
              carats_per_m3: np.ndarray) -> dict[str, float]:
    """P10, P50, P90 of gravel volume (m³) and carats for ``area_ha`` of digging."""
    gravel = area_ha * 1e4 * gravel_per_m2
    carats = gravel * carats_per_m3
    g = np.percentile(gravel, PERCENTILES)
    c = np.percentile(carats, PERCENTILES)
    return {**{f"gravel_m3_p{q}": float(v) for q, v in zip(PERCENTILES, g, strict=True)},
            **{f"carats_p{q}": float(v) for q, v in zip(PERCENTILES, c, strict=True)}}


def volume_rows(rows: Iterable[Mapping[str, Any]], config: VolumeConfig) -> list[dict[str, Any]]:
    """Volume rows for time-series rows; a gap stays a gap (empty figures)."""
    factors = draw_factors(config)
    out = []
    for r in rows:
        row: dict[str, Any] = {"source_kind": r.get("source_kind", "")}
        row.update({k: r[k] for k in ("site", "month", "status", "new_ha",
                                      "cumulative_new_ha")})
        if r["status"] in MEASURED and r["new_ha"] != "":
            for prefix, column in (("new", "new_ha"), ("cumulative", "cumulative_new_ha")):
                for key, value in quantiles(float(r[column]), *factors).items():
                    row[f"{prefix}_{key}"] = f"{value:.1f}"
        out.append(row)
    return out
