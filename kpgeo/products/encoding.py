"""Scaled integers in the raster products: ``value = DN * scale + offset``, GDAL's band scale
and offset, read by GDAL, QGIS and rasterio users as the Sentinel-2 L2A COGs are.

Composite reflectance is stored as Sentinel-2 L2A stores it (``uint16``, DN 0 = no data,
``reflectance = DN / 10000 - 0.1``: processing baseline 04.00's ``BOA_ADD_OFFSET``), indices as
``int16`` ten-thousandths. Half the bytes of float32 and about half the time to compress
them, for a rounding of at most 0.00005 reflectance, far below the sensor's radiometric noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
import rasterio.windows


@dataclass(frozen=True)
class ScaledInteger:
    """How float values are stored as integers: ``value = DN * scale + offset``, ``nodata``
    DN for NaN, values beyond the type's range clipped to it."""

    dtype: str
    scale: float
    offset: float
    nodata: int

    def encode(self, values: np.ndarray) -> np.ndarray:
        """``values`` (NaN = none) as DN of :attr:`dtype`."""
        info = np.iinfo(self.dtype)
        # The nodata DN is either end of the range; values are clipped to the rest.
        low = info.min + 1 if self.nodata == info.min else info.min
        high = info.max - 1 if self.nodata == info.max else info.max
        work = np.subtract(values, np.float32(self.offset), dtype="float32")
        work *= np.float32(1 / self.scale)
        np.rint(work, out=work)
        missing = np.isnan(work)
        np.clip(work, low, high, out=work)
        np.copyto(work, np.float32(self.nodata), where=missing)
        return work.astype(self.dtype)


#: Composite reflectance: Sentinel-2 L2A's own encoding.
REFLECTANCE = ScaledInteger("uint16", 1e-4, -0.1, 0)
#: Spectral indices: ten-thousandths. Normalised differences lie within -1 to 1 for positive
#: reflectance; L2A's can be slightly negative, which takes a few beyond (clipped at +-3.2767).
INDEX = ScaledInteger("int16", 1e-4, 0.0, -32768)
#: Counts (valid observations): themselves; 0 is also no data.
COUNT = ScaledInteger("uint16", 1.0, 0.0, 0)


def read_values(src: rasterio.DatasetReader, index: int,
                window: rasterio.windows.Window | None = None) -> np.ndarray:
    """Band ``index`` (1-based) of an open product as float32 values (of ``window``): its
    scale and offset applied, NaN where it has no data."""
    raw = src.read(index, window=window)
    return decode(raw, src.scales[index - 1], src.offsets[index - 1], src.nodata)


def decode(raw: np.ndarray, scale: float, offset: float, nodata: float | None, *,
           in_place: bool = False) -> np.ndarray:
    """float32 values of DN (NaN where ``nodata``): those of a product, and the reflectance
    the sources make of Sentinel-2 DN. ``in_place``: into ``raw`` itself (float32 DN)."""
    values = raw if in_place else raw.astype("float32")
    if nodata is not None and not np.isnan(nodata):
        # copyto, not values[mask] = nan: boolean indexing is several times slower
        np.copyto(values, np.float32(np.nan), where=raw == np.float32(nodata))
    if scale != 1.0:
        values *= np.float32(scale)
    if offset != 0.0:
        values += np.float32(offset)
    return values
