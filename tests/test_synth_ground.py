"""The hardships of real ground in ``kpgeo synth`` (:mod:`kpgeo.synth.ground`), each against its
truth: partly dug pixels, riverbeds, misregistration, roads, long rains and years that differ.

Worlds are drawn on a 2 x 2 km window of Tortiya's grid and looked at through their surface
reflectance or rendered scenes, as the archive writes them; the archive's truth rasters are
checked on the shared small archive (tests/conftest.py).
"""

from __future__ import annotations

import json

import numpy as np
import pystac
import pytest
import rasterio
from odc.geo.geobox import GeoBox

from kpgeo.aoi import Site
from kpgeo.months import parse_month_range
from kpgeo.synth import SynthResult
from kpgeo.synth.ground import SEASON_SHIFT_MAX_DAYS, Ground
from kpgeo.synth.scenes import OFFSET, SCALE, Acquisition, render, schedule
from kpgeo.synth.world import World, build_world

MONTHS = parse_month_range("2023-01..2024-12")
SEED = 11
#: Bands of :meth:`World.surface`, in order.
BLUE, GREEN, RED, NIR, SWIR16 = range(5)


def _day(text: str) -> float:
    return float(np.datetime64(text, "D").astype("int64"))


def _nd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a - b) / (a + b)


def _ndvi(surface: np.ndarray) -> np.ndarray:
    return _nd(surface[NIR], surface[RED])


def _mndwi(surface: np.ndarray) -> np.ndarray:
    return _nd(surface[GREEN], surface[SWIR16])


@pytest.fixture(scope="module")
def grid(small_site: Site) -> GeoBox:
    """200 x 200 px of the site's grid (scenes have whole 20 m pixels)."""
    return small_site.grid[:200, :200]


@pytest.fixture(scope="module")
def world(grid: GeoBox) -> World:
    """Every hardship on, two years."""
    return build_world(grid, MONTHS, SEED, ground=Ground())


@pytest.fixture(scope="module")
def clean_world(grid: GeoBox) -> World:
    """The same seed in the clean world of the first simulator."""
    return build_world(grid, MONTHS, SEED, ground=Ground.simple())


def test_partly_dug_pixels_mix_worked_ground_with_grass(world: World,
                                                        clean_world: World) -> None:
    """Inside workings most pixels are dug 50-95 %, edges less than half; truth calls a pixel
    dug from half; the more of a pixel is dug, the lower its NDVI (a linear mixture). The clean
    world digs whole pixels only."""
    share = world.dig_share
    touched = share > 0
    assert touched.sum() > 200
    partial = (share >= 0.5) & (share < 0.95)
    assert partial.sum() >= 0.3 * (share >= 0.5).sum()
    assert ((share > 0) & (share < 0.5)).any()  # a working's edge shades off
    end = _day("2025-01-01")
    assert np.array_equal(world.dug_by(end), (share >= 0.5) & (world.dig_day <= end))
    assert set(np.unique(clean_world.dig_share)) <= {0.0, 1.0}
    # NDVI by share, in the dry season of the second year (every working begun by then).
    day = _day("2024-02-15")
    vi = _ndvi(world.surface(day))
    dug = (world.dig_day <= day) & ~world.pit & ~world.channel
    medians = [float(np.median(vi[dug & (share >= lo) & (share < hi)]))
               for lo, hi in ((0.2, 0.5), (0.5, 0.75), (0.75, 0.95))]
    assert medians[0] > medians[1] > medians[2], medians


def test_riverbed_bars_lie_bare_in_the_dry_season_and_flood_in_the_rains(
        world: World, clean_world: World) -> None:
    """Truth's riverbed: land, bare and bright in February, under water in September."""
    bed = world.riverbed & ~(world.dig_day <= _day("2024-12-31"))
    assert bed.sum() > 50
    dry = world.surface(_day("2024-02-15"))
    assert (_mndwi(dry)[bed] < 0).mean() >= 0.95
    assert np.median(_ndvi(dry)[bed]) < 0.15
    assert np.median(dry[RED][bed]) > 0.15
    wet = world.surface(_day("2024-09-15"))
    assert (_mndwi(wet)[bed] > 0).mean() >= 0.9
    assert not clean_world.riverbed.any()


