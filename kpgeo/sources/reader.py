"""Pixels of one overpass onto one chunk of a site grid: read, resample, scale, mask.

The ``stac`` source reads through here rather than through ``odc.stac.load``: odc-stac sends every
band that is not on the destination grid (all 20 m bands, every scene of the neighbouring UTM
zone) through GDAL's warper, which costs 3-4x the decoding of the same pixels and made reading a
month several times slower than decoding it (``benchmarks/RESULTS.md``). Here:

- a band on the site grid (10 m, same zone) is pasted: a windowed read, nothing else;
- a 20 m band of the site's zone, whose pixels lie on the 10 m grid's half-pixel lattice, is
  interpolated bilinearly by slices of its native pixels, and its scene classes (nearest)
  repeated onto the 10 m pixels (:func:`_read_doubled`; GDAL's resampled read, which it
  replaces, took twice as long and rounded to whole DN);
- a band in the same CRS at another resolution or offset is read by GDAL's resampled
  ``RasterIO`` straight onto the chunk (a float source window and an output shape);
- a band in another CRS (or whose resampled window would cross the COG's edge) is resampled
  through the source pixel of every destination pixel, computed once per pair of grids (every
  scene of one tile shares them) and cached: by index for ``nearest``, through a sparse matrix
  of the four pixels' weights for ``bilinear``.

Each thread keeps the COGs it last read open (:class:`_OpenCogs`): every chunk of a month reads
the same files.

Validity comes first: SCL is read onto the chunk padded by the cloud buffer (within the site
grid, as the other sources see it), clouds and shadows are grown
(:func:`~kpgeo.sources.masking.valid_pixels`), and a tile with no usable pixel in the chunk is not
read further. Tiles of one overpass are fused first-valid-wins, in the order given.

A read error is raised as :class:`rasterio.errors.RasterioIOError` whose message starts with
the asset key (``"red: ..."``), so the source can say which band of a scene failed; a COG that
cannot be its item's band, or would cost more to read than the chunk allows (no CRS, another
extent than the item's footprint, huge blocks, far finer pixels), as its subclass
:class:`~.cog_checks.CogMismatch`, before a pixel is read.
"""

from __future__ import annotations

import collections
import functools
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyproj
import rasterio
import rasterio.env
import rasterio.errors
import rasterio.io
import rasterio.windows
import scipy.sparse
from odc.geo.geobox import GeoBox
from odc.geo.overlap import ReprojectInfo, compute_reproject_roi
from rasterio import Affine
from rasterio.enums import Resampling

from ..products.encoding import decode
from .cog_checks import CogMismatch, check_window, cog_problem
from .masking import valid_pixels


@dataclass(frozen=True)
class Asset:
    """One COG of a scene: ``reflectance = DN * scale + offset``; ``nodata`` DN is missing;
    ``footprint``, the lon/lat bounds of its item's geometry, which the COG must cover;
    ``grid``, the shape and transform its item gives it (``proj:shape``, ``proj:transform``),
    which the COG must have."""

    key: str
    href: str
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = 0
    footprint: tuple[float, float, float, float] | None = None
    grid: tuple[tuple[int, int], tuple[float, ...]] | None = None


@dataclass(frozen=True)
class Tile:
    """One item of an overpass: its reflectance assets, in band order, and its SCL."""

    bands: tuple[Asset, ...]
    scl: Asset


@dataclass(frozen=True)
class ReadOptions:
    """How SCL turns into validity, how bands are resampled, and GDAL's settings."""

    invalid_scl: tuple[int, ...]
    cloud_scl: tuple[int, ...]
    buffer_px: int
    resampling: str = "bilinear"
    gdal: Mapping[str, str | int | bool] | None = None


