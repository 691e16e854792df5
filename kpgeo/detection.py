"""Digging from reflectance: the baseline, pre-existing digging, and new digging with confirmation.

The method (SPEC §7), in the terms of the USGS indicators of active digging (bright bare soil, no
vegetation, turbid water in pits; ``notes/domain.md`` §1.4):

1. **Baseline.** From the monthly composites of the baseline's valid months, per pixel: the
   least-green *land* state (minimum NDVI over months where MNDWI < 0), the greenest state
   (maximum NDVI), the wettest state (maximum MNDWI), and the end state (median of the last
   ``end_months`` composites). Taking the least-green land state as the reference makes the
   savanna's dry season and dry-season fields (bare then, too) normal, and keeps floodplains
   that were under water in the rains comparable with their dry-season ground.
2. **Pre-existing digging** at the baseline's end: ground that is bare and bright at the end
   (NDVI and red thresholds), or was never green during the whole baseline and is bright, or
   holds turbid water; closed by one pixel and with holes filled (pits inside workings), plus
   small water bodies (pits, up to ``pond_max_ha``) wherever they are.
3. **New digging**, per *scene* observation after the baseline, not per monthly median, so that
   a pixel can be confirmed within the month it was dug: an observation is evidence when NDVI
   falls ``ndvi_drop`` below the least-green land state to bare levels and the ground is bright
   (burn scars are dark, so they never count), or when turbid water appears farther than
   ``water_buffer_m`` from any baseline water (seasonal floods spread from rivers). Observations
   whose blue is nearly as high as red are thin cloud or haze that SCL missed: they count as
   not observed.
4. **Confirmation.** A pixel's first evidence makes it a candidate (``first_detected``); the
   next valid observation confirms it if it repeats the evidence (``confirmed``), else clears
   it. A one-off artefact therefore never confirms. Confirmed pixels stay confirmed: digging
   is counted once, when it happens. The state is two YYYYMM integers per pixel, carried from
   month to month; a month without valid observations leaves it untouched.
"""

from __future__ import annotations

import warnings
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .config import DetectionConfig
from .indices import mndwi, ndti, ndvi
from .months import Month

#: Evidence codes of one observation of one pixel.
UNOBSERVED, NO_EVIDENCE, EVIDENCE = -1, 0, 1
#: Bands of ``baseline.tif``.
BASELINE_BANDS = ("land_ndvi_min", "ndvi_max", "mndwi_max", "ndvi_end", "mndwi_end",
                  "ndti_end", "red_end", "preexisting")
#: 8-connectivity: diagonal neighbours belong to one digging area.
EIGHT = np.ones((3, 3), dtype=bool)


def month_label(month: Month | str) -> int:
    """``2024-03`` → ``202403``, the form month state is stored in."""
    return int(str(month)[:7].replace("-", ""))


def label_month(label: int) -> str | None:
    """``202403`` → ``"2024-03"``; 0 → None."""
    label = int(label)
    return f"{label // 100:04d}-{label % 100:02d}" if label > 0 else None


@dataclass(frozen=True)
class Baseline:
    """Per-pixel reference states of a site's baseline, on the site grid."""

    land_ndvi_min: np.ndarray
    ndvi_max: np.ndarray
    mndwi_max: np.ndarray
    ndvi_end: np.ndarray
    mndwi_end: np.ndarray
    ndti_end: np.ndarray
    red_end: np.ndarray
    preexisting: np.ndarray
    """Boolean: digging at the baseline's end."""

    def stack(self) -> np.ndarray:
        """``(band, y, x)`` float32 in the order of :data:`BASELINE_BANDS`."""
        return np.stack([getattr(self, b).astype("float32") for b in BASELINE_BANDS])

    @classmethod
    def from_stack(cls, stack: np.ndarray) -> Baseline:
        values = {b: stack[i] for i, b in enumerate(BASELINE_BANDS)}
        values["preexisting"] = values["preexisting"] > 0.5
        return cls(**values)

    def far_from_water(self, buffer_m: float, pixel_m: float) -> np.ndarray:
        """Pixels farther than ``buffer_m`` from any water seen in the baseline."""
        wet = self.mndwi_max > 0
        if not wet.any():
            return np.ones(wet.shape, dtype=bool)
        return ndimage.distance_transform_edt(~wet) * pixel_m > buffer_m


