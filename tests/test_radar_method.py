"""Radar evidence of new digging (kpgeo.methods.radar) on small known-answer stacks: 20 x 20 px
of speckled grass, a floodplain that floods every wet season, and a working that opens in the
monitored year."""

from __future__ import annotations

import numpy as np
import pytest

from kpgeo.methods.fusion import RadarState
from kpgeo.methods.radar import (
    RadarThresholds,
    acquisition_codes,
    despeckle,
    evidence,
    season_baseline,
    to_db,
)

SHAPE = (20, 20)
LOOKS = 4.4
#: Grass in the rains and in the dry season, and calm water (VV, VH dB).
GRASS_WET, GRASS_DRY, WATER = (-8.0, -13.5), (-10.5, -17.5), (-20.5, -26.5)
#: Rough spoil of a working.
SPOIL = (-9.0, -19.0)
FLOOD = (slice(0, 20), slice(0, 5))
WORKING = (slice(8, 14), slice(10, 16))
#: Their pixels away from the edge, which the speckle filter blends with the grass beside.
FLOOD_INSIDE = (slice(0, 20), slice(0, 4))
WORKING_INSIDE = (slice(9, 13), slice(11, 15))


def _scene(rng: np.random.Generator, month: int, *, working: bool = False,
           offset_db: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Despeckled VV and VH in dB of one acquisition in ``month``: the floodplain is water
    from August to October every year, the working spoil when ``working``."""
    wet = 5 <= month <= 10
    vv = np.full(SHAPE, (GRASS_WET if wet else GRASS_DRY)[0] + offset_db)
    vh = np.full(SHAPE, (GRASS_WET if wet else GRASS_DRY)[1] + offset_db)
    if 8 <= month <= 10:
        vv[FLOOD], vh[FLOOD] = WATER
    if working:
        vv[WORKING], vh[WORKING] = SPOIL[0] + offset_db, SPOIL[1] + offset_db
    speckle = rng.gamma(LOOKS, 1 / LOOKS, size=(2, *SHAPE))
    power = 10 ** (np.stack([vv, vh]) / 10) * speckle
    clean = to_db(despeckle(power))
    return clean[0], clean[1]


def _baseline_year(rng: np.random.Generator, offset_db: float = 0.0,
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A baseline year of one orbit: an acquisition every 12 days."""
    days = np.arange(0, 365, 12)
    months = (days // 30.5).astype(int) % 12 + 1
    scenes = [_scene(rng, int(m), offset_db=offset_db) for m in months]
    return np.stack([s[0] for s in scenes]), np.stack([s[1] for s in scenes]), months


def test_despeckle_keeps_the_mean_cuts_the_noise_and_mixes_no_dates() -> None:
    rng = np.random.default_rng(1)
    power = 0.02 * rng.gamma(LOOKS, 1 / LOOKS, size=(2, 200, 200)).astype("float32")
    power[1, 50:60, 50:60] = 0.002  # a change on the second acquisition only
    smooth = despeckle(power)
    assert smooth[0].mean() == pytest.approx(0.02, rel=0.01)
    ratio = smooth[0] / 0.02
    assert ratio.mean() ** 2 / ratio.var() > 3 * LOOKS  # about 9 times the looks
    assert np.allclose(smooth[0, 45:65, 45:65].mean(), 0.02, rtol=0.05)  # first date untouched
    assert smooth[1, 52:58, 52:58].max() == pytest.approx(0.002)
    with_gap = power[0].copy()
    with_gap[0, 0] = np.nan
    assert np.isfinite(despeckle(with_gap)).all()
    assert np.isnan(despeckle(np.full((4, 4), np.nan)))[0, 0]


def test_the_baselines_own_wet_season_flood_is_no_evidence_but_a_working_is() -> None:
    rng = np.random.default_rng(7)
    vv, vh, months = _baseline_year(rng)
    september = season_baseline(vv, vh, months, 9)
    assert september.water[FLOOD_INSIDE].all() and not september.water[WORKING].any()
    codes = []
    for _ in range(3):  # September of the monitored year: flooded again, the working opened
        vv_now, vh_now = _scene(rng, 9, working=True)
        worked, water = evidence(vv_now, vh_now, september)
        assert not water[FLOOD].any() and not worked[FLOOD].any()
        codes.append(acquisition_codes(worked | water, np.isfinite(vh_now)))
    state = RadarState.empty(SHAPE).advance(np.stack(codes), "2024-09")
    confirmed = state.since > 0
    assert confirmed[WORKING_INSIDE].all() and confirmed[WORKING].mean() > 0.6
    assert not confirmed[FLOOD].any()
    assert confirmed.sum() - confirmed[WORKING].sum() <= 2  # speckle alone: almost nothing


def test_a_drop_on_one_acquisition_is_flagged_then_withdrawn() -> None:
    rng = np.random.default_rng(3)
    vv, vh, months = _baseline_year(rng)
    base = season_baseline(vv, vh, months, 9)
    state = RadarState.empty(SHAPE)
    for working in (True, False, False):
        vv_now, vh_now = _scene(rng, 9, working=working)
        worked, water = evidence(vv_now, vh_now, base)
        codes = acquisition_codes(worked | water, np.isfinite(vh_now))
        state = state.advance(codes[None], "2024-09")
        if working:
            assert (state.streak[WORKING_INSIDE] == 1).all()  # flagged
    assert not (state.since > 0).any()
    assert (state.streak[WORKING] == 0).all() and (state.first[WORKING] == 0).all()


def test_new_open_water_counts_where_the_season_never_had_water() -> None:
    rng = np.random.default_rng(5)
    vv, vh, months = _baseline_year(rng)
    base = season_baseline(vv, vh, months, 9)
    vv_now, vh_now = _scene(rng, 9)
    pit, beside = (slice(10, 13), slice(12, 15)), (slice(10, 13), slice(5, 6))
    for where in (pit, beside):
        vv_now[where], vh_now[where] = WATER
    worked, water = evidence(vv_now, vh_now, base)
    assert water[pit].all()
    assert not water[beside].any()  # within two pixels of the flood: the flood spreading
    assert not worked[pit].any()  # water moves both polarisations: no ratio drop


def test_each_orbit_direction_is_judged_against_its_own_baseline() -> None:
    rng = np.random.default_rng(11)
    # The descending orbit's steeper incidence: every level 2 dB brighter.
    vv_a, vh_a, months = _baseline_year(rng)
    vv_d, vh_d, _ = _baseline_year(rng, offset_db=2.0)
    ascending = season_baseline(vv_a, vh_a, months, 2)
    descending = season_baseline(vv_d, vh_d, months, 2)
    # Speckle alone, no drop: a few percent of passes (averaged over five: one pass of
    # 400 px varies by a factor two).
    flagged = [evidence(*_scene(rng, 2, offset_db=2.0), descending)[0].mean() for _ in range(5)]
    assert np.mean(flagged) < 0.03
    pooled = season_baseline(np.concatenate([vv_a, vv_d]), np.concatenate([vh_a, vh_d]),
                             np.concatenate([months, months]), 2)
    flagged = [evidence(*_scene(rng, 2), ascending)[0].mean() for _ in range(5)]
    assert np.mean(flagged) < 0.03
    # Pooled, the orbits' levels spread the baseline: a 2 dB drop hides in it.
    assert np.nanmedian(pooled.vh_spread_db) > np.nanmedian(ascending.vh_spread_db)


def test_a_pixel_without_enough_baseline_is_not_judged() -> None:
    rng = np.random.default_rng(2)
    vv, vh, months = _baseline_year(rng)
    vh[:, :2, :2] = np.nan
    base = season_baseline(vv, vh, months, 6)
    vv_now, vh_now = _scene(rng, 6, working=True)
    vv_now[:2, :2], vh_now[:2, :2] = WATER
    worked, water = evidence(vv_now, vh_now, base, RadarThresholds(water_buffer_px=0))
    assert not worked[:2, :2].any() and not water[:2, :2].any()
    assert np.isnan(base.vh_median_db[:2, :2]).all() and (base.count[:2, :2] == 0).all()


def _power(rng: np.random.Generator, month: int, working: bool = False,
           new_pond: bool = False) -> np.ndarray:
    """Raw gamma0 ``(2, y, x)`` in linear power (speckled, not filtered) of one acquisition."""
    wet = 5 <= month <= 10
    vv = np.full(SHAPE, (GRASS_WET if wet else GRASS_DRY)[0])
    vh = np.full(SHAPE, (GRASS_WET if wet else GRASS_DRY)[1])
    if 8 <= month <= 10:
        vv[FLOOD], vh[FLOOD] = WATER
    if working:
        vv[WORKING], vh[WORKING] = SPOIL
    if new_pond:
        vv[2:6, 12:18], vh[2:6, 12:18] = WATER
    speckle = rng.gamma(LOOKS, 1 / LOOKS, size=(2, *SHAPE))
    return (10 ** (np.stack([vv, vh]) / 10) * speckle).astype("float32")


def test_a_chunks_codes_are_the_whole_grids_and_new_water_counts_only_where_possible() -> None:
    from kpgeo.methods.detection import EVIDENCE
    from kpgeo.methods.radar import PAD_PX, month_codes

    rng = np.random.default_rng(5)
    months = [m for m in range(7, 12) for _ in range(2)]
    base = [_power(rng, m) for m in months]
    orbits = ["ascending"] * len(base)
    now = [_power(rng, 9, working=True, new_pond=True) for _ in range(3)]
    whole = month_codes(now, ["ascending"] * 3, base, orbits, months, 9,
                        (slice(0, 20), slice(0, 20)))
    assert (whole[:, 9:13, 11:15] == EVIDENCE).all()  # the working
    assert (whole[:, 3:5, 13:17] == EVIDENCE).all()  # the new pond
    # The chunk of rows 0-9 and columns 10-19, read with the method's margin.
    rows, cols = slice(0, 10 + PAD_PX), slice(10 - PAD_PX, 20)
    crop = (slice(0, 10), slice(PAD_PX, PAD_PX + 10))
    part = month_codes([p[:, rows, cols] for p in now], ["ascending"] * 3,
                       [p[:, rows, cols] for p in base], orbits, months, 9, crop)
    np.testing.assert_array_equal(part, whole[:, 0:10, 10:20])
    # Where the optical baseline says new water would be a flood, it is no evidence.
    possible = np.ones(SHAPE, bool)
    possible[0:8, 10:20] = False
    judged = month_codes(now, ["ascending"] * 3, base, orbits, months, 9,
                         (slice(0, 20), slice(0, 20)), water_possible=possible)
    assert not (judged[:, 3:5, 13:17] == EVIDENCE).any()
    assert (judged[:, 9:13, 11:15] == EVIDENCE).all()
