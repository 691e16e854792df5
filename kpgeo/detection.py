"""Digging from reflectance: the baseline, pre-existing digging, and new digging with confirmation.

The method (SPEC §7), in the terms of the USGS indicators of active digging (bright bare soil, no
vegetation, turbid water in pits; ``notes/domain.md`` §1.4). Open water is MNDWI > 0 or NDWI > 0:
NDWI's 10 m bands see pits that MNDWI's 20 m SWIR band blurs into the gravel around them.

1. **Baseline.** From the composites of the baseline's valid months, per pixel: the least-green
   *land* state (minimum NDVI over months without open water), the same over the dry months
   before the rains, the greenest land state at the peak of the green season (months whose
   site-wide median NDVI reaches ``green_season_ndvi`` and lies within ``green_peak_margin`` of
   the highest), the wettest state, the calendar months it was water and land, and the end state
   (its last observation). The least-green land state as reference makes the savanna's dry
   season and dry-season fields (bare then, too) normal, and keeps floodplains that were under
   water in the rains comparable with their dry ground.
2. **Pre-existing digging** at the baseline's end: bright ground bare at the end, unless it was
   as bare in the dry months before the rains and green at the peak (a field); ground seen as
   bright gravel, barer than any field, in ``gravel_min_months`` baseline months, even if it has
   begun to regrow; bright ground never green at the peak (only where the peak was seen); turbid water; small water bodies
   (pits, up to ``pond_max_ha``). Gaps up to ``cluster_gap_m`` are closed and holes filled.
3. **New digging**, per *scene* observation after the baseline, not per monthly median, so that
   a pixel can be confirmed within the month it was dug: an observation is evidence when NDVI
   falls ``ndvi_drop`` below the least-green land state to bare levels on bright dry ground
   (burn scars and shadows are dark, so they never count), or when turbid water appears where
   the baseline saw land in the same season (the calendar month and those either side), or,
   where the baseline did not see the pixel then, farther than ``water_buffer_m`` from any
   baseline water (floods spread from rivers; floodplain pits are dug in the dry season's land).
   Observations whose blue is nearly as high as red are thin cloud or haze that SCL missed:
   they count as not observed.
4. **Confirmation.** A pixel's first evidence makes it a candidate (``first_detected``); the
   next valid observation confirms it if it repeats the evidence (``confirmed``), else clears
   it. A one-off artefact therefore never confirms. Confirmed pixels stay confirmed: digging
   is counted once, when it happens. The state is YYYYMM integers per pixel, carried from
   month to month; a month without valid observations leaves it untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .config import DetectionConfig
from .indices import mndwi, ndti, ndvi, ndwi
from .months import Month

#: Evidence codes of one observation of one pixel.
UNOBSERVED, NO_EVIDENCE, EVIDENCE = -1, 0, 1
#: Bands of ``baseline.tif``.
BASELINE_BANDS = ("land_ndvi_min", "dry_land_ndvi_min", "gravel_months", "green_ndvi_max",
                  "water_max", "ndvi_end", "water_end", "ndti_end", "red_end", "water_months",
                  "land_months", "preexisting")
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
    dry_land_ndvi_min: np.ndarray
    """Least-green land NDVI in the dry months before the rains: how bare the fields lay."""
    gravel_months: np.ndarray
    """Baseline months in which the pixel was bright ground barer than any field."""
    green_ndvi_max: np.ndarray
    """NaN where the green season was never observed."""
    water_max: np.ndarray
    ndvi_end: np.ndarray
    water_end: np.ndarray
    ndti_end: np.ndarray
    red_end: np.ndarray
    water_months: np.ndarray
    """Bit ``m - 1`` set where the pixel was open water in calendar month ``m`` of the baseline."""
    land_months: np.ndarray
    """Bit ``m - 1`` set where the pixel was seen as land in calendar month ``m``."""
    preexisting: np.ndarray
    """Boolean: digging at the baseline's end."""

    def stack(self) -> np.ndarray:
        """``(band, y, x)`` float32 in the order of :data:`BASELINE_BANDS`."""
        return np.stack([getattr(self, b).astype("float32") for b in BASELINE_BANDS])

    @classmethod
    def from_stack(cls, stack: np.ndarray) -> Baseline:
        values = {b: stack[i] for i, b in enumerate(BASELINE_BANDS)}
        values["preexisting"] = values["preexisting"] > 0.5
        for name in ("water_months", "land_months", "gravel_months"):
            values[name] = values[name].astype("int32")
        return cls(**values)

    def new_water_possible(self, calendar_month: int, buffer_m: float,
                           pixel_m: float) -> np.ndarray:
        """Where new water in ``calendar_month`` can be a pit rather than a flood.

        Where the baseline saw the pixel as land in that month and the months either side, and
        never as water then, water now is new. Where the baseline did not see the pixel then,
        only water farther than ``buffer_m`` from any baseline water counts, as floods spread
        from rivers.
        """
        window = 0
        for m in (calendar_month - 1, calendar_month, calendar_month + 1):
            window |= 1 << ((m - 1) % 12)
        # The months are 12-bit masks: int32 as they are (widening them to int64 took
        # half the time of the whole step).
        window_bits = np.int32(window)
        water = np.asarray(self.water_months).astype("int32", copy=False)
        land = np.asarray(self.land_months).astype("int32", copy=False)
        flooded_then = (water & window_bits) != 0
        land_then = (land & window_bits) == window_bits
        return ~flooded_then & (land_then | self.far_from_water(buffer_m, pixel_m))

    def far_from_water(self, buffer_m: float, pixel_m: float) -> np.ndarray:
        """Pixels farther than ``buffer_m`` from any water seen in the baseline (computed once
        per baseline: every month asks)."""
        cache = self.__dict__.setdefault("_far_from_water", {})  # frozen: no setattr
        key = (buffer_m, pixel_m)
        if key not in cache:
            wet = self.water_max > 0
            far = (np.ones(wet.shape, dtype=bool) if not wet.any()
                   else ndimage.distance_transform_edt(~wet) * pixel_m > buffer_m)
            far.setflags(write=False)  # every month shares it
            cache[key] = far
        return cache[key]


