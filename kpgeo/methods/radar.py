"""Radar evidence of new digging from Sentinel-1 gamma0 (VV, VH), acquisition by acquisition.

Pure numpy in, numpy out; arrays are ``(y, x)`` or ``(time, y, x)`` on the site grid.

**Speckle** (:func:`despeckle`): a 3 x 3 mean of each acquisition in linear power. Spatial,
not multi-temporal: a filter across dates (a temporal mean, Quegan's filter) would blend the
acquisitions before a change with those after it and smear the date of the change, which is
what radar is for in the months optical imagery cannot see; the baseline is already a
statistic over many dates. 3 x 3 at 10 m spans 1.5 of Sentinel-1's 20 m resolution cells,
about doubling the looks (4.4 to about 10: +/-1.4 dB in place of +/-2.2 dB per pixel) while
keeping workings of a few pixels. Means are taken in linear power (speckle is multiplicative
and unbiased there; a mean in dB is biased low).

**Baseline** (:func:`season_baseline`): per pixel, per orbit direction (ascending and
descending passes see the ground at different incidences, so their levels differ), and per
season (a calendar month and its two neighbours, as the optical baseline's seasons), from the
baseline period's despeckled acquisitions in dB: the level of VH and of the VH/VV ratio (their
median), their spread (a robust standard deviation), and whether the pixel was open water in
that season. The rains' own wet soil, green-up and floods are thus in the
season's baseline: a floodplain that floods every September is no news in September.

**Evidence** (:func:`evidence`) on one acquisition, against its orbit's and season's baseline:
worked ground (VH below its level by two of the pixel's own spreads, *and* the VH/VV ratio
below its level by one, VV not water-dark: spoil and bare gravel keep VV's surface return and
lose the vegetation's volume return in VH, while water or a wet day moves both polarisations)
or new open water (VV and VH water-dark
where the season's baseline never saw water, nor within :attr:`RadarThresholds.water_buffer_px`
of it).

The margins (:class:`RadarThresholds`) are in the pixel's own spreads, for a chosen rate of
false alarms rather than a level: on simulated speckle (4.4 looks, this filter, eight baseline
passes a season, whose median and spread are themselves noisy) 2.5 spreads of VH and one of
the ratio flag 1.5 % of an undisturbed pixel's passes, and a pixel 3 dB darker in VH (VV 0.5
dB darker) on 86 % of them, 2 dB darker on half. An earlier version measured from the season's 10th percentile and then
took a spread more: the noise counted twice, and a working 2-4 dB darker than green grass in
VH, as partly dug ground is in the rains, showed on only 3-23 % of passes (the long-rains
accuracy archives, benchmarks/RESULTS.md).

**Codes** (:func:`acquisition_codes`): each acquisition's evidence as the optical method's
codes, for :mod:`kpgeo.methods.fusion`, which confirms it as RADD confirms its alerts.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import bottleneck
import numpy as np
from scipy import ndimage

from .detection import EVIDENCE, NO_EVIDENCE, UNOBSERVED

#: Side of the speckle filter's window, in pixels.
SPECKLE_WINDOW_PX = 3
#: A robust standard deviation from the median absolute deviation (normal noise).
MAD_TO_SD = 1.4826
#: Fewest baseline acquisitions of a season and orbit before a pixel is judged.
MIN_BASELINE_ACQUISITIONS = 3


@dataclass(frozen=True)
class RadarThresholds:
    """How far below its baseline an acquisition must fall to be evidence of digging."""

    vh_spread_factor: float = 2.5
    """VH at least this many of the pixel's own spreads below its season's median. Worked
    ground lies 2-5 dB below grass in VH (most in the rains, with the grass green)."""
    vh_drop_db: float = 1.5
    """...and at least this far (a floor for a pixel whose few baseline passes happened to
    agree: its spread understates its noise)."""
    ratio_spread_factor: float = 1.0
    """The VH/VV ratio at least this many of its spreads below its median: it tells worked
    ground (VV kept) from what darkens both polarisations (a dry spell, a wet day)..."""
    ratio_drop_db: float = 1.0
    """...and at least this far."""
    water_vv_db: float = -17.0
    """Open water: VV below this (calm water lies at -20 dB or below, land above -14); worked
    ground is never this dark in VV (rough spoil keeps its surface return)..."""
    water_vh_db: float = -23.0
    """...and VH below this (water -26 dB and below, bare ground about -20)."""
    water_buffer_px: int = 2
    """New water within this many pixels of the season's baseline water is that water
    spreading further (a wetter year's flood), not a pit."""


#: Pixels of data a chunk's codes need around it (:func:`month_codes`): the speckle filter's
#: half window, and the water buffer beyond it.
PAD_PX = SPECKLE_WINDOW_PX // 2 + RadarThresholds.water_buffer_px


@dataclass(frozen=True)
class SeasonBaseline:
    """One orbit direction's and season's baseline of every pixel (dB; NaN: not enough
    acquisitions)."""

    vh_median_db: np.ndarray
    ratio_median_db: np.ndarray
    """The median of VH/VV, in dB (VH dB minus VV dB)."""
    vh_spread_db: np.ndarray
    ratio_spread_db: np.ndarray
    water: np.ndarray
    """Open water on at least one of the season's baseline acquisitions."""
    count: np.ndarray
    """Baseline acquisitions with data."""


def despeckle(power: np.ndarray, window_px: int = SPECKLE_WINDOW_PX) -> np.ndarray:
    """Mean of each ``window_px`` square of linear power, acquisition by acquisition
    (``(..., y, x)``: no mixing along the leading axes). NaN (no data) is left out of the
    mean; a pixel whose window holds no data is NaN; at the edge of the array, the window's
    pixels inside it.

    Examples
    --------
    >>> despeckle(np.full((5, 5), 0.02, dtype="float32"))[2, 2]  # doctest: +SKIP
    0.02
    """
    size = (1,) * (power.ndim - 2) + (window_px, window_px)
    finite = np.isfinite(power)
    values = np.where(finite, power, 0).astype("float64")
    total = ndimage.uniform_filter(values, size=size, mode="constant", cval=0.0)
    count = ndimage.uniform_filter(finite.astype("float64"), size=size, mode="constant",
                                   cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 1e-9, total / count, np.nan)
    return mean.astype("float32")


def to_db(power: np.ndarray) -> np.ndarray:
    """Linear power in dB (``10 log10``); NaN where not positive."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(power > 0, 10 * np.log10(power), np.nan).astype("float32")


def season_months(calendar_month: int) -> tuple[int, int, int]:
    """The calendar months (1-12) of ``calendar_month``'s season: it and its neighbours."""
    return tuple((calendar_month + d - 1) % 12 + 1 for d in (-1, 0, 1))  # type: ignore[return-value]


def season_baseline(vv_db: np.ndarray, vh_db: np.ndarray, months: np.ndarray,
                    calendar_month: int,
                    thresholds: RadarThresholds = RadarThresholds()) -> SeasonBaseline:
    """The baseline of ``calendar_month``'s season from one orbit direction's baseline
    acquisitions: despeckled ``vv_db`` and ``vh_db`` ``(time, y, x)`` (NaN: no data), each
    acquisition's calendar month in ``months`` ``(time,)``.

    Examples
    --------
    >>> base = season_baseline(vv_db, vh_db, np.array([8, 8, 9, 9, 10]), 9)  # doctest: +SKIP
    """
    take = np.isin(np.asarray(months), season_months(calendar_month))
    vv, vh = vv_db[take], vh_db[take]
    ratio = vh - vv
    count = np.isfinite(ratio).sum(axis=0)
    enough = count >= MIN_BASELINE_ACQUISITIONS
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        # numpy's "All-NaN slice": a pixel without data in a season is expected (NaN).
        warnings.simplefilter("ignore", RuntimeWarning)
        vh_median, vh_spread = _median_and_spread(vh)
        ratio_median, ratio_spread = _median_and_spread(ratio)
        water = np.any((vv < thresholds.water_vv_db) & (vh < thresholds.water_vh_db), axis=0)

    def judged(layer: np.ndarray) -> np.ndarray:
        return np.where(enough, layer, np.nan).astype("float32")

    return SeasonBaseline(judged(vh_median), judged(ratio_median), judged(vh_spread),
                          judged(ratio_spread), water, count.astype("int16"))


def evidence(vv_db: np.ndarray, vh_db: np.ndarray, base: SeasonBaseline,
             thresholds: RadarThresholds = RadarThresholds()) -> tuple[np.ndarray, np.ndarray]:
    """Evidence of digging on one despeckled acquisition ``(y, x)`` against its orbit's and
    season's baseline: ``(worked, water)``, worked ground and new open water (both False
    where the acquisition or the baseline has no data).

    Examples
    --------
    >>> worked, water = evidence(vv_db, vh_db, base)  # doctest: +SKIP
    """
    t = thresholds
    ratio = vh_db - vv_db
    with np.errstate(invalid="ignore"):
        vh_margin = np.maximum(t.vh_drop_db, t.vh_spread_factor * base.vh_spread_db)
        ratio_margin = np.maximum(t.ratio_drop_db, t.ratio_spread_factor * base.ratio_spread_db)
        wet = (vv_db < t.water_vv_db) & (vh_db < t.water_vh_db)
        worked = ((vh_db < base.vh_median_db - vh_margin)
                  & (ratio < base.ratio_median_db - ratio_margin) & ~(vv_db < t.water_vv_db))
    seen = base.water
    if t.water_buffer_px > 0 and seen.any():
        seen = ndimage.binary_dilation(seen, iterations=t.water_buffer_px)
    water = wet & ~seen & np.isfinite(base.vh_median_db)
    return worked, water


def acquisition_codes(found: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """One acquisition's codes ``(y, x)``: :data:`~.detection.EVIDENCE` where ``found``,
    :data:`~.detection.NO_EVIDENCE` where ``valid`` (data and a baseline) without it,
    :data:`~.detection.UNOBSERVED` elsewhere."""
    codes = np.full(found.shape, UNOBSERVED, dtype="int8")
    np.copyto(codes, np.int8(NO_EVIDENCE), where=valid)
    np.copyto(codes, np.int8(EVIDENCE), where=valid & found)
    return codes


def month_codes(passes: Sequence[np.ndarray], orbits: Sequence[str],
                baseline: Sequence[np.ndarray], baseline_orbits: Sequence[str],
                baseline_months: Sequence[int], calendar_month: int,
                crop: tuple[slice, slice], water_possible: np.ndarray | None = None,
                thresholds: RadarThresholds = RadarThresholds()) -> np.ndarray:
    """Evidence codes ``(pass, y, x)`` of a month's ``passes`` on a chunk.

    ``passes`` and ``baseline`` (the baseline period's passes of the month's season) are
    gamma0 ``(2, y, x)`` (VV, VH; linear power, NaN without data) on the chunk grown by
    :data:`PAD_PX`, ``crop`` the chunk within; ``orbits`` and ``baseline_orbits`` their orbit
    directions, ``baseline_months`` the calendar month of each baseline pass. Each pass is
    judged against its own orbit direction's baseline; a pass of a direction the baseline
    never saw is unobserved. Everything is computed on the grown chunk and cut at the end,
    so that a chunk's codes are the whole grid's (the filter and the water buffer see across
    its edges). ``water_possible`` (the chunk's): where the optical baseline says new water
    can be a pit rather than a flood (:meth:`~.detection.Baseline.new_water_possible`); new
    water elsewhere is no evidence, as for optical imagery.
    """
    def decibels(read: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        filtered = despeckle(read)
        return to_db(filtered[0]), to_db(filtered[1])

    bases: dict[str, SeasonBaseline] = {}
    for orbit in sorted(set(orbits)):
        seen = [i for i, o in enumerate(baseline_orbits) if o == orbit]
        if not seen:
            continue
        stacks = [decibels(baseline[i]) for i in seen]
        bases[orbit] = season_baseline(np.stack([vv for vv, _ in stacks]),
                                       np.stack([vh for _, vh in stacks]),
                                       np.array([baseline_months[i] for i in seen]),
                                       calendar_month, thresholds)
    height, width = (crop[0].stop - crop[0].start, crop[1].stop - crop[1].start)
    codes = np.full((len(passes), height, width), UNOBSERVED, dtype="int8")
    for t, (read, orbit) in enumerate(zip(passes, orbits, strict=True)):
        base = bases.get(orbit)
        if base is None:
            continue
        vv, vh = decibels(read)
        worked, water = evidence(vv, vh, base, thresholds)
        valid = np.isfinite(vv) & np.isfinite(vh) & np.isfinite(base.vh_median_db)
        found = worked[crop] | (water[crop] if water_possible is None
                                else water[crop] & water_possible)
        codes[t] = acquisition_codes(found, valid[crop])
    return codes


def _median_and_spread(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median along the first axis, and the median absolute deviation as a standard deviation
    (robust: a season's odd pass, a burn or a flooded day, moves neither much)."""
    if not len(values):
        return _nans(values), _nans(values)
    # bottleneck's nanmedian: numpy's goes pixel by pixel in Python where there are NaNs.
    median = bottleneck.nanmedian(values, axis=0)
    return median, MAD_TO_SD * bottleneck.nanmedian(np.abs(values - median), axis=0)


def _nans(stack: np.ndarray) -> np.ndarray:
    return np.full(stack.shape[1:], np.nan, dtype="float32")
