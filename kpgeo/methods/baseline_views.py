"""How well the baseline saw each pixel, and how sure a pre-existing digging area is.

A pixel's **views** are the calendar months of the baseline in which its monthly composite saw
it, as land or as water: the months the baseline already records per pixel for its riverbed
and pit tests (:attr:`~.detection.Baseline.land_months`, ``water_months``), counted. A
baseline of several years counts a calendar month once: seeing January three times says
nothing about the rains.

**Why** :data:`VIEWS_MIN` **is 4.** Pre-existing digging is ground that looked dug in every
month it was seen since it was first dug (``preexisting_min_months`` is 1: a single dug view
suffices where no other view says otherwise, :func:`~.detection.worked_at_end`). A field lies
as bare as a working in the dry season; only the green season tells them apart, when the field
greens up with the savanna and the working stays bare. Each month's reference is its season,
the calendar month and the two either side (:func:`~.reference.season_months`), so a year
holds four seasons that do not overlap; a pixel seen in fewer than four calendar months has
missed at least one of them, and its view of the rains (the cloudiest months, the first a
cloudier baseline loses) is the likeliest to be missing. Its being dug at the baseline's end
then rests on the dry season alone: the isolated pre-existing polygons in open savanna of a
cloudy baseline. Such areas are kept (they may be workings) but marked ``certainty: "low"``.

Everything here is per pixel or per digging area, so it runs chunk by chunk: a chunk's
pieces of an area carry a histogram of their pixels' views, which add up across chunks
(:mod:`kpgeo.methods.polygons`), and the site's coverage is a sum of the chunks' counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Calendar months a pixel must be seen in for the baseline to have seen it through the year
#: (one view per season on average; see the module docstring).
VIEWS_MIN = 4
#: The most views a pixel can have: one per calendar month.
VIEWS_MAX = 12
#: ``certainty`` of a pre-existing area whose pixels were seen in fewer than
#: :data:`VIEWS_MIN` calendar months (the median pixel), and of the others.
LOW, NORMAL = "low", "normal"
#: Set bits of each 12-bit month mask (numpy's ``bitwise_count`` needs numpy 2).
_MONTHS_IN = np.array([mask.bit_count() for mask in range(1 << 12)], dtype="uint8")


def views(land_months: np.ndarray, water_months: np.ndarray) -> np.ndarray:
    """Per pixel, the calendar months the baseline saw it in (0 to 12, uint8), from the 12-bit
    masks of the months it was seen as land and as water."""
    seen = (np.asarray(land_months).astype("int32", copy=False)
            | np.asarray(water_months).astype("int32", copy=False)) & 0xFFF
    result: np.ndarray = _MONTHS_IN[seen]
    return result


def histograms(index: np.ndarray, pixel_views: np.ndarray, count: int) -> np.ndarray:
    """``(count, VIEWS_MAX + 1)`` int64: per area (``index``, 0 to ``count - 1``, one per
    pixel), how many of its pixels have each number of views."""
    clipped = np.clip(np.nan_to_num(pixel_views), 0, VIEWS_MAX).astype("int64")
    flat = np.bincount(index.astype("int64") * (VIEWS_MAX + 1) + clipped,
                       minlength=count * (VIEWS_MAX + 1))
    return flat.reshape(count, VIEWS_MAX + 1)


def median_views(histogram: np.ndarray | tuple[int, ...]) -> int | None:
    """The (lower) median views of an area's pixels from their histogram; None if empty."""
    counts = np.asarray(histogram, dtype="int64")
    total = int(counts.sum())
    if total == 0:
        return None
    return int(np.searchsorted(np.cumsum(counts), (total + 1) // 2))


def certainty(area_views: int | None) -> str | None:
    """``"low"`` for an area seen in fewer than :data:`VIEWS_MIN` calendar months, else
    ``"normal"``; None when unknown."""
    if area_views is None:
        return None
    return LOW if area_views < VIEWS_MIN else NORMAL


@dataclass(frozen=True)
class BaselineCoverage:
    """How well the baseline saw a site: its months, and its pixels' views."""

    months: int
    """Months of the baseline."""
    months_seen: int
    """Of them, the months that were not gaps (enough of the site seen to composite)."""
    pixels: int
    """Pixels of the site (inside its outline)."""
    pixels_seen: int
    """Of them, the pixels seen in at least :attr:`views_min` calendar months."""
    views_min: int = VIEWS_MIN

    @property
    def seen_share(self) -> float:
        """Share of the site seen in at least :attr:`views_min` calendar months (0-1)."""
        return self.pixels_seen / self.pixels if self.pixels else 0.0

    def tags(self) -> dict[str, str]:
        """As ``baseline.tif`` tags."""
        return {f"baseline_{k}": str(v) for k, v in self._values().items()}

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> BaselineCoverage | None:
        """From ``baseline.tif`` tags; None if they are not there."""
        try:
            return cls(**{k: int(tags[f"baseline_{k}"]) for k in
                          ("months", "months_seen", "pixels", "pixels_seen", "views_min")})
        except (KeyError, ValueError):
            return None

    def member(self) -> dict[str, Any]:
        """As the ``baseline_coverage`` of a site in the GeoJSON's ``kpgeo`` member."""
        return {"months": self.months, "months_seen": self.months_seen,
                "views_min": self.views_min, "seen_share": round(self.seen_share, 4)}

    def _values(self) -> dict[str, int]:
        return {"months": self.months, "months_seen": self.months_seen, "pixels": self.pixels,
                "pixels_seen": self.pixels_seen, "views_min": self.views_min}
