"""Raster products written chunk by chunk, by whichever Dask worker computed the chunk.

A month's products cannot be written by many processes into one Cloud-Optimized GeoTIFF: a
COG's tiles and overviews are laid out when the file is made, in one pass. So each chunk of a
product is written where it was computed, as a plain GeoTIFF of its window of the site grid
(:func:`write_tile`), into a hidden folder of the month (``.tiles/``), and the COG is then made
from all of them in one streamed pass by GDAL (:func:`assemble_cog`): a VRT mosaics the tiles,
and GDAL's COG driver copies it, block by block, with its overviews. No process holds the whole
grid, and the tiles are ordinary georeferenced files a GIS opens while the month is computing.

This is the chunked store that many writers share (docs/product.md §9): the output folder, which
every worker must therefore see at the same path. A Zarr store would do the same job, at the
price of a second copy of every month's rasters beside the COGs the users are given.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
import rasterio.dtypes
import rasterio.shutil
from odc.geo.geobox import GeoBox
from rasterio import Affine

from .atomic import atomic_path
from .encoding import ScaledInteger
from .tiff_whole import check_tiff_whole

#: The month's folder of chunk tiles, removed once its COGs are made.
TILES_FOLDER = ".tiles"


def tile_path(folder: Path, product: str, rows: slice, cols: slice) -> Path:
    """Where the chunk ``rows``, ``cols`` of ``product`` (``composite``...) is written."""
    return folder / TILES_FOLDER / f"{product}-{rows.start}-{cols.start}.tif"


def overview_factors(shape: Sequence[int], blocksize: int, chunk_px: int) -> list[int]:
    """The overview factors GDAL's COG driver makes for a raster of ``shape`` in tiles of
    ``blocksize`` (halving, odd ends dropped, until a level fits in a tile), if chunks of ``chunk_px`` can each
    make their part of every level (``chunk_px`` a multiple of the largest factor); else none,
    and GDAL makes them from the whole raster."""
    factors: list[int] = []
    size = max(shape)
    while size > blocksize:
        factors.append(2 ** (len(factors) + 1))
        size //= 2
    if factors and chunk_px % factors[-1]:
        return []
    return factors


def _halved(layer: np.ndarray, nodata: float | None, average: bool) -> np.ndarray:
    """A layer at half its resolution, as GDAL sizes a COG's overview levels (an odd last row
    or column left out): the mean of each 2 x 2 block's valid values (rounded for integers;
    ``nodata`` where none is valid), or its top-left value (``average`` False, for classes and
    months)."""
    height, width = layer.shape[0] // 2 * 2, layer.shape[1] // 2 * 2
    layer = layer[:height, :width]
    if not average:
        return layer[::2, ::2].copy()
    if nodata is None or (isinstance(nodata, float) and math.isnan(nodata)):
        valid = np.isfinite(layer)
    else:
        valid = layer != nodata
    integer = np.issubdtype(layer.dtype, np.integer)
    # Integers are summed exactly in int32 over the four strided quarters (a reshape and sum
    # over two axes was most of a tile's writing); floats as float64, in numpy's order.
    values = np.where(valid, layer, 0).astype("int32" if integer else "float64")
    if integer:
        total = _quarters_sum(values)
        count = _quarters_sum(valid.view("uint8"))
    else:
        blocks = (height // 2, 2, width // 2, 2)
        total = values.reshape(blocks).sum(axis=(1, 3))
        count = valid.reshape(blocks).sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
    if integer:
        mean = np.floor(mean + 0.5)
    fill = np.nan if nodata is None else nodata
    return np.where(count > 0, mean, fill).astype(layer.dtype)


def _quarters_sum(values: np.ndarray) -> np.ndarray:
    """The sum of each 2 x 2 block of ``values`` (even height and width)."""
    total = values[0::2, 0::2] + values[0::2, 1::2]
    total += values[1::2, 0::2]
    total += values[1::2, 1::2]
    return total


def write_tile(folder: Path, product: str, grid: GeoBox, rows: slice, cols: slice,
               bands: Sequence[np.ndarray], encoding: Sequence[ScaledInteger] = (), *,
               factors: Sequence[int] = (), nodata: float | None = None,
               average: bool = True) -> Path:
    """Write one chunk of a product: ``bands`` ``(y, x)`` on ``grid[rows, cols]``, each
    encoded as :func:`~.export.write_cog` would (all of one dtype otherwise), and its part of
    each overview level of ``factors`` (averaged, or nearest where not ``average``; the
    encoded values, ``nodata`` left out). Written as :func:`write_planes_tile` writes any
    tile (fast ZSTD, every block stored)."""
    chunk = grid[rows, cols]
    layers = [e.encode(b) for e, b in zip(encoding, bands, strict=True)] if encoding else bands
    if encoding:
        nodata = encoding[0].nodata
    path = tile_path(folder, product, rows, cols)
    _write_layers(path, layers, chunk.affine, str(chunk.crs))
    for factor in factors:
        layers = [_halved(layer, nodata, average) for layer in layers]
        if not layers[0].size:  # a sliver of a chunk on the grid's edge: nothing left
            break
        _write_layers(path.with_name(f"{path.stem}-ovr{factor}.tif"), layers,
                      chunk.affine @ Affine.scale(factor), str(chunk.crs))
    return path


def _write_layers(path: Path, layers: Sequence[np.ndarray], affine: Affine, crs: str) -> None:
    write_planes_tile(path, len(layers), np.dtype(layers[0].dtype), layers[0].shape, layers,
                      affine, crs)


def write_planes_tile(path: Path, count: int, dtype: np.dtype[Any], shape: tuple[int, ...],
                      layers: Iterable[np.ndarray], affine: Affine, crs: str) -> None:
    """A tile of ``count`` bands taken one at a time from ``layers`` (no more than one held).

    Compressed, but by the cheapest codec there is (PackBits, a run-length code): a tile is
    written once and read once, by the COG's assembly, so it needs no small file, and ZSTD's
    compression and decompression cost more than the bytes they save. Not left
    uncompressed: GDAL can report the blocks of zeros of an uncompressed GeoTIFF as holes of
    the file, empty, which a VRT with a nodata value then fills with it (an all-zero edge
    block of the pre-existing map read back as NaN)."""
    height, width = shape
    profile = {"driver": "GTiff", "count": count, "height": height, "width": width,
               "dtype": dtype.name, "crs": crs, "transform": affine, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "interleave": "band",
               "compress": "PACKBITS", "sparse_ok": False}
    written = 0
    with (atomic_path(path, keep_suffix=True, check=check_tiff_whole) as tmp,
          rasterio.open(tmp, "w", **profile) as dst):
        for i, layer in enumerate(layers, start=1):
            dst.write(layer.astype(dtype, copy=False), i)
            written = i
        if written != count:  # before the tile is in place
            raise ValueError(f"{path}: {written} layers for {count} bands")


def assemble_cog(folder: Path, product: str, grid: GeoBox, chunks: Sequence[tuple[slice, slice]],
                 *, descriptions: Sequence[str], dtype: str, cog_options: Mapping[str, Any],
                 nodata: float | None = None, encoding: Sequence[ScaledInteger] = (),
                 tags: Mapping[str, Any] | None = None, factors: Sequence[int] = (),
                 colours: Sequence[str] = ()) -> Path:
    """``<folder>/<product>.tif`` as a COG from the chunk tiles of ``product`` covering
    ``grid``, with ``descriptions``, ``nodata``, the scale and offset of ``encoding``, the
    bands' colour interpretation ``colours`` (as :func:`~.export.write_cog`) and ``tags``; the
    tiles are then removed. ``factors``: the overview levels the tiles carry
    (:func:`write_tile`), which the COG keeps as they are."""
    sources = [(tile_path(folder, product, rows, cols), rows, cols) for rows, cols in chunks]
    missing = [str(p) for p, _, _ in sources if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{product}: chunk tiles missing: {', '.join(missing[:3])}")
    written = [p for p, _, _ in sources]
    levels = []
    for factor in factors:
        level = [(p.with_name(f"{p.stem}-ovr{factor}.tif"),
                  _scaled(rows, factor), _scaled(cols, factor)) for p, rows, cols in sources]
        level = [(p, rows, cols) for p, rows, cols in level
                 if rows.stop > rows.start and cols.stop > cols.start]
        path = folder / TILES_FOLDER / f"{product}-ovr{factor}.vrt"
        shape = (grid.shape.y // factor, grid.shape.x // factor)
        path.write_text(_vrt_document(grid, level, descriptions, dtype, nodata, encoding, {},
                                      shape=shape, factor=factor), encoding="utf-8")
        levels.append(path.name)
        written += [path, *(p for p, _, _ in level)]
    vrt = folder / TILES_FOLDER / f"{product}.vrt"
    vrt.write_text(_vrt_document(grid, sources, descriptions, dtype, nodata, encoding,
                                 tags or {}, overviews=levels, colours=colours),
                   encoding="utf-8")
    options = dict(cog_options)
    if factors:
        options["overviews"] = "FORCE_USE_EXISTING"
    target = folder / f"{product}.tif"
    with atomic_path(target, check=check_tiff_whole) as tmp:
        copy_mosaic(vrt, tmp, driver="COG", **options)
    for path in written:
        path.unlink(missing_ok=True)
    vrt.unlink(missing_ok=True)
    try:
        vrt.parent.rmdir()  # once the month's last product is made
    except OSError:
        pass
    return target


#: GDAL's block cache while a mosaic is copied, in MB. The copy streams each block once, so a
#: cache helps it little; GDAL's default (5 % of the machine's memory) grew a worker by that
#: much for the length of the run.
COPY_CACHE_MB = 128


def copy_mosaic(vrt: Path, target: str | Path, **options: Any) -> None:
    """GDAL's copy of a mosaic (:func:`mosaic`) into one file, with a bounded block cache."""
    with rasterio.Env(GDAL_CACHEMAX=COPY_CACHE_MB):
        rasterio.shutil.copy(str(vrt), str(target), **options)


