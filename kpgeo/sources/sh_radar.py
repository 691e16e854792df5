"""The ``sentinelhub`` source's radar: Sentinel-1 GRD (``S1GRD``, collection ``sentinel-1-grd``)
on Copernicus Data Space through the Catalog and Process APIs, read as gamma0 VV and VH.

Search is one Catalog search per site and month range, restricted to IW mode, dual VV+VH
polarisation (``DV``) and high resolution by sentinelhub-py's ``SENTINEL1_IW`` collection
filters. Items of one pass (frames along its track: one UTC day, orbit direction and relative
orbit) become one time step, as in the ``stac`` radar source. Each pass is asked of the Process
API chunk by chunk, on the chunk's UTM grid grown by :data:`~.stac_radar.RADAR_PAD_PX`, within
the pass's time range and orbit direction. The processing options, and why:

- ``backCoeff: GAMMA0_TERRAIN``: terrain-flattened gamma0, the backscatter of the RTC product the
  ``stac`` source reads (Planetary Computer's ``sentinel-1-rtc``); kpgeo's radar baseline mixes
  passes of two orbits over sloping valley sides, which only a terrain-flattened coefficient
  makes comparable.
- ``orthorectify: true`` with ``demInstance: COPERNICUS_30``: without orthorectification the
  service places pixels on the ellipsoid and relief shifts them by tens of metres, more than a
  digging site; the 30 m Copernicus DEM (GLO-30) is the finest the service offers, and the
  same DEM serves the terrain flattening.
- ``speckleFilter: NONE``: kpgeo's radar method filters speckle itself, 3 x 3 in linear power
  across chunk edges (the pad); a provider filter first would smooth twice and change the
  speckle statistics the method's thresholds assume.

The evalscript returns VV and VH as FLOAT32 linear power (gamma0's default unit on the service)
and NaN where ``dataMask`` is 0, so no data never reads as very dark water. Responses go through
the optical source's cache, credentials and bounded retries (:mod:`.sh_cache`, :mod:`.sh_client`):
a rerun costs no quota; a pass whose request still fails is skipped and recorded in
:attr:`SentinelHubRadarSource.skipped`.
"""

from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pystac
from odc.geo.geobox import GeoBox
from sentinelhub import CRS, BBox, DataCollection, MimeType, SentinelHubRequest, SHConfig
from sentinelhub.decoding import decode_image
from sentinelhub.download.models import DownloadRequest

from ..aoi import Site
from ..config import SourceConfig
from ..errors import ConfigError, SourceError
from ..months import MonthRange
from .base import RadarReads, utc
from .radar_reader import to_power
from .sentinelhub import (
    CATALOG_PAGE,
    check_sh_settings,
    client_and_cache,
    credentials_from_env,
    sh_config_for,
)
from .sh_cache import ResponseCache, request_key
from .sh_catalog import search_features, to_item
from .sh_client import BoundedClient, RequestFailed
from .sh_process import ACQUISITION_PAD, TIFF_MAGIC
from .stac_radar import RADAR_PAD_PX, PaddedChunk, padded_chunks, passes, relative_orbit

log = logging.getLogger(__name__)

#: The Process API output of the evalscript below.
OUT_GAMMA0 = "gamma0"
#: Sentinel-1 processing asked of the service (the module docstring says why).
S1_PROCESSING: dict[str, Any] = {
    "backCoeff": "GAMMA0_TERRAIN",
    "orthorectify": True,
    "demInstance": "COPERNICUS_30",
    "speckleFilter": {"type": "NONE"},
}
#: Evalscript V3 of one pass: VV, VH gamma0 as FLOAT32 linear power, NaN without data.
EVALSCRIPT = """//VERSION=3
function setup() {
  return {
    input: [{bands: ["VV", "VH", "dataMask"]}],
    output: [{id: "gamma0", bands: 2, sampleType: "FLOAT32"}],
    mosaicking: "SIMPLE"
  };
}
function evaluatePixel(s) {
  return {gamma0: s.dataMask == 1 ? [s.VV, s.VH] : [NaN, NaN]};
}
"""


def s1_iw_collection(base_url: str) -> DataCollection:
    """Sentinel-1 GRD, IW, VV+VH, high resolution, defined against ``base_url``: the built-in
    collection is pinned to services.sentinel-hub.com and would override the configured URL."""
    name = "KPGEO_S1IW_" + hashlib.sha1(base_url.encode()).hexdigest()[:10].upper()
    return DataCollection.SENTINEL1_IW.define_from(name, service_url=base_url)


