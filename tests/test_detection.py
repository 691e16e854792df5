"""Detection on hand-built scenes: planted digging confirms, look-alikes never do (docs/product.md §7).

Every case lies on a 40 x 40 grid of 10 m pixels built from savanna endmember spectra. The
baseline is twelve monthly composites with a seasonal cycle (dry Jan-Apr and Nov-Dec, green
Jun-Oct) and a field that is tilled bare soil in the dry season and green in the rains.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pytest
from scipy import ndimage

from kpgeo.config import DetectionConfig
from kpgeo.methods.detection import (
    BASELINE_BANDS,
    EVIDENCE,
    NO_EVIDENCE,
    UNOBSERVED,
    Baseline,
    DetectionState,
    build_baseline,
    map_preexisting,
    observation_evidence,
    remove_small,
)
from kpgeo.methods.indices import bsi, mndwi, ndti, ndvi, normalized_difference
from kpgeo.methods.reference import dug_share

Spectrum = tuple[float, float, float, float, float, float]
Bands = dict[str, np.ndarray]


class Region(NamedTuple):
    """Rows ``r0:r1`` and columns ``c0:c1`` of the grid (hashable, unlike slices)."""

    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def s(self) -> tuple[slice, slice]:
        return np.s_[self.r0:self.r1, self.c0:self.c1]


BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
SHAPE = (40, 40)
PIXEL_M = 10.0
PARAMS = DetectionConfig()
#: MNDWI of water beyond doubt.
CLEARLY_WATER = 0.3

#: Surface reflectance endmembers, in the order of :data:`BANDS`.
GREEN_VEGETATION: Spectrum = (0.03, 0.065, 0.04, 0.36, 0.20, 0.10)
DRY_SAVANNA: Spectrum = (0.08, 0.11, 0.16, 0.26, 0.33, 0.26)
FIELD_SOIL: Spectrum = (0.10, 0.14, 0.20, 0.255, 0.36, 0.30)
GRAVEL: Spectrum = (0.15, 0.20, 0.27, 0.30, 0.40, 0.35)
BURN_CHAR: Spectrum = (0.04, 0.05, 0.055, 0.09, 0.14, 0.12)
TURBID_WATER: Spectrum = (0.08, 0.12, 0.145, 0.06, 0.03, 0.02)
CLOUD: Spectrum = (0.45, 0.45, 0.46, 0.50, 0.40, 0.30)
CLEAR_WATER: Spectrum = (0.06, 0.08, 0.05, 0.03, 0.02, 0.01)
#: Flood water carrying some silt, darker in red than bright bare ground.
SILTY_WATER: Spectrum = (0.07, 0.10, 0.10, 0.05, 0.03, 0.02)

DRY_MONTHS = (1, 2, 3, 4, 11, 12)
GREEN_MONTHS = (6, 7, 8, 9, 10)

#: Planted places on the grid.
FIELD = Region(4, 14, 4, 14)
OLD_PIT = Region(26, 36, 4, 14)  # gravel through the whole baseline (10 x 10 px) ...
OLD_PIT_CENTRE = Region(29, 33, 7, 11)  # ... around 4 x 4 px of savanna (a hole)
TINY_PIT = Region(4, 7, 30, 33)  # 9 px of gravel: below the 10 px mapping unit
DUG = Region(18, 24, 24, 30)  # gravel that appears after the baseline (36 px)
SPOT_A = Region(30, 34, 20, 24)
SPOT_B = Region(30, 34, 28, 32)
SPOT_C = Region(12, 16, 20, 24)
SAVANNA_PIXEL = (20, 15)  # savanna, away from every planted place and the grid edge


def mix(a: Spectrum, b: Spectrum, weight_a: float) -> Spectrum:
    """Linear mixture of two spectra (``weight_a`` of ``a``)."""
    return tuple(weight_a * x + (1 - weight_a) * y for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def savanna(month: int) -> Spectrum:
    """Savanna in calendar ``month``: dry, green, or (May) in between."""
    if month in DRY_MONTHS:
        return DRY_SAVANNA
    if month in GREEN_MONTHS:
        return GREEN_VEGETATION
    return mix(DRY_SAVANNA, GREEN_VEGETATION, 0.5)


def field(month: int) -> Spectrum:
    """The field: tilled bare soil in the dry season, a green crop in the rains."""
    if month in DRY_MONTHS:
        return FIELD_SOIL
    if month in GREEN_MONTHS:
        return GREEN_VEGETATION
    return mix(FIELD_SOIL, GREEN_VEGETATION, 0.5)


def scene(ground: Spectrum, patches: Mapping[Region, Spectrum] | None = None) -> Bands:
    """One ``(y, x)`` reflectance image: ``ground`` everywhere, ``patches`` painted on top."""
    out = {b: np.full(SHAPE, v, dtype="float32") for b, v in zip(BANDS, ground, strict=True)}
    for region, spectrum in (patches or {}).items():
        for b, v in zip(BANDS, spectrum, strict=True):
            out[b][region.s] = v
    return out


def stack(scenes: Sequence[Bands]) -> Bands:
    """Scenes along a leading time axis, ``(time, y, x)``."""
    return {b: np.stack([s[b] for s in scenes]) for b in BANDS}


def landscape(month: int, patches: Mapping[Region, Spectrum] | None = None) -> Bands:
    """The normal landscape of ``month`` (savanna, field, old pit) plus ``patches``."""
    base = {FIELD: field(month), OLD_PIT: GRAVEL, OLD_PIT_CENTRE: savanna(month)}
    return scene(savanna(month), {**base, **(patches or {})})


def baseline_composites(extra: Mapping[Region, Spectrum] | None = None) -> list[Bands]:
    """Twelve monthly composites Jan..Dec of a year without new digging."""
    return [landscape(m, extra) for m in range(1, 13)]


@pytest.fixture(scope="module")
def baseline() -> Baseline:
    """The baseline of the planted landscape, with a small gravel patch too."""
    return build_baseline(baseline_composites({TINY_PIT: GRAVEL}), PARAMS, PIXEL_M,
                          months=list(range(1, 13)))


def evidence(scenes: Sequence[Bands], baseline: Baseline,
             valid: np.ndarray | None = None, month: int = 1) -> np.ndarray:
    """Evidence codes ``(time, y, x)`` of ``scenes`` of calendar ``month`` against
    ``baseline``."""
    bands = stack(scenes)
    if valid is None:
        valid = np.ones((len(scenes), *SHAPE), dtype=bool)
    possible = baseline.new_water_possible(month, PARAMS.water_buffer_m, PIXEL_M)
    return observation_evidence(bands, valid, baseline.reference(month).layers(), possible,
                                PARAMS)


def region_mask(*regions: Region) -> np.ndarray:
    out = np.zeros(SHAPE, dtype=bool)
    for region in regions:
        out[region.s] = True
    return out


# ---- indices ---------------------------------------------------------------------------------
def test_normalized_difference_nan_policy() -> None:
    """NaN in gives NaN out; a zero or negative denominator gives NaN, never inf or 0."""
    a = np.array([0.3, np.nan, 0.0, 0.1, -0.2, 0.2])
    b = np.array([0.1, 0.1, 0.0, np.nan, 0.1, 0.2])
    out = normalized_difference(a, b)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[[0, 5]], [0.5, 0.0], atol=1e-7)
    assert np.isnan(out[1:5]).all()
    # Scalars too (computed in place, the difference of two scalars is made an array first).
    assert float(normalized_difference(0.75, 0.25)) == 0.5
    assert np.isnan(normalized_difference(np.float32(0.0), np.float32(0.0)))
    bands = scene(DRY_SAVANNA)
    bands["red"][3, 5] = np.nan
    vi = ndvi(bands)
    assert np.isnan(vi[3, 5]) and np.isfinite(np.delete(vi.ravel(), 3 * SHAPE[1] + 5)).all()


def _index_of(spectrum: Spectrum) -> dict[str, float]:
    bands = {b: np.array([v]) for b, v in zip(BANDS, spectrum, strict=True)}
    return {name: float(f(bands)[0]) for name, f in
            {"ndvi": ndvi, "mndwi": mndwi, "bsi": bsi, "ndti": ndti}.items()}


def test_indices_have_the_documented_signs_on_endmembers() -> None:
    """Vegetation NDVI > 0.6, gravel BSI > 0, turbid water MNDWI and NDTI > 0, clear water
    NDTI < 0, and a known value: NDVI of green vegetation is (0.36 - 0.04) / 0.40 = 0.8."""
    veg, gravel = _index_of(GREEN_VEGETATION), _index_of(GRAVEL)
    turbid, clear = _index_of(TURBID_WATER), _index_of(CLEAR_WATER)
    assert veg["ndvi"] == pytest.approx(0.8, abs=1e-6) and veg["ndvi"] > 0.6
    assert veg["mndwi"] < 0 and veg["bsi"] < 0
    assert gravel["bsi"] > 0 and gravel["ndvi"] < PARAMS.bare_ndvi_max and gravel["mndwi"] < 0
    assert turbid["mndwi"] > 0 and turbid["ndti"] > 0
    assert clear["mndwi"] > 0 and clear["ndti"] < 0
    assert _index_of(DRY_SAVANNA)["ndvi"] < veg["ndvi"]


# ---- baseline and pre-existing digging --------------------------------------------------------
def test_baseline_reference_is_least_green_land_state(baseline: Baseline) -> None:
    """The reference is the dry season: savanna NDVI 0.238, the field's tilled soil 0.121."""
    savanna_ndvi = (0.26 - 0.16) / (0.26 + 0.16)
    soil_ndvi = (0.255 - 0.20) / (0.255 + 0.20)
    assert baseline.land_ndvi_min[SAVANNA_PIXEL] == pytest.approx(savanna_ndvi, abs=1e-6)
    np.testing.assert_allclose(baseline.land_ndvi_min[FIELD.s], soil_ndvi, atol=1e-6)
    np.testing.assert_allclose(baseline.land_ndvi_min[OLD_PIT_CENTRE.s], savanna_ndvi, atol=1e-6)
    assert baseline.far_from_water(PARAMS.water_buffer_m, PIXEL_M).all()  # no water anywhere


