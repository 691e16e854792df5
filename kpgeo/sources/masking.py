"""Validity of scene pixels from Sen2Cor's scene classification (SCL), with cloud dilation.

SCL flags thick clouds and their shadows but misses their thin edges; growing the flagged
clouds and shadows by a buffer removes most of what it misses.
Works on dask arrays without computing them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import dask.array as da
import numpy as np
import xarray as xr

#: Sen2Cor SCL classes (ESA Sentinel-2 L2A product definition).
SCL_NO_DATA = 0
SCL_SATURATED_OR_DEFECTIVE = 1
SCL_DARK_AREA = 2
SCL_CLOUD_SHADOW = 3
SCL_VEGETATION = 4
SCL_NOT_VEGETATED = 5
SCL_WATER = 6
SCL_UNCLASSIFIED = 7
SCL_CLOUD_MEDIUM = 8
SCL_CLOUD_HIGH = 9
SCL_THIN_CIRRUS = 10
SCL_SNOW = 11


def disk(radius_px: int) -> np.ndarray:
    """A boolean disk footprint of the given radius in pixels."""
    r = int(radius_px)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (yy**2 + xx**2) <= r * r + 1e-9


def _dilate_stack(block: np.ndarray, radius_px: int) -> np.ndarray:
    """Dilate each time slice of a ``(time, y, x)`` boolean block by a :func:`disk`.

    Equal to ``binary_dilation`` with the disk footprint (a pixel is grown over when a flagged
    pixel lies within ``radius_px``); slices without a flagged pixel cost nothing.
    """
    out = np.zeros(block.shape, dtype=bool)
    for i, flagged in enumerate(block):
        rows, cols = np.flatnonzero(flagged.any(axis=1)), np.flatnonzero(flagged.any(axis=0))
        if rows.size == 0:
            continue
        # Only pixels within the radius of the flagged ones' bounding box can be reached:
        # small clouds cost a small dilation.
        box = (slice(max(rows[0] - radius_px, 0), rows[-1] + radius_px + 1),
               slice(max(cols[0] - radius_px, 0), cols[-1] + radius_px + 1))
        out[i][box] = _dilate_by_disk(flagged[box], radius_px)
    return out


def _dilate_by_disk(flagged: np.ndarray, radius_px: int) -> np.ndarray:
    """Binary dilation of a 2-D mask by :func:`disk`, row by row of the disk.

    The disk's row ``dy`` away from its centre spans ``|dx| <= isqrt(r² - dy²)``, so the
    dilation is the mask grown along x by each of those half-widths, shifted along y: about 4r
    array ORs. ``binary_dilation`` visits every footprint pixel at every pixel, and the
    Euclidean distance transform (used before) was 10x slower at the default 6 px; scipy has
    no decomposed disk.
    """
    r = int(radius_px)
    half_widths = [math.isqrt(r * r - dy * dy) for dy in range(r + 1)]
    grown_x: dict[int, np.ndarray] = {}
    along_x = flagged.copy()
    for w in range(r + 1):
        if w > 0:
            along_x[:, w:] |= flagged[:, :-w]
            along_x[:, :-w] |= flagged[:, w:]
        if w in half_widths:
            grown_x[w] = along_x.copy()
    out = grown_x[half_widths[0]]
    for dy in range(1, min(r, out.shape[0] - 1) + 1):
        row = grown_x[half_widths[dy]]
        out[dy:] |= row[:-dy]
        out[:-dy] |= row[dy:]
    return out


def valid_pixels(scl: np.ndarray, *, invalid_classes: Sequence[int],
                 cloud_classes: Sequence[int], buffer_px: int) -> np.ndarray:
    """:func:`valid_from_scl` of one scene's ``(y, x)`` numpy SCL (the edges are not padded:
    read the scene ``buffer_px`` wider to see clouds just outside)."""
    invalid, cloud = (in_classes(scl, classes) for classes in (invalid_classes, cloud_classes))
    if buffer_px > 0:
        cloud = _dilate_stack(cloud[None], buffer_px)[0]
    return ~(invalid | cloud)


def in_classes(scl: np.ndarray, classes: Sequence[int]) -> np.ndarray:
    """Whether each pixel of a uint8 class array is one of ``classes``.

    Bit ``c`` of a mask of the classes, shifted right by each pixel's class (numpy gives 0 for
    a shift past the mask's width): 5x faster than a 256-entry lookup table through ``take``,
    which first widens the uint8 classes to indices, and 20x faster than ``numpy.isin``.
    """
    wanted = sorted({int(c) for c in classes})
    if wanted and wanted[-1] >= 64:
        table = np.zeros(256, dtype=bool)
        table[wanted] = True
        return np.take(table, scl)
    width = next(t for t in (np.uint16, np.uint32, np.uint64)
                 if not wanted or wanted[-1] < np.iinfo(t).bits)
    flags = np.right_shift(width(sum(1 << c for c in wanted)), scl, dtype=width)
    return np.bitwise_and(flags, 1, out=flags).astype(bool)


def valid_from_scl(
    scl: xr.DataArray,
    *,
    invalid_classes: Sequence[int],
    cloud_classes: Sequence[int],
    buffer_px: int,
) -> xr.DataArray:
    """Pixels usable for compositing: not an invalid class, and not near a cloud or shadow.

    Parameters
    ----------
    scl
        Scene classification ``(time, y, x)``, numpy- or dask-backed.
    invalid_classes
        Classes never used (no data, defective, shadow, clouds, cirrus, snow).
    cloud_classes
        Classes grown by ``buffer_px`` before masking.
    buffer_px
        Dilation radius in pixels of the grid ``scl`` lies on.

    Returns
    -------
    xarray.DataArray
        Boolean, same dims and backing as ``scl``; True where the pixel may be used.

    Examples
    --------
    >>> valid = valid_from_scl(ds.scl, invalid_classes=(0, 3, 8, 9), cloud_classes=(3, 8, 9),
    ...                        buffer_px=6)  # doctest: +SKIP
    """
    invalid = scl.isin(list(invalid_classes))
    cloud = scl.isin(list(cloud_classes))
    if buffer_px > 0:
        data = cloud.data
        if isinstance(data, da.Array):
            grown = data.map_overlap(
                _dilate_stack,
                depth={0: 0, 1: buffer_px, 2: buffer_px},
                boundary=False,
                radius_px=buffer_px,
                dtype=bool,
            )
        else:
            grown = _dilate_stack(np.asarray(data), buffer_px)
        cloud = cloud.copy(data=grown)
    return ~(invalid | cloud)
