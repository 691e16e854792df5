"""Digging from reflectance: the baseline, pre-existing digging, and new digging with confirmation.

In the terms of the USGS indicators of active digging (bare soil, no vegetation, turbid water in
pits), judged the way real ground allows: a 10 m pixel of a working is a mix of pits, spoil,
turbid water and the grass left between them, rarely bare, so each pixel is compared with its
own history in the same season rather than with fixed levels (:mod:`kpgeo.methods.reference`). Open
water is MNDWI > 0 or NDWI > 0: NDWI's 10 m bands see pits that MNDWI's 20 m SWIR band blurs.

1. **Baseline.** From the composites of the baseline's valid months, per pixel: its state in
   each calendar month (green, red, NIR, SWIR; the least-green one where a calendar month comes
   twice), the least-green land NDVI of the year, the wettest state, the calendar months it was
   water and land, the end state of its water, and its dug share against the site's typical land
   of each month (whether it was dug, surely dug or clearly undug then).
2. **Pre-existing digging** at the baseline's end: ground whose dug share against the site's
   typical land was at least ``preexisting_share_min`` in every month it was seen as land since
   it was first dug (at least ``preexisting_min_months`` of them), never broken by an undug
   month: fields are bare in the dry season but green up in the rains, workings do not
   (:func:`worked_at_end`). Ground under water in some baseline month and land in another is
   riverbed (bars in the dry season, flooded in the rains), not digging, unless the baseline saw
   it undug before it was dug (a working whose pits fill in the rains). Turbid water at the end
   and small water bodies (pits, up to ``pond_max_ha``) are digging. Strips narrower than three
   pixels (tracks) are taken out, gaps up to ``cluster_gap_m`` closed and holes filled. Ground
   dug within the baseline never counts as new digging (:attr:`Baseline.dug_at_end`).
3. **New digging**, per *scene* observation after the baseline, not per monthly median, so that
   a pixel can be confirmed within the month it was dug. Against the pixel's reference of the
   month's season: NDVI ``ndvi_drop`` below its least-green land state there, or
   ``wet_ndvi_drop`` below while MNDWI rises ``wet_mndwi_rise`` above its wettest land state
   (worked ground is wet), each beyond what misregistration alone can do at that pixel, and not
   darker in red than its darkest state (burn scars and shadows are dark; spoil is not); or new
   turbid water where the baseline saw land in the same season (the calendar month and those
   either side), or, where it did not see the pixel then, farther than ``water_buffer_m`` from
   any baseline water (floods spread from rivers). Observations whose blue is nearly as high as
   red are thin cloud or haze that SCL missed: they count as not observed. Where the baseline
   saw no month near the season (long rains), the nearest months it saw stand in.
4. **Confirmation.** A pixel's first evidence makes it a candidate (``first_detected``); the
   next valid observation confirms it if it repeats the evidence (``confirmed``), else clears
   it. A one-off artefact (a cloud edge, a misregistered scene) therefore never confirms.
   Confirmed pixels stay confirmed: digging is counted once, when it happens. Digging begun in
   months without a clear view is found in the first clear month and dated to it. The state is
   YYYYMM integers per pixel, carried from month to month; a month without valid observations
   leaves it untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from ..config import DetectionConfig
from ..months import Month
from .baseline_seasons import seasons_seen
from .indices import mndwi, ndti, ndvi, ndwi
from .reference import (
    REFERENCE_BANDS,
    REFERENCE_LAYERS,
    SeasonalReference,
    dug_share,
    seasonal_reference,
    seasonal_references,
)

#: Evidence codes of one observation of one pixel.
UNOBSERVED, NO_EVIDENCE, EVIDENCE = -1, 0, 1
#: Per-pixel bands of ``baseline.tif`` besides the monthly states (``<band>_<MM>``).
BASELINE_BANDS = ("land_ndvi_min", "water_max", "water_end", "ndti_end", "water_months",
                  "land_months", "share_end", "worked", "preexisting")
#: 8-connectivity: diagonal neighbours belong to one digging area.
EIGHT = np.ones((3, 3), dtype=bool)
#: Pre-existing digging areas are at least this many pixels wide (tracks are narrower).
MIN_WIDTH_PX = 3


def month_label(month: Month | str) -> int:
    """``2024-03`` → ``202403``, the form month state is stored in."""
    return int(str(month)[:7].replace("-", ""))


def label_month(label: int) -> str | None:
    """``202403`` → ``"2024-03"``; 0 → None."""
    label = int(label)
    return f"{label // 100:04d}-{label % 100:02d}" if label > 0 else None


#: Bands of the stored baseline (``baseline.tif``) besides each calendar month's reference.
STORED_BANDS = ("land_ndvi_min", "preexisting", "worked", "pit_water_months",
                "baseline_seasons")


def reference_band_name(layer: str, calendar_month: int) -> str:
    """Band description of a season's reference layer in ``baseline.tif``:
    ``ndvi_floor_08``."""
    return f"{layer}_{calendar_month:02d}"


def monthly_band_name(band: str, calendar_month: int) -> str:
    """Band description of a monthly state in ``baseline.tif``: ``red_08``."""
    return f"{band}_{calendar_month:02d}"


@dataclass(frozen=True)
class Baseline:
    """Per-pixel reference states of a site's baseline, on the site grid."""

    land_ndvi_min: np.ndarray
    """Least-green land NDVI of the baseline: the change score's reference where a season was
    never seen."""
    water_max: np.ndarray
    water_end: np.ndarray
    ndti_end: np.ndarray
    water_months: np.ndarray
    """Bit ``m - 1`` set where the pixel was open water in calendar month ``m`` of the baseline."""
    land_months: np.ndarray
    """Bit ``m - 1`` set where the pixel was seen as land in calendar month ``m``."""
    share_end: np.ndarray
    """Dug share against the site's typical land in the last month seen as land."""
    worked: np.ndarray
    """Worked ground at the baseline's end: :data:`NOT_WORKED`, :data:`WORKED` or
    :data:`WORKED_SINCE_SEEN_UNDUG` (see :func:`worked_at_end`)."""
    preexisting: np.ndarray
    """Boolean: digging at the baseline's end."""
    monthly: dict[int, np.ndarray] = field(default_factory=dict)
    """Calendar month → the pixel's state ``(4, y, x)`` in :data:`REFERENCE_BANDS`."""

    def stack(self) -> tuple[np.ndarray, list[str]]:
        """``(band, y, x)`` float32 and the band descriptions, for ``baseline.tif``."""
        names = list(BASELINE_BANDS)
        layers = [getattr(self, b).astype("float32") for b in BASELINE_BANDS]
        for month in sorted(self.monthly):
            for i, band in enumerate(REFERENCE_BANDS):
                names.append(monthly_band_name(band, month))
                layers.append(self.monthly[month][i].astype("float32"))
        return np.stack(layers), names

    def stored(self, buffer_m: float, pixel_m: float,
               ) -> tuple[list[str], Iterator[np.ndarray]]:
        """The stored form (``baseline.tif``): what each month after the baseline needs, so
        that a chunk reads it without looking beyond its edges: :data:`STORED_BANDS` (bit
        ``m - 1`` of ``pit_water_months`` set where new water in calendar month ``m`` can be a
        pit, :meth:`new_water_possible`) and each calendar month's reference layers
        (:meth:`reference`), and :attr:`seasons` (``baseline_seasons``: how sure the
        pre-existing map is, :mod:`~.baseline_seasons`). Band names, and the bands as float32
        one at a time."""
        names = [*STORED_BANDS, *(reference_band_name(layer, month)
                                  for month in range(1, 13) for layer in REFERENCE_LAYERS)]

        def layers() -> Iterator[np.ndarray]:
            yield self.land_ndvi_min.astype("float32")
            yield self.preexisting.astype("float32")
            yield self.worked.astype("float32")
            bits = np.zeros(self.land_ndvi_min.shape, dtype="int32")
            for month in range(1, 13):
                possible = self.new_water_possible(month, buffer_m, pixel_m)
                bits |= possible.astype("int32") << (month - 1)
            yield bits.astype("float32")  # 12 bits: exact in float32
            yield self.seasons.astype("float32")
            # Not kept: twelve seasons of a large site are GBs.
            for reference in seasonal_references(self.monthly, self.land_ndvi_min.shape):
                yield from reference.layers()

        return names, layers()

    @classmethod
    def from_stack(cls, stack: np.ndarray, names: Sequence[str]) -> Baseline:
        values = dict(zip(names, stack, strict=True))
        fixed = {b: values[b] for b in BASELINE_BANDS}
        fixed["preexisting"] = fixed["preexisting"] > 0.5
        fixed["worked"] = np.rint(np.nan_to_num(fixed["worked"])).astype("int8")
        for name in ("water_months", "land_months"):
            fixed[name] = fixed[name].astype("int32")
        monthly = {}
        for month in range(1, 13):
            keys = [monthly_band_name(b, month) for b in REFERENCE_BANDS]
            if all(k in values for k in keys):
                monthly[month] = np.stack([values[k] for k in keys])
        return cls(**fixed, monthly=monthly)

    @property
    def seasons(self) -> np.ndarray:
        """Per pixel, the seasons the baseline saw it in (:mod:`~.baseline_seasons`)."""
        return seasons_seen(self.land_months, self.water_months)

    @property
    def dug_at_end(self) -> np.ndarray:
        """Boolean: ground dug by the baseline's end, which cannot become new digging: the
        pre-existing map, and ground seen undug and then dug within the baseline even where
        the map leaves it out (a narrow strip, a lone pixel): its seasonal reference predates
        the digging, so against it the ground would look newly dug."""
        dug: np.ndarray = self.preexisting | (self.worked == WORKED_SINCE_SEEN_UNDUG)
        return dug

    def reference(self, calendar_month: int) -> SeasonalReference:
        """The reference of ``calendar_month``'s season (computed once per baseline and
        month: every chunk of the month asks)."""
        cache = self.__dict__.setdefault("_references", {})  # frozen: no setattr
        if calendar_month not in cache:
            cache[calendar_month] = seasonal_reference(self.monthly, calendar_month,
                                                       self.land_ndvi_min.shape)
        reference: SeasonalReference = cache[calendar_month]
        return reference

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
        Consumed one at a time: memory holds running extremes, the end state and one state per
        calendar month.
    months
        Calendar month (1-12) of each composite, for the per-month states and the water and
        land record; without it new digging is judged against the year's least-green state.
    """
    state, monthly = baseline_states(composites, params, months)
    state["preexisting"] = map_preexisting(**state, params=params, pixel_m=pixel_m)
    return Baseline(**state, monthly=monthly)


def clear_land(composite: Mapping[str, np.ndarray], vi: np.ndarray, wi: np.ndarray,
               params: DetectionConfig) -> np.ndarray:
    """Land seen clearly in a composite (not water, not hazy): the pixels whose median NDVI
    is the site's typical land of the month."""
    with np.errstate(invalid="ignore"):
        land = np.isfinite(vi) & (wi < 0)
    result: np.ndarray = land & ~hazy(composite, params)
    return result