def test_gravel_bare_through_baseline_is_preexisting_field_and_savanna_are_not(
        baseline: Baseline) -> None:
    """Old gravel (with its enclosed savanna) is pre-existing; the field, the savanna and a
    gravel patch below the mapping unit are not."""
    expected = region_mask(OLD_PIT)  # the hole in the working is filled
    assert baseline.preexisting.dtype == bool
    np.testing.assert_array_equal(baseline.preexisting, expected)
    assert not baseline.preexisting[FIELD.s].any() and not baseline.preexisting[TINY_PIT.s].any()
    # The same answer straight from map_preexisting on the baseline's end states.
    states = {name: getattr(baseline, name) for name in BASELINE_BANDS if name != "preexisting"}
    again = map_preexisting(**states, params=PARAMS, pixel_m=PIXEL_M)
    np.testing.assert_array_equal(again, expected)
    # And through the stored form of baseline.tif.
    restored = Baseline.from_stack(*baseline.stack())
    np.testing.assert_array_equal(restored.preexisting, expected)


def test_dry_season_only_baseline_does_not_map_savanna_as_preexisting() -> None:
    """A baseline of the dry months Jan-Apr must not turn the savanna (NDVI 0.24, red 0.16)
    or the bare field into old digging: they were never seen in their green season."""
    dry = build_baseline([landscape(m) for m in (1, 2, 3, 4)], PARAMS, PIXEL_M)
    assert dry.preexisting[OLD_PIT.s].all()
    assert not dry.preexisting[SAVANNA_PIXEL] and not dry.preexisting[FIELD.s].any()


