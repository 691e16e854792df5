"""The ``stac`` source and monthly composites on real COGs: scale and offset, the neighbouring
UTM zone, SCL masking, gaps, laziness, and disk versus a loopback HTTP server (docs/product.md §6, §7)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from pyproj import Transformer

from kpgeo.aoi import load_site
from kpgeo.config import MaskConfig
from kpgeo.methods.composite import COUNT_BAND, month_quality, monthly_composite
from kpgeo.months import parse_month_range
from kpgeo.sources.gdal_env import gdal_options, is_remote
from kpgeo.sources.stac import StacSource

from .builders import (
    grid_for,
    make_scene,
    range_server,
    reflectance_to_dn,
    write_collection,
    write_site_file,
)

JAN = parse_month_range("2024-01")
NO_BUFFER = MaskConfig(cloud_buffer_m=0.0)


@pytest.fixture()
def site(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A 400 x 400 m site west of Tortiya, inside UTM zone 30 near zone 29."""
    path = write_site_file(tmp_path / "site.geojson", (-5.9000, 8.7000, -5.8964, 8.7036))
    return load_site(path)


def _raise_if_computed():  # type: ignore[no-untyped-def]
    import dask

    def fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("a dask computation ran where the stage should stay lazy")

    return dask.config.set(scheduler=fail)


