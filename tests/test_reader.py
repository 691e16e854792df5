"""The stac source's reader against GDAL's warper, on real Sentinel-2 pixels.

The source raster is the red band of a real Sentinel-2 L2A median over galamsey on the Pra river
(``tests/data/ghana_twifo_praso_galamsey_patches_2025``, EPSG:4326, ~10 m), written as a COG
with nodata 0. :func:`kpgeo.sources.reader.read_reflectance` brings it onto UTM grids by its
three paths (pasted, resampled by GDAL while reading, resampled through cached source pixels),
and each result is compared with ``rasterio.warp.reproject`` of the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from affine import Affine
from odc.geo.geobox import GeoBox
from rasterio.enums import Resampling

from kpgeo.products.export import write_cog
from kpgeo.sources.reader import (
    Asset,
    ReadOptions,
    Tile,
    read_overpass,
    read_pixels,
    read_reflectance,
)

from .test_realdata import FOLDER, GALAMSEY

pytestmark = pytest.mark.skipif(FOLDER is None, reason="real Ghana patches not found")
SCALE = 1e-4
UTM_30N = "EPSG:32630"


def _red_dn() -> tuple[np.ndarray, Affine, str]:
    assert FOLDER is not None
    with rasterio.open(FOLDER / f"{GALAMSEY}.tif") as src:
        return np.round(src.read(3)).astype("uint16"), src.transform, str(src.crs)


def _cog(path: Path, dn: np.ndarray, transform: Affine, crs: str) -> Asset:
    write_cog(path, dn, GeoBox(dn.shape, transform, crs), nodata=0)
    return Asset("red", str(path), scale=SCALE, offset=0.0, nodata=0)


def _warp(dn: np.ndarray, transform: Affine, crs: str, grid: GeoBox,
          resampling: Resampling) -> np.ndarray:
    out = np.zeros(grid.shape.yx, dtype="float32")
    rasterio.warp.reproject(dn.astype("float32"), out, src_transform=transform, src_crs=crs,
                            src_nodata=0, dst_transform=grid.affine, dst_crs=str(grid.crs),
                            dst_nodata=0, resampling=resampling)
    out[out == 0] = np.nan
    return out * np.float32(SCALE)


@pytest.fixture(scope="module")
def geographic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Asset, np.ndarray, Affine, str]:
    dn, transform, crs = _red_dn()
    path = tmp_path_factory.mktemp("reader") / "red-4326.tif"
    return _cog(path, dn, transform, crs), dn, transform, crs


def _utm_grid_inside(transform: Affine, shape: tuple[int, int], crs: str,
                     resolution: float = 10.0) -> GeoBox:
    """A UTM 30N grid lying inside the source's footprint (a margin of 15 m)."""
    left, bottom, right, top = rasterio.warp.transform_bounds(
        crs, UTM_30N, *rasterio.transform.array_bounds(*shape, transform))
    x0, y0 = np.ceil((left + 15) / 10) * 10, np.floor((top - 15) / 10) * 10
    width = int((right - 15 - x0) // resolution)
    height = int((y0 - bottom - 15) // resolution)
    return GeoBox((height, width), Affine(resolution, 0, x0, 0, -resolution, y0), UTM_30N)


def test_other_crs_nearest_picks_the_warper_s_source_pixel(geographic) -> None:  # type: ignore[no-untyped-def]
    asset, dn, transform, crs = geographic
    grid = _utm_grid_inside(transform, dn.shape, crs)
    got = read_reflectance(asset, grid, "nearest")
    expected = _warp(dn, transform, crs, grid, Resampling.nearest)
    same = np.isclose(got, expected, equal_nan=True)
    # GDAL's approximate transformer (0.125 px) may pick a neighbour for a centre near an edge.
    assert same.mean() > 0.99, same.mean()
    assert np.isfinite(got).mean() > 0.99


def test_other_crs_bilinear_agrees_with_the_warper(geographic) -> None:  # type: ignore[no-untyped-def]
    asset, dn, transform, crs = geographic
    grid = _utm_grid_inside(transform, dn.shape, crs)
    got = read_reflectance(asset, grid, "bilinear")
    expected = _warp(dn, transform, crs, grid, Resampling.bilinear)
    both = np.isfinite(got) & np.isfinite(expected)
    assert both.mean() > 0.99
    difference = np.abs(got[both] - expected[both])
    # Within a DN or two (the warper's approximate transform), never a neighbour's value.
    assert np.median(difference) < 2 * SCALE, np.median(difference)
    assert np.quantile(difference, 0.999) < 0.01, np.quantile(difference, 0.999)


def _utm_source(tmp_path: Path, resolution: float) -> tuple[Asset, np.ndarray, Affine]:
    """The red band warped once onto a UTM 30N grid of ``resolution``, written as a COG."""
    dn, transform, crs = _red_dn()
    grid = _utm_grid_inside(transform, dn.shape, crs, resolution)
    utm = np.zeros(grid.shape.yx, dtype="uint16")
    rasterio.warp.reproject(dn, utm, src_transform=transform, src_crs=crs, src_nodata=0,
                            dst_transform=grid.affine, dst_crs=UTM_30N, dst_nodata=0,
                            resampling=Resampling.bilinear)
    return _cog(tmp_path / f"red-{resolution:g}m.tif", utm, grid.affine, UTM_30N), utm, \
        grid.affine


def test_same_grid_is_pasted_exactly(tmp_path: Path) -> None:
    asset, utm, affine = _utm_source(tmp_path, 10.0)
    # A grid two pixels in from the source's corner, reaching past its far edge.
    grid = GeoBox((utm.shape[0], utm.shape[1]), affine @ Affine.translation(2, 2), UTM_30N)
    got = read_reflectance(asset, grid, "bilinear")
    expected = np.where(utm[2:, 2:] > 0, utm[2:, 2:] * np.float32(SCALE), np.nan)
    np.testing.assert_array_equal(got[:-2, :-2], expected)
    assert np.isnan(got[-2:, :]).all() and np.isnan(got[:, -2:]).all()  # beyond the COG


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_20m_band_onto_10m_grid_agrees_with_the_warper(tmp_path: Path, resampling: str) -> None:
    asset, utm20, affine20 = _utm_source(tmp_path, 20.0)
    # A 10 m grid offset by half a 20 m pixel from the band's grid, inside it.
    origin = affine20 @ (2.5, 2.5)
    grid = GeoBox((2 * utm20.shape[0] - 10, 2 * utm20.shape[1] - 10),
                  Affine(10.0, 0, origin[0], 0, -10.0, origin[1]), UTM_30N)
    got = read_reflectance(asset, grid, resampling)
    expected = _warp(utm20, affine20, UTM_30N, grid, Resampling[resampling])
    both = np.isfinite(got) & np.isfinite(expected)
    assert both.mean() > 0.99
    if resampling == "nearest":
        # Each band pixel repeated over the 2 x 2 pixels whose centres it holds: the warper's.
        np.testing.assert_array_equal(got[both], expected[both])
    else:
        # On the band's half-pixel lattice: interpolated by slices, exactly the warper's.
        np.testing.assert_allclose(got[both], expected[both], rtol=0, atol=0.01 * SCALE)


def test_overpass_masks_clouds_and_fuses_tiles_first_valid(tmp_path: Path) -> None:
    """Two tiles of one overpass: the first is clouded on its left half; its right half is
    used, and the left comes from the second tile, but for its top rows, clouded in both (NaN).
    Clouds grow by the buffer."""
    asset, utm, affine = _utm_source(tmp_path, 10.0)
    grid = GeoBox((40, 40), affine @ Affine.translation(5, 5), UTM_30N)
    half = np.full(utm.shape, 4, dtype="uint8")  # vegetation
    half[:, : 5 + 20] = 9  # high-probability cloud left of the grid's middle column
    clear = np.full(utm.shape, 4, dtype="uint8")
    clear[: 5 + 10, :] = 8  # medium-probability cloud over the grid's top 10 rows
    scl_a = Asset("scl", str(write_cog(tmp_path / "scl-a.tif", half,
                                       GeoBox(utm.shape, affine, UTM_30N), nodata=0)))
    scl_b = Asset("scl", str(write_cog(tmp_path / "scl-b.tif", clear,
                                       GeoBox(utm.shape, affine, UTM_30N), nodata=0)))
    doubled = _cog(tmp_path / "red-double.tif", (utm * 2).astype("uint16"), affine, UTM_30N)
    options = ReadOptions(invalid_scl=(0, 3, 8, 9, 10), cloud_scl=(3, 8, 9), buffer_px=3)
    out = read_overpass([Tile((asset,), scl_a), Tile((doubled,), scl_b)], grid, options)
    red = utm[5:45, 5:45] * np.float32(SCALE)
    # Right of the cloud plus its 3 px buffer: the first tile; elsewhere the second.
    np.testing.assert_allclose(out[0][:, 23:], red[:, 23:], rtol=1e-6)
    np.testing.assert_allclose(out[0][13:, :23], 2 * red[13:, :23], rtol=1e-6)
    assert np.isnan(out[0][:13, :23]).all()


@pytest.mark.parametrize(("dx", "dy"), [(-197, 203), (-190, 190), (800, -800)],
                         ids=["off-lattice", "on-lattice-near-edge", "on-lattice-far-edge"])
def test_offset_grid_crossing_the_cog_edge_keeps_its_registration(tmp_path: Path, dx: int,
                                                                  dy: int) -> None:
    """A 10 m grid on a chunk that runs past a 20 m band's edge. Off the band's half-pixel
    lattice (3 m off), GDAL would clip the float window and stretch it over the chunk (a shift
    of up to a third of a pixel), so such a chunk goes through the source pixels; on it, the
    doubling by slices pads the band with its edge. On a ramp every pixel inside must read the
    ramp's value there (the edge pixel's beyond the last centre)."""
    height = width = 50
    x0, y0 = 500000.0, 9000000.0
    ramp = (1000 + 10 * np.arange(width)[None, :] + 4 * np.arange(height)[:, None])
    asset = _cog(tmp_path / "ramp.tif", ramp.astype("uint16"),
                 Affine(20, 0, x0, 0, -20, y0), UTM_30N)
    grid = GeoBox((40, 40), Affine(10, 0, x0 + dx, 0, -10, y0 + dy), UTM_30N)
    got = read_reflectance(asset, grid, "bilinear") / SCALE
    gx = grid.affine.c + (np.arange(40) + 0.5) * 10
    gy = grid.affine.f - (np.arange(40) + 0.5) * 10
    col = np.clip((gx - x0) / 20 - 0.5, 0, width - 1)[None, :]
    row = np.clip((y0 - gy) / 20 - 0.5, 0, height - 1)[:, None]
    expected = 1000 + 10 * col + 4 * row
    inside = ((gx > x0) & (gx < x0 + 20 * width))[None, :] & ((gy < y0)
                                                             & (gy > y0 - 20 * height))[:, None]
    assert np.isnan(got[~inside]).all()
    np.testing.assert_allclose(got[inside], np.broadcast_to(expected, got.shape)[inside],
                               atol=0.01)


@pytest.mark.parametrize(("dx", "dy"), [(-190, 190), (790, -810), (-10, 10)],
                         ids=["near-edge", "far-edge", "mid-pixel-start"])
def test_20m_classes_onto_10m_grid_repeat_each_pixel_and_fill_beyond(tmp_path: Path, dx: int,
                                                                    dy: int) -> None:
    """SCL (20 m classes) read nearest onto a 10 m chunk of its zone on the half-pixel lattice,
    running past the COG's edge: every pixel takes the class of the 20 m pixel holding its
    centre, and the fill beyond the COG."""
    height = width = 50
    x0, y0 = 500000.0, 9000000.0
    classes = ((np.arange(height)[:, None] * 7 + np.arange(width)[None, :] * 3) % 11 + 1)
    scl = Asset("scl", str(write_cog(tmp_path / "scl.tif", classes.astype("uint8"),
                                     GeoBox((height, width), Affine(20, 0, x0, 0, -20, y0),
                                            UTM_30N), nodata=0)))
    grid = GeoBox((40, 40), Affine(10, 0, x0 + dx, 0, -10, y0 + dy), UTM_30N)
    got = read_pixels(scl, grid, "nearest", np.empty((40, 40), dtype="uint8"), fill=0)
    cols = np.floor((grid.affine.c + (np.arange(40) + 0.5) * 10 - x0) / 20).astype(int)
    rows = np.floor((y0 - (grid.affine.f - (np.arange(40) + 0.5) * 10)) / 20).astype(int)
    inside = ((rows >= 0) & (rows < height))[:, None] & ((cols >= 0) & (cols < width))[None, :]
    expected = np.where(inside, classes[np.clip(rows, 0, height - 1)][:, np.clip(cols, 0,
                                                                                  width - 1)], 0)
    assert 0 < inside.mean() < 1
    np.testing.assert_array_equal(got, expected)


def test_a_band_is_read_in_a_fresh_process_outside_any_gdal_environment(tmp_path: Path) -> None:
    """A local COG read as the process's first use of rasterio (no environment yet, so no
    driver registered) still opens: the fast open is only taken inside an environment."""
    import subprocess
    import sys

    grid = GeoBox((20, 20), Affine(10, 0, 500000, 0, -10, 900000), "EPSG:32630")
    path = tmp_path / "red.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype="uint16",
                       crs="EPSG:32630", transform=grid.affine, nodata=0) as dst:
        dst.write(np.full((1, 20, 20), 1100, dtype="uint16"))
    code = (
        "import numpy as np\n"
        "from odc.geo.geobox import GeoBox\n"
        "from rasterio import Affine\n"
        "from kpgeo.sources.reader import Asset, read_reflectance\n"
        "grid = GeoBox((20, 20), Affine(10, 0, 500000, 0, -10, 900000), 'EPSG:32630')\n"
        f"values = read_reflectance(Asset('red', {str(path)!r}, 1e-4, -0.1, 0), grid, 'nearest')\n"
        "print(float(values.mean()))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert abs(float(done.stdout) - 0.01) < 1e-6


@pytest.mark.parametrize("src_crs", ["EPSG:32629", "EPSG:4326"])
def test_source_coordinates_on_the_lattice_match_the_exact_transform(src_crs: str) -> None:
    """Transforming every 16th pixel centre exactly and interpolating between them (as GDAL's
    approximate transformer does) puts every pixel of a 1024 px chunk of Tortiya within a
    hundredth of a source pixel of its exact place, in the neighbouring UTM zone and in
    geographic coordinates."""
    import pyproj

    from kpgeo.sources.reader import LATTICE_PX, source_coordinates

    dst = GeoBox((1024, 1000), Affine(10, 0, 200000, 0, -10, 970000), UTM_30N)
    left, bottom, right, top = rasterio.warp.transform_bounds(UTM_30N, src_crs, *dst.extent.boundingbox)
    step = 10.0 if src_crs != "EPSG:4326" else 1e-4
    src = GeoBox((int((top - bottom) / step) + 4, int((right - left) / step) + 4),
                 Affine(step, 0, left - 2 * step, 0, -step, top + 2 * step), src_crs)
    rows, cols = source_coordinates(src, dst)
    c, r = np.meshgrid(np.arange(1000) + 0.5, np.arange(1024) + 0.5)
    x, y = dst.affine @ (c, r)
    sx, sy = pyproj.Transformer.from_crs(UTM_30N, src_crs, always_xy=True).transform(x, y)
    exact_cols, exact_rows = ~src.affine @ (np.asarray(sx), np.asarray(sy))
    assert LATTICE_PX > 1 and rows.shape == cols.shape == (1024, 1000)
    assert np.abs(rows - exact_rows).max() < 0.01
    assert np.abs(cols - exact_cols).max() < 0.01