def test_working_on_the_grid_edge_keeps_its_edge_pixels() -> None:
    """Old gravel that reaches the grid's corner is pre-existing up to the edge."""
    corner = Region(0, 8, 30, 40)
    edge = build_baseline(baseline_composites({corner: GRAVEL}), PARAMS, PIXEL_M)
    np.testing.assert_array_equal(edge.preexisting[0:10, 28:40],
                                  region_mask(corner)[0:10, 28:40])


def test_remove_small_keeps_8_connected_parts_of_the_mapping_unit() -> None:
    """At 0.1 ha (10 px) a 9 px block goes, a 10 px block stays, and two diagonal 5 px blocks
    count as one 10 px part."""
    mask = np.zeros(SHAPE, dtype=bool)
    mask[0:3, 0:3] = True  # 9 px
    mask[10:12, 10:15] = True  # 10 px
    mask[20:21, 20:25] = True  # 5 px ...
    mask[21:22, 25:30] = True  # ... and 5 px touching it diagonally
    out = remove_small(mask, PARAMS.min_area_ha, PIXEL_M)
    expected = mask.copy()
    expected[0:3, 0:3] = False
    np.testing.assert_array_equal(out, expected)
    assert remove_small(mask, 0.0, PIXEL_M) is mask


# ---- a. new digging is detected, then confirmed ---------------------------------------------
def test_dug_patch_is_detected_then_confirmed_within_the_month(baseline: Baseline) -> None:
    """Gravel after the baseline: candidate at its first observation, confirmed (with the
    month's YYYYMM) by the next *valid* one; a cloud and an SCL-masked scene in between
    neither confirm nor clear it."""
    dug = region_mask(DUG)
    masked = np.ones((4, *SHAPE), dtype=bool)
    masked[2] = False  # scene 2: SCL says cloud everywhere
    scenes = [landscape(1, {DUG: GRAVEL}), scene(CLOUD), landscape(1, {DUG: GRAVEL}),
              landscape(1, {DUG: GRAVEL})]
    ev = evidence(scenes, baseline, masked)
    assert (ev[0][dug] == EVIDENCE).all() and (ev[0][~dug] == NO_EVIDENCE).all()
    assert (ev[1] == UNOBSERVED).all() and (ev[2] == UNOBSERVED).all()
    empty = DetectionState.empty(SHAPE)

    first = empty.advance(ev[:1], "2025-01", exclude=baseline.preexisting)
    np.testing.assert_array_equal(first.first_detected, np.where(dug, 202501, 0))
    assert not first.confirmed.any()
    np.testing.assert_array_equal(first.candidate, dug)

    waiting = empty.advance(ev[:3], "2025-01", exclude=baseline.preexisting)
    np.testing.assert_array_equal(waiting.first_detected, first.first_detected)
    assert not waiting.confirmed.any()

    done = empty.advance(ev, "2025-01", exclude=baseline.preexisting)
    np.testing.assert_array_equal(done.confirmed, np.where(dug, 202501, 0))
    np.testing.assert_array_equal(done.first_detected, np.where(dug, 202501, 0))
    assert not done.candidate.any()
    assert not empty.first_detected.any() and not empty.confirmed.any()  # not mutated


