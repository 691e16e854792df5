"""Whether GDAL wrote a GeoTIFF whole, checked before the file takes its product's name.

GDAL reports a write that fails while the file closes (the disk filled up as it flushed the
last blocks) in its log, not as an exception. Measured on a full tmpfs: a COG of 10,269,789
bytes was left at 10,248,192 with no exception; it opens, and its last tile fails to read.
Renamed into place, it would be a damaged product with a valid-looking record
(:mod:`kpgeo.products.checksums`). So every GeoTIFF kpgeo writes is checked first
(:func:`~.atomic.atomic_path`'s ``check``): it opens, and every block of every band and
overview lies within the file. That reads the file's directories only, not its pixels.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioError


def check_tiff_whole(path: Path) -> None:
    """Raise :class:`OSError` if the GeoTIFF at ``path`` does not open or its blocks run past
    its end."""
    size = path.stat().st_size
    try:
        with rasterio.open(path) as src:
            end = max(_blocks_end(src, ovr)
                      for ovr in [None, *range(len(src.overviews(1)))])
    except RasterioError as exc:
        raise OSError(errno.EIO, f"{path.name} was not written whole ({exc})",
                      str(path)) from exc
    if end > size:
        raise OSError(errno.EIO, f"{path.name} was not written whole: its blocks end at byte "
                                 f"{end:,}, the file at {size:,}", str(path))


def _blocks_end(src: Any, ovr: int | None) -> int:
    """Where the last block of any band at overview level ``ovr`` (None: full resolution)
    ends. GDAL numbers blocks by column and row and has no item past the last."""
    end = 0
    for band in range(1, src.count + 1):
        row = 0
        while True:
            col = 0
            while True:
                offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band,
                                          ovr=ovr)
                if offset is None:
                    break
                length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band,
                                          ovr=ovr)
                end = max(end, int(offset) + int(length or 0))
                col += 1
            if col == 0:
                break
            row += 1
    return end