def read_overpass(tiles: Sequence[Tile], grid: GeoBox, options: ReadOptions,
                  context: tuple[GeoBox, tuple[slice, slice]] | None = None) -> np.ndarray:
    """Reflectance ``(band, y, x)`` float32 of one overpass on ``grid``, NaN where unusable.

    A pixel is usable where SCL says neither invalid nor near a cloud or shadow and every band
    has data; every band of an unusable pixel is NaN, so validity is ``isfinite`` of any band.
    ``context`` is the grid SCL is read on to grow clouds (``grid`` padded by the buffer,
    within the site) and where ``grid`` lies in it; without it, ``grid`` alone.
    """
    n_bands = len(tiles[0].bands) if tiles else 0
    # Not filled: the first tile read writes every pixel (NaN where it is unusable), and an
    # overpass with no usable tile is filled at the end.
    out = np.empty((n_bands, *grid.shape.yx), dtype="float32")
    todo: np.ndarray | None = None  # pixels no tile has filled yet; None: all of them
    scl_grid, crop = context or (grid, (slice(None), slice(None)))
    with rasterio.Env(**dict(options.gdal or {})):
        for tile in tiles:
            usable = _usable_from_scl(tile.scl, scl_grid, options)[crop]
            if todo is not None:
                usable &= todo
            if not usable.any():
                continue  # clouded over or outside the tile here: its bands are not read
            # The first tile read goes straight into the output (no copy of the overpass);
            # a later one fills only what is left.
            values = out if todo is None else np.empty_like(out)
            for i, asset in enumerate(tile.bands):
                read_reflectance(asset, grid, options.resampling, out=values[i])
                usable &= np.isfinite(values[i])
            if todo is None:
                np.copyto(out, np.float32(np.nan), where=~usable)
                todo = ~usable
            else:
                np.copyto(out, values, where=usable)
                todo &= ~usable
            if not todo.any():
                break
    if todo is None:
        out.fill(np.nan)
    return out


def _usable_from_scl(scl: Asset, grid: GeoBox, options: ReadOptions) -> np.ndarray:
    """Usable pixels of ``grid`` by one tile's SCL, clouds grown by ``buffer_px``."""
    classes = read_pixels(scl, grid, "nearest", np.empty(grid.shape.yx, dtype=np.uint8), fill=0)
    return valid_pixels(classes, invalid_classes=options.invalid_scl,
                        cloud_classes=options.cloud_scl, buffer_px=options.buffer_px)


def read_reflectance(asset: Asset, grid: GeoBox, resampling: str,
                     out: np.ndarray | None = None) -> np.ndarray:
    """One band on ``grid`` as float32 reflectance (scale and offset applied), NaN where the
    COG has no data or does not reach; into ``out`` when given."""
    if out is None:
        out = np.empty(grid.shape.yx, dtype="float32")
    dn = read_pixels(asset, grid, resampling, out, fill=np.nan)
    return decode(dn, asset.scale, asset.offset, asset.nodata, in_place=True)


def read_pixels(asset: Asset, grid: GeoBox, resampling: str, out: np.ndarray,
                fill: float) -> np.ndarray:
    """The asset's first band resampled onto ``grid`` into ``out`` (of the grid's shape and
    the dtype wanted); ``fill`` where the COG does not reach (and, for a float ``out``, where
    resampling met its nodata)."""
    try:
        cog = _open_cog(asset.href)
        problem = cog.problem(asset.footprint, asset.grid)
        if problem is not None:
            raise CogMismatch(problem)
        _read_into(cog.src, cog.key, grid, resampling, out, asset.nodata, fill)
    except CogMismatch as exc:
        raise CogMismatch(f"{asset.key}: {exc}") from None
    except rasterio.errors.RasterioError as exc:
        # Opened again by the next read (a retry after a fault reaches the file afresh).
        _close_cog(asset.href)
        raise rasterio.errors.RasterioIOError(f"{asset.key}: {_reasons(exc)}") from exc
    return out


#: COGs each thread keeps open between reads (a month of a full site reads each of its scenes'
#: assets once per chunk; a month has 6-8 scenes of 7 assets).
KEEP_OPEN = 64


@dataclass
class _OpenCog:
    """A COG kept open, with what every read asks of it worked out once."""

    src: rasterio.DatasetReader
    key: GridKey
    problems: dict[tuple[Any, Any], str | None] = field(default_factory=dict)

    def problem(self, footprint: tuple[float, float, float, float] | None,
                grid: tuple[tuple[int, int], tuple[float, ...]] | None = None) -> str | None:
        if (footprint, grid) not in self.problems:
            self.problems[footprint, grid] = cog_problem(self.src, footprint, grid)
        return self.problems[footprint, grid]


class _OpenCogs(threading.local):
    """Per thread (a GDAL dataset is not safe to read from two threads at once), the COGs
    last read, kept open as stackstac's and GDAL's own readers do: each chunk of a month
    reads the same files, and opening one parses its header again (about as long as decoding
    a small window), while closing it drops its decoded blocks from GDAL's block cache, which
    the neighbouring chunk's read would have reused."""

    def __init__(self) -> None:
        self.cogs: collections.OrderedDict[tuple[Any, ...], _OpenCog] = \
            collections.OrderedDict()