def build_baseline(composites: Iterable[Mapping[str, np.ndarray]], params: DetectionConfig,
                   pixel_m: float = 10.0, months: Sequence[int] | None = None) -> Baseline:
    """Reference states and pre-existing digging from the baseline's valid monthly composites.

    Parameters
    ----------
    composites
        One mapping band name → ``(y, x)`` reflectance per valid baseline month, oldest first.
        Consumed one at a time: memory holds running extremes, the end state and the green
        season's NDVI.
    months
        Calendar month (1-12) of each composite, for the per-month water and land record;
        without it new water is judged by distance from baseline water alone.
    """
    calendar = iter(months) if months is not None else None
    state: dict[str, np.ndarray] = {}
    green: list[tuple[float, np.ndarray]] = []  # (site median NDVI, land NDVI) of green months
    rains_seen = False
    for composite in composites:
        vi, wi, ti = ndvi(composite), water_index(composite), ndti(composite)
        red = np.asarray(composite["red"], "float32")
        with np.errstate(invalid="ignore"):
            land = np.where(wi < 0, vi, np.nan).astype("float32")
        if not state:
            nan = np.full(vi.shape, np.nan, dtype="float32")
            state = {name: nan for name in ("land_ndvi_min", "dry_land_ndvi_min", "water_max",
                                            "ndvi_end", "water_end", "ndti_end", "red_end")}
            state["water_months"] = np.zeros(vi.shape, dtype="int32")
            state["gravel_months"] = np.zeros(vi.shape, dtype="int32")
            state["land_months"] = np.zeros(vi.shape, dtype="int32")
        if calendar is not None:
            bit = np.int32(1 << (next(calendar) - 1))
            with np.errstate(invalid="ignore"):
                state["water_months"][wi > 0] |= bit
                state["land_months"][wi < 0] |= bit
        with np.errstate(invalid="ignore"):
            state["gravel_months"] += ((land < params.gravel_ndvi_max)
                                       & (red > params.bright_red_min)
                                       & ~hazy(composite, params)).astype("int32")
        # fmin/fmax ignore NaN unless both sides are NaN.
        state["land_ndvi_min"] = np.fmin(state["land_ndvi_min"], land)
        state["water_max"] = np.fmax(state["water_max"], wi)
        median = _site_median(vi)
        if median >= params.green_season_ndvi:
            rains_seen = True
            green.append((median, land))  # a flooded pixel is not "not green"
        elif not rains_seen:  # the dry season before the rains, when fields lie bare
            state["dry_land_ndvi_min"] = np.fmin(state["dry_land_ndvi_min"], land)
        # The end state is each pixel's last observation: a cloudy last month leaves gaps.
        seen = np.isfinite(vi)
        for name, value in (("ndvi_end", vi), ("water_end", wi), ("ndti_end", ti),
                            ("red_end", red)):
            state[name] = np.where(seen, value, state[name]).astype("float32")
    if not state:
        raise ValueError("the baseline has no valid month")
    state["green_ndvi_max"] = _peak_green(green, params, np.full_like(state["ndvi_end"], np.nan))
    state["preexisting"] = map_preexisting(**state, params=params, pixel_m=pixel_m)
    return Baseline(**state)


