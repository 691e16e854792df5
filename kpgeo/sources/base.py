"""The one interface every scene source offers (docs/product.md §6).

``search`` returns scene metadata only (STAC items, whatever the provider); ``load`` turns
scenes into a lazy ``xarray.Dataset`` on the site grid with dims ``(time, y, x)``: surface
reflectance as float32 with the provider's scale and offset applied (NaN where no data), and a
boolean ``valid`` mask. Everything downstream sees only this.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import pystac
import rasterio.errors
import shapely.geometry
import xarray as xr
from dask.delayed import Delayed

from ..aoi import Site
from ..methods.composite import REFLECTANCE_BANDS
from ..months import MonthRange

# REFLECTANCE_BANDS, the reflectance bands kpgeo uses, is defined with the composites
# (kpgeo.methods imports nothing from sources) and imported above.
#: The scene classification band.
SCL_BAND = "scl"
#: What a failed COG read raises, on this process or a Dask worker: rasterio's errors (HTTP
#: status, timeout, "not recognized as being in a supported file format", failed warp of a
#: corrupt tile). Not every OSError: a lost connection to the Dask scheduler is one, and must
#: fail the run rather than mark every scene unreadable.
READ_ERRORS: tuple[type[BaseException], ...] = (rasterio.errors.RasterioError,)


class SceneSource(Protocol):
    """Search scenes, then load them on a site grid."""

    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        """Scenes intersecting ``site`` acquired within ``months``, oldest first."""
        ...

    def load(self, items: list[pystac.Item], site: Site) -> xr.Dataset:
        """Lazy reflectance and validity of ``items`` on ``site.grid``."""
        ...


@dataclass(frozen=True)
class ChunkReads:
    """Scenes on a site grid as lazy reads, one per overpass (time step) and chunk.

    Each read is a ``dask.delayed`` ``(band, y, x)`` float32 array of
    :data:`REFLECTANCE_BANDS` on its chunk, with the scale and offset applied and every band
    NaN where the pixel is unusable (no data, invalid, near a cloud): validity is ``isfinite``
    of any band.
    """

    times: np.ndarray
    """Time of each overpass (datetime64[ns])."""
    scene_ids: list[str]
    """Scene id of each overpass (``+``-joined when several tiles make one)."""
    chunks: list[tuple[slice, slice, list[Delayed]]]
    """Rows and columns of each chunk of the site grid, and the reads of each overpass there."""


@runtime_checkable
class ChunkedSource(SceneSource, Protocol):
    """A source whose every chunk is read by tasks of its own, so that a month is computed
    chunk by chunk, reading nothing twice, with memory bounded by the chunk (a source reading
    wider blocks, Sentinel Hub's 2500 px tiles, would decode a block once per chunk)."""

    def read_chunks(self, items: list[pystac.Item], site: Site) -> ChunkReads:
        """Lazy reads of ``items`` on ``site.grid``, chunk by chunk."""
        ...


def by_solar_day(items: Iterable[pystac.Item]) -> list[list[pystac.Item]]:
    """Items grouped by local solar day (the tiles of one overpass), oldest day first, in the
    order given within a day (odc-stac's ``groupby="solar_day"``)."""
    days: dict[np.datetime64, list[pystac.Item]] = defaultdict(list)
    for item in items:
        days[solar_day(item)].append(item)
    return [days[d] for d in sorted(days)]


def solar_day(item: pystac.Item) -> np.datetime64:
    """Local solar day of a scene: its UTC time shifted by its longitude (15 degrees an hour)."""
    lon = shapely.geometry.shape(item.geometry).centroid.x if item.geometry else 0.0
    local = utc(item).replace(tzinfo=None) + dt.timedelta(hours=lon / 15)
    return np.datetime64(local.date(), "D")


def utc(item: pystac.Item) -> dt.datetime:
    assert item.datetime is not None
    when = item.datetime
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def chunk_reads_of_dataset(scenes: xr.Dataset, chunks: list[tuple[slice, slice]]) -> ChunkReads:
    """:class:`ChunkReads` of a source that loads a lazy dataset (:meth:`SceneSource.load`):
    each read is the dataset's overpass on the chunk, NaN where not ``valid``."""
    import dask

    def masked(bands: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return np.where(valid[None], bands, np.float32(np.nan)).astype("float32", copy=False)

    stacked = scenes[list(REFLECTANCE_BANDS)].to_array("band").transpose("time", "band", "y", "x")
    valid = scenes["valid"]
    out = []
    for rows, cols in chunks:
        reads = [dask.delayed(masked, pure=True)(stacked.data[t, :, rows, cols],
                                                 valid.data[t, rows, cols])
                 for t in range(scenes.sizes.get("time", 0))]
        out.append((rows, cols, reads))
    ids = ([str(s) for s in scenes["scene_id"].values] if "scene_id" in scenes.coords
           else [])
    return ChunkReads(scenes["time"].values, ids, out)


@dataclass(frozen=True)
class RadarReads:
    """Sentinel-1 passes on a site grid as lazy reads, one per pass and chunk.

    Each read is a ``dask.delayed`` ``(2, y, x)`` float32 array of gamma0 (VV, VH; linear
    power, NaN without data) on its chunk grown by :attr:`pad_px` within the site grid, so
    that a spatial speckle filter sees across the chunk's edges; ``crop`` cuts the chunk out.
    """

    times: np.ndarray
    """Time of each pass (datetime64[ns])."""
    scene_ids: list[str]
    """Scene id of each pass (``+``-joined when several frames make one)."""
    orbit_states: list[str]
    """``ascending`` or ``descending`` (``sat:orbit_state``; empty when not told)."""
    relative_orbits: list[int]
    """``sat:relative_orbit`` of each pass (-1 when not told)."""
    pad_px: int
    chunks: list[tuple[slice, slice, tuple[slice, slice], list[Delayed]]]
    """Rows and columns of each chunk, where it lies in its padded reads, and the reads."""


class RadarSource(Protocol):
    """Search Sentinel-1 passes, then read them on a site grid chunk by chunk."""

    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        """Radar scenes intersecting ``site`` within ``months``, oldest first."""
        ...

    def read_chunks(self, items: list[pystac.Item], site: Site) -> RadarReads:
        """Lazy reads of ``items`` on ``site.grid``, pass by pass and chunk by chunk."""
        ...