def test_dug_patch_is_confirmed_by_the_next_month(baseline: Baseline) -> None:
    """Gravel seen in the month's last scene is carried as a candidate into the next month
    and confirmed there, with that month's label; first_detected keeps the first month."""
    dug = region_mask(DUG)
    january = evidence([landscape(1), landscape(1, {DUG: GRAVEL})], baseline)
    february = evidence([scene(CLOUD), landscape(2, {DUG: GRAVEL})], baseline)
    state = DetectionState.empty(SHAPE).advance(january, "2025-01", baseline.preexisting)
    np.testing.assert_array_equal(state.candidate, dug)
    assert not state.confirmed.any()
    state = state.advance(february, "2025-02", baseline.preexisting)
    np.testing.assert_array_equal(state.confirmed, np.where(dug, 202502, 0))
    np.testing.assert_array_equal(state.first_detected, np.where(dug, 202501, 0))


def test_excluded_pixels_never_become_candidates(baseline: Baseline) -> None:
    """Pixels excluded (pre-existing digging) take no part even with repeated evidence."""
    ev = evidence([landscape(1, {DUG: GRAVEL})] * 3, baseline)
    exclude = region_mask(DUG)
    state = DetectionState.empty(SHAPE).advance(ev, "2025-01", exclude=exclude)
    assert not state.first_detected.any() and not state.confirmed.any()