def baseline_states(composites: Iterable[Mapping[str, np.ndarray]], params: DetectionConfig,
                    months: Sequence[int] | None = None,
                    typicals: Sequence[float | None] | None = None,
                    ) -> tuple[dict[str, np.ndarray], dict[int, np.ndarray]]:
    """The per-pixel states of :class:`Baseline` (all but ``preexisting``) and the monthly
    states, from the composites (see :func:`build_baseline`).

    ``typicals``: per composite, the site's typical land NDVI (the median over
    :func:`clear_land`; None where the site had no clear land), when the composites are a
    part of the site (a chunk); without it, each composite's own median.
    """
    calendar = iter(months) if months is not None else None
    state: dict[str, np.ndarray] = {}
    monthly: dict[int, np.ndarray] = {}
    # Per month: the site's NDVI, and packed bits of the pixels dug, surely dug (see
    # ``preexisting_share_min_unseen``), seen undug and greened with the savanna.
    dug_months: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    site_min = np.inf  # the site's least-green typical land NDVI so far
    for index, composite in enumerate(composites):
        vi, wi, ti = ndvi(composite), water_index(composite), ndti(composite)
        with np.errstate(invalid="ignore"):
            land = np.isfinite(vi) & (wi < 0)
        if not state:
            nan = np.full(vi.shape, np.nan, dtype="float32")
            state = {name: nan for name in ("land_ndvi_min", "water_max", "water_end",
                                            "ndti_end")}
            state["share_end"] = nan
            for name in ("water_months", "land_months"):
                state[name] = np.zeros(vi.shape, dtype="int32")
        observed = np.stack([np.asarray(composite[b], "float32") for b in REFERENCE_BANDS])
        if calendar is not None:
            month = next(calendar)
            bit = np.int32(1 << (month - 1))
            with np.errstate(invalid="ignore"):
                state["water_months"][wi > 0] |= bit
            state["land_months"][land] |= bit
            _keep_least_green(monthly, month, observed, vi)
        # Dug share against the site's typical land this month (hazy observations say little).
        clear = clear_land(composite, vi, wi, params)
        typical: np.floating | None
        if typicals is not None:
            given = typicals[index]
            typical = None if given is None else np.float32(given)
        else:
            typical = np.float32(np.nanmedian(vi[clear])) if clear.any() else None
        if typical is not None:
            share = dug_share(vi, typical, params)
            counted = clear & np.isfinite(share)
            state["share_end"] = np.where(counted, share, state["share_end"])
            with np.errstate(invalid="ignore"):
                dug = counted & (share >= params.preexisting_share_min)
                sure = counted & (share >= params.preexisting_share_min_unseen)
                undug = counted & (share < params.preexisting_undug_share_max)
                # Greened with the savanna since the driest state seen so far: vegetation (a
                # field at the edge of the rains), whatever its share against the site.
                site_rise = typical - site_min
                greened = np.zeros_like(counted)
                if site_rise >= params.green_season_contrast / 2:
                    greened = counted & (vi - state["land_ndvi_min"]
                                         >= params.preexisting_greening_min * site_rise)
                    dug &= ~greened
                    sure &= ~greened
            site_min = min(site_min, float(typical))
            # Packed bits: a baseline of several years keeps a bit per pixel and month.
            dug_months.append((float(typical), np.packbits(dug), np.packbits(sure),
                               np.packbits(undug), np.packbits(greened)))
        # fmin/fmax ignore NaN unless both sides are NaN.
        state["land_ndvi_min"] = np.fmin(state["land_ndvi_min"], np.where(land, vi, np.nan))
        state["water_max"] = np.fmax(state["water_max"], wi)
        # The end state is each pixel's last observation: a cloudy last month leaves gaps.
        seen = np.isfinite(vi)
        for name, value in (("water_end", wi), ("ndti_end", ti)):
            state[name] = np.where(seen, value, state[name]).astype("float32")
    if not state:
        raise ValueError("the baseline has no valid month")
    state["worked"] = worked_at_end(dug_months, state["share_end"].shape, params)
    return state, monthly


