"""Each pixel's own seasonal reference, from the baseline, and the dug share of a pixel.

The savanna's seasons move every index far more than partial digging does: NDVI of the same
grass is 0.3 in February and 0.7 in August. So a pixel is compared with itself in the same
season of the baseline, not with a fixed threshold or with its driest state of the year:

- The baseline keeps, per calendar month it saw, each pixel's composite state in the bands that
  carry the contrast between vegetation and worked ground (green, red, NIR, SWIR 1.6 µm); a
  baseline of several years keeps the least-green state of each calendar month.
- The **season** of a month is that calendar month and the months either side (a year's rains
  come two or three weeks early or late); where the baseline saw none of them (long rains), the
  nearest calendar months it saw.
- Over the season, per pixel: the least-green land NDVI (the floor a pixel's NDVI stays above
  unless something new happens, and the pixel's own vegetation for unmixing), the wettest land
  MNDWI and the darkest land red.
- **Misregistration.** Scenes of one place are offset by up to about half a pixel, so a pixel
  can take half of a neighbour's value: each pixel's allowance is half its contrast with its
  neighbours in the season's reference (a river bank's is large, open savanna's small).

**Dug share** (:func:`dug_share`): a pixel's NDVI unmixed between its own vegetation state
(the season's least-green land NDVI) and worked ground's (spoil, wet gravel and turbid pit
water, ``DetectionConfig.worked_ndvi``): ``share = (v - o) / (v - w)``, clipped to 0..1.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..config import DetectionConfig

#: Bands of the monthly reference states, in this order.
REFERENCE_BANDS = ("green", "red", "nir", "swir16")
#: Layers of a :class:`SeasonalReference` (see :meth:`SeasonalReference.layers`).
REFERENCE_LAYERS = ("ndvi_floor", "mndwi_ceiling", "red_floor", "ndvi_allowance",
                    "mndwi_allowance")


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((a - b) / (a + b)).astype("float32")


def reference_indices(state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NDVI, MNDWI and whether the pixel was open water, of a ``(4, y, x)`` reference state."""
    green, red, nir, swir = state
    vi, mndwi = _nd(nir, red), _nd(green, swir)
    with np.errstate(invalid="ignore"):
        water = (mndwi > 0) | (_nd(green, nir) > 0)
    return vi, mndwi, water


def season_months(calendar_month: int, seen: Sequence[int]) -> list[int]:
    """The calendar months of the baseline that stand for ``calendar_month``'s season: it and
    its neighbours where seen, else the nearest seen months (both, on a tie)."""
    window = [(calendar_month + d - 1) % 12 + 1 for d in (-1, 0, 1)]
    found = [m for m in window if m in seen]
    if found or not seen:
        return found

    def distance(m: int) -> int:
        return min((m - calendar_month) % 12, (calendar_month - m) % 12)

    nearest = min(distance(m) for m in seen)
    return sorted(m for m in seen if distance(m) == nearest)


@dataclass(frozen=True)
class SeasonalReference:
    """A season's reference of every pixel (see the module docstring); NaN where never seen as
    land in it."""

    ndvi_floor: np.ndarray
    mndwi_ceiling: np.ndarray
    red_floor: np.ndarray
    ndvi_allowance: np.ndarray
    """How far misregistration alone can lower the pixel's NDVI."""
    mndwi_allowance: np.ndarray
    """How far misregistration alone can raise its MNDWI."""

    def layers(self) -> np.ndarray:
        """``(layer, y, x)`` float32 in the order of :data:`REFERENCE_LAYERS`: what a chunk's
        evidence task takes."""
        return np.stack([self.ndvi_floor, self.mndwi_ceiling, self.red_floor,
                         self.ndvi_allowance, self.mndwi_allowance]).astype("float32", copy=False)

    @classmethod
    def from_layers(cls, layers: np.ndarray) -> SeasonalReference:
        return cls(*layers)

    @classmethod
    def unseen(cls, shape: tuple[int, ...]) -> SeasonalReference:
        """A season the baseline never saw: nothing to compare with."""
        nan = np.full(shape, np.nan, dtype="float32")
        zero = np.zeros(shape, dtype="float32")
        return cls(nan, nan, nan, zero, zero)


def seasonal_reference(monthly: Mapping[int, np.ndarray], calendar_month: int,
                       shape: tuple[int, int]) -> SeasonalReference:
    """The reference of ``calendar_month``'s season from the baseline's monthly states
    (calendar month → ``(4, y, x)``)."""
    months = season_months(calendar_month, sorted(monthly))
    return _season_of([_month_part(monthly[m]) for m in months], shape)