# ---- b. one-off artefacts --------------------------------------------------------------------
def test_one_off_artefacts_never_confirm_and_are_cleared(baseline: Baseline) -> None:
    """Thick cloud (not observed), thin haze over savanna and a bright spot, each in exactly
    one scene: the last two become candidates, the next clear scene clears them, within a
    month and across a month boundary."""
    thin_haze = mix(CLOUD, DRY_SAVANNA, 0.4)
    artefacts = {SPOT_A: CLOUD, SPOT_B: thin_haze, SPOT_C: GRAVEL}
    scenes = [landscape(1), landscape(1, artefacts), landscape(1), landscape(1)]
    ev = evidence(scenes, baseline)
    assert (ev[1][SPOT_A.s] == UNOBSERVED).all()
    # Precondition: the haze and the spot are evidence on their own, so clearing is tested.
    assert (ev[1][SPOT_B.s] == EVIDENCE).all() and (ev[1][SPOT_C.s] == EVIDENCE).all()
    assert (ev[[0, 2, 3]] == NO_EVIDENCE).all()
    spots = region_mask(SPOT_B, SPOT_C)
    empty = DetectionState.empty(SHAPE)
    after_artefact = empty.advance(ev[:2], "2025-01", baseline.preexisting)
    np.testing.assert_array_equal(after_artefact.candidate, spots)
    state = empty.advance(ev, "2025-01", baseline.preexisting)
    assert not state.first_detected.any() and not state.confirmed.any()

    # The artefact in January's last scene, the ground clear again in February.
    state = empty.advance(ev[:2], "2025-01", baseline.preexisting)
    state = state.advance(evidence([scene(CLOUD), landscape(2)], baseline), "2025-02",
                          baseline.preexisting)
    assert not state.first_detected.any() and not state.confirmed.any()


# ---- c. burns ----------------------------------------------------------------------------------
def test_burn_that_regrows_is_never_evidence(baseline: Baseline) -> None:
    """A burn scar darkens the savanna and regrows over months: no observation is evidence."""
    burn = Region(15, 35, 15, 35)
    months = {
        "2025-01": [landscape(1, {burn: BURN_CHAR}), landscape(1, {burn: BURN_CHAR})],
        "2025-02": [landscape(2, {burn: mix(BURN_CHAR, DRY_SAVANNA, 0.5)})],
        "2025-05": [landscape(5, {burn: mix(BURN_CHAR, GREEN_VEGETATION, 0.5)})],
        "2025-07": [landscape(7)],
    }
    state = DetectionState.empty(SHAPE)
    for month, scenes in months.items():
        ev = evidence(scenes, baseline)
        assert (ev == NO_EVIDENCE).all(), month
        state = state.advance(ev, month, baseline.preexisting)
    assert not state.first_detected.any() and not state.confirmed.any()


# ---- d. fields ----------------------------------------------------------------------------------
def test_field_bare_again_after_baseline_is_not_detected(baseline: Baseline) -> None:
    """The field, bare in the baseline's dry season, is bare again: no evidence. The baseline
    makes the difference: the same soil on savanna ground would be evidence."""
    field_mask = region_mask(FIELD)
    scenes = [landscape(1), landscape(1), landscape(2)]  # the field is FIELD_SOIL in Jan-Feb
    ev = evidence(scenes, baseline)
    assert (ev == NO_EVIDENCE).all()
    state = DetectionState.empty(SHAPE).advance(ev, "2025-01", baseline.preexisting)
    assert not state.first_detected.any() and not state.confirmed.any()
    # Control: tilled soil where the baseline saw savanna is below its least-green state.
    moved = evidence([landscape(1, {DUG: FIELD_SOIL})], baseline)[0]
    assert (moved[DUG.s] == EVIDENCE).all() and (moved[field_mask] == NO_EVIDENCE).all()


# ---- e. months without data ------------------------------------------------------------------
def _busy_state(baseline: Baseline) -> DetectionState:
    """A state with confirmed pixels (DUG) and candidates (SPOT_C)."""
    jan = evidence([landscape(1, {DUG: GRAVEL}), landscape(1, {DUG: GRAVEL, SPOT_C: GRAVEL})],
                   baseline)
    state = DetectionState.empty(SHAPE).advance(jan, "2025-01", baseline.preexisting)
    assert state.confirmed.any() and state.candidate.any()
    return state


def test_month_without_valid_data_leaves_state_untouched(baseline: Baseline) -> None:
    """All observations UNOBSERVED (cloud, or SCL-masked), or no scene at all: the state's
    arrays come back exactly equal."""
    state = _busy_state(baseline)
    cloudy = evidence([scene(CLOUD), landscape(2, {SPOT_C: GRAVEL})], baseline,
                      valid=np.stack([np.ones(SHAPE, bool), np.zeros(SHAPE, bool)]))
    assert (cloudy == UNOBSERVED).all()
    no_scenes = np.zeros((0, *SHAPE), dtype="int8")
    no_bands = {b: np.zeros((0, *SHAPE), dtype="float32") for b in BANDS}
    from_no_bands = observation_evidence(no_bands, np.zeros((0, *SHAPE), bool),
                                         baseline.reference(2).layers(), np.ones(SHAPE, bool),
                                         PARAMS)
    assert from_no_bands.shape == (0, *SHAPE)
    for ev in (cloudy, no_scenes, from_no_bands):
        after = state.advance(ev, "2025-02", baseline.preexisting)
        assert np.array_equal(after.first_detected, state.first_detected)
        assert np.array_equal(after.confirmed, state.confirmed)
        assert after.first_detected.dtype == state.first_detected.dtype