def test_known_pixel_has_scale_and_offset_applied(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid = site.grid
    red = reflectance_to_dn(np.full(grid.shape.yx, 0.2))
    red[5, 7] = 1500  # 1500 * 0.0001 - 0.1 = 0.05
    red[6, 7] = 0  # no data
    scl = np.full(grid.shape.yx, 4, "uint8")
    item = make_scene(tmp_path, "a", dt.datetime(2024, 1, 5, 10, 50), grid, {"red": red}, scl)
    other = make_scene(tmp_path, "b", dt.datetime(2024, 1, 10, 10, 50), grid,
                       {"red": np.full(grid.shape.yx, 2000, "uint16")}, scl,
                       scale=0.0001, offset=0.0)  # another provider: no offset
    source = StacSource(str(write_collection(tmp_path / "c", [item, other])), mask=NO_BUFFER)
    items = source.search(site, JAN)
    assert [i.id for i in items] == ["a", "b"]
    with _raise_if_computed():
        scenes = source.load(items, site)  # stays lazy
        composite = monthly_composite(scenes)
    red_values = scenes.red.values
    assert red_values.dtype == np.float32
    assert red_values[0, 5, 7] == pytest.approx(0.05, abs=1e-6)
    assert red_values[0, 0, 0] == pytest.approx(0.2, abs=1e-6)
    assert np.isnan(red_values[0, 6, 7]) and not scenes.valid.values[0, 6, 7]
    assert red_values[1, 0, 0] == pytest.approx(0.2, abs=1e-6)  # 2000 * 0.0001 + 0
    composite = composite.compute()
    assert composite.red.values[5, 7] == pytest.approx((0.05 + 0.2) / 2, abs=1e-6)
    assert composite[COUNT_BAND].values[6, 7] == 1


def test_scene_on_the_neighbouring_zone_lands_on_the_right_pixels(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid30 = site.grid
    # A target block of 8 x 8 pixels on the site's zone-30 grid.
    rows, cols = slice(12, 20), slice(20, 28)
    x0 = grid30.affine.c + cols.start * 10
    x1 = grid30.affine.c + cols.stop * 10
    y1 = grid30.affine.f - rows.start * 10
    y0 = grid30.affine.f - rows.stop * 10
    # The scene comes on a zone-29 grid: mark its pixels whose centres fall in the block.
    to30 = Transformer.from_crs(32629, 32630, always_xy=True)
    corner29 = Transformer.from_crs(32630, 32629, always_xy=True).transform(
        grid30.affine.c - 200, grid30.affine.f + 200)
    grid29 = grid_for("EPSG:32629", np.floor(corner29[0] / 10) * 10 - 200,
                      np.ceil(corner29[1] / 10) * 10 + 200, (90, 90))
    xs = grid29.affine.c + (np.arange(90) + 0.5) * 10
    ys = grid29.affine.f - (np.arange(90) + 0.5) * 10
    gx, gy = np.meshgrid(xs, ys)
    ex, ey = to30.transform(gx, gy)
    inside = (ex > x0) & (ex < x1) & (ey > y0) & (ey < y1)
    nir = reflectance_to_dn(np.where(inside, 0.5, 0.1))
    item = make_scene(tmp_path, "z29", dt.datetime(2024, 1, 5, 10, 50), grid29, {"nir": nir},
                      np.full((90, 90), 4, "uint8"))
    assert item.properties["proj:epsg"] == 32629
    source = StacSource(str(write_collection(tmp_path / "c", [item])), mask=NO_BUFFER)
    loaded = source.load(source.search(site, JAN), site).nir.values[0]
    assert loaded.shape == tuple(grid30.shape.yx)
    inner = loaded[rows.start + 1:rows.stop - 1, cols.start + 1:cols.stop - 1]
    assert np.allclose(inner, 0.5, atol=1e-3)
    outside = np.ones(loaded.shape, bool)
    outside[rows.start - 1:rows.stop + 1, cols.start - 1:cols.stop + 1] = False
    assert np.allclose(loaded[outside], 0.1, atol=1e-3)
    assert np.argmax(loaded.mean(axis=1)) in range(rows.start, rows.stop)
    assert np.argmax(loaded.mean(axis=0)) in range(cols.start, cols.stop)


def test_cloud_and_shadow_never_reach_a_composite(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid = site.grid
    shape = grid.shape.yx
    items = []
    rng = np.random.default_rng(0)
    for day in range(1, 6):
        cloud = np.zeros(shape, bool)
        cloud[rng.integers(0, 30):, : rng.integers(10, 40)] = True
        shadow = np.roll(cloud, 5, axis=1) & ~cloud
        scl = np.where(cloud, 9, np.where(shadow, 3, 4)).astype("uint8")
        blue = np.where(cloud, 0.6, np.where(shadow, 0.01, 0.08))
        items.append(make_scene(tmp_path, f"s{day}", dt.datetime(2024, 1, day * 5, 10, 50), grid,
                                {"blue": reflectance_to_dn(blue)}, scl))
    source = StacSource(str(write_collection(tmp_path / "c", items)),
                        mask=MaskConfig(cloud_buffer_m=20.0))
    composite = monthly_composite(source.load(source.search(site, JAN), site)).compute()
    blue = composite.blue.values
    finite = blue[np.isfinite(blue)]
    assert finite.size > 0
    assert np.allclose(finite, 0.08, atol=1e-4)  # never 0.6 (cloud) nor 0.01 (shadow)


def test_month_whose_scenes_are_all_cloudy_is_a_gap(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid = site.grid
    items = [make_scene(tmp_path, f"c{d}", dt.datetime(2024, 1, d, 10, 50), grid, {},
                        np.full(grid.shape.yx, scl, "uint8"))
             for d, scl in ((3, 9), (8, 8), (13, 10), (18, 3))]
    source = StacSource(str(write_collection(tmp_path / "c", items)))
    composite = monthly_composite(source.load(source.search(site, JAN), site)).compute()
    assert int(composite[COUNT_BAND].max()) == 0
    assert np.isnan(composite.red.values).all()
    quality = month_quality(composite[COUNT_BAND].values, site.pixel_mask(), 4, 30.0)
    assert (quality.status, quality.scenes, quality.valid_pct) == ("gap", 4, 0.0)


def test_month_without_scenes_is_a_gap(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    grid = site.grid
    item = make_scene(tmp_path, "a", dt.datetime(2024, 1, 5, 10, 50), grid, {},
                      np.full(grid.shape.yx, 4, "uint8"))
    source = StacSource(str(write_collection(tmp_path / "c", [item])))
    items = source.search(site, parse_month_range("2024-02"))
    assert items == []
    composite = monthly_composite(source.load(items, site))
    assert np.isnan(composite.red.values).all()
    assert month_quality(composite[COUNT_BAND].values, site.pixel_mask(), 0, 30).status == "gap"


def test_same_archive_from_disk_and_over_http_gives_identical_composites(
        small_archive, small_site) -> None:  # type: ignore[no-untyped-def]
    root = small_archive.collection.parent
    months = parse_month_range("2024-02")
    local = StacSource(str(small_archive.collection), chunk_px=128)
    items_local = local.search(small_site, months)
    assert len(items_local) == 6
    composite_local = monthly_composite(local.load(items_local, small_site)).compute()
    with range_server(root) as url:
        remote = StacSource(f"{url}/collection.json", chunk_px=128)
        assert not remote.is_api
        items_remote = remote.search(small_site, months)
        assert all(i.assets["red"].get_absolute_href().startswith("http://127.0.0.1")
                   for i in items_remote)
        composite_remote = monthly_composite(remote.load(items_remote, small_site)).compute()
    assert [i.id for i in items_local] == [i.id for i in items_remote]
    xr.testing.assert_identical(composite_local, composite_remote)
    assert int(composite_local[COUNT_BAND].max()) >= 3
    assert 0.0 < float(composite_local.red.median()) < 0.4


def test_synthetic_archive_composite_is_plausible_savanna(small_archive, small_site) -> None:  # type: ignore[no-untyped-def]
    source = StacSource(str(small_archive.collection))
    scenes = source.load(source.search(small_site, parse_month_range("2024-01")), small_site)
    assert set(scenes.scene_id.values) and all(s.startswith("S2") for s in scenes.scene_id.values)
    composite = monthly_composite(scenes).compute()
    ndvi = (composite.nir - composite.red) / (composite.nir + composite.red)
    assert 0.1 < float(ndvi.median()) < 0.5  # dry-season savanna
    assert float(composite.swir16.median()) > float(composite.red.median())


def test_loads_of_different_files_never_share_dask_keys(small_archive, small_site) -> None:  # type: ignore[no-untyped-def]
    """Two loads of one scene id whose red asset points at different files (a catalog served
    twice, an item edited) compute to their own pixels in one graph: the keys name the files."""
    import dask

    source = StacSource(str(small_archive.collection))
    items = source.search(small_site, parse_month_range("2024-02"))
    first, other = items[0], items[1]
    edited = first.clone()
    edited.assets["red"].href = other.assets["red"].get_absolute_href()
    # with that file's grid: a COG off its item's grid is skipped (kpgeo.sources.cog_checks)
    for key in ("proj:shape", "proj:transform"):
        edited.assets["red"].extra_fields[key] = other.assets["red"].extra_fields[key]
    a, b = source.load([first], small_site), source.load([edited], small_site)
    red_a, red_b = dask.compute(a.red, b.red)
    assert not np.array_equal(red_a.values, red_b.values, equal_nan=True)
    alone = source.load([edited], small_site).red.compute()
    np.testing.assert_array_equal(red_b.values, alone.values)


@pytest.mark.parametrize(("href", "remote"), [
    ("https://example.org/T30PSY/B04.tif", True), ("s3://bucket/B04.tif", True),
    ("/vsicurl/https://example.org/B04.tif", True), ("/data/T30PSY/B04.tif", False),
    ("file:///data/T30PSY/B04.tif", False), ("B04.tif", False)])
def test_vsi_cache_is_set_for_remote_files_only(href: str, remote: bool) -> None:
    """GDAL's in-memory cache of fetched bytes helps remote reads; a local file has the OS's
    page cache, and the extra layer only costs time."""
    assert is_remote(href) is remote
    options = gdal_options(remote=is_remote(href))
    assert ("VSI_CACHE" in options) is remote
    assert options["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"