def _nanmedian(stack: Sequence[np.ndarray]) -> np.ndarray:
    """Median ignoring NaN; NaN, silently, where every value is NaN."""
    arr = np.stack(stack)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels give NaN, as meant
        return np.nanmedian(arr, axis=0).astype("float32")


def build_baseline(composites: Iterable[Mapping[str, np.ndarray]], params: DetectionConfig,
                   pixel_m: float = 10.0) -> Baseline:
    """Reference states and pre-existing digging from the baseline's valid monthly composites.

    Parameters
    ----------
    composites
        One mapping band name → ``(y, x)`` reflectance per valid baseline month, oldest first.
        Consumed one at a time: memory holds running extremes and the last ``end_months``.
    """
    land_min = ndvi_max = mndwi_max = None
    tail: deque[dict[str, np.ndarray]] = deque(maxlen=params.end_months)
    for composite in composites:
        vi, wi = ndvi(composite), mndwi(composite)
        with np.errstate(invalid="ignore"):
            land = np.where(wi < 0, vi, np.nan).astype("float32")
        # fmin/fmax ignore NaN unless both sides are NaN.
        land_min = land if land_min is None else np.fmin(land_min, land)
        ndvi_max = vi if ndvi_max is None else np.fmax(ndvi_max, vi)
        mndwi_max = wi if mndwi_max is None else np.fmax(mndwi_max, wi)
        tail.append({"ndvi": vi, "mndwi": wi, "ndti": ndti(composite),
                     "red": np.asarray(composite["red"], "float32")})
    if land_min is None or ndvi_max is None or mndwi_max is None:
        raise ValueError("the baseline has no valid month")
    base = dict(
        land_ndvi_min=land_min, ndvi_max=ndvi_max, mndwi_max=mndwi_max,
        ndvi_end=_nanmedian([t["ndvi"] for t in tail]),
        mndwi_end=_nanmedian([t["mndwi"] for t in tail]),
        ndti_end=_nanmedian([t["ndti"] for t in tail]),
        red_end=_nanmedian([t["red"] for t in tail]),
    )
    base["preexisting"] = map_preexisting(**base, params=params, pixel_m=pixel_m)
    return Baseline(**base)


def map_preexisting(*, ndvi_end: np.ndarray, red_end: np.ndarray, mndwi_end: np.ndarray,
                    ndti_end: np.ndarray, ndvi_max: np.ndarray, params: DetectionConfig,
                    pixel_m: float = 10.0, **_: np.ndarray) -> np.ndarray:
    """Digging at the baseline's end (step 2 of the module docstring), as a boolean mask."""
    with np.errstate(invalid="ignore"):
        fresh = (ndvi_end < params.fresh_ndvi_max) & (red_end > params.bright_red_min)
        never_green = ((ndvi_max < params.never_green_ndvi_max)
                       & (ndvi_end < params.never_green_ndvi_max)
                       & (red_end > params.bright_red_min) & (mndwi_end < 0))
        turbid = (mndwi_end > params.water_mndwi_min) & (ndti_end > 0)
        water = mndwi_end > 0
    dug = ndimage.binary_fill_holes(ndimage.binary_closing(fresh | never_green | turbid,
                                                           structure=EIGHT))
    ponds, count = ndimage.label(water, structure=EIGHT)
    if count:
        sizes = ndimage.sum_labels(water, ponds, np.arange(1, count + 1))
        small = np.nonzero(sizes * pixel_m**2 / 1e4 <= params.pond_max_ha)[0] + 1
        dug |= np.isin(ponds, small)
    return remove_small(dug, params.min_area_ha, pixel_m)