def check_radar_chunks(source: SourceConfig, chunk_px: int) -> None:
    """Refuse chunks whose padded grid is wider than one Process request may be.

    Raises
    ------
    ConfigError
        Naming ``composite.chunk_px``, ``source.sh_tile_px`` and the largest chunk that fits.
    """
    padded = chunk_px + 2 * RADAR_PAD_PX
    if padded > source.sh_tile_px:
        raise ConfigError(
            f"composite.chunk_px = {chunk_px}: radar through --source sentinelhub asks one "
            f"Process request per chunk and its {RADAR_PAD_PX} px border, {padded} px wide, "
            f"more than source.sh_tile_px = {source.sh_tile_px}; give composite.chunk_px <= "
            f"{source.sh_tile_px - 2 * RADAR_PAD_PX} (or leave out [radar]).")


@dataclass
class SentinelHubRadarSource:
    """Sentinel-1 gamma0 from Sentinel Hub (Copernicus Data Space by default).

    Parameters
    ----------
    source
        Service URLs, cache folder, retry bounds and threads (the ``sh_*`` fields).
    chunk_px
        Side of the square chunks; each pass is one request per chunk.
    sh_config
        Injected ``SHConfig``; by default one built from ``SH_CLIENT_ID``/``SH_CLIENT_SECRET``.

    Attributes
    ----------
    skipped
        One dict per scene of a pass that could not be read: ``site``, ``month``,
        ``scene_id``, ``datetime``, ``acquisition`` (the pass), ``reason``, ``attempts``.

    Raises
    ------
    CredentialsError
        Without ``SH_CLIENT_ID`` or ``SH_CLIENT_SECRET``.
    ConfigError
        On an ``sh_*`` setting out of range, or chunks too wide for one request.
    """

    source: SourceConfig = field(default_factory=lambda: SourceConfig(kind="sentinelhub"))
    chunk_px: int = 1024
    sh_config: SHConfig | None = field(default=None, repr=False)
    skipped: list[dict[str, Any]] = field(default_factory=list, init=False)
    _client: BoundedClient = field(init=False, repr=False)
    _cache: ResponseCache = field(init=False, repr=False)
    _collection: DataCollection = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_sh_settings(self.source)
        check_radar_chunks(self.source, self.chunk_px)
        if self.sh_config is None:
            self.sh_config = sh_config_for(self.source, *credentials_from_env())
        self._client, self._cache = client_and_cache(self.source, self.sh_config)
        self._collection = s1_iw_collection(self.sh_config.sh_base_url)

    @property
    def retries(self) -> list[dict[str, Any]]:
        """Every retry so far (``label``, ``attempt``, ``problem``, ``status``, ``wait_s``)."""
        return self._client.events

    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        """IW VV+VH scenes intersecting the site within ``months``, oldest first.

        Raises
        ------
        SourceError
            If the catalog cannot be searched and no earlier answer is cached.
        """
        features = search_features(self._collection, site, months, sh_config=self.sh_config,
                                   client=self._client, cache=self._cache, limit=CATALOG_PAGE)
        unique = {i.id: i for i in map(to_item, features) if i.datetime is not None}
        return sorted(unique.values(), key=lambda i: (utc(i), i.id))

    def read_chunks(self, items: list[pystac.Item], site: Site) -> RadarReads:
        """Every pass x padded chunk fetched (from the cache when there), then one lazy read
        per pass and chunk decoding its cached response. Passes with a failed request are
        left out and recorded in :attr:`skipped`.

        Raises
        ------
        SourceError
            If the service refuses the credentials or the quota is exhausted.
        """
        groups = passes(items)
        chunks = padded_chunks(site.grid.shape.yx, self.chunk_px, RADAR_PAD_PX)
        paths, failures = self._fetch_all(site.grid, groups, chunks)
        for t, failure in failures.items():
            self._record_skip(site, groups[t], failure)
        kept = [t for t in range(len(groups)) if t not in failures]
        reads = []
        for k, chunk in enumerate(chunks):
            shape = (2, chunk.padded_rows.stop - chunk.padded_rows.start,
                     chunk.padded_cols.stop - chunk.padded_cols.start)
            reads.append((chunk.rows, chunk.cols, chunk.crop,
                          [dask.delayed(read_gamma0, pure=True)(str(paths[(t, k)]), shape)
                           for t in kept]))
        times = np.array([min(utc(i) for i in groups[t]).replace(tzinfo=None) for t in kept],
                         dtype="datetime64[ns]")
        return RadarReads(times, [_pass_id(groups[t]) for t in kept],
                          [str(groups[t][0].properties.get("sat:orbit_state", "")) for t in kept],
                          [relative_orbit(groups[t][0]) for t in kept], RADAR_PAD_PX, reads)

    def _fetch_all(self, grid: GeoBox, groups: list[list[pystac.Item]],
                   chunks: list[PaddedChunk]
                   ) -> tuple[dict[tuple[int, int], Path], dict[int, RequestFailed]]:
        """Cache paths of every (pass, chunk) response, and the first failure of each pass."""
        paths: dict[tuple[int, int], Path] = {}
        failures: dict[int, RequestFailed] = {}
        jobs = {(t, k): grid[c.padded_rows, c.padded_cols]
                for t in range(len(groups)) for k, c in enumerate(chunks)}
        with ThreadPoolExecutor(max_workers=self.source.sh_threads) as pool:
            futures = {pool.submit(self._fetch_one, groups[t], box): (t, k)
                       for (t, k), box in jobs.items()}
            try:
                for future in as_completed(futures):
                    t, k = futures[future]
                    try:
                        paths[(t, k)] = future.result()
                    except RequestFailed as exc:
                        log.warning("Sentinel Hub S1GRD %s chunk %d failed: %s",
                                    _pass_id(groups[t]), k, exc.reason)
                        failures.setdefault(t, exc)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return paths, failures

    def _fetch_one(self, group: list[pystac.Item], grid: GeoBox) -> Path:
        request = self.process_request(group, grid)
        assert request.url is not None
        key = request_key(request.url, request.post_values)
        if not self._cache.has(key):
            h, w = grid.shape.yx
            label = f"{_pass_id(group)} y{h} x{w}"
            response = self._client.fetch(request, label=label)
            if response.content[:4] not in TIFF_MAGIC:
                raise RequestFailed("the Process API answered something that is not a TIFF",
                                    attempts=1)
            self._cache.put(request.url, request.post_values, response.content,
                            response.headers.get("Content-Type", ""),
                            extra={"scene_id": _pass_id(group)})
        return self._cache.path_of(key)

    def process_request(self, group: list[pystac.Item], grid: GeoBox) -> DownloadRequest:
        """The Process API request of one pass over one (padded) chunk grid."""
        epsg = grid.crs.epsg if grid.crs is not None else None
        assert epsg is not None, "site grids are in UTM"
        start = min(utc(i) for i in group)
        end = max(utc(i) for i in group)
        state = str(group[0].properties.get("sat:orbit_state", ""))
        other: dict[str, Any] = {"processing": dict(S1_PROCESSING)}
        if state:
            # ^ an ascending and a descending pass never share a time range, but the filter
            #   keeps a frame of the other direction from being mosaicked in if they did
            other["dataFilter"] = {"orbitDirection": state.upper()}
        box = grid.boundingbox
        request = SentinelHubRequest(
            evalscript=EVALSCRIPT,
            input_data=[SentinelHubRequest.input_data(
                self._collection, time_interval=(start - ACQUISITION_PAD, end + ACQUISITION_PAD),
                other_args=other)],
            responses=[SentinelHubRequest.output_response(OUT_GAMMA0, MimeType.TIFF)],
            bbox=BBox((box.left, box.bottom, box.right, box.top), crs=CRS(epsg)),
            size=(grid.shape.x, grid.shape.y),
            config=self.sh_config,
        )
        return request.download_list[0]

    def _record_skip(self, site: Site, group: list[pystac.Item], failure: RequestFailed) -> None:
        for item in group:
            when = utc(item)
            self.skipped.append({
                "site": site.name, "month": when.strftime("%Y-%m"), "scene_id": item.id,
                "datetime": when.isoformat().replace("+00:00", "Z"),
                "acquisition": _pass_id(group), "reason": failure.reason,
                "attempts": failure.attempts,
            })


def read_gamma0(path: str, shape: tuple[int, int, int]) -> np.ndarray:
    """A cached S1GRD response as ``(2, y, x)`` float32 linear power (VV, VH), NaN without
    data (and where the power is not above 0)."""
    decoded = np.asarray(decode_image(Path(path).read_bytes(), MimeType.TIFF))
    values = np.moveaxis(np.atleast_3d(decoded), -1, 0).astype("float32")
    if values.shape != shape:
        raise SourceError(f"cached Sentinel Hub response {path} holds {values.shape} values, "
                          f"not {shape}; delete it and rerun.")
    return to_power(values, "power")


def _pass_id(group: list[pystac.Item]) -> str:
    return "+".join(sorted(i.id for i in group))