def mosaic(folder: Path, product: str, grid: GeoBox, chunks: Sequence[tuple[slice, slice]],
           *, descriptions: Sequence[str], dtype: str,
           band_sources: Sequence[tuple[str, int]] | None = None,
           nodata: float | None = None, tags: Mapping[str, Any] | None = None) -> Path:
    """A VRT of ``grid`` mosaicking the chunk tiles of ``product`` (or, per band, of another
    product's tiles and band: ``band_sources``), in the tiles' folder: reads of any window of
    the grid, across chunk edges, while the tiles are kept."""
    def tiles(name: str) -> list[tuple[Path, slice, slice]]:
        return [(tile_path(folder, name, rows, cols), rows, cols) for rows, cols in chunks]

    sources = tiles(product)
    per_band = None if band_sources is None else [(tiles(name), band)
                                                  for name, band in band_sources]
    path = folder / TILES_FOLDER / f"{product}.vrt"
    path.write_text(_vrt_document(grid, sources, descriptions, dtype, nodata, (), tags or {},
                                  band_sources=per_band), encoding="utf-8")
    return path


def remove_tiles(folder: Path) -> None:
    """Remove a month's chunk tiles (left by a run that failed before its COGs)."""
    shutil.rmtree(folder / TILES_FOLDER, ignore_errors=True)