def _peak_green(green: list[tuple[float, np.ndarray]], params: DetectionConfig,
                nan: np.ndarray) -> np.ndarray:
    """Greenest land NDVI of each pixel over the months of the season's peak (site median NDVI
    within ``green_peak_margin`` of the highest); NaN where the pixel was not seen as land then.

    Only the peak: fields are half green at the season's edges, and a field seen only then
    would pass for ground that never greens.
    """
    out = nan
    if green:
        peak = max(m for m, _ in green)
        for median, vi in green:
            if median >= peak - params.green_peak_margin:
                out = np.fmax(out, vi)
    return out


def hazy(bands: Mapping[str, np.ndarray], params: DetectionConfig) -> np.ndarray:
    """Thin cloud or haze that SCL missed: blue nearly as high as red, and bright."""
    blue = np.asarray(bands["blue"], "float32")
    red = np.asarray(bands["red"], "float32")
    with np.errstate(invalid="ignore"):
        return (blue > params.haze_blue_red_max * red) & (blue > params.haze_blue_min)


def water_index(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Open water where positive: the larger of MNDWI and NDWI (NaN only if both are)."""
    return water_of(mndwi(bands), ndwi(bands))


def water_of(mndwi_values: np.ndarray, ndwi_values: np.ndarray) -> np.ndarray:
    """:func:`water_index` of MNDWI and NDWI already computed."""
    return np.fmax(mndwi_values, ndwi_values)


def _site_median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else float("nan")


def map_preexisting(*, ndvi_end: np.ndarray, red_end: np.ndarray, water_end: np.ndarray,
                    ndti_end: np.ndarray, green_ndvi_max: np.ndarray,
                    dry_land_ndvi_min: np.ndarray, gravel_months: np.ndarray,
                    params: DetectionConfig,
                    pixel_m: float = 10.0, **_: np.ndarray) -> np.ndarray:
    """Digging at the baseline's end (step 2 of the module docstring), as a boolean mask."""
    with np.errstate(invalid="ignore"):
        # NaN (green season never seen) compares False: no pixel is "never green" then.
        never_green = ((green_ndvi_max < params.never_green_ndvi_max)
                       & (ndvi_end < params.never_green_ndvi_max)
                       & (red_end > params.bright_red_min) & (water_end < 0))
        # A field is bare at the end too, but it was as bare earlier in the dry season and green
        # in the rains: that is a season, not digging. (Unseen peak: NaN, not seasonal.)
        seasonal = ((dry_land_ndvi_min < params.fresh_ndvi_max + params.seasonal_margin)
                    & (green_ndvi_max >= params.never_green_ndvi_max))
        fresh = ((ndvi_end < params.fresh_ndvi_max) & (red_end > params.bright_red_min)
                 & ~seasonal)
        turbid = (water_end > params.water_index_min) & (ndti_end > params.pit_ndti_min)
        water = water_end > 0
    # Gravel seen in the baseline is digging even where it has begun to regrow since.
    worked = gravel_months >= params.gravel_min_months
    dug = fresh | never_green | turbid | worked
    ponds, count = ndimage.label(water, structure=EIGHT)
    if count:
        sizes = np.bincount(ponds.ravel(), minlength=count + 1)[1:]
        small = np.nonzero(sizes * pixel_m**2 / 1e4 <= params.pond_max_ha)[0] + 1
        dug |= np.isin(ponds, small)
    # Pits and spoil of one working lie a few pixels apart: close gaps up to
    # ``cluster_gap_m`` so they form one worked area, and fill the holes inside.
    gap_px = int(round(params.cluster_gap_m / pixel_m / 2))
    if gap_px > 0:
        # Padded so that the closing's erosion does not eat workings on the grid's edge.
        padded = np.pad(dug, gap_px, mode="edge")
        closed = ndimage.binary_closing(padded, structure=EIGHT, iterations=gap_px)
        dug = closed[gap_px:-gap_px, gap_px:-gap_px]
    dug = ndimage.binary_fill_holes(dug)
    return remove_small(dug, params.min_area_ha, pixel_m)


def remove_small(mask: np.ndarray, min_area_ha: float, pixel_m: float = 10.0) -> np.ndarray:
    """``mask`` without 8-connected parts smaller than ``min_area_ha``."""
    min_px = int(np.ceil(min_area_ha * 1e4 / pixel_m**2 - 1e-9))
    if min_px <= 1 or not mask.any():
        return mask
    labels, count = ndimage.label(mask, structure=EIGHT)
    # Pixels per part: bincount of the labels (scipy's sum_labels took five times as long).
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = sizes >= min_px
    return keep[labels]


def observation_evidence(bands: Mapping[str, np.ndarray], valid: np.ndarray,
                         land_ndvi_min: np.ndarray, new_water_possible: np.ndarray,
                         params: DetectionConfig) -> np.ndarray:
    """Evidence of new digging in scene observations (step 3), as int8 codes.

    Parameters
    ----------
    bands
        Reflectance arrays ``(..., y, x)``, e.g. one per scene along a leading time axis.
    valid
        Boolean validity from SCL, same shape.
    land_ndvi_min, new_water_possible
        From the :class:`Baseline`, ``(y, x)`` (see :meth:`Baseline.new_water_possible`).

    Returns
    -------
    numpy.ndarray
        :data:`UNOBSERVED`, :data:`NO_EVIDENCE` or :data:`EVIDENCE` per observation.
    """
    red = np.asarray(bands["red"], "float32")
    vi, wi, ti = ndvi(bands), water_index(bands), ndti(bands)
    with np.errstate(invalid="ignore"):
        observed = valid & np.isfinite(vi) & np.isfinite(wi) & ~hazy(bands, params)
        # Water is judged by the water test alone (turbid water is bright in red, too).
        bare = ((vi < np.minimum(land_ndvi_min - params.ndvi_drop, params.bare_ndvi_max))
                & (red > params.bright_red_min) & (wi < 0))
        new_water = ((wi > params.water_index_min) & (ti > params.turbid_ndti_min)
                     & new_water_possible)
    code = np.where(bare | new_water, EVIDENCE, NO_EVIDENCE).astype("int8")
    return np.where(observed, code, UNOBSERVED).astype("int8")


@dataclass(frozen=True)
class DetectionState:
    """Per-pixel state carried from month to month: YYYYMM integers, 0 = not yet."""

    first_detected: np.ndarray
    confirmed: np.ndarray
    mapped_since: np.ndarray | None = None
    """Month the pixel first belonged to a mapped area (at the mapping unit); polygon ids
    are seeded from it, so an area keeps its id when unmapped pixels join it."""

    def __post_init__(self) -> None:
        if self.mapped_since is None:
            object.__setattr__(self, "mapped_since", np.zeros_like(self.confirmed))

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> DetectionState:
        return cls(np.zeros(shape, "int32"), np.zeros(shape, "int32"), np.zeros(shape, "int32"))

    @property
    def candidate(self) -> np.ndarray:
        """Detected once, waiting for a later observation to repeat it."""
        return (self.first_detected > 0) & (self.confirmed == 0)

    def advance(self, evidence: np.ndarray, month: Month | str,
                exclude: np.ndarray | None = None) -> DetectionState:
        """The state after the observations ``evidence`` ``(time, y, x)`` of ``month``.

        ``exclude`` marks pixels not eligible (pre-existing digging). Returns a new state.
        """
        label = np.int32(month_label(month))
        first = self.first_detected.copy()
        confirmed = self.confirmed.copy()
        eligible = None if exclude is None else ~exclude
        for codes in evidence:  # oldest observation first
            observed = (codes != UNOBSERVED) & (confirmed == 0)
            if eligible is not None:
                observed &= eligible
            hit = codes == EVIDENCE
            waiting = first > 0
            # copyto, not first[mask] = ...: boolean indexing is several times slower
            np.copyto(confirmed, label, where=observed & hit & waiting)
            np.copyto(first, 0, where=observed & ~hit & waiting)
            np.copyto(first, label, where=observed & hit & ~waiting)
        return DetectionState(first, confirmed, self.mapped_since)

    def mapped(self, mask: np.ndarray, month: Month | str) -> DetectionState:
        """The state with ``mask`` (this month's mapped new digging) recorded in
        :attr:`mapped_since`."""
        assert self.mapped_since is not None
        since = np.where(mask & (self.mapped_since == 0), month_label(month), self.mapped_since)
        return DetectionState(self.first_detected, self.confirmed, since.astype("int32"))


def digging_signal(bands: Mapping[str, np.ndarray], params: DetectionConfig,
                   indices: Mapping[str, np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Bare bright ground and open water in a composite: ``(fresh, water)`` masks.

    Inside digging areas, ``fresh | turbid water`` is taken as "worked this month" (active) and
    ``water`` as pit water. ``indices``: the composite's NDVI, MNDWI, NDWI and NDTI when
    already computed (:func:`~kpgeo.indices.compute_indices`).
    """
    if indices is None:
        vi, wi, ti = ndvi(bands), water_index(bands), ndti(bands)
    else:
        vi, ti = indices["ndvi"], indices["ndti"]
        wi = water_of(indices["mndwi"], indices["ndwi"])
    red = np.asarray(bands["red"], "float32")
    with np.errstate(invalid="ignore"):
        water = wi > 0
        fresh = ((vi < params.bare_ndvi_max) & (red > params.bright_red_min)) | (
            (wi > params.water_index_min) & (ti > params.pit_ndti_min))
    return fresh, water