_OPEN = _OpenCogs()


def _identity(href: str) -> tuple[Any, ...]:
    """A file's key in the cache: a local file replaced (rewritten, another copied over it)
    is another file; a remote one is taken as immutable, as a published scene is."""
    if _is_local(href):
        stat = os.stat(href)
        return href, stat.st_ino, stat.st_size, stat.st_mtime_ns
    return (href,)


def _open_cog(href: str) -> _OpenCog:
    try:
        identity = _identity(href)
    except OSError as exc:
        raise rasterio.errors.RasterioIOError(f"{href}: {exc.strerror or exc}") from None
    cogs = _OPEN.cogs
    cog = cogs.get(identity)
    if cog is not None:
        cogs.move_to_end(identity)
        return cog
    src = _open(href)
    cog = _OpenCog(src, GridKey(src.shape, src.transform,
                                None if src.crs is None else src.crs.wkt))
    cogs[identity] = cog
    while len(cogs) > KEEP_OPEN:
        cogs.popitem(last=False)[1].src.close()
    return cog


def _close_cog(href: str) -> None:
    """Close ``href`` if this thread keeps it open."""
    cogs = _OPEN.cogs
    for identity in [k for k in cogs if k[0] == href]:
        cogs.pop(identity).src.close()


def _is_local(href: str) -> bool:
    return not ("://" in href or href.startswith("/vsi"))


def _open(href: str) -> rasterio.DatasetReader:
    """``rasterio.open(href)``; a plain local path straight through its dataset class.

    ``rasterio.open`` sets up a GDAL environment of its own around every open, even inside
    the one :func:`read_overpass` sets, and resets the enclosing one after it (checking its
    data paths on disk and setting every option again), holding the GIL: a third of the cost
    of opening a COG. URLs and ``/vsi`` paths still go through ``rasterio.open``,
    which turns them into GDAL's paths and sets up credentials for object stores.
    """
    # Outside any GDAL environment (a read not through read_overpass), rasterio.open makes
    # one: the dataset class alone would find no driver registered.
    if not _is_local(href) or not rasterio.env.hasenv():
        return rasterio.open(href)
    return rasterio.io.DatasetReader(href)