def remove_small(mask: np.ndarray, min_area_ha: float, pixel_m: float = 10.0) -> np.ndarray:
    """``mask`` without 8-connected parts smaller than ``min_area_ha``."""
    min_px = int(np.ceil(min_area_ha * 1e4 / pixel_m**2 - 1e-9))
    if min_px <= 1 or not mask.any():
        return mask
    labels, count = ndimage.label(mask, structure=EIGHT)
    sizes = ndimage.sum_labels(mask, labels, np.arange(1, count + 1))
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = sizes >= min_px
    return keep[labels]


def observation_evidence(bands: Mapping[str, np.ndarray], valid: np.ndarray,
                         land_ndvi_min: np.ndarray, far_from_water: np.ndarray,
                         params: DetectionConfig) -> np.ndarray:
    """Evidence of new digging in scene observations (step 3), as int8 codes.

    Parameters
    ----------
    bands
        Reflectance arrays ``(..., y, x)``, e.g. one per scene along a leading time axis.
    valid
        Boolean validity from SCL, same shape.
    land_ndvi_min, far_from_water
        From the :class:`Baseline`, ``(y, x)``.

    Returns
    -------
    numpy.ndarray
        :data:`UNOBSERVED`, :data:`NO_EVIDENCE` or :data:`EVIDENCE` per observation.
    """
    blue = np.asarray(bands["blue"], "float32")
    red = np.asarray(bands["red"], "float32")
    vi, wi, ti = ndvi(bands), mndwi(bands), ndti(bands)
    with np.errstate(invalid="ignore"):
        hazy = (blue > params.haze_blue_red_max * red) & (blue > 0.12)
        observed = valid & np.isfinite(vi) & np.isfinite(wi) & ~hazy
        bare = ((vi < np.minimum(land_ndvi_min - params.ndvi_drop, params.bare_ndvi_max))
                & (red > params.bright_red_min))
        new_water = ((wi > params.water_mndwi_min) & (ti > params.turbid_ndti_min)
                     & far_from_water)
    code = np.where(bare | new_water, EVIDENCE, NO_EVIDENCE).astype("int8")
    return np.where(observed, code, UNOBSERVED).astype("int8")


@dataclass(frozen=True)
class DetectionState:
    """Per-pixel state carried from month to month: YYYYMM integers, 0 = not yet."""

    first_detected: np.ndarray
    confirmed: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> DetectionState:
        return cls(np.zeros(shape, "int32"), np.zeros(shape, "int32"))

    @property
    def candidate(self) -> np.ndarray:
        """Detected once, waiting for a later observation to repeat it."""
        return (self.first_detected > 0) & (self.confirmed == 0)

    def advance(self, evidence: np.ndarray, month: Month | str,
                exclude: np.ndarray | None = None) -> DetectionState:
        """The state after the observations ``evidence`` ``(time, y, x)`` of ``month``.

        ``exclude`` marks pixels not eligible (pre-existing digging). Returns a new state.
        """
        label = month_label(month)
        first = self.first_detected.copy()
        confirmed = self.confirmed.copy()
        for codes in evidence:  # oldest observation first
            observed = (codes != UNOBSERVED) & (confirmed == 0)
            if exclude is not None:
                observed &= ~exclude
            hit = codes == EVIDENCE
            waiting = first > 0
            confirmed[observed & hit & waiting] = label
            first[observed & ~hit & waiting] = 0
            first[observed & hit & ~waiting] = label
        return DetectionState(first, confirmed)


def digging_signal(bands: Mapping[str, np.ndarray], params: DetectionConfig) -> tuple[
        np.ndarray, np.ndarray]:
    """Bare bright ground and open water in a composite: ``(fresh, water)`` masks.

    Inside digging areas, ``fresh | turbid water`` is taken as "worked this month" (active) and
    ``water`` as pit water.
    """
    vi, wi, ti = ndvi(bands), mndwi(bands), ndti(bands)
    red = np.asarray(bands["red"], "float32")
    with np.errstate(invalid="ignore"):
        water = wi > 0
        fresh = ((vi < params.bare_ndvi_max) & (red > params.bright_red_min)) | (
            (wi > params.water_mndwi_min) & (ti > 0))
    return fresh, water
