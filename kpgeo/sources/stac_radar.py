"""Sentinel-1 RTC from a STAC API or a static catalog: Planetary Computer's ``sentinel-1-rtc``
by default (``[radar]`` in the pipeline names another collection, its assets and units).

Search is the ``stac`` source's (:meth:`~.stac.StacSource.find`: API or static catalog, the
same bounds and retries); an item needs its VV and VH assets. Items of one pass (frames along
its track: one UTC day, orbit direction and relative orbit) become one time step, read by one
Dask task per chunk through :func:`~.radar_reader.read_radar_pass`, on the site grid like the
optical bands.

With ``sign = "planetary-computer"`` the asset URLs are signed with the planetary-computer
package's SAS tokens when a month's reads are built, not at search: the tokens expire (within
the hour), and a run's search may come long before its last month is read.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pystac
import shapely.geometry
from dask.delayed import Delayed
from dask.task_spec import Task

from ..aoi import Site
from ..config import PLANETARY_COMPUTER_URL, RadarConfig
from ..methods.blocks import chunk_slices
from ..methods.radar import PAD_PX
from ..months import MonthRange
from .base import RadarReads, utc
from .gdal_env import gdal_options, is_remote
from .radar_reader import RadarReadOptions, RadarTile, read_radar_pass
from .reader import Asset
from .stac import StacSource
from .stac_items import ItemProblem, asset_grid, band_scaling, check_item

#: Pixels read around each chunk: what the radar method needs beyond the chunk's own (its
#: speckle filter's half window and water buffer).
RADAR_PAD_PX = PAD_PX


@dataclass
class StacRadarSource:
    """Sentinel-1 gamma0 from a STAC API or static collection.

    Parameters
    ----------
    radar
        Collection, assets, units and signing (``[radar]``).
    catalog
        The STAC API or static collection, searched as the ``stac`` source searches.
    chunk_px
        Side of the square chunks.
    """

    radar: RadarConfig
    catalog: StacSource
    chunk_px: int = 1024
    skipped: list[dict[str, Any]] = field(default_factory=list)
    _sign: Callable[[str], str] | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_config(cls, radar: RadarConfig, *, catalog: str = "", chunk_px: int = 1024,
                    **stac: Any) -> StacRadarSource:
        """The source of a ``[radar]`` table: its catalog (or ``catalog``, or Planetary
        Computer's API) searched with the ``stac`` source's settings ``stac``."""
        source = StacSource(radar.catalog or catalog or PLANETARY_COMPUTER_URL,
                            collection=radar.collection, chunk_px=chunk_px,
                            option="radar.catalog", **stac)
        return cls(radar, source, chunk_px=chunk_px, skipped=source.skipped)

    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        """Radar scenes over the site in ``months`` with VV and VH, oldest first; the others
        are recorded in :attr:`skipped`."""
        keys = (self.radar.vv_asset, self.radar.vh_asset)
        usable = []
        for item in self.catalog.find(site, months):
            try:
                check_item(item, keys, ())
            except ItemProblem as exc:
                self.catalog.record_skip(site, item, str(exc), 0)
                continue
            usable.append(item)
        return sorted(usable, key=lambda i: (i.datetime, i.id))

    def read_chunks(self, items: list[pystac.Item], site: Site) -> RadarReads:
        """One Dask task per pass and chunk reads its gamma0 (VV, VH) onto the chunk padded
        by :data:`RADAR_PAD_PX`."""
        grid = site.grid
        groups = passes(items)
        tiles = [tuple(self._tile(i) for i in group) for group in groups]
        remote = any(is_remote(t.vv.href) for group in tiles for t in group)
        options = RadarReadOptions(
            units=self.radar.units, resampling=self.catalog.resampling,
            gdal=gdal_options(timeout_s=self.catalog.http_timeout_s,
                              retries=self.catalog.http_retries, remote=remote))
        token = hashlib.sha1(repr((tiles, tuple(grid.affine), grid.shape.yx, str(grid.crs),
                                   options, self.chunk_px)).encode()).hexdigest()
        pad = RADAR_PAD_PX

        def read(t: int, rows: slice, cols: slice) -> Delayed:
            key = f"read-radar-{token}-{t}-{rows.start}-{rows.stop}-{cols.start}-{cols.stop}"
            return Delayed(key, {key: Task(key, read_radar_pass, tiles[t], grid[rows, cols],
                                           options)})

        chunks = [(c.rows, c.cols, c.crop, [read(t, c.padded_rows, c.padded_cols)
                                            for t in range(len(tiles))])
                  for c in padded_chunks(grid.shape.yx, self.chunk_px, pad)]
        times = np.array([min(utc(i) for i in g).replace(tzinfo=None) for g in groups],
                         dtype="datetime64[ns]")
        return RadarReads(
            times, ["+".join(sorted(i.id for i in g)) for g in groups],
            [str(g[0].properties.get("sat:orbit_state", "")) for g in groups],
            [relative_orbit(g[0]) for g in groups], pad, chunks)

    def _tile(self, item: pystac.Item) -> RadarTile:
        footprint = (tuple(shapely.geometry.shape(item.geometry).bounds) if item.geometry
                     else None)

        def asset(key: str) -> Asset:
            scaling = band_scaling(item, key, reflectance=False)
            href = item.assets[key].get_absolute_href() or item.assets[key].href
            nodata = None if scaling.nodata is None else float(scaling.nodata)
            return Asset(key, self._signed(href), scaling.scale, scaling.offset, nodata,
                         footprint, asset_grid(item, key))

        return RadarTile(asset(self.radar.vv_asset), asset(self.radar.vh_asset))

    def _signed(self, href: str) -> str:
        if self.radar.sign != "planetary-computer":
            return href
        if self._sign is None:
            import planetary_computer  # ^ only runs that sign need it

            self._sign = planetary_computer.sign_url
        return self._sign(href)


@dataclass(frozen=True)
class PaddedChunk:
    """A chunk of a site grid, the rows and columns read for it (grown by the pad within the
    grid) and where the chunk lies in what is read."""

    rows: slice
    cols: slice
    padded_rows: slice
    padded_cols: slice

    @property
    def crop(self) -> tuple[slice, slice]:
        return (slice(self.rows.start - self.padded_rows.start,
                      self.rows.stop - self.padded_rows.start),
                slice(self.cols.start - self.padded_cols.start,
                      self.cols.stop - self.padded_cols.start))


def padded_chunks(shape_yx: tuple[int, int], chunk_px: int, pad_px: int) -> list[PaddedChunk]:
    """The chunks of a grid of ``shape_yx``, row by row, each grown by ``pad_px`` within it."""
    height, width = shape_yx
    return [PaddedChunk(y, x, slice(max(y.start - pad_px, 0), min(y.stop + pad_px, height)),
                        slice(max(x.start - pad_px, 0), min(x.stop + pad_px, width)))
            for y in chunk_slices(height, chunk_px) for x in chunk_slices(width, chunk_px)]


def passes(items: Iterable[pystac.Item]) -> list[list[pystac.Item]]:
    """Items grouped by pass (frames of one UTC day, orbit direction and relative orbit),
    oldest first; within a pass, in order of time."""
    groups: dict[tuple[Any, ...], list[pystac.Item]] = defaultdict(list)
    for item in items:
        when = utc(item)
        groups[(when.date(), str(item.properties.get("sat:orbit_state", "")),
                relative_orbit(item))].append(item)
    return [sorted(g, key=lambda i: (utc(i), i.id))
            for g in sorted(groups.values(), key=lambda g: min(utc(i) for i in g))]


def relative_orbit(item: pystac.Item) -> int:
    """``sat:relative_orbit`` of an item, -1 when not told."""
    value = item.properties.get("sat:relative_orbit")
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else -1