def _reasons(exc: BaseException) -> str:
    """The message of an error and of its causes: rasterio's "Read failed. See previous
    exception for details." says nothing without GDAL's reason (an HTTP code, a bad block)."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(parts) < 4:
        text = str(seen)
        if text and text not in parts:
            parts.append(text)
        seen = seen.__cause__ or seen.__context__
    return ": ".join(parts)


def _read_into(src: rasterio.DatasetReader, src_key: GridKey, grid: GeoBox, resampling: str,
               out: np.ndarray, nodata: float | None, fill: float) -> None:
    nearest = resampling == "nearest"
    dst_key = GridKey.of(grid)
    overlap = _overlap(src_key, dst_key, nearest)
    roi = overlap.roi
    ys, xs = roi.roi_dst
    paste = roi.paste_ok and roi.read_shrink == 1
    whole = (ys.start, xs.start, ys.stop, xs.stop) == (0, 0, *out.shape)
    if not whole:
        out.fill(fill)  # the COG reaches part of the grid
    if ys.stop <= ys.start or xs.stop <= xs.start:
        return
    dst = out[slice(ys.start, ys.stop), slice(xs.start, xs.stop)]
    if paste:
        src.read(1, window=rasterio.windows.Window.from_slices(*roi.roi_src), out=dst,
                 out_dtype=out.dtype)
        return
    part = overlap.part
    if overlap.same_crs:
        if _read_doubled(src, part, nodata, dst, nearest, fill):
            return
        # Same projection, other pixel size or offset: GDAL resamples while reading (a float
        # window of source pixels onto the destination's shape), far cheaper than a warp;
        # only where the window lies inside the COG, as GDAL would clip and stretch it.
        window = rasterio.windows.from_bounds(*part.boundingbox, transform=src.transform)
        check_window(window, dst.shape)
        eps = 1e-6
        if (window.col_off >= -eps and window.row_off >= -eps
                and window.col_off + window.width <= src.width + eps
                and window.row_off + window.height <= src.height + eps):
            src.read(1, window=window, out=dst, out_dtype=out.dtype, masked=False,
                     resampling=Resampling.nearest if nearest else Resampling.bilinear)
            return
    where = _source_pixels(src_key, dst_key, nearest)
    if whole and (where is None or nearest):
        # The paths above and the bilinear product write every pixel of ``dst``; these not.
        dst.fill(fill)
    if where is None:
        return
    block = src.read(1, window=where.window)
    if nearest:
        values = block.ravel().take(where.nearest, mode="clip").reshape(dst.shape)
        np.copyto(dst, values, where=where.inside, casting="unsafe")
        return
    # Bilinear: the window's pixels, one past its last row and column (a copy of the edge)
    # and a NaN for destination pixels outside it, through the sparse weights.
    height, width = block.shape
    values = np.empty((height + 1) * (width + 1) + 1, dtype="float32")
    padded = values[:-1].reshape(height + 1, width + 1)
    padded[:height, :width] = block
    padded[height, :width] = block[-1]
    padded[:, width] = padded[:, width - 1]
    if nodata is not None:
        # NaN spreads to every pixel it touches
        np.copyto(padded, np.float32(np.nan), where=padded == np.float32(nodata))
    values[-1] = np.nan
    assert where.weights is not None
    dst[...] = (where.weights @ values).reshape(dst.shape)


def _read_doubled(src: rasterio.DatasetReader, part: GeoBox, nodata: float | None,
                  dst: np.ndarray, nearest: bool = False, fill: float = 0) -> bool:
    """Onto ``part`` when its pixels are exactly half the source's and on its half-pixel
    lattice (a Sentinel-2 20 m band onto a 10 m grid of its zone): every destination pixel
    then lies a quarter of a source pixel from two source centres along each axis, and the
    resampling is a few slices, not a gather.

    Bilinear interpolates between the two along each axis (GDAL's resampled read, which it
    replaces, took twice as long and rounded to whole DN); beyond the COG's edge the edge pixel
    is used, as in the other paths. Nearest repeats each source pixel twice along each axis
    (as GDAL's nearest read, in a quarter of its time), ``fill`` beyond the COG's edge.
    False, doing nothing, for any other geometry."""
    s, a = src.transform, part.affine
    if s.b or s.d or a.b or a.d or s.a != 2 * a.a or s.e != 2 * a.e:
        return False
    # Destination pixel 0's centre in source pixel coordinates (centres at whole numbers).
    col0 = (a.c - s.c) / s.a - 0.25
    row0 = (a.f - s.f) / s.e - 0.25
    if not (_on_quarter(col0) and _on_quarter(row0)):
        return False
    if nearest:
        _doubled_nearest(src, row0, col0, fill, dst)
        return True
    height, width = dst.shape
    rows = math.floor(row0), math.floor(row0 + (height - 1) / 2) + 1
    cols = math.floor(col0), math.floor(col0 + (width - 1) / 2) + 1
    inside_rows = max(rows[0], 0), min(rows[1], src.height - 1)
    inside_cols = max(cols[0], 0), min(cols[1], src.width - 1)
    window = rasterio.windows.Window(inside_cols[0], inside_rows[0],
                                     inside_cols[1] - inside_cols[0] + 1,
                                     inside_rows[1] - inside_rows[0] + 1)
    raw = src.read(1, window=window)
    block = raw.astype("float32")
    if nodata is not None:
        # NaN spreads to every pixel it touches, as elsewhere
        np.copyto(block, np.float32(np.nan), where=raw == nodata)
    block = np.pad(block, ((inside_rows[0] - rows[0], rows[1] - inside_rows[1]),
                           (inside_cols[0] - cols[0], cols[1] - inside_cols[1])), mode="edge")
    # Columns first, on the native rows (a quarter of the pixels): their stride-2 writes are
    # the slow ones; the rows' pass then writes whole rows of ``dst``.
    along_cols = _doubled_axis(block, col0 - cols[0], width, axis=1)
    _doubled_axis(along_cols, row0 - rows[0], height, axis=0, out=dst)
    return True


def _doubled_nearest(src: rasterio.DatasetReader, row0: float, col0: float, fill: float,
                     dst: np.ndarray) -> None:
    """Nearest of :func:`_read_doubled`: destination pixel ``j`` takes source pixel
    ``floor(first + j / 2 + 1 / 2)`` along each axis (``first`` on a quarter lattice, so
    never a tie); ``fill`` for source pixels beyond the COG."""
    spans = []
    for first, n, size in ((row0, dst.shape[0], src.height), (col0, dst.shape[1], src.width)):
        start, stop = math.floor(first + 0.5), math.floor(first + (n - 1) / 2 + 0.5) + 1
        # Destination pixel 0 takes the second half of its source pixel, or its first.
        skip = 1 if (first + 0.5) % 1.0 > 0.5 else 0
        spans.append((start, stop, max(start, 0), min(stop, size), skip, n))
    (r0, r1, ri0, ri1, rskip, height), (c0, c1, ci0, ci1, cskip, width) = spans
    if ri1 <= ri0 or ci1 <= ci0:
        dst.fill(fill)
        return
    block = src.read(1, window=rasterio.windows.Window(ci0, ri0, ci1 - ci0, ri1 - ri0),
                     out_dtype=dst.dtype)
    if (ri0, ri1, ci0, ci1) != (r0, r1, c0, c1):
        block = np.pad(block, ((ri0 - r0, r1 - ri1), (ci0 - c0, c1 - ci1)),
                       constant_values=fill)
    doubled = np.repeat(np.repeat(block, 2, axis=0), 2, axis=1)
    dst[...] = doubled[rskip:rskip + height, cskip:cskip + width]


def _on_quarter(position: float) -> bool:
    """Whether ``position`` is a quarter or three quarters past a whole number."""
    return abs((position % 1.0) - 0.25) < 1e-6 or abs((position % 1.0) - 0.75) < 1e-6


def _doubled_axis(values: np.ndarray, first: float, n: int, axis: int,
                  out: np.ndarray | None = None) -> np.ndarray:
    """``values`` (samples at 0, 1, 2, ... along ``axis``) interpolated linearly at
    ``first + j / 2`` for ``j < n``: even and odd ``j`` each step one sample at a time."""
    if out is None:
        shape = list(values.shape)
        shape[axis] = n
        out = np.empty(shape, dtype="float32")
    for parity in (0, 1):
        count = (n - parity + 1) // 2
        if count == 0:
            continue
        position = first + parity / 2
        start = math.floor(position)
        weight = np.float32(position - start)
        if axis == 0:
            low, high = values[start:start + count], values[start + 1:start + 1 + count]
            target = out[parity::2]
        else:
            low, high = values[:, start:start + count], values[:, start + 1:start + 1 + count]
            target = out[:, parity::2]
        np.multiply(low, np.float32(1) - weight, out=target)
        target += high * weight
    return out


@dataclass(frozen=True)
class GridKey:
    """A grid as a cache key: its shape, transform and CRS text. odc-geo's ``GeoBox`` hashes
    itself by exporting its CRS as WKT each time, holding the GIL, and a read looks its grids
    up several times."""

    shape: tuple[int, int]
    affine: Affine
    crs: str | None

    @classmethod
    def of(cls, grid: GeoBox) -> GridKey:
        key = cls((grid.shape.y, grid.shape.x), grid.affine, str(grid.crs))
        key.__dict__["grid"] = grid  # the cached_property below, already known
        return key

    @functools.cached_property
    def grid(self) -> GeoBox:
        return GeoBox(self.shape, self.affine, self.crs)


@dataclass(frozen=True)
class Overlap:
    """What part of a source grid lands where in a destination grid."""

    roi: ReprojectInfo
    part: GeoBox
    """The destination pixels it lands on."""
    same_crs: bool


@functools.lru_cache(maxsize=256)
def _overlap(src: GridKey, dst: GridKey, nearest: bool) -> Overlap:
    """What part of ``src`` lands where in ``dst``; cached, as every scene of a tile shares its
    grid (odc-geo's geometry is pure Python, a millisecond a call)."""
    # Sub-pixel shifts below 0.05 px are pasted (odc-stac's tolerance); nearest ignores them.
    roi = compute_reproject_roi(src.grid, dst.grid, ttol=0.9 if nearest else 0.05)
    return Overlap(roi, dst.grid[roi.roi_dst], src.grid.crs == dst.grid.crs)


@functools.lru_cache(maxsize=6)
def _source_pixels(src: GridKey, dst: GridKey, nearest: bool) -> SourcePixels | None:
    """:func:`source_pixels` of the part of ``dst`` that ``src`` lands on, cached (see there
    for the size of an entry)."""
    return source_pixels(src.grid, _overlap(src, dst, nearest).part, nearest)


@dataclass(frozen=True)
class SourcePixels:
    """Where the destination pixels of one chunk fall in one source grid."""

    window: rasterio.windows.Window
    """The source pixels they fall on (plus one around, for bilinear)."""
    nearest: np.ndarray | None = None
    """Flat index into ``window`` of the pixel each destination pixel falls in (nearest)."""
    inside: np.ndarray | None = None
    """Destination pixels that fall inside the source grid (nearest)."""
    weights: scipy.sparse.csr_array | None = None
    """Bilinear: destination pixels by the window's pixels padded by one row and column, plus
    a last column for those outside the source grid (weight 1 on a NaN); four weights a row,
    zeros kept, so that a NaN spreads to every pixel it touches."""


#: Spacing, in destination pixels, of the lattice on which pixel centres are transformed
#: exactly between CRSs; between its points they are interpolated bilinearly, as GDAL's
#: approximate transformer does (its default error bound is 0.125 px). Between neighbouring UTM
#: zones, or from geographic coordinates, the transform bends by far less than a hundredth of a
#: pixel over this span (tests/test_reader.py).
LATTICE_PX = 16


def source_coordinates(src: GeoBox, dst: GeoBox) -> tuple[np.ndarray, np.ndarray]:
    """Row and column, in the source grid's pixel coordinates, of every destination pixel
    centre: ``(rows, cols)``, each shaped like ``dst``."""
    height, width = dst.shape.yx
    if dst.crs == src.crs:  # an affine map: exact and cheap
        cols, rows = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
        src_cols, src_rows = (~src.affine @ dst.affine) @ (cols, rows)
        return np.asarray(src_rows), np.asarray(src_cols)
    # The pixel centres in the source's CRS, shared by every source grid of that CRS (a
    # scene's 10 m and 20 m bands, its SCL), then an affine map onto each.
    x, y = _projected_centres(GridKey.of(dst), str(src.crs))
    to_pixels = ~src.affine
    cols = to_pixels.a * x + to_pixels.b * y
    cols += to_pixels.c
    rows = to_pixels.d * x
    rows += to_pixels.e * y
    rows += to_pixels.f
    return rows, cols


@functools.lru_cache(maxsize=4)
def _projected_centres(dst: GridKey, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """``x``, ``y`` in ``crs`` of every pixel centre of ``dst`` (cached for the few source
    grids of a chunk: 16 bytes a pixel)."""
    grid = dst.grid
    height, width = grid.shape.yx
    # pyproj on whole arrays (odc-geo's point transform takes XY objects one at a time), on
    # the lattice only: the exact transform of every pixel was most of a read's cost.
    lattice_rows = np.arange(math.ceil(height / LATTICE_PX) + 1) * LATTICE_PX + 0.5
    lattice_cols = np.arange(math.ceil(width / LATTICE_PX) + 1) * LATTICE_PX + 0.5
    cols, rows = np.meshgrid(lattice_cols, lattice_rows)
    x, y = grid.affine @ (cols, rows)
    sx, sy = _transformer(str(grid.crs), crs).transform(x, y)
    projected = (_between_lattice(np.asarray(sx), height, width),
                 _between_lattice(np.asarray(sy), height, width))
    for array in projected:
        array.setflags(write=False)  # shared through the cache
    return projected


@functools.lru_cache(maxsize=16)
def _transformer(src_crs: str, dst_crs: str) -> pyproj.Transformer:
    """pyproj's transformer between two CRSs (making one takes as long as transforming a
    chunk's lattice)."""
    return pyproj.Transformer.from_crs(src_crs, dst_crs, always_xy=True)


def _between_lattice(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """``values`` on the lattice interpolated bilinearly onto every pixel centre: linearly
    along the rows, then along the columns."""
    return _lattice_lerp(_lattice_lerp(values, height, axis=0), width, axis=1)


def _lattice_lerp(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """``values`` at lattice points every :data:`LATTICE_PX` pixels along ``axis``,
    interpolated linearly at pixel centres ``0..size-1`` (C-ordered)."""
    position = np.arange(size) / LATTICE_PX
    below = position.astype(np.intp)
    fraction = position - below
    if axis == 1:
        out, above = np.take(values, below, axis=1), np.take(values, below + 1, axis=1)
    else:
        out, above = values[below], values[below + 1]
        fraction = fraction[:, None]
    out *= 1 - fraction
    above *= fraction
    out += above
    return out


def source_pixels(src: GeoBox, dst: GeoBox, nearest: bool) -> SourcePixels | None:
    """Where each destination pixel centre falls in the source grid (None: nowhere).

    Every scene of a tile shares its grid, so this is computed once per tile and chunk
    (:func:`source_coordinates`, then the weights) and reused for every band of every scene
    (:func:`_source_pixels` keeps them). An entry takes 5 bytes a pixel for nearest and 36 for
    bilinear (40 MB for a 1024 px chunk); the pipeline computes a month chunk by chunk, so a
    few entries (the 10 m bands, the 20 m bands, SCL's padded grid, for each tile of the other
    zone) are all it reuses: 6 hold two such tiles, and a chunk is read once a month, so more
    would only hold memory.
    The bilinear weights are a sparse matrix: its product is 5x faster than gathering the four
    neighbours with numpy's ``take`` (and scipy's ``map_coordinates`` is slower still).
    """
    src_shape = src.shape.yx
    src_rows, src_cols = source_coordinates(src, dst)
    inside = ((src_rows >= 0) & (src_rows < src_shape[0])
              & (src_cols >= 0) & (src_cols < src_shape[1]))
    if not inside.any():
        return None
    where = True if inside.all() else inside  # the usual case: no pass over a mask
    r0 = max(int(np.floor(np.min(src_rows, where=where, initial=np.inf))) - 1, 0)
    c0 = max(int(np.floor(np.min(src_cols, where=where, initial=np.inf))) - 1, 0)
    r1 = min(int(np.floor(np.max(src_rows, where=where, initial=-np.inf))) + 2, src_shape[0])
    c1 = min(int(np.floor(np.max(src_cols, where=where, initial=-np.inf))) + 2, src_shape[1])
    width = c1 - c0
    window = rasterio.windows.Window(c0, r0, width, r1 - r0)
    check_window(window, dst.shape.yx)  # before the indices below, which it keeps in int32
    if nearest:
        index = ((np.floor(src_rows).astype(np.int32) - r0) * width
                 + np.floor(src_cols).astype(np.int32) - c0)
        for array in (index, inside):
            array.setflags(write=False)  # shared by every read through the cache
        return SourcePixels(window, nearest=index, inside=inside)
    # Weights between pixel centres (at .5 in the affine's pixel coordinates), written in
    # place into the arrays the matrix keeps (each pass over a chunk's million pixels counts).
    rows_c, cols_c = src_rows.reshape(-1), src_cols.reshape(-1)  # fresh arrays, ours
    rows_c -= r0 + 0.5
    np.clip(rows_c, 0, r1 - r0 - 1, out=rows_c)
    cols_c -= c0 + 0.5
    np.clip(cols_c, 0, width - 1, out=cols_c)
    top, left = rows_c.astype(np.int32), cols_c.astype(np.int32)  # >= 0: truncation floors
    fy, fx = (rows_c - top).astype("float32"), (cols_c - left).astype("float32")
    gy, gx = 1 - fy, 1 - fx
    step = width + 1
    n = top.size
    columns = np.empty((n, 4), dtype=np.int32)
    i00 = columns[:, 0]
    np.multiply(top, step, out=i00)
    i00 += left
    np.add(i00, 1, out=columns[:, 1])
    np.add(i00, step, out=columns[:, 2])
    np.add(i00, step + 1, out=columns[:, 3])
    weights = np.empty((n, 4), dtype=np.float32)
    np.multiply(gx, gy, out=weights[:, 0])
    np.multiply(fx, gy, out=weights[:, 1])
    np.multiply(gx, fy, out=weights[:, 2])
    np.multiply(fx, fy, out=weights[:, 3])
    outside = ~inside.reshape(-1)
    nan_column = (r1 - r0 + 1) * step
    columns[outside] = nan_column
    weights[outside] = (1, 0, 0, 0)
    matrix = scipy.sparse.csr_array(
        (weights.ravel(), columns.ravel(), np.arange(0, 4 * n + 1, 4, dtype=np.int32)),
        shape=(n, nan_column + 1))
    return SourcePixels(window, weights=matrix)