# ---- f. water ----------------------------------------------------------------------------------
RIVER = Region(0, 40, 0, 3)
NEAR_RIVER = Region(10, 30, 3, 9)  # 10-60 m from the river: within water_buffer_m
FAR_FROM_RIVER = Region(10, 30, 28, 34)


@pytest.fixture(scope="module")
def river_baseline() -> Baseline:
    """A baseline with a clear river along the west edge, savanna elsewhere."""
    return build_baseline([scene(savanna(m), {RIVER: CLEAR_WATER}) for m in range(1, 13)],
                          PARAMS, PIXEL_M)


def test_water_buffer_around_baseline_river(river_baseline: Baseline) -> None:
    """``far_from_water`` is False up to water_buffer_m (6 px) from the river, True beyond."""
    far = river_baseline.far_from_water(PARAMS.water_buffer_m, PIXEL_M)
    assert not far[:, :9].any() and far[:, 9:].all()


def test_new_water_far_from_baseline_water_is_evidence_near_river_is_not(
        river_baseline: Baseline) -> None:
    """New turbid water away from any baseline water is evidence (a pit); the same water
    within water_buffer_m of the river is a flood, not evidence; clear water is not turbid."""
    flood = scene(DRY_SAVANNA, {RIVER: CLEAR_WATER, NEAR_RIVER: SILTY_WATER,
                                FAR_FROM_RIVER: SILTY_WATER})
    pits = scene(DRY_SAVANNA, {RIVER: CLEAR_WATER, FAR_FROM_RIVER: TURBID_WATER})
    clear = scene(DRY_SAVANNA, {RIVER: CLEAR_WATER, FAR_FROM_RIVER: CLEAR_WATER})
    ev = evidence([flood, pits, clear], river_baseline)
    assert _index_of(SILTY_WATER)["mndwi"] > CLEARLY_WATER
    assert _index_of(SILTY_WATER)["ndti"] >= PARAMS.turbid_ndti_min
    assert (ev[0][NEAR_RIVER.s] == NO_EVIDENCE).all()
    assert (ev[0][FAR_FROM_RIVER.s] == EVIDENCE).all()
    assert (ev[1][FAR_FROM_RIVER.s] == EVIDENCE).all()
    assert (ev[2][FAR_FROM_RIVER.s] == NO_EVIDENCE).all()
    elsewhere = ~region_mask(NEAR_RIVER, FAR_FROM_RIVER)
    assert (ev[:, elsewhere] == NO_EVIDENCE).all()


def test_turbid_flood_next_to_baseline_river_is_not_evidence(river_baseline: Baseline) -> None:
    """Strongly turbid flood water next to the river (within water_buffer_m) is no evidence."""
    flood = scene(DRY_SAVANNA, {RIVER: CLEAR_WATER, NEAR_RIVER: TURBID_WATER})
    ev = evidence([flood], river_baseline)
    assert (ev[0][NEAR_RIVER.s] == NO_EVIDENCE).all()


# ---- g. determinism and monotonic confirmation ------------------------------------------------
def _season(baseline: Baseline) -> list[DetectionState]:
    """States after Jan..Apr: digging in Jan, artefacts, then the dug patch revegetates."""
    months = {
        "2025-01": [landscape(1, {DUG: GRAVEL}), landscape(1, {DUG: GRAVEL, SPOT_C: GRAVEL})],
        "2025-02": [landscape(2), scene(CLOUD)],
        "2025-03": [landscape(3, {SPOT_B: GRAVEL}), landscape(3, {SPOT_B: GRAVEL})],
        "2025-04": [landscape(4, {DUG: GREEN_VEGETATION, SPOT_B: DRY_SAVANNA})],
    }
    states = [DetectionState.empty(SHAPE)]
    for month, scenes in months.items():
        states.append(states[-1].advance(evidence(scenes, baseline), month,
                                         baseline.preexisting))
    return states[1:]