def seasonal_references(monthly: Mapping[int, np.ndarray],
                        shape: tuple[int, int]) -> Iterator[SeasonalReference]:
    """:func:`seasonal_reference` of calendar months 1 to 12, in order. Each baseline month
    stands in up to three seasons; what it gives a season (its indices, and the neighbour
    filters of the misregistration allowance, most of the work) is worked out once and kept
    only while a season still to come needs it."""
    seen = sorted(monthly)
    needs = {month: season_months(month, seen) for month in range(1, 13)}
    parts: dict[int, _MonthPart] = {}
    for month in range(1, 13):
        for m in needs[month]:
            if m not in parts:
                parts[m] = _month_part(monthly[m])
        yield _season_of([parts[m] for m in needs[month]], shape)
        later = {m for after in range(month + 1, 13) for m in needs[after]}
        for m in [m for m in parts if m not in later]:
            del parts[m]


@dataclass(frozen=True)
class _MonthPart:
    """What one baseline month gives each season it stands in."""

    land: np.ndarray
    vi: np.ndarray
    mndwi: np.ndarray
    red: np.ndarray
    ndvi_allowance: np.ndarray
    mndwi_allowance: np.ndarray


def _month_part(state: np.ndarray) -> _MonthPart:
    vi, mndwi, water = reference_indices(state)
    land = np.isfinite(vi) & ~water
    # Half the contrast with the land neighbours.
    return _MonthPart(land, vi, mndwi, state[1],
                      _half_contrast(np.where(land, vi, np.nan), lower=True),
                      _half_contrast(np.where(land, mndwi, np.nan), lower=False))


def _season_of(parts: Sequence[_MonthPart], shape: tuple[int, int]) -> SeasonalReference:
    """A season's reference from its months' parts (none: never seen)."""
    if not parts:
        return SeasonalReference.unseen(shape)
    floor = np.full(shape, np.inf, dtype="float32")
    mndwi_ceiling = np.full(shape, -np.inf, dtype="float32")
    red_floor = np.full(shape, np.inf, dtype="float32")
    ndvi_allowance = np.zeros(shape, dtype="float32")
    mndwi_allowance = np.zeros(shape, dtype="float32")
    for part in parts:
        land = part.land
        with np.errstate(invalid="ignore"):
            greener = land & (part.vi < floor)
        floor = np.where(greener, part.vi, floor)
        mndwi_ceiling = np.where(land, np.fmax(mndwi_ceiling, part.mndwi), mndwi_ceiling)
        red_floor = np.where(land, np.fmin(red_floor, part.red), red_floor)
        ndvi_allowance = np.fmax(ndvi_allowance, part.ndvi_allowance)
        mndwi_allowance = np.fmax(mndwi_allowance, part.mndwi_allowance)
    nan = np.float32(np.nan)
    return SeasonalReference(
        ndvi_floor=np.where(np.isfinite(floor), floor, nan),
        mndwi_ceiling=np.where(np.isfinite(mndwi_ceiling), mndwi_ceiling, nan),
        red_floor=np.where(np.isfinite(red_floor), red_floor, nan),
        ndvi_allowance=ndvi_allowance, mndwi_allowance=mndwi_allowance)


def _half_contrast(values: np.ndarray, lower: bool) -> np.ndarray:
    """Half of how far a neighbour (8-connected) lies below (``lower``) or above each pixel."""
    fill = np.inf if lower else -np.inf
    filled = np.where(np.isfinite(values), values, fill).astype("float32")
    with np.errstate(invalid="ignore"):  # inf - inf where a pixel and its neighbours are unseen
        if lower:
            gap = filled - ndimage.minimum_filter(filled, size=3, mode="nearest")
        else:
            gap = ndimage.maximum_filter(filled, size=3, mode="nearest") - filled
        return np.where(np.isfinite(gap) & (gap > 0), 0.5 * gap, 0).astype("float32")


def dug_share(observed_ndvi: np.ndarray, own_ndvi: np.ndarray | np.floating | float,
              params: DetectionConfig) -> np.ndarray:
    """Share of each pixel dug: its NDVI unmixed between its own vegetation state
    (``own_ndvi``: the season's least-green land NDVI, or the site's typical land) and worked
    ground's (``worked_ndvi``); clipped to 0..1, NaN where either is unknown or where they
    differ by less than :data:`MIN_CONTRAST` (a pixel already as bare as worked ground says
    nothing).

    NDVI mixes almost linearly between two covers of similar brightness, and worked ground's
    NDVI (spoil, wet gravel, turbid water: about 0-0.1) varies far less between places than its
    brightness or its SWIR, which depend on how wet and how red the spoil is.
    """
    contrast = own_ndvi - params.worked_ndvi
    with np.errstate(invalid="ignore", divide="ignore"):
        share = (own_ndvi - observed_ndvi) / contrast
        share = np.where(contrast >= MIN_CONTRAST, share, np.nan)
    return np.clip(share, 0.0, 1.0).astype("float32")


#: Smallest NDVI contrast between a pixel's own state and worked ground for its dug share to
#: mean anything.
MIN_CONTRAST = 0.1