def _scaled(window: slice, factor: int) -> slice:
    """A window of the grid at an overview level (its start a multiple of ``factor``; odd
    ends left out level by level, as :func:`_halved` does)."""
    return slice(window.start // factor, window.stop // factor)


def _vrt_document(grid: GeoBox, sources: Sequence[tuple[Path, slice, slice]],
                  descriptions: Sequence[str], dtype: str, nodata: float | None,
                  encoding: Sequence[ScaledInteger], tags: Mapping[str, Any], *,
                  overviews: Sequence[str] = (), shape: tuple[int, int] | None = None,
                  factor: int = 1,
                  band_sources: Sequence[tuple[Sequence[tuple[Path, slice, slice]], int]]
                  | None = None, colours: Sequence[str] = ()) -> str:
    """GDAL's VRT of the tiles (https://gdal.org/drivers/raster/vrt.html): one simple source
    per tile and band, placed at its window of the grid (of an overview level: ``shape`` and
    ``factor``), and the VRTs of the ``overviews`` levels. ``band_sources``: per band, the
    tiles and their band it comes from, when not band ``i`` of ``sources``. ``colours``: per
    band, its colour interpretation (``red``, ``undefined``...), which GDAL's copy keeps."""
    gdal_type = rasterio.dtypes._gdal_typename(dtype)
    a = grid.affine @ Affine.scale(factor)
    height, width = shape or grid.shape.yx
    assert grid.crs is not None, "site grids are in UTM"
    lines = [f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">',
             f"  <SRS>{escape(grid.crs.to_wkt())}</SRS>",
             (f"  <GeoTransform>{a.c!r}, {a.a!r}, {a.b!r}, {a.f!r}, {a.d!r}, {a.e!r}"
             "</GeoTransform>")]
    if tags:
        lines.append("  <Metadata>")
        lines += [f"    <MDI key={quoteattr(str(k))}>{escape(str(v))}</MDI>"
                  for k, v in tags.items()]
        lines.append("  </Metadata>")
    for band, description in enumerate(descriptions, start=1):
        lines.append(f'  <VRTRasterBand dataType="{gdal_type}" band="{band}">')
        lines.append(f"    <Description>{escape(description)}</Description>")
        if colours:
            lines.append(f"    <ColorInterp>{colours[band - 1].capitalize()}</ColorInterp>")
        if nodata is not None:
            value = "nan" if isinstance(nodata, float) and math.isnan(nodata) else repr(nodata)
            lines.append(f"    <NoDataValue>{value}</NoDataValue>")
        if encoding:
            scaling = encoding[band - 1]
            lines.append(f"    <Offset>{scaling.offset!r}</Offset>")
            lines.append(f"    <Scale>{scaling.scale!r}</Scale>")
        tiles, source_band = band_sources[band - 1] if band_sources else (sources, band)
        for path, rows, cols in tiles:
            height, width = rows.stop - rows.start, cols.stop - cols.start
            lines += [
                "    <SimpleSource>",
                f'      <SourceFilename relativeToVRT="1">{escape(path.name)}</SourceFilename>',
                f"      <SourceBand>{source_band}</SourceBand>",
                f'      <SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                (f'      <DstRect xOff="{cols.start}" yOff="{rows.start}" xSize="{width}" '
                f'ySize="{height}"/>'),
                "    </SimpleSource>"]
        for level in overviews:
            lines += ["    <Overview>",
                      f'      <SourceFilename relativeToVRT="1">{escape(level)}</SourceFilename>',
                      f"      <SourceBand>{band}</SourceBand>",
                      "    </Overview>"]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"