def worked_at_end(months: Sequence[tuple[float, np.ndarray, np.ndarray, np.ndarray,
                                         np.ndarray]],
                  shape: tuple[int, ...], params: DetectionConfig) -> np.ndarray:
    """Ground dug (against the site's typical land) in every month it was seen since it was
    first dug, through the baseline's end, for at least ``preexisting_min_months`` months:
    int8 :data:`WORKED`, or :data:`WORKED_SINCE_SEEN_UNDUG` where the baseline saw the pixel
    undug before (the pixel changed within the baseline: no riverbed does).

    ``months``: per baseline month, oldest first, the site's median land NDVI and the packed
    bits of the pixels dug, surely dug, seen undug and greened with the savanna (see
    ``preexisting_greening_min``). A field is dug-looking in the dry season, green in the rains
    and dug-looking again after the harvest: a run of dug months broken by an undug one, or
    dug again after greening with the savanna, does not count. An abandoned working that
    regrows greens too, but does not turn bare again: its run stands. Between undug (share
    below ``preexisting_undug_share_max``) and dug, a month neither makes nor breaks a run
    (haze, weeds in the rains, a misregistered edge), nor does a month the pixel was not seen
    as land.
    Where the baseline never saw the green season, a field cannot be told from a working by
    its run alone: then only a run begun after the pixel was seen undug (digging begun within
    the baseline) or surely dug (``preexisting_share_min_unseen``) in each of its months counts.
    """
    size = int(np.prod(shape))
    run = np.zeros(size, dtype="int32")
    run_sure = np.zeros(size, dtype=bool)  # every dug month of the current run surely dug
    dug_before = np.zeros(size, dtype=bool)  # dug in some month before the current run
    undug_before = np.zeros(size, dtype=bool)  # seen undug in some month before it
    greened_in_run = np.zeros(size, dtype=bool)  # greened with the savanna since the run began
    dug_ever = np.zeros(size, dtype=bool)
    undug_ever = np.zeros(size, dtype=bool)
    medians = [m for m, *_ in months if np.isfinite(m)]
    # Without a season's contrast (a baseline of dry months only) no field was seen green.
    green_seen = bool(medians) and max(medians) - min(medians) >= params.green_season_contrast
    for _, dug_bits, sure_bits, undug_bits, greened_bits in months:
        dug = np.unpackbits(dug_bits, count=size).astype(bool)
        sure = np.unpackbits(sure_bits, count=size).astype(bool)
        undug = np.unpackbits(undug_bits, count=size).astype(bool)
        greened = np.unpackbits(greened_bits, count=size).astype(bool)
        harvested = dug & greened_in_run  # bare again after greening: a field's year
        starts = dug & ((run == 0) | harvested)
        dug_before = np.where(starts, dug_ever, dug_before)
        undug_before = np.where(starts, undug_ever, undug_before)
        run_sure = np.where(starts, sure, run_sure & (sure | ~dug))
        run = np.where(starts, 1, np.where(dug, run + 1, np.where(undug, 0, run)))
        greened_in_run = np.where(starts | undug, False, greened_in_run | (greened & (run > 0)))
        dug_ever |= dug
        undug_ever |= undug
    worked = (run >= params.preexisting_min_months) & ~dug_before
    if not green_seen:
        worked &= undug_before | run_sure
    code = np.where(worked, np.where(undug_before, WORKED_SINCE_SEEN_UNDUG, WORKED), NOT_WORKED)
    return code.astype("int8").reshape(shape)


