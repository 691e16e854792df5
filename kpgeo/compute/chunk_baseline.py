"""What a chunk needs of the baseline in a month, read by the worker that computes the chunk
from the site's ``baseline.tif`` (:meth:`~.detection.Baseline.stored`): the season's reference
layers, where new water can be a pit, and the fixed layers, for the chunk's window only. The
steps that look beyond a pixel (the misregistration allowance, the distance to water) were
taken when the baseline was stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.windows
from odc.geo.geobox import GeoBox
from rasterio.features import geometry_mask

from ..methods.chunkwise import ChunkBaseline
from ..methods.detection import WORKED_SINCE_SEEN_UNDUG, reference_band_name
from ..methods.reference import REFERENCE_LAYERS


def inside_pixels(outline: Any, grid: GeoBox, rows: slice, cols: slice) -> np.ndarray:
    """The pixels of the chunk ``rows``, ``cols`` of ``grid`` whose centres lie in ``outline``
    (a shapely geometry in the grid's CRS), as :meth:`~.aoi.Site.pixel_mask` finds them."""
    chunk = grid[rows, cols]
    return ~geometry_mask([outline], out_shape=chunk.shape.yx, transform=chunk.affine)


def read_chunk_baseline(path: Path, grid: GeoBox, rows: slice, cols: slice, season: int,
                        outline: Any) -> ChunkBaseline:
    """The :class:`~.chunkwise.ChunkBaseline` of a chunk in calendar month ``season``."""
    wanted = ["land_ndvi_min", "preexisting", "worked", "pit_water_months",
              *(reference_band_name(layer, season) for layer in REFERENCE_LAYERS)]
    window = rasterio.windows.Window(cols.start, rows.start, cols.stop - cols.start,
                                     rows.stop - rows.start)
    with rasterio.open(path) as src:
        names = list(src.descriptions)
        land_ndvi_min, preexisting, worked, pits, *reference = src.read(
            [names.index(n) + 1 for n in wanted], window=window)
    inside = inside_pixels(outline, grid, rows, cols)
    preexisting = preexisting > 0.5
    possible = (pits.astype("int32") >> (season - 1)) & 1 == 1
    dug_at_end = preexisting | (np.rint(np.nan_to_num(worked)) == WORKED_SINCE_SEEN_UNDUG)
    return ChunkBaseline(np.stack(reference), possible, land_ndvi_min, preexisting,
                         dug_at_end | ~inside, inside)