def test_rerun_is_identical_and_confirmed_pixels_never_unconfirm(baseline: Baseline) -> None:
    """The same inputs give the same arrays; once confirmed, a pixel keeps its month even
    when later observations show no evidence, and first_detected stays too."""
    first, second = _season(baseline), _season(baseline)
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(a.first_detected, b.first_detected)
        assert np.array_equal(a.confirmed, b.confirmed)
    dug = region_mask(DUG)
    for state in first:
        assert (state.confirmed[dug] == 202501).all()
        assert (state.first_detected[dug] == 202501).all()
    final = first[-1]
    np.testing.assert_array_equal(final.confirmed,
                                  np.select([dug, region_mask(SPOT_B)], [202501, 202503], 0))
    assert not final.candidate.any()
    for earlier, later in itertools.pairwise(first):  # confirmed only ever grows
        assert (later.confirmed[earlier.confirmed > 0]
                == earlier.confirmed[earlier.confirmed > 0]).all()


# ---- h. real ground: partly dug pixels, flickering edges, sandbars, long rains -----------------
def _run_months(baseline: Baseline, months: Mapping[str, Sequence[Bands]],
                valid: Mapping[str, np.ndarray] | None = None) -> DetectionState:
    """The state after each ``YYYY-MM`` month's scenes, in order."""
    state = DetectionState.empty(SHAPE)
    for label, scenes in months.items():
        calendar = int(label[5:])
        mask = (valid or {}).get(label)
        ev = (evidence(scenes, baseline, mask, month=calendar) if scenes
              else np.zeros((0, *SHAPE), dtype="int8"))
        state = state.advance(ev, label, exclude=baseline.dug_at_end)
    return state


@pytest.mark.parametrize("month", [1, 8])
def test_partly_dug_pixel_is_found_with_its_share(baseline: Baseline, month: int) -> None:
    """A working that digs 60 % of each pixel, the rest left as the season's savanna, is found
    and confirmed in the dry season and in the rains, and its dug share (NDVI unmixed against
    the pixel's own season) comes out near 0.6, so it joins the footprint; a pixel dug a fifth
    stays out of the footprint (its share below ``footprint_share_min``), though in the rains
    bright gravel lowers green grass's NDVI enough to confirm it."""
    dug, lightly = region_mask(DUG), region_mask(SPOT_A)
    patches = {DUG: mix(GRAVEL, savanna(month), 0.6), SPOT_A: mix(GRAVEL, savanna(month), 0.2)}
    label = f"2025-{month:02d}"
    state = _run_months(baseline, {label: [landscape(month, patches)] * 2})
    assert (state.confirmed[dug] == int(label.replace("-", ""))).all()
    assert not state.confirmed[~(dug | lightly)].any()
    vi = ndvi(landscape(month, patches))
    share = dug_share(vi, baseline.reference(month).ndvi_floor, PARAMS)
    assert np.all(np.abs(share[dug] - 0.6) < 0.1), np.unique(share[dug])
    assert np.all(share[lightly] < PARAMS.footprint_share_min), np.unique(share[lightly])


def _shifted(bands: Bands, dy: float, dx: float) -> Bands:
    """A scene misregistered by ``(dy, dx)`` pixels (bilinear, as a resampled scene is)."""
    return {b: ndimage.shift(v, (dy, dx), order=1, mode="nearest") for b, v in bands.items()}


def test_misregistered_edges_flicker_but_never_confirm() -> None:
    """A river, the field and the old pit, each scene offset by up to half a pixel in a random
    direction (Sentinel-2's multi-temporal registration): over three months of six scenes
    each, in the dry season and the rains, no pixel is confirmed."""
    def ground(month: int) -> Bands:
        return landscape(month, {RIVER: CLEAR_WATER})

    river_baseline = build_baseline([ground(m) for m in range(1, 13)], PARAMS, PIXEL_M,
                                    months=list(range(1, 13)))
    rng = np.random.default_rng(7)
    months = {}
    for month in (2, 3, 8):
        scenes = []
        for _ in range(6):
            radius, angle = 0.5 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
            scenes.append(_shifted(ground(month), radius * np.sin(angle),
                                   radius * np.cos(angle)))
        months[f"2025-{month:02d}"] = scenes
    state = _run_months(river_baseline, months)
    assert not state.confirmed.any(), np.argwhere(state.confirmed > 0)[:5]


