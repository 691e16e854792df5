"""How hard the synthetic ground is: the hardships of real monitoring, each switchable.

Real ground seen from 10 m is harder than a clean simulation, and each of these made an earlier
method fail on an independent archive:

- **Partly dug pixels.** Artisanal pits are 1-5 m across, so a 10 m pixel of a working is a mix
  of pits, spoil, turbid water and the grass left between them; shares of 50-90 % are the common
  case, and a working's edge shades off into pixels dug less than half. On a real galamsey patch
  (Twifo Praso, Ghana, 2025) the low-NDVI pixels have a median NDVI near 0.19, not the < 0.1 of
  bare gravel.
- **Riverbeds.** The channel is wider than the low-water river: from December to May its sand
  and gravel bars lie bare and bright beside the water, and the rains flood them again.
- **Misregistration.** Scenes of one place are offset from each other by up to about half a
  pixel (Sentinel-2's multi-temporal co-registration), so every edge flickers.
- **Roads.** Laterite tracks, bright and bare all year, one or two pixels wide.
- **Long rains.** Some years give four to six months in a row with almost no clear view.
- **Years differ.** The rains come two or three weeks early or late, and floods reach further in
  one year than the next.

:meth:`Ground.simple` switches all of them off: the clean world of the first simulator, kept as
the "current family" of the accuracy benchmark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..months import Month, parse_month_range

#: Largest shift of a year's seasons (rains, crops, floods) from the average calendar, in days.
SEASON_SHIFT_MAX_DAYS = 21.0
#: Range of a year's flood reach relative to the average year.
FLOOD_REACH = (0.7, 1.3)


@dataclass(frozen=True)
class Ground:
    """Which hardships of real ground a synthetic world has (all on by default)."""

    partial_digging: bool = True
    """Dug pixels are mixes of worked ground and the grass left between pits (dug shares of
    about 0.5-0.95 inside a working, shading to 0 at its edge)."""
    riverbed: bool = True
    """Rivers run in beds wider than their low water: bare sand bars from December to May,
    flooded in the rains."""
    misregistration_px: float = 0.5
    """Largest offset of a scene from the true grid, in pixels (0 = perfectly registered)."""
    roads: bool = True
    """Laterite tracks cross the site."""
    varying_years: bool = True
    """Each year's seasons shift by up to three weeks and its floods reach more or less far."""
    long_rains: tuple[str, ...] = ()
    """Month ranges (``YYYY-MM..YYYY-MM``) with almost no clear view."""

    @classmethod
    def simple(cls) -> Ground:
        """The clean world: whole dug pixels, narrow rivers, registered scenes, no roads, the
        same seasons every year."""
        return cls(partial_digging=False, riverbed=False, misregistration_px=0.0, roads=False,
                   varying_years=False)

    def long_rain_months(self) -> set[Month]:
        """Every month of :attr:`long_rains`."""
        return {m for text in self.long_rains for m in parse_month_range(text).months()}

    def to_dict(self) -> dict[str, Any]:
        """Plain values, part of the archive's identity (``kpgeo:synth`` in collection.json)."""
        values = asdict(self)
        values["long_rains"] = list(self.long_rains)
        return values


@dataclass(frozen=True)
class Years:
    """Each year's season shift (days) and flood reach, drawn once per world."""

    shift_days: dict[int, float]
    flood_reach: dict[int, float]

    @classmethod
    def draw(cls, rng: np.random.Generator, first_year: int, last_year: int,
             varying: bool) -> Years:
        years = range(first_year - 1, last_year + 2)
        if not varying:
            return cls({y: 0.0 for y in years}, {y: 1.0 for y in years})
        return cls({y: float(rng.uniform(-SEASON_SHIFT_MAX_DAYS, SEASON_SHIFT_MAX_DAYS))
                    for y in years},
                   {y: float(rng.uniform(*FLOOD_REACH)) for y in years})

    def shift(self, day: float) -> float:
        """The season shift on ``day`` (days since 1970-01-01), in days."""
        return self.shift_days.get(_year(day), 0.0)

    def reach(self, day: float) -> float:
        """The flood reach of ``day``'s year."""
        return self.flood_reach.get(_year(day), 1.0)


def _year(day: float) -> int:
    return int(np.datetime64(int(day), "D").astype("datetime64[Y]").astype(int)) + 1970
