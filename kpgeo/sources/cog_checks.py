"""Whether a COG can be the band its STAC item describes, before any of its pixels is read
(docs/product.md §10).

A COG without a CRS, lying elsewhere than its item's footprint (another CRS, another size), or
on another grid than its item gives it (``proj:shape``, ``proj:transform``: pixels of another
size or turned, which covered the footprint and were read stretched over the site) would add
nothing, or wrong reflectances, to a month while its scene counted as used; a COG whose header
declares one strip of 20 000 x 20 000 px (0.9 MB on disk) or pixels far finer than the site
grid's would make a read of one chunk decode gigabytes. Each is refused as :class:`CogMismatch`, whose scene the
source skips at once with the reason (reading it again cannot help), so that what a read may
allocate follows from the site's chunk, never from what a file declares:

- a block (a tile, or a strip) of at most :data:`MAX_BLOCK_PX` pixels: GDAL decodes whole blocks;
- a source window of at most :data:`MAX_SOURCE_PX_PER_PX` pixels a destination pixel (plus
  :data:`WINDOW_SLACK_PX` for small chunks): Sentinel-2's 10, 20 and 60 m bands on a 10 m grid
  need one or fewer.
"""

from __future__ import annotations

import functools
import math

import rasterio
import rasterio.crs
import rasterio.errors
import rasterio.warp
import rasterio.windows

#: Largest block GDAL may decode for a read: Sentinel-2 COGs have tiles of 512 or 1024 px, a
#: striped GeoTIFF strips of a few rows; 4 Mpx is 8 MB of uint16.
MAX_BLOCK_PX = 2048 * 2048
#: Source pixels a read may take for each destination pixel (4 x 4: a band 4 times finer than
#: the grid; Sentinel-2's bands are never finer than the 10 m grid).
MAX_SOURCE_PX_PER_PX = 16
#: Source pixels a read of a small chunk may take beyond that.
WINDOW_SLACK_PX = 64 * 64
#: A COG may fall short of its item's footprint by this share of the footprint's extent (and
#: two of its pixels): footprints are drawn around the data, within the tile.
FOOTPRINT_TOLERANCE = 0.01


class CogMismatch(rasterio.errors.RasterioIOError):
    """A COG that cannot be the band its item describes, or would cost more to read than its
    chunk allows: its scene is skipped without another attempt."""


def cog_problem(src: rasterio.DatasetReader,
                footprint: tuple[float, float, float, float] | None,
                grid: tuple[tuple[int, int], tuple[float, ...]] | None = None) -> str | None:
    """Why ``src`` cannot be read as its item's band (``footprint``: the item's geometry's
    lon/lat bounds; ``grid``: the shape and transform the item gives the asset), or None."""
    if src.crs is None:
        return "the COG has no CRS"
    height, width = src.block_shapes[0] if src.block_shapes else (src.height, src.width)
    if height * width > MAX_BLOCK_PX:
        return (f"the COG's blocks are {width} x {height} px, over the {MAX_BLOCK_PX:,} px a "
                "read may decode (a COG is tiled)")
    if footprint is not None:
        outside = _outside(src.crs.to_wkt(), tuple(src.bounds), src.width, src.height,
                           footprint)
        if outside is not None:
            return outside
    return None if grid is None else _other_grid(src.shape, tuple(src.transform)[:6], grid)


@functools.lru_cache(maxsize=256)
def _outside(crs_wkt: str, bounds: tuple[float, ...], width: int, height: int,
             footprint: tuple[float, float, float, float]) -> str | None:
    """Why a COG's extent does not cover its item's footprint, or None (cached: every chunk of
    every month opens the same COGs)."""
    w, s, e, n = footprint
    if not all(map(math.isfinite, footprint)) or w > e:
        return None  # no footprint to hold it to (or one across the antimeridian)
    try:
        west, south, east, north = rasterio.warp.transform_bounds(
            rasterio.crs.CRS.from_wkt(crs_wkt), "EPSG:4326", *bounds, densify_pts=21)
    except (rasterio.errors.RasterioError, ValueError) as exc:
        return f"the COG's CRS cannot be placed on the globe ({exc})"
    tol_x = FOOTPRINT_TOLERANCE * (e - w) + 2 * (east - west) / max(width, 1)
    tol_y = FOOTPRINT_TOLERANCE * (n - s) + 2 * (north - south) / max(height, 1)
    if west - tol_x <= w and e <= east + tol_x and south - tol_y <= s and n <= north + tol_y:
        return None
    return (f"the COG ({width} x {height} px, lon {west:.4f}..{east:.4f}, lat "
            f"{south:.4f}..{north:.4f}) does not cover its item's footprint (lon "
            f"{w:.4f}..{e:.4f}, lat {s:.4f}..{n:.4f}): another CRS or size than the scene's")


def _other_grid(shape: tuple[int, int], transform: tuple[float, ...],
                grid: tuple[tuple[int, int], tuple[float, ...]]) -> str | None:
    """Why a COG's pixels are not on the grid its item gives it, or None.

    A COG larger than its footprint still covers it: one whose pixels are 20 m where its item
    says 10 m, or turned, covered the footprint and was read, its reflectances stretched or
    turned over the site. Its size must be the item's, its pixel size and turn equal (to a
    millionth), its corner within a hundredth of a pixel.
    """
    want_shape, want = grid
    pixel = max(abs(want[0]), abs(want[4]), abs(want[1]), abs(want[3]), 1e-12)
    same_scale = all(abs(transform[i] - want[i]) <= 1e-6 * pixel for i in (0, 1, 3, 4))
    same_corner = all(abs(transform[i] - want[i]) <= 0.01 * pixel for i in (2, 5))
    if tuple(shape) == tuple(want_shape) and same_scale and same_corner:
        return None
    return (f"the COG's grid ({_grid_text(shape, transform)}) is not the one its item gives "
            f"it ({_grid_text(want_shape, want)}): another size or placement than the scene's")


def _grid_text(shape: tuple[int, int], t: tuple[float, ...]) -> str:
    turned = ", turned" if t[1] or t[3] else ""
    return (f"{shape[1]} x {shape[0]} px of {abs(t[0]):g} x {abs(t[4]):g}{turned}, corner "
            f"{t[2]:.2f}, {t[5]:.2f}")


def check_window(window: rasterio.windows.Window, dst_shape: tuple[int, int]) -> None:
    """Raise :class:`CogMismatch` if reading ``window`` onto ``dst_shape`` takes more source
    pixels than the chunk allows."""
    source_px = float(window.width) * float(window.height)
    allowed = MAX_SOURCE_PX_PER_PX * dst_shape[0] * dst_shape[1] + WINDOW_SLACK_PX
    if source_px > allowed:
        raise CogMismatch(
            f"the COG's pixels are {math.sqrt(source_px / max(dst_shape[0] * dst_shape[1], 1)):.0f}"
            " times finer than the site grid's: a read of one chunk would take "
            f"{source_px:,.0f} source pixels (at most {allowed:,} allowed)")
