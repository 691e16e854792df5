"""Sentinel-1 gamma0 of one pass onto one chunk of a site grid: read, resample, convert.

Each asset goes through the COG reader the optical bands use (:func:`~.reader.read_reflectance`:
pasted when on the grid, interpolated from 20 m cells, resampled across UTM zones), its
``raster:bands`` scale, offset and nodata applied; then the stored units become linear power,
the unit kpgeo's radar method works in (speckle is averaged there). A pass cut into several
frames (items along its track) is fused first-valid-wins, in the order given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox

from .reader import Asset, read_reflectance

#: The polarisations read, in band order.
RADAR_BANDS = ("vv", "vh")


@dataclass(frozen=True)
class RadarTile:
    """One item (frame) of a pass: its VV and VH assets."""

    vv: Asset
    vh: Asset


@dataclass(frozen=True)
class RadarReadOptions:
    """How stored values become linear power, how they are resampled, GDAL's settings."""

    units: str = "power"
    """``power`` (linear), ``amplitude`` or ``db``."""
    resampling: str = "bilinear"
    gdal: Mapping[str, str | int | bool] | None = None


def read_radar_pass(tiles: Sequence[RadarTile], grid: GeoBox,
                    options: RadarReadOptions) -> np.ndarray:
    """Gamma0 ``(2, y, x)`` float32 (VV, VH; linear power) of one pass on ``grid``, NaN where
    no frame has data in both polarisations."""
    out = np.full((2, *grid.shape.yx), np.nan, dtype="float32")
    todo = np.ones(grid.shape.yx, dtype=bool)
    with rasterio.Env(**dict(options.gdal or {})):
        for tile in tiles:
            values = np.empty_like(out)
            for i, asset in enumerate((tile.vv, tile.vh)):
                read_reflectance(asset, grid, options.resampling, out=values[i])
            usable = todo & np.isfinite(values).all(axis=0)
            np.copyto(out, values, where=usable[None])
            todo &= ~usable
            if not todo.any():
                break
    return to_power(out, options.units)


def to_power(values: np.ndarray, units: str) -> np.ndarray:
    """Backscatter stored in ``units`` as linear power (in place for ``power``); zero and
    negative power (a frame's edge, a failed terrain correction) is no data."""
    if units == "db":
        values = np.float32(10.0) ** (values / np.float32(10.0))
    elif units == "amplitude":
        values = values * values
    elif units != "power":
        raise ValueError(f"radar units {units!r}; give power, amplitude or db")
    np.copyto(values, np.float32(np.nan), where=~(values > 0))
    return values