#: Codes of :attr:`Baseline.worked`.
NOT_WORKED, WORKED, WORKED_SINCE_SEEN_UNDUG = 0, 1, 2



def _keep_least_green(monthly: dict[int, np.ndarray], month: int, observed: np.ndarray,
                      vi: np.ndarray) -> None:
    """Record a calendar month's state, keeping per pixel the least green of the years seen."""
    if month not in monthly:
        monthly[month] = observed
        return
    kept = monthly[month]
    with np.errstate(invalid="ignore"):
        replace = np.isfinite(vi) & ~(ndvi(dict(zip(REFERENCE_BANDS, kept, strict=True))) <= vi)
    monthly[month] = np.where(replace[None], observed, kept)


def month_dug_share(bands: Mapping[str, np.ndarray], ndvi_floor: np.ndarray,
                    params: DetectionConfig) -> np.ndarray:
    """Dug share of each pixel in a month's composite, against its own state in the season
    (``ndvi_floor``: the season's :class:`~.reference.SeasonalReference`; see
    :func:`~.reference.dug_share`); a pixel of turbid water is a pit, dug whole."""
    share = dug_share(ndvi(bands), ndvi_floor, params)
    wi, ti = water_index(bands), ndti(bands)
    with np.errstate(invalid="ignore"):
        pit = (wi > params.water_index_min) & (ti > params.turbid_ndti_min)
    return np.where(pit, np.float32(1), share)


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


