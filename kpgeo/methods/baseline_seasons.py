"""How well the baseline saw each pixel through the year, and how sure a pre-existing digging
area is.

Each month after the baseline is judged against its **season**: that calendar month and the
two either side (:func:`~.reference.season_months`), so a year has twelve seasons, one per
calendar month. A pixel's **seasons seen** (``baseline_seasons``, 0 to 12) are those in which
the baseline saw it at least once, as land or as water: counted from the calendar months the
baseline already records per pixel for its riverbed and pit tests
(:attr:`~.detection.Baseline.land_months`, ``water_months``). A baseline of several years
counts a calendar month once: seeing January three times says nothing about the rains.

**Why every season** (:data:`SEASONS_MIN` is 12). Pre-existing digging is ground that looked
dug in every month it was seen since it was first dug (``preexisting_min_months`` is 1: a
single dug view suffices where no other view says otherwise, :func:`~.detection.worked_at_end`).
A field lies as bare as a working in the dry season; only the green season tells them apart,
when the field greens up with the savanna and the working stays bare. A pixel that the
baseline missed in some season, three calendar months running without a view, has no state
of its own for that season; the season missed is almost always the rains, the cloudiest
months and the first a cloudier baseline loses, and its being dug at the baseline's end then
rests on the dry season and the rains' edges alone. That is how a cloudier baseline turns
fields into pre-existing digging (on a synthetic window of Tortiya with 1.8 times the clouds,
four rainy months were gaps, the pre-existing area grew from 15.4 to 25.0 ha, and no pixel
was seen in more than 10 seasons; in the ordinary year 92 % of the window was seen in all 12).
Such areas are kept (they may be workings) but marked ``certainty: "low"``; a count of months
would not do: the dry season alone gives a pixel six or seven of them.

Everything here is per pixel or per digging area, so it runs chunk by chunk: a chunk's pieces
of an area carry a histogram of their pixels' seasons seen, which add up across chunks
(:mod:`kpgeo.methods.polygons`), and the site's coverage is a sum of the chunks' counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The seasons of a year: one per calendar month (the month and its neighbours).
SEASONS = 12
#: Seasons a pixel must be seen in for its pre-existing digging to be sure: all of them (see
#: the module docstring).
SEASONS_MIN = SEASONS
#: ``certainty`` of a pre-existing area whose pixels (the median pixel) were seen in fewer
#: than :data:`SEASONS_MIN` seasons, and of the others.
LOW, NORMAL = "low", "normal"


def _seasons_of(mask: int) -> int:
    """Seasons seen by a 12-bit mask of calendar months seen (bit ``m - 1``: month ``m``)."""
    return sum(1 for m in range(SEASONS)
               if mask & (1 << m | 1 << (m - 1) % SEASONS | 1 << (m + 1) % SEASONS))


#: Seasons seen by each 12-bit mask of calendar months.
_SEASONS_OF = np.array([_seasons_of(mask) for mask in range(1 << SEASONS)], dtype="uint8")


def seasons_seen(land_months: np.ndarray, water_months: np.ndarray) -> np.ndarray:
    """Per pixel, the seasons the baseline saw it in (0 to 12, uint8), from the 12-bit masks
    of the calendar months it was seen as land and as water."""
    seen = (np.asarray(land_months).astype("int32", copy=False)
            | np.asarray(water_months).astype("int32", copy=False)) & 0xFFF
    result: np.ndarray = _SEASONS_OF[seen]
    return result


def histograms(index: np.ndarray, pixel_seasons: np.ndarray, count: int) -> np.ndarray:
    """``(count, SEASONS + 1)`` int64: per area (``index``, 0 to ``count - 1``, one per
    pixel), how many of its pixels were seen in each number of seasons."""
    clipped = np.clip(np.nan_to_num(pixel_seasons), 0, SEASONS).astype("int64")
    flat = np.bincount(index.astype("int64") * (SEASONS + 1) + clipped,
                       minlength=count * (SEASONS + 1))
    return flat.reshape(count, SEASONS + 1)


def median_seasons(histogram: np.ndarray | tuple[int, ...]) -> int | None:
    """The (lower) median of an area's pixels' seasons seen, from their histogram; None if
    empty."""
    counts = np.asarray(histogram, dtype="int64")
    total = int(counts.sum())
    if total == 0:
        return None
    return int(np.searchsorted(np.cumsum(counts), (total + 1) // 2))


def certainty(seasons: int | None) -> str | None:
    """``"low"`` for an area seen in fewer than :data:`SEASONS_MIN` seasons, else
    ``"normal"``; None when unknown."""
    if seasons is None:
        return None
    return LOW if seasons < SEASONS_MIN else NORMAL


@dataclass(frozen=True)
class BaselineCoverage:
    """How well the baseline saw a site: its months, and its pixels' seasons."""

    months: int
    """Months of the baseline."""
    months_seen: int
    """Of them, the months that were not gaps (enough of the site seen to composite)."""
    pixels: int
    """Pixels of the site (inside its outline)."""
    pixels_seen: int
    """Of them, the pixels seen in at least :attr:`seasons_min` seasons."""
    seasons_min: int = SEASONS_MIN

    @property
    def seen_share(self) -> float:
        """Share of the site seen in at least :attr:`seasons_min` seasons (0-1)."""
        return self.pixels_seen / self.pixels if self.pixels else 0.0

    def tags(self) -> dict[str, str]:
        """As ``baseline.tif`` tags."""
        return {f"baseline_{k}": str(v) for k, v in self._values().items()}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> BaselineCoverage | None:
        """From ``baseline.tif`` tags; None if they are not there."""
        try:
            return cls(**{k: int(tags[f"baseline_{k}"]) for k in
                          ("months", "months_seen", "pixels", "pixels_seen", "seasons_min")})
        except (KeyError, ValueError):
            return None

    def member(self) -> dict[str, Any]:
        """As the ``baseline_coverage`` of a site in the GeoJSON's ``kpgeo`` member."""
        return {"months": self.months, "months_seen": self.months_seen,
                "seasons_min": self.seasons_min, "seen_share": round(self.seen_share, 4)}

    def _values(self) -> dict[str, int]:
        return {"months": self.months, "months_seen": self.months_seen, "pixels": self.pixels,
                "pixels_seen": self.pixels_seen, "seasons_min": self.seasons_min}