#: A riverbed beside the low-water river: bare sand and gravel bars in the dry season.
BED = Region(0, 40, 3, 7)
SAND_BAR: Spectrum = (0.12, 0.17, 0.23, 0.28, 0.36, 0.30)
#: Bank beside the bed, where a working is dug.
BANK = Region(16, 24, 8, 12)
#: Months the rising river covers its bed.
FLOODED_MONTHS = (6, 7, 8, 9, 10)


def _river_with_bars(month: int, patches: Mapping[Region, Spectrum] | None = None) -> Bands:
    bed = TURBID_WATER if month in FLOODED_MONTHS else SAND_BAR
    return landscape(month, {RIVER: CLEAR_WATER, BED: bed, **(patches or {})})


def test_dry_season_sandbars_are_neither_preexisting_nor_new() -> None:
    """Bars bare from November to May and flooded in the rains are riverbed: not pre-existing
    at the baseline's end, and bare again in the next dry season they are no new digging;
    gravel dug on the bank beside them is."""
    assert _index_of(SAND_BAR)["ndvi"] < 0.15 and _index_of(SAND_BAR)["mndwi"] < 0
    bars = build_baseline([_river_with_bars(m) for m in range(1, 13)], PARAMS, PIXEL_M,
                          months=list(range(1, 13)))
    bed, bank = region_mask(BED), region_mask(BANK)
    assert not bars.preexisting[bed].any()
    months = {f"2025-{m:02d}": [_river_with_bars(m, {BANK: GRAVEL})] * 2
              for m in (1, 2, 3, 7, 11)}
    state = _run_months(bars, months)
    assert not state.confirmed[bed].any() and not state.candidate[bed].any()
    assert (state.confirmed[bank] == 202501).all()


@pytest.mark.parametrize("rains_in_baseline", [True, False])
def test_digging_begun_in_a_rainy_gap_is_found_in_the_first_clear_month(
        rains_in_baseline: bool) -> None:
    """June to October without a clear view (every observation cloud); a working 70 % dug
    during the gap is found, confirmed and dated in November, the first clear month, whether
    or not the baseline itself saw the rains (long rains in the baseline year too)."""
    seen = list(range(1, 13)) if rains_in_baseline else [1, 2, 3, 4, 5, 11, 12]
    base = build_baseline([landscape(m) for m in seen], PARAMS, PIXEL_M, months=seen)
    dug = region_mask(DUG)
    worked = {DUG: mix(GRAVEL, savanna(11), 0.7)}
    months: dict[str, list[Bands]] = {"2025-05": [landscape(5)] * 2}
    valid: dict[str, np.ndarray] = {}
    for m in range(6, 11):
        label = f"2025-{m:02d}"
        months[label] = [scene(CLOUD)] * 3
        valid[label] = np.zeros((3, *SHAPE), dtype=bool)
    months["2025-11"] = [landscape(11, worked)] * 2
    state = _run_months(base, months, valid)
    assert (state.first_detected[dug] == 202511).all()
    assert (state.confirmed[dug] == 202511).all()
    assert not state.confirmed[~dug].any()


def test_field_seen_only_at_the_edges_of_the_rains_is_not_preexisting() -> None:
    """The rains' peak hidden by cloud (July-September unseen): a field seen 70 % green in June
    and October, and bare before and after, still looks partly dug against the green savanna
    (share 0.3), but it greened with the savanna and turned bare again: not pre-existing. A
    working 60 % dug, whose grass greens too, is."""
    partly = Region(18, 24, 24, 30)
    seen = [1, 2, 3, 4, 5, 6, 10, 11, 12]

    def month_of(m: int) -> Bands:
        edge = mix(FIELD_SOIL, GREEN_VEGETATION, 0.3)
        crop = edge if m in (6, 10) else FIELD_SOIL  # sown in June, harvested in October
        return landscape(m, {FIELD: crop, partly: mix(GRAVEL, savanna(m), 0.6)})

    base = build_baseline([month_of(m) for m in seen], PARAMS, PIXEL_M, months=seen)
    june = ndvi(month_of(6))
    share = dug_share(june, np.float32(np.median(june)), PARAMS)
    assert PARAMS.preexisting_undug_share_max < share[FIELD.s].min() < PARAMS.preexisting_share_min
    assert not base.preexisting[FIELD.s].any()
    assert base.preexisting[partly.s].all()