def map_preexisting(*, worked: np.ndarray, water_end: np.ndarray, water_months: np.ndarray,
                    land_months: np.ndarray, params: DetectionConfig, pixel_m: float = 10.0,
                    **_: np.ndarray) -> np.ndarray:
    """Digging at the baseline's end (step 2 of the module docstring), as a boolean mask."""
    dug, changed, water = preexisting_candidates(worked, water_end, water_months, land_months)
    ponds, count = ndimage.label(water, structure=EIGHT)
    if count:
        sizes = np.bincount(ponds.ravel(), minlength=count + 1)
        dug = dug | small_ponds(sizes, params, pixel_m)[ponds]
    closed = close_workings(dug, changed, water, params, pixel_m)
    return remove_small(ndimage.binary_fill_holes(closed), params.min_area_ha, pixel_m)


def preexisting_candidates(worked: np.ndarray, water_end: np.ndarray, water_months: np.ndarray,
                           land_months: np.ndarray,
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pixel, before the steps that look at the ground around it: worked ground that is
    not riverbed, the ground dug within the baseline, and the water at its end."""
    with np.errstate(invalid="ignore"):
        # Under water in one month and land in another: riverbed (or floodplain), not digging,
        # unless the baseline saw it undug before (a working whose pits fill in the rains).
        riverbed = (water_months != 0) & (land_months != 0)
        water = water_end > 0
    changed = worked == WORKED_SINCE_SEEN_UNDUG
    dug = changed | ((worked == WORKED) & ~riverbed)
    return dug, changed, water


def small_ponds(sizes: np.ndarray, params: DetectionConfig, pixel_m: float) -> np.ndarray:
    """By label (0: none), whether a body of water of ``sizes`` pixels is small enough to be
    a pit (``pond_max_ha``)."""
    small: np.ndarray = sizes * pixel_m**2 / 1e4 <= params.pond_max_ha
    small[0] = False
    return small


def close_workings_reach(params: DetectionConfig, pixel_m: float) -> int:
    """Pixels around a pixel that :func:`close_workings` reads to decide it."""
    return 2 * (MIN_WIDTH_PX - 1) + 2 * _gap_px(params, pixel_m)


def _gap_px(params: DetectionConfig, pixel_m: float) -> int:
    return round(params.cluster_gap_m / pixel_m / 2)


def close_workings(dug: np.ndarray, changed: np.ndarray, water: np.ndarray,
                   params: DetectionConfig, pixel_m: float) -> np.ndarray:
    """Worked ground without tracks, its gaps closed (holes not filled yet): each pixel's
    answer depends on the pixels within :func:`close_workings_reach` only."""
    # Tracks are bright and never green, but a few metres wide: workings are wider. Ground
    # bare all along and ground dug within the baseline are opened apart, so that a track does
    # not borrow its width from the working it runs along. A working's newest edge, dug within
    # the baseline, is a narrow ring: it stays where it touches a wide part.
    square = np.ones((MIN_WIDTH_PX, MIN_WIDTH_PX), bool)
    wide = (ndimage.binary_opening(dug & ~changed, structure=square)
            | ndimage.binary_opening(dug & changed, structure=square))
    ring = dug & changed & ndimage.binary_dilation(wide, structure=EIGHT,
                                                   iterations=MIN_WIDTH_PX - 1)
    dug = wide | (dug & water) | ring
    # Pits and spoil of one working lie a few pixels apart: close gaps up to
    # ``cluster_gap_m`` so they form one worked area (the holes inside are filled after).
    gap_px = _gap_px(params, pixel_m)
    if gap_px > 0:
        # Padded so that the closing's erosion does not eat workings on the grid's edge.
        padded = np.pad(dug, gap_px, mode="edge")
        closed = ndimage.binary_closing(padded, structure=EIGHT, iterations=gap_px)
        dug = closed[gap_px:-gap_px, gap_px:-gap_px]
    return dug


def min_area_px(min_area_ha: float, pixel_m: float) -> int:
    """The fewest pixels of an area of at least ``min_area_ha``."""
    return int(np.ceil(min_area_ha * 1e4 / pixel_m**2 - 1e-9))


def remove_small(mask: np.ndarray, min_area_ha: float, pixel_m: float = 10.0) -> np.ndarray:
    """``mask`` without 8-connected parts smaller than ``min_area_ha``."""
    min_px = min_area_px(min_area_ha, pixel_m)
    if min_px <= 1 or not mask.any():
        return mask
    labels, count = ndimage.label(mask, structure=EIGHT)
    # Pixels per part: bincount of the labels (scipy's sum_labels took five times as long).
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.zeros(count + 1, dtype=bool)
    keep[1:] = sizes >= min_px
    return keep[labels]


def observation_evidence(bands: Mapping[str, np.ndarray], valid: np.ndarray,
                         reference: np.ndarray, new_water_possible: np.ndarray,
                         params: DetectionConfig) -> np.ndarray:
    """Evidence of new digging in scene observations (step 3), as int8 codes.

    Parameters
    ----------
    bands
        Reflectance arrays ``(..., y, x)``, e.g. one per scene along a leading time axis.
    valid
        Boolean validity from SCL, same shape.
    reference
        The season's :meth:`~kpgeo.methods.reference.SeasonalReference.layers` ``(layer, y, x)``.
    new_water_possible
        From :meth:`Baseline.new_water_possible`, ``(y, x)``.

    Returns
    -------
    numpy.ndarray
        :data:`UNOBSERVED`, :data:`NO_EVIDENCE` or :data:`EVIDENCE` per observation.
    """
    ref = SeasonalReference.from_layers(reference)
    red = np.asarray(bands["red"], "float32")
    vi, mndwi_values = ndvi(bands), mndwi(bands)
    wi, ti = water_of(mndwi_values, ndwi(bands)), ndti(bands)
    with np.errstate(invalid="ignore"):
        observed = valid & np.isfinite(vi) & np.isfinite(wi) & ~hazy(bands, params)
        drop = ref.ndvi_floor - vi - ref.ndvi_allowance
        rise = mndwi_values - ref.mndwi_ceiling - ref.mndwi_allowance
        lost = (drop > params.ndvi_drop) | ((drop > params.wet_ndvi_drop)
                                            & (rise > params.wet_mndwi_rise))
        # Water is judged by the water test alone (turbid water is bright in red, too).
        worked = lost & (red >= ref.red_floor - params.dark_red_margin) & (wi < 0)
        new_water = ((wi > params.water_index_min) & (ti > params.turbid_ndti_min)
                     & new_water_possible)
    code = np.where(worked | new_water, EVIDENCE, NO_EVIDENCE).astype("int8")
    return np.where(observed, code, UNOBSERVED).astype("int8")


@dataclass(frozen=True)
class DetectionState:
    """Per-pixel state carried from month to month: YYYYMM integers, 0 = not yet."""

    first_detected: np.ndarray
    confirmed: np.ndarray
    mapped_since: np.ndarray | None = None
    """Month the pixel first belonged to a mapped area (at the mapping unit); polygon ids
    are seeded from it, so an area keeps its id when unmapped pixels join it."""
    dug_share: np.ndarray | None = None
    """Share of the pixel dug (0-1): the largest monthly estimate since it was first detected
    (a working's share only grows while it is worked; regrowth later hides it)."""

    def __post_init__(self) -> None:
        if self.mapped_since is None:
            object.__setattr__(self, "mapped_since", np.zeros_like(self.confirmed))
        if self.dug_share is None:
            object.__setattr__(self, "dug_share", np.zeros(self.confirmed.shape, "float32"))

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> DetectionState:
        return cls(np.zeros(shape, "int32"), np.zeros(shape, "int32"), np.zeros(shape, "int32"),
                   np.zeros(shape, "float32"))

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
        return DetectionState(first, confirmed, self.mapped_since, self.dug_share)

    def measured(self, share: np.ndarray) -> DetectionState:
        """The state with this month's dug-share estimate ``share`` (NaN = unmeasured) taken
        into :attr:`dug_share` where the pixel has been detected."""
        assert self.dug_share is not None
        with np.errstate(invalid="ignore"):
            grows = (self.first_detected > 0) & (share > self.dug_share)
        return DetectionState(self.first_detected, self.confirmed, self.mapped_since,
                              np.where(grows, share, self.dug_share).astype("float32"))

    def mapped(self, mask: np.ndarray, month: Month | str) -> DetectionState:
        """The state with ``mask`` (this month's mapped new digging) recorded in
        :attr:`mapped_since`."""
        assert self.mapped_since is not None
        since = np.where(mask & (self.mapped_since == 0), month_label(month), self.mapped_since)
        return DetectionState(self.first_detected, self.confirmed, since.astype("int32"),
                              self.dug_share)


def digging_signal(bands: Mapping[str, np.ndarray], params: DetectionConfig,
                   indices: Mapping[str, np.ndarray] | None = None,
                   share: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Worked ground and open water in a composite: ``(fresh, water)`` masks.

    Inside digging areas, ``fresh`` (a dug share this month of at least ``active_share_min``,
    or turbid water) is taken as "worked this month" (active) and ``water`` as pit water.
    Without ``share``, bright bare ground stands for worked ground. ``indices``: the
    composite's NDVI, MNDWI, NDWI and NDTI when already computed
    (:func:`~kpgeo.methods.indices.compute_indices`).
    """
    if indices is None:
        vi, wi, ti = ndvi(bands), water_index(bands), ndti(bands)
    else:
        vi, ti = indices["ndvi"], indices["ndti"]
        wi = water_of(indices["mndwi"], indices["ndwi"])
    red = np.asarray(bands["red"], "float32")
    with np.errstate(invalid="ignore"):
        water = wi > 0
        bare = (share >= params.active_share_min) if share is not None else (
            (vi < params.bare_ndvi_max) & (red > params.bright_red_min))
        fresh = bare | ((wi > params.water_index_min) & (ti > params.pit_ndti_min))
    return fresh, water
