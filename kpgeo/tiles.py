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
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import rasterio
import rasterio.dtypes
import rasterio.shutil
from odc.geo.geobox import GeoBox

from .atomic import atomic_path
from .encoding import ScaledInteger

#: The month's folder of chunk tiles, removed once its COGs are made.
TILES_FOLDER = ".tiles"


def tile_path(folder: Path, product: str, rows: slice, cols: slice) -> Path:
    """Where the chunk ``rows``, ``cols`` of ``product`` (``composite``...) is written."""
    return folder / TILES_FOLDER / f"{product}-{rows.start}-{cols.start}.tif"


def write_tile(folder: Path, product: str, grid: GeoBox, rows: slice, cols: slice,
               bands: Sequence[np.ndarray], encoding: Sequence[ScaledInteger] = ()) -> Path:
    """Write one chunk of a product: ``bands`` ``(y, x)`` on ``grid[rows, cols]``, each
    encoded as :func:`~.export.write_cog` would (all of one dtype otherwise). Uncompressed: it
    lives until the COG is made, and GDAL reads it back fastest so."""
    chunk = grid[rows, cols]
    layers = [e.encode(b) for e, b in zip(encoding, bands, strict=True)] if encoding else bands
    dtype = np.dtype(layers[0].dtype)
    path = tile_path(folder, product, rows, cols)
    profile = {"driver": "GTiff", "count": len(layers), "height": chunk.shape.y,
               "width": chunk.shape.x, "dtype": dtype.name, "crs": str(chunk.crs),
               "transform": chunk.affine, "tiled": True, "blockxsize": 256, "blockysize": 256,
               "interleave": "band"}
    with atomic_path(path, keep_suffix=True) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for i, layer in enumerate(layers, start=1):
            dst.write(layer.astype(dtype, copy=False), i)
    return path


def assemble_cog(folder: Path, product: str, grid: GeoBox, chunks: Sequence[tuple[slice, slice]],
                 *, descriptions: Sequence[str], dtype: str, cog_options: Mapping[str, Any],
                 nodata: float | None = None, encoding: Sequence[ScaledInteger] = (),
                 tags: Mapping[str, Any] | None = None) -> Path:
    """``<folder>/<product>.tif`` as a COG from the chunk tiles of ``product`` covering
    ``grid``, with ``descriptions``, ``nodata``, the scale and offset of ``encoding`` and
    ``tags``; the tiles are then removed."""
    sources = [(tile_path(folder, product, rows, cols), rows, cols) for rows, cols in chunks]
    missing = [str(p) for p, _, _ in sources if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{product}: chunk tiles missing: {', '.join(missing[:3])}")
    vrt = folder / TILES_FOLDER / f"{product}.vrt"
    vrt.write_text(_vrt_document(grid, sources, descriptions, dtype, nodata, encoding,
                                 tags or {}), encoding="utf-8")
    target = folder / f"{product}.tif"
    with atomic_path(target) as tmp:
        rasterio.shutil.copy(str(vrt), tmp, driver="COG", **cog_options)
    for path, _, _ in sources:
        path.unlink(missing_ok=True)
    vrt.unlink(missing_ok=True)
    try:
        vrt.parent.rmdir()  # once the month's last product is made
    except OSError:
        pass
    return target


def remove_tiles(folder: Path) -> None:
    """Remove a month's chunk tiles (left by a run that failed before its COGs)."""
    shutil.rmtree(folder / TILES_FOLDER, ignore_errors=True)


def _vrt_document(grid: GeoBox, sources: Sequence[tuple[Path, slice, slice]],
                  descriptions: Sequence[str], dtype: str, nodata: float | None,
                  encoding: Sequence[ScaledInteger], tags: Mapping[str, Any]) -> str:
    """GDAL's VRT of the tiles (https://gdal.org/drivers/raster/vrt.html): one simple source
    per tile and band, placed at its window of the grid."""
    gdal_type = rasterio.dtypes._gdal_typename(dtype)
    a = grid.affine
    lines = [f'<VRTDataset rasterXSize="{grid.shape.x}" rasterYSize="{grid.shape.y}">',
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
        if nodata is not None:
            value = "nan" if isinstance(nodata, float) and math.isnan(nodata) else repr(nodata)
            lines.append(f"    <NoDataValue>{value}</NoDataValue>")
        if encoding:
            scaling = encoding[band - 1]
            lines.append(f"    <Offset>{scaling.offset!r}</Offset>")
            lines.append(f"    <Scale>{scaling.scale!r}</Scale>")
        for path, rows, cols in sources:
            height, width = rows.stop - rows.start, cols.stop - cols.start
            lines += [
                "    <SimpleSource>",
                f'      <SourceFilename relativeToVRT="1">{escape(path.name)}</SourceFilename>',
                f"      <SourceBand>{band}</SourceBand>",
                f'      <SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>',
                (f'      <DstRect xOff="{cols.start}" yOff="{rows.start}" xSize="{width}" '
                f'ySize="{height}"/>'),
                "    </SimpleSource>"]
        lines.append("  </VRTRasterBand>")
    lines.append("</VRTDataset>")
    return "\n".join(lines) + "\n"