def _estimated_shift(a: np.ndarray, b: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Offset (rows, columns) of image ``b`` against ``a``, by least squares on the gradients
    (Lucas-Kanade: b(x) = a(x - d) ~ a(x) - d . grad a(x)) over ``valid`` pixels."""
    gy, gx = np.gradient(a)
    inner = np.zeros_like(valid)
    inner[2:-2, 2:-2] = True
    use = valid & inner
    design = np.stack([gy[use], gx[use]], axis=1)
    shift, *_ = np.linalg.lstsq(design, -(b - a)[use], rcond=None)
    return shift


def test_scenes_are_misregistered_by_at_most_half_a_pixel_as_recorded(
        world: World, clean_world: World) -> None:
    """Two dry-season scenes of one world: each records its offset (at most 0.5 px), and the
    offset measured between their NIR images is the difference of the recorded ones."""
    passes = [a for a in schedule(parse_month_range("2024-01..2024-02"))]
    scenes = [render(world, a, SEED) for a in passes[:8]]
    clear = [s for s in scenes if s.cloud_pct < 1 and s.nodata_pct == 0]
    assert len(clear) >= 2, [s.cloud_pct for s in scenes]
    first, second = clear[0], clear[1]
    for s in clear:
        assert np.hypot(*s.shift_px) <= 0.5 + 1e-9
    assert any(np.hypot(*s.shift_px) > 0.05 for s in clear)
    nir = [s.bands10["nir"].astype("float64") * SCALE + OFFSET for s in (first, second)]
    valid = np.ones(nir[0].shape, dtype=bool)
    measured = _estimated_shift(nir[0], nir[1], valid)
    recorded = np.subtract(second.shift_px, first.shift_px)
    np.testing.assert_allclose(measured, recorded, atol=0.12)
    assert render(clean_world, passes[0], SEED).shift_px == (0.0, 0.0)


def test_roads_stay_bare_through_the_rains(world: World, clean_world: World) -> None:
    """Laterite tracks, one or two pixels wide, are far less green than the savanna in
    August."""
    road = world.road & ~(world.dig_day <= _day("2024-12-31")) & ~world.channel
    assert road.sum() > 50
    vi = _ndvi(world.surface(_day("2024-08-15")))
    savanna = ~road & ~world.field & ~world.forest & ~(world.dig_share > 0) & ~world.riverbed
    assert np.median(vi[road]) < np.median(vi[savanna]) - 0.3
    assert not clean_world.road.any()


def test_long_rains_leave_almost_no_clear_view(grid: GeoBox) -> None:
    """Scenes of the months named as long rains are almost wholly cloud; the same months of an
    ordinary year are not."""
    rains = parse_month_range("2024-07..2024-08")
    wet = build_world(grid, rains, SEED, ground=Ground(long_rains=("2024-07..2024-08",)))
    usual = build_world(grid, rains, SEED, ground=Ground())
    passes: list[Acquisition] = schedule(rains)
    wet_cloud = [render(wet, a, SEED).cloud_pct for a in passes]
    usual_cloud = [render(usual, a, SEED).cloud_pct for a in passes]
    assert min(wet_cloud) >= 90, wet_cloud
    assert np.mean(usual_cloud) < np.mean(wet_cloud) - 10


def test_years_differ_in_their_seasons_and_floods(world: World, clean_world: World) -> None:
    """Each year's rains come up to three weeks early or late: the savanna's NDVI on the same
    calendar day at the onset of the rains differs between years as their shifts do; the
    clean world repeats its year."""
    shifts = world.years.shift_days
    assert all(abs(v) <= SEASON_SHIFT_MAX_DAYS for v in shifts.values())
    assert abs(shifts[2023] - shifts[2024]) > 3, shifts  # this seed's years differ

    def onset_ndvi(w: World, year: int) -> float:
        untouched = (w.dig_share == 0) & ~w.channel & ~w.field & ~w.road & ~w.riverbed
        return float(np.median(_ndvi(w.surface(_day(f"{year}-06-01")))[untouched]))

    late = max((2023, 2024), key=lambda y: shifts[y])  # rains later: less green on 1 June
    early = 2023 if late == 2024 else 2024
    assert onset_ndvi(world, early) > onset_ndvi(world, late) + 0.01
    assert onset_ndvi(clean_world, 2023) == pytest.approx(onset_ndvi(clean_world, 2024),
                                                          abs=0.002)


def test_archive_truth_layers_agree(small_archive: SynthResult) -> None:
    """The archive's truth: dug pixels (first_month) are exactly those at least half dug,
    every touched pixel has a reached month and a site, riverbed and roads are drawn, and each
    scene records its misregistration."""
    truth = small_archive.truth

    def read(name: str) -> np.ndarray:
        with rasterio.open(truth / f"{name}.tif") as src:
            return src.read(1)

    share, first, reached = read("dug_share"), read("first_month"), read("reached_month")
    site, bed, roads, pre = read("site_id"), read("riverbed"), read("roads"), read("preexisting")
    assert 0 <= share.min() and share.max() <= 1
    dug_new = first > 0
    assert np.all(share[dug_new] >= 0.5)
    assert np.all(reached[share > 0] > 0) and np.all(site[reached > 0] >= 0)
    assert np.all(site[reached == 0] == -1)
    assert np.all(reached[dug_new] <= first[dug_new])
    assert not (dug_new & (pre > 0)).any()
    assert bed.any() and roads.any() and not (bed.astype(bool) & dug_new).all()
    collection = pystac.read_file(str(small_archive.collection))
    items = list(collection.get_items(recursive=True))
    shifts = [item.properties["kpgeo:shift_px"] for item in items]
    assert all(len(s) == 2 and np.hypot(*s) <= 0.5 + 1e-3 for s in shifts)
    assert json.loads(json.dumps(collection.extra_fields["kpgeo:synth"]))["ground"]["roads"]


def test_cli_synth_long_rains_and_the_clean_world(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``kpgeo synth --long-rains`` clouds the months named over; ``--clean`` registers every
    scene; a bad range is exit 2 with nothing written."""
    from click.testing import CliRunner

    from kpgeo.cli import cli

    from .builders import write_site_file

    aoi = write_site_file(tmp_path / "tw.geojson", (-5.704, 8.716, -5.696, 8.724), name="tw")
    runner = CliRunner()
    wet = tmp_path / "wet"
    result = runner.invoke(cli, ["synth", "--aoi", str(aoi), "--months", "2024-02",
                                 "--long-rains", "2024-02..2024-02", "--out", str(wet)])
    assert result.exit_code == 0, result.output
    collection = pystac.read_file(str(wet / "collection.json"))
    assert collection.extra_fields["kpgeo:synth"]["ground"]["long_rains"] == ["2024-02..2024-02"]
    items = list(collection.get_items(recursive=True))
    assert items and all(i.properties["eo:cloud_cover"] >= 90 for i in items)
    clean = tmp_path / "clean"
    result = runner.invoke(cli, ["synth", "--aoi", str(aoi), "--months", "2024-02", "--clean",
                                 "--out", str(clean)])
    assert result.exit_code == 0, result.output
    collection = pystac.read_file(str(clean / "collection.json"))
    assert not collection.extra_fields["kpgeo:synth"]["ground"]["partial_digging"]
    assert all(i.properties["kpgeo:shift_px"] == [0.0, 0.0]
               for i in collection.get_items(recursive=True))
    bad = tmp_path / "bad"
    result = runner.invoke(cli, ["synth", "--aoi", str(aoi), "--months", "2024-02",
                                 "--long-rains", "2024-13", "--out", str(bad)])
    assert result.exit_code == 2 and "--long-rains '2024-13'" in result.output
    assert not bad.exists()
