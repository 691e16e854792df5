"""The ``stac`` source: a STAC API (Earth Search by default) or a static catalog/collection.

Search uses pystac-client on an API and pystac on a static catalog; pixels load lazily onto the
site grid through :mod:`.reader`, one Dask task per overpass and chunk, with the
``raster:bands`` scale and offset applied (odc-stac, which this source used before, does not
apply them, odc-stac issue #55, and warps every band not on the grid, which cost 3-4x the
decoding). Scenes from the neighbouring UTM zone are resampled on the way.

Faults (docs/product.md §10): a scene whose item cannot be used (no asset kpgeo reads, a field
of the wrong kind, :mod:`.stac_items`) is left out at search; a scene
whose COGs cannot be read (HTTP errors, a stalled server, a corrupt file) is found by
:meth:`StacSource.screen` after a month's computation failed, read alone up to
``read_attempts`` times, then left out. Both are recorded in :attr:`StacSource.skipped` with
their reason, and every failed attempt in :attr:`StacSource.retries`, for the run manifest.
After a fault, the source reads without GDAL's cache of remote files for the rest of the run
(``gdal_env.UNCACHED``): GDAL remembers a failed file, so retries would not reach the server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pystac
import shapely.geometry
import xarray as xr
from dask.delayed import Delayed
from dask.task_spec import Task
from odc.geo.xr import xr_coords

from ..aoi import Site
from ..config import EARTH_SEARCH_COLLECTION, EARTH_SEARCH_URL, MaskConfig
from ..errors import InputError, KpgeoError, SourceError
from ..methods.blocks import chunk_slices
from ..months import MonthRange, month_bounds_iso
from .base import READ_ERRORS, REFLECTANCE_BANDS, SCL_BAND, ChunkReads, by_solar_day
from .cog_checks import CogMismatch
from .gdal_env import gdal_options, is_remote
from .http_bounds import BoundedStacIO, bounded_session, get_text
from .reader import Asset, ReadOptions, Tile, read_overpass
from .stac_items import (
    ItemProblem,
    asset_grid,
    band_scaling,
    check_item,
    cloud_cover,
    footprint,
    item_epsg,
    parse_item,
    raw_id,
    raw_month,
    utc_datetime,
)
from .stac_static import Unreadable, check_local_root, walk

log = logging.getLogger(__name__)

#: Conformance class of a STAC API that can search items.
ITEM_SEARCH_CONFORMANCE = "https://api.stacspec.org/v1.0.0/item-search"
#: Wait before reading a failed scene again, doubled after each attempt.
RETRY_WAIT_S = 0.5
#: Most items one search may return: years of a 70 km site's scenes are a few thousand.
MAX_SEARCH_ITEMS = 50_000


def is_url(text: str) -> bool:
    return "://" in text


@dataclass
class StacSource:
    """Scenes from a STAC API or a static STAC catalog/collection.

    Parameters
    ----------
    catalog
        STAC API root URL, or path/URL of a static ``catalog.json`` or ``collection.json``
        (a folder holding one of those also works). Empty means Earth Search v1.
    collection
        Collection searched on an API.
    mask
        How SCL turns into validity.
    chunk_px
        Side of the square dask chunks.
    max_scene_cloud_pct
        Scenes whose ``eo:cloud_cover`` is higher are skipped at search.
    resampling
        ``bilinear`` or ``nearest`` for the reflectance bands (SCL is always nearest).
    read_attempts
        Reads of a failing scene in :meth:`screen` before it is skipped.
    http_timeout_s, http_retries
        GDAL's timeout of one HTTP read and its count of quick retries.
    skipped, retries
        Scenes left out and failed attempts, as records for the run manifest (shared with a
        :class:`~.synthetic.SyntheticSource` that owns this source).
    """

    catalog: str = EARTH_SEARCH_URL
    collection: str = EARTH_SEARCH_COLLECTION
    mask: MaskConfig = field(default_factory=MaskConfig)
    chunk_px: int = 1024
    max_scene_cloud_pct: float = 100.0
    resampling: str = "bilinear"
    read_attempts: int = 3
    http_timeout_s: float = 60.0
    http_retries: int = 3
    option: str = "--catalog"
    """How the user gave :attr:`catalog`, for messages (``radar.catalog`` for radar)."""
    skipped: list[dict[str, Any]] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    _after_fault: bool = field(default=False, init=False, repr=False)
    _static_items: list[tuple[pystac.Item, Any, Any]] | None = field(
        default=None, init=False, repr=False)
    _static_unreadable: list[Unreadable] = field(default_factory=list, init=False, repr=False)
    _recorded: set[tuple[str, str, str]] = field(default_factory=set, init=False, repr=False)
    _is_api: bool | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.catalog:
            self.catalog = EARTH_SEARCH_URL
        if not is_url(self.catalog):
            path = Path(self.catalog)
            if path.is_dir():
                for name in ("collection.json", "catalog.json"):
                    if (path / name).is_file():
                        path = path / name
                        break
                else:
                    raise InputError(
                        f"{self.option} {self.catalog!r} is a folder without a catalog (no "
                        "collection.json or catalog.json in it); give a STAC API URL or the "
                        "path of a static collection.json or catalog.json (e.g. one written by "
                        "kpgeo synth)."
                    )
            if not path.is_file():
                raise InputError(
                    f"{self.option} {self.catalog!r} does not exist; give a STAC API URL or the path "
                    "of a static collection.json or catalog.json (e.g. one written by kpgeo synth)."
                )
            self.catalog = str(path)
            check_local_root(self.catalog)

    # ---- search -------------------------------------------------------------------------
    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        """Scenes intersecting the site within ``months``, oldest first.

        Raises
        ------
        SourceError
            If the catalog cannot be read or searched.
        """
        usable = []
        for item in self.find(site, months):
            try:
                check_item(item, (*REFLECTANCE_BANDS, SCL_BAND), REFLECTANCE_BANDS)
            except ItemProblem as exc:
                self.record_skip(site, item, str(exc), 0)
                continue
            cover = cloud_cover(item)  # unknown: kept, SCL masks the clouds anyway
            if cover is None or cover <= self.max_scene_cloud_pct:
                usable.append(item)
        return sorted(usable, key=lambda i: (i.datetime, i.id))

    def find(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        """Every item of the catalog (or of the API's collection) over the site in ``months``,
        unchecked; those that could not be read at all are recorded in :attr:`skipped`.

        Raises
        ------
        SourceError
            If the catalog cannot be read or searched.
        """
        if self.is_api:
            items, unreadable = self._search_api(site, months)
        else:
            items, unreadable = self._search_static(site, months)
        for record in unreadable:
            self._record_unreadable(site, record)
        return items

    # ---- faults -------------------------------------------------------------------------
    def screen(self, items: list[pystac.Item], site: Site) -> list[pystac.Item]:
        """The scenes whose every band reads on the site grid; the others are skipped.

        Called after a month's computation failed on a read: each scene is read alone up to
        :attr:`read_attempts` times (waits of :data:`RETRY_WAIT_S`, doubling); a COG that cannot
        be its item's band (:class:`~.cog_checks.CogMismatch`) once. A scene that still fails
        is recorded in :attr:`skipped` with the band and the error.
        """
        # From now on reads bypass GDAL's memory of failed files, or no retry could succeed.
        self._after_fault = True
        readable = []
        for item in items:
            for attempt in range(1, self.read_attempts + 1):
                failure, lasting = self._read_failure(item, site)
                if failure is None:
                    readable.append(item)
                    break
                if lasting or attempt == self.read_attempts:
                    self.record_skip(site, item, failure, attempt)
                    log.warning("%s: scene %s skipped after %d attempts: %s", site.name,
                                item.id, attempt, failure)
                    break
                self.retries.append({"site": site.name, "scene_id": item.id,
                                     "attempt": attempt, "reason": failure})
                time.sleep(RETRY_WAIT_S * 2 ** (attempt - 1))
        return readable

    def _read_failure(self, item: pystac.Item, site: Site) -> tuple[str | None, bool]:
        """Why one scene cannot be read (``"red: ... HTTP response code: 500"``), or None; and
        whether reading it again could not help (a :class:`~.cog_checks.CogMismatch`)."""
        try:
            dask.compute(self.load([item], site)["valid"].sum())
        except READ_ERRORS as exc:
            return str(exc), isinstance(exc, CogMismatch)  # the reader names the asset first
        return None, False

    def record_skip(self, site: Site, item: pystac.Item, reason: str, attempts: int) -> None:
        try:
            when: dt.datetime | None = utc_datetime(item)
        except ItemProblem:
            when = None  # the reason says what is wrong with it
        self.skipped.append({
            "site": site.name, "month": when.strftime("%Y-%m") if when else "",
            "scene_id": str(item.id)[:256],
            "datetime": when.isoformat().replace("+00:00", "Z") if when else None,
            "reason": reason, "attempts": attempts,
        })

    def _record_unreadable(self, site: Site, record: Unreadable) -> None:
        """An item that could not be read at all, once per site (a static catalog is
        searched month by month)."""
        key = (site.name, record.scene_id, record.reason)
        if key in self._recorded:
            return
        self._recorded.add(key)
        log.warning("%s: scene %s skipped: %s", site.name, record.scene_id, record.reason)
        self.skipped.append({"site": site.name, "month": record.month or "",
                             "scene_id": record.scene_id, "datetime": None,
                             "reason": record.reason, "attempts": 0})

    @property
    def is_api(self) -> bool:
        """True when the catalog is a STAC API that supports item search."""
        if self._is_api is None:
            if not is_url(self.catalog):
                self._is_api = False
            else:
                doc = _read_json_url(self.catalog, self.http_timeout_s)
                conforms = doc.get("conformsTo")
                self._is_api = isinstance(conforms, list) and any(
                    str(c).startswith(ITEM_SEARCH_CONFORMANCE) for c in conforms)
        return self._is_api

    def _search_api(self, site: Site, months: MonthRange,
                    ) -> tuple[list[pystac.Item], list[Unreadable]]:
        import pystac_client

        start, _ = month_bounds_iso(months.first)
        _, end = month_bounds_iso(months.last)
        from pystac_client.stac_api_io import StacApiIO
        from urllib3.util.retry import Retry

        # Bounded retries of failing answers and dropped connections, and a timeout, so that a
        # failing or stalled API neither ends the run at once nor hangs it (docs/product.md §10).
        retry = Retry(total=self.read_attempts - 1, backoff_factor=RETRY_WAIT_S,
                      status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None)
        stac_io = StacApiIO(timeout=self.http_timeout_s)
        # Each request (its retries too) within http_timeout_s in all, its answer bounded in
        # size: a server dripping bytes or streaming without end (.http_bounds).
        bounded_session(self.http_timeout_s, max_retries=retry, session=stac_io.session)
        try:
            client = pystac_client.Client.open(self.catalog, stac_io=stac_io)
            search = client.search(
                collections=[self.collection],
                intersects=site.geometry.json,
                datetime=f"{start}/{end}",
            )
            items, unreadable = [], []
            docs = _search_pages(search.pages_as_dicts(), self.catalog)
            for doc in docs:
                try:
                    items.append(parse_item(doc))
                except ItemProblem as exc:
                    unreadable.append(Unreadable(raw_id(doc, "an item without an id"),
                                                 raw_month(doc), str(exc)))
            return items, unreadable
        except SourceError:
            raise
        except pystac_client.exceptions.APIError as exc:
            # pystac-client wraps every failure of a request in APIError, an answer past the
            # bounds of .http_bounds too: "failed", not "refused".
            raise SourceError(f"STAC API {self.catalog} search failed: {exc}") from exc
        except OSError as exc:
            raise SourceError(f"STAC API {self.catalog} could not be reached: {exc}") from exc
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            # pystac-client trusts the shape of the landing page and of each page of results
            raise SourceError(f"STAC API {self.catalog} answered something that is not a STAC "
                              f"API: {type(exc).__name__}: {str(exc)[:200]}") from exc

    def _search_static(self, site: Site, months: MonthRange,
                       ) -> tuple[list[pystac.Item], list[Unreadable]]:
        """The items of the static catalog over the site in ``months``, and those that could
        not be read whose month (when told) is one of them."""
        if self._static_items is None:
            self._static_items = self._read_static_items()
        aoi = site.geometry.geom
        first = np.datetime64(months.first, "D")
        stop = np.datetime64(months.last + 1, "D")
        found = [item for item, day, geom in self._static_items
                 if first <= day < stop and geom.intersects(aoi)]
        wanted = {str(m) for m in months}
        unreadable = [u for u in self._static_unreadable if u.month is None or u.month in wanted]
        return found, unreadable

    def _read_static_items(self) -> list[tuple[pystac.Item, Any, Any]]:
        """Every item of the static catalog with its UTC day and footprint (those without
        either go to :attr:`_static_unreadable`); a failed read is tried again up to
        :attr:`read_attempts` times (each recorded in :attr:`retries`)."""
        stac_io = BoundedStacIO(timeout_s=self.http_timeout_s)
        for attempt in range(1, self.read_attempts + 1):
            try:
                walked = walk(self.catalog, stac_io)
                break
            except KpgeoError:
                raise  # not a catalog, or too large: reading again would not help
            except (OSError, json.JSONDecodeError, pystac.STACError) as exc:
                reason = f"{exc} ({exc.__cause__})" if exc.__cause__ else str(exc)
                if attempt == self.read_attempts:
                    raise SourceError(f"static catalog {self.catalog} cannot be read "
                                      f"({attempt} attempts): {reason}") from exc
                self.retries.append({"catalog": self.catalog, "attempt": attempt,
                                     "reason": f"{type(exc).__name__}: {reason}"})
                time.sleep(RETRY_WAIT_S * 2 ** (attempt - 1))
        else:
            raise AssertionError("unreachable: read_attempts >= 1")
        self._static_unreadable = list(walked.unreadable)
        placed = []
        for item in walked.items:
            # The day and footprint the search filters on; the rest is checked at search.
            try:
                item.datetime = utc_datetime(item)
                geom = footprint(item)
            except ItemProblem as exc:
                self._static_unreadable.append(Unreadable(
                    str(item.id)[:256], item.datetime.strftime("%Y-%m")
                    if isinstance(item.datetime, dt.datetime) else None, str(exc)))
                continue
            placed.append((item, np.datetime64(item.datetime.replace(tzinfo=None), "D"), geom))
        return placed

    # ---- load ---------------------------------------------------------------------------
    def load(self, items: list[pystac.Item], site: Site) -> xr.Dataset:
        """Lazy reflectance (float32) and validity of ``items`` on ``site.grid``: the reads
        of :meth:`read_chunks` as one Dask array per band."""
        if not items:
            return empty_scenes(site)
        reads = self.read_chunks(items, site)
        n_bands = len(REFLECTANCE_BANDS)
        blocks: dict[tuple[int, int], list[da.Array]] = {}
        for ys, xs, parts in reads.chunks:
            shape = (n_bands, ys.stop - ys.start, xs.stop - xs.start)
            blocks[ys.start, xs.start] = [da.from_delayed(part, shape, dtype="float32")[None]
                                          for part in parts]
        rows = sorted({y for y, _ in blocks})
        cols = sorted({x for _, x in blocks})
        # (time, band, y, x): one block per overpass and chunk
        stack = da.block([[[[blocks[y, x][t] for x in cols] for y in rows]]
                          for t in range(len(reads.times))])
        yx = xr_coords(site.grid)
        out = xr.Dataset(coords={"time": reads.times, "y": yx["y"], "x": yx["x"]})
        for i, band in enumerate(REFLECTANCE_BANDS):
            out[band] = (("time", "y", "x"), stack[:, i])
        out["valid"] = (("time", "y", "x"), da.isfinite(stack[:, 0]))
        out = out.assign_coords(scene_id=("time", reads.scene_ids))
        out.attrs["crs"] = str(site.grid.crs)
        return out

    def read_chunks(self, items: list[pystac.Item], site: Site) -> ChunkReads:
        """One Dask task per overpass and chunk reads, resamples, scales and masks its pixels
        (:func:`~.reader.read_overpass`). Tiles of one overpass (scenes of one local solar
        day) are fused into one time step, tiles in the site's UTM zone first."""
        grid = site.grid
        overpasses = _overpasses(items, grid.crs.epsg)
        tiles = [tuple(_tile(i) for i in group) for group in overpasses]
        remote = any(is_remote(a.href) for day in tiles for tile in day
                     for a in (*tile.bands, tile.scl))
        options = ReadOptions(
            invalid_scl=tuple(self.mask.invalid_scl), cloud_scl=tuple(self.mask.cloud_scl),
            buffer_px=round(self.mask.cloud_buffer_m / abs(grid.resolution.x)),
            resampling=self.resampling,
            gdal=gdal_options(timeout_s=self.http_timeout_s, retries=self.http_retries,
                              uncached=self._after_fault, remote=remote))
        # Keys name what is read (files, scaling), where, and how: two loads share a key only
        # when they would read the same pixels (a shared cluster keeps results by key). A
        # hash of the dataclasses' repr, which holds every field: dask's tokenize walks them
        # field by field, for the same answer and in far more time.
        token = hashlib.sha1(repr((tiles, tuple(grid.affine), grid.shape.yx, str(grid.crs),
                                   options, self.chunk_px)).encode()).hexdigest()

        def read(t: int, y: slice, x: slice) -> Delayed:
            # Clouds grow across chunk edges, not across the site grid's (as dask's overlap
            # with boundary=False, the way the sentinelhub source masks).
            pad = options.buffer_px
            sy = slice(max(y.start - pad, 0), min(y.stop + pad, grid.shape.y))
            sx = slice(max(x.start - pad, 0), min(x.stop + pad, grid.shape.x))
            crop = (slice(y.start - sy.start, y.stop - sy.start),
                    slice(x.start - sx.start, x.stop - sx.start))
            # A task of dask's specification: dask.delayed traversed every field of the
            # tiles' dataclasses looking for collections (a third of the month's graph time).
            key = f"read-overpass-{token}-{t}-{y.start}-{y.stop}-{x.start}-{x.stop}"
            task = Task(key, read_overpass, tiles[t], grid[y, x], options,
                        (grid[sy, sx], crop))
            return Delayed(key, {key: task})

        chunks = [(y, x, [read(t, y, x) for t in range(len(tiles))])
                  for y in chunk_slices(grid.shape.y, self.chunk_px)
                  for x in chunk_slices(grid.shape.x, self.chunk_px)]
        times = np.array([min(i.datetime for i in g).replace(tzinfo=None) for g in overpasses],
                         dtype="datetime64[ns]")
        ids = ["+".join(sorted(i.id for i in g)) for g in overpasses]
        return ChunkReads(times, ids, chunks)


def _search_pages(pages: Iterable[Any], catalog: str) -> list[Any]:
    """The features of a STAC API search's pages, each item once.

    pystac-client follows each page's ``next`` link for as long as pages hold features: an API
    whose ``next`` leads back to a page already read (itself, or a cycle) would be read for
    ever. Paging stops at the first page that brings no item not seen before; a search that
    keeps bringing new ones past :data:`MAX_SEARCH_ITEMS` is refused.

    Raises
    ------
    TypeError
        A page whose features are no list (the caller says the API is not a STAC API).
    SourceError
        More than :data:`MAX_SEARCH_ITEMS` items.
    """
    docs: list[Any] = []
    seen: set[str] = set()
    for number, page in enumerate(pages, start=1):
        features = page.get("features") if isinstance(page, dict) else None
        if not isinstance(features, list):
            raise TypeError(f"a page of results whose features are "
                            f"{str(features)[:40]!r}, not a list")
        new = 0
        for doc in features:
            key = _feature_key(doc)
            if key not in seen:
                seen.add(key)
                docs.append(doc)
                new += 1
        if features and not new:
            log.warning("STAC API %s: page %d of the search repeats items already read (its "
                        "'next' link loops); the search stops there.", catalog, number)
            break
        if len(docs) > MAX_SEARCH_ITEMS:
            raise SourceError(
                f"STAC API {catalog} search found more than {MAX_SEARCH_ITEMS:,} items (page "
                f"{number}): the site or the months are far larger than a run can use, or the "
                "API pages without end; search fewer months or a smaller site.")
    return docs


def _feature_key(doc: Any) -> str:
    """An item's identity across pages: its id (and collection), else its whole text."""
    if isinstance(doc, dict) and isinstance(doc.get("id"), str):
        return f"{doc.get('collection')!s}/{doc['id']}"
    return json.dumps(doc, sort_keys=True, default=str)


def _tile(item: pystac.Item) -> Tile:
    # Each COG must cover its item's footprint and have the grid its item gives it
    # (kpgeo.sources.cog_checks).
    footprint = tuple(shapely.geometry.shape(item.geometry).bounds) if item.geometry else None

    def asset(band: str) -> Asset:
        scaling = band_scaling(item, band)
        nodata = None if scaling.nodata is None else float(scaling.nodata)  # "nan" too
        return Asset(band, item.assets[band].get_absolute_href() or item.assets[band].href,
                     scaling.scale, scaling.offset, nodata, footprint, asset_grid(item, band))
    return Tile(tuple(asset(b) for b in REFLECTANCE_BANDS), asset(SCL_BAND))


def _overpasses(items: Iterable[pystac.Item], epsg: int | None) -> list[list[pystac.Item]]:
    """Items grouped by local solar day (one overpass), oldest first; within a day, tiles in
    the site's zone come first (they are pasted, not resampled, and usually fill the chunk)."""
    return [sorted(day, key=lambda i: (item_epsg(i) != epsg, i.datetime, i.id))
            for day in by_solar_day(items)]


def empty_scenes(site: Site) -> xr.Dataset:
    """A scene stack with no time steps on the site grid (a month without scenes)."""
    grid = site.grid
    yx = xr_coords(grid)
    coords = {"time": np.array([], dtype="datetime64[ns]"), "y": yx["y"], "x": yx["x"]}
    shape = (0, *grid.shape.yx)
    data: dict[str, Any] = {b: (("time", "y", "x"), np.zeros(shape, "float32"))
                            for b in REFLECTANCE_BANDS}
    data["valid"] = (("time", "y", "x"), np.zeros(shape, bool))
    ds = xr.Dataset(data, coords=coords)
    ds = ds.assign_coords(scene_id=("time", np.array([], dtype=str)))
    ds.attrs["crs"] = str(grid.crs)
    return ds


def _read_json_url(url: str, timeout_s: float) -> dict[str, Any]:
    try:
        doc = json.loads(get_text(bounded_session(timeout_s), url))
    except (OSError, json.JSONDecodeError) as exc:
        raise SourceError(f"catalog {url} cannot be read: {exc}") from exc
    if not isinstance(doc, dict):
        raise SourceError(f"catalog {url} is not a STAC document (a JSON {type(doc).__name__})")
    return doc
