"""The ``sentinelhub`` source: Sentinel Hub Catalog and Process APIs through sentinelhub-py,
Copernicus Data Space Ecosystem by default (docs/product.md §6).

Search is one Catalog (STAC) search per site and month range. Loading asks the Process API for
each acquisition (the catalog items of one overpass, grouped by solar day as the ``stac``
source groups them) on the site's UTM grid at 10 m, split into tiles within the API's 2500 px
limit: six bands as harmonised DN (reflectance x 10 000), SCL, dataMask and, where the service
offers it, the s2cloudless mask CLM. Responses go to an on-disk cache keyed by request before
anything is decoded, so a rerun costs no quota and works offline; the Dataset is then built
lazily from the cached files, in exactly the form of the ``stac`` source.

A request that fails within its retry bounds (:mod:`.sh_client`) skips its acquisition, which
is recorded in :attr:`SentinelHubSource.skipped` for the run manifest; every retry is recorded
in :attr:`SentinelHubSource.retries`.

Credentials come only from ``SH_CLIENT_ID`` and ``SH_CLIENT_SECRET``; they live in the
``SHConfig`` object and are never logged, written or part of a cache key.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pystac
import xarray as xr
from odc.geo.xr import xr_coords
from sentinelhub import (
    CRS,
    BBox,
    DataCollection,
    MimeType,
    MosaickingOrder,
    ResamplingType,
    SentinelHubRequest,
    SHConfig,
)
from sentinelhub.download.models import DownloadRequest

from ..aoi import Site
from ..config import MaskConfig, SourceConfig
from ..errors import ConfigError, CredentialsError
from ..months import MonthRange
from .base import REFLECTANCE_BANDS, utc
from .masking import valid_from_scl
from .sh_cache import DEFAULT_SH_CACHE, ResponseCache, request_key
from .sh_catalog import search_features, to_item
from .sh_client import BoundedClient, RequestFailed, RetryPolicy
from .sh_process import (
    ACQUISITION_PAD,
    MAX_TILE_PX,
    OUT_BANDS,
    OUT_CLM,
    OUT_MASK,
    OUT_SCL,
    SH_BANDS,
    SH_DN_SCALE,
    Acquisition,
    Tile,
    acquisitions,
    check_response,
    evalscript,
    read_layers,
    tiles_of,
)
from .stac import empty_scenes
from .stac_items import cloud_cover

log = logging.getLogger(__name__)

#: The only places credentials are read from.
ENV_CLIENT_ID = "SH_CLIENT_ID"
ENV_CLIENT_SECRET = "SH_CLIENT_SECRET"
#: s2cloudless cloud class in CLM (0 clear, 255 no data).
CLM_CLOUD = 1
#: Catalog results per page.
CATALOG_PAGE = 100


def credentials_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(client_id, client_secret)`` from ``SH_CLIENT_ID`` and ``SH_CLIENT_SECRET``.

    Raises
    ------
    CredentialsError
        Naming both variables and what is missing, never their values.
    """
    env = os.environ if environ is None else environ
    client_id = env.get(ENV_CLIENT_ID, "").strip()
    secret = env.get(ENV_CLIENT_SECRET, "").strip()
    missing = [name for name, value in ((ENV_CLIENT_ID, client_id), (ENV_CLIENT_SECRET, secret))
               if not value]
    if missing:
        raise CredentialsError(
            f"--source sentinelhub needs OAuth client credentials in the environment variables "
            f"{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}; {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set. Create an OAuth client in the "
            "Copernicus Data Space dashboard (https://shapps.dataspace.copernicus.eu/dashboard/), "
            f"export {ENV_CLIENT_ID}=... and {ENV_CLIENT_SECRET}=..., or use --source stac, "
            "which needs none."
        )
    return client_id, secret


def sh_config_for(source: SourceConfig, client_id: str, client_secret: str) -> SHConfig:
    """An ``SHConfig`` for ``source``'s deployment that reads and writes no file.

    ``use_defaults=True`` keeps sentinelhub-py from creating ``~/.config/sentinelhub/config.toml``;
    retries are :class:`~.sh_client.BoundedClient`'s, so the
    token request makes one attempt per call.
    """
    return SHConfig(
        use_defaults=True,
        sh_client_id=client_id,
        sh_client_secret=client_secret,
        sh_base_url=source.sh_base_url.rstrip("/"),
        sh_token_url=source.sh_token_url,
        max_download_attempts=1,
        download_timeout_seconds=source.sh_timeout_s,
        max_retries=source.sh_max_attempts,
    )


def client_and_cache(source: SourceConfig,
                     sh_config: SHConfig) -> tuple[BoundedClient, ResponseCache]:
    """The client every request of ``source`` goes through (retries and waits within its
    ``sh_*`` bounds) and the cache of its answers: the optical and the radar source's."""
    policy = RetryPolicy(max_attempts=source.sh_max_attempts, backoff_s=source.sh_backoff_s,
                         max_wait_s=source.sh_max_wait_s, budget_s=source.sh_request_budget_s)
    return (BoundedClient(config=sh_config, policy=policy),
            ResponseCache(source.sh_cache or DEFAULT_SH_CACHE))


def s2l2a_collection(base_url: str) -> DataCollection:
    """Sentinel-2 L2A defined against ``base_url``: the built-in collection is pinned to
    services.sentinel-hub.com and would override the configured URL."""
    name = "KPGEO_S2L2A_" + hashlib.sha1(base_url.encode()).hexdigest()[:10].upper()
    return DataCollection.SENTINEL2_L2A.define_from(name, service_url=base_url)


# ---- the source -----------------------------------------------------------------------------
@dataclass
class SentinelHubSource:
    """Scenes from Sentinel Hub (Copernicus Data Space by default).

    Parameters
    ----------
    source
        Service URLs, cache folder, tile size, retry bounds (the ``sh_*`` fields) and
        ``max_scene_cloud_pct``.
    mask
        How SCL (and CLM) turn into validity.
    chunk_px
        Largest side of the dask chunks of loaded scenes.
    sh_config
        Injected ``SHConfig``; by default one built from ``SH_CLIENT_ID``/``SH_CLIENT_SECRET``.

    Attributes
    ----------
    skipped
        One dict per scene that could not be loaded: ``site``, ``month`` (YYYY-MM),
        ``scene_id``, ``datetime`` (ISO 8601 UTC), ``acquisition`` (the ids fused with it),
        ``reason``, ``attempts``.
    retries
        One dict per retry: ``label`` (scene and tile, or ``catalog search``), ``attempt``,
        ``problem``, ``status`` (HTTP status or None), ``wait_s``.

    Raises
    ------
    CredentialsError
        Without ``SH_CLIENT_ID`` or ``SH_CLIENT_SECRET`` (before any request or write).
    ConfigError
        On a tile size or retry bound out of range.
    """

    source: SourceConfig = field(default_factory=lambda: SourceConfig(kind="sentinelhub"))
    mask: MaskConfig = field(default_factory=MaskConfig)
    chunk_px: int = 1024
    sh_config: SHConfig | None = field(default=None, repr=False)
    skipped: list[dict[str, Any]] = field(default_factory=list, init=False)
    _client: BoundedClient = field(init=False, repr=False)
    _cache: ResponseCache = field(init=False, repr=False)
    _collection: DataCollection = field(init=False, repr=False)
    _use_clm: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_sh_settings(self.source)
        if self.sh_config is None:
            self.sh_config = sh_config_for(self.source, *credentials_from_env())
        self._client, self._cache = client_and_cache(self.source, self.sh_config)
        self._collection = s2l2a_collection(self.sh_config.sh_base_url)
        self._use_clm = self.source.sh_use_clm

    @property
    def retries(self) -> list[dict[str, Any]]:
        """Every retry so far (see the class docstring)."""
        return self._client.events

    # ---- search -------------------------------------------------------------------------
    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        """Scenes intersecting the site within ``months``, oldest first (Catalog API).

        Raises
        ------
        SourceError
            If the catalog cannot be searched within the retry bounds and no earlier answer
            to the same search is cached.
        """
        max_cc = self.source.max_scene_cloud_pct
        features = search_features(
            self._collection, site, months, sh_config=self.sh_config, client=self._client,
            cache=self._cache, limit=CATALOG_PAGE,
            filter_text=f"eo:cloud_cover <= {max_cc:g}" if max_cc < 100 else None)
        items = [to_item(f) for f in features]
        # An unknown cloud cover (null, text) keeps the scene: SCL masks the clouds anyway.
        items = [i for i in items if i.datetime is not None
                 and (cloud_cover(i) or 0.0) <= max_cc]
        unique = {i.id: i for i in items}
        return sorted(unique.values(), key=lambda i: (utc(i), i.id))

    # ---- load ---------------------------------------------------------------------------
    def load(self, items: list[pystac.Item], site: Site) -> xr.Dataset:
        """Reflectance (float32, NaN without data) and validity of ``items`` on ``site.grid``.

        Fetches every acquisition x tile (from the cache when there), then returns a lazy
        Dataset read from the cached responses. Acquisitions with a failed request are left
        out and recorded in :attr:`skipped`.

        Raises
        ------
        SourceError
            If the service refuses the credentials or the quota is exhausted.
        """
        if not items:
            return empty_scenes(site)
        acqs = acquisitions(items)
        tiles = tiles_of(site.grid, self.source.sh_tile_px)
        paths, failures = self._fetch_all(acqs, tiles)
        if self._use_clm and any(_clm_refused(f) for f in failures.values()):
            log.warning("Sentinel Hub at %s does not offer the s2cloudless mask CLM; "
                        "masking with SCL only", self.sh_config.sh_base_url)  # type: ignore[union-attr]
            self._use_clm = False
            paths, failures = self._fetch_all(acqs, tiles)
        kept = [a for a in acqs if a.scene_id not in failures]
        for acq in acqs:
            if acq.scene_id in failures:
                self._record_skip(site, acq, failures[acq.scene_id])
        if not kept:
            return empty_scenes(site)
        return self._dataset(site, kept, tiles, paths)

    def _fetch_all(self, acqs: list[Acquisition], tiles: list[list[Tile]]
                   ) -> tuple[dict[tuple[str, int, int], Path], dict[str, RequestFailed]]:
        """Cache paths of every (acquisition, tile) response, and the first failure of each
        acquisition that has one."""
        jobs = [(acq, tile) for acq in acqs for row in tiles for tile in row]
        paths: dict[tuple[str, int, int], Path] = {}
        failures: dict[str, RequestFailed] = {}
        with ThreadPoolExecutor(max_workers=self.source.sh_threads) as pool:
            futures = {pool.submit(self._fetch_one, acq, tile): (acq, tile) for acq, tile in jobs}
            try:
                for future in as_completed(futures):
                    acq, tile = futures[future]
                    try:
                        paths[(acq.scene_id, tile.row, tile.col)] = future.result()
                    except RequestFailed as exc:
                        log.warning("Sentinel Hub %s %s failed: %s", acq.scene_id, tile.label,
                                    exc.reason)
                        failures.setdefault(acq.scene_id, exc)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return paths, failures

    def _fetch_one(self, acq: Acquisition, tile: Tile) -> Path:
        request = self.process_request(acq, tile)
        assert request.url is not None
        key = request_key(request.url, request.post_values)
        if not self._cache.has(key):
            response = self._client.fetch(request, label=f"{acq.scene_id} {tile.label}")
            content_type = response.headers.get("Content-Type", "")
            check_response(response.content, self._outputs())
            self._cache.put(request.url, request.post_values, response.content, content_type,
                            extra={"scene_id": acq.scene_id})
        return self._cache.path_of(key)

    def _outputs(self) -> list[str]:
        return [OUT_BANDS, OUT_SCL, *([OUT_CLM] if self._use_clm else []), OUT_MASK]

    def process_request(self, acq: Acquisition, tile: Tile) -> DownloadRequest:
        """The Process API request of one acquisition over one tile (URL, JSON body, headers)."""
        grid = tile.grid
        epsg = grid.crs.epsg if grid.crs is not None else None
        assert epsg is not None, "site grids are in UTM"
        height, width = grid.shape.yx
        box = grid.boundingbox
        request = SentinelHubRequest(
            evalscript=evalscript(self._use_clm),
            input_data=[SentinelHubRequest.input_data(
                self._collection,
                time_interval=(acq.start - ACQUISITION_PAD, acq.end + ACQUISITION_PAD),
                mosaicking_order=MosaickingOrder.MOST_RECENT,
                # ^ NEAREST keeps SCL classes intact; it also applies to the 20 m B11/B12
                upsampling=ResamplingType.NEAREST,
                downsampling=ResamplingType.NEAREST,
                other_args={"processing": {"harmonizeValues": True}},
            )],
            responses=[SentinelHubRequest.output_response(o, MimeType.TIFF)
                       for o in self._outputs()],
            bbox=BBox((box.left, box.bottom, box.right, box.top), crs=CRS(epsg)),
            size=(width, height),
            config=self.sh_config,
        )
        return request.download_list[0]

    def _record_skip(self, site: Site, acq: Acquisition, failure: RequestFailed) -> None:
        for item in acq.items:
            when = utc(item)
            self.skipped.append({
                "site": site.name, "month": when.strftime("%Y-%m"), "scene_id": item.id,
                "datetime": when.isoformat().replace("+00:00", "Z"),
                "acquisition": acq.scene_id, "reason": failure.reason,
                "attempts": failure.attempts,
            })

    def _dataset(self, site: Site, acqs: list[Acquisition], tiles: list[list[Tile]],
                 paths: Mapping[tuple[str, int, int], Path]) -> xr.Dataset:
        grid = site.grid
        outputs = self._outputs()
        n_layers = len(SH_BANDS) + len(outputs) - 1
        per_time = []
        for acq in acqs:
            rows = []
            for row in tiles:
                blocks = []
                for tile in row:
                    shape = (n_layers, *tile.grid.shape.yx)
                    path = str(paths[(acq.scene_id, tile.row, tile.col)])
                    layers = dask.delayed(read_layers, pure=True)(path, tuple(outputs), shape)
                    blocks.append(da.from_delayed(layers, shape=shape, dtype="uint16"))
                rows.append(blocks)
            per_time.append(da.block(rows))
        cube = da.stack(per_time)  # (time, layer, y, x)
        if max(cube.chunksize[2:]) > self.chunk_px:
            cube = cube.rechunk({2: self.chunk_px, 3: self.chunk_px})
        yx = xr_coords(grid)
        coords = {"time": np.array([a.time for a in acqs]), "y": yx["y"], "x": yx["x"]}
        dims = ("time", "y", "x")
        has_data = xr.DataArray(cube[:, n_layers - 1] == 1, dims=dims, coords=coords)
        out = xr.Dataset(coords=coords)
        for i, band in enumerate(REFLECTANCE_BANDS):
            dn = xr.DataArray(cube[:, i], dims=dims, coords=coords)
            out[band] = (dn.astype("float32") * np.float32(SH_DN_SCALE)).where(has_data)
        buffer_px = round(self.mask.cloud_buffer_m / abs(grid.resolution.x))
        scl = xr.DataArray(cube[:, len(SH_BANDS)], dims=dims, coords=coords)
        valid = valid_from_scl(scl, invalid_classes=self.mask.invalid_scl,
                               cloud_classes=self.mask.cloud_scl, buffer_px=buffer_px)
        if OUT_CLM in outputs:
            clm = xr.DataArray(cube[:, len(SH_BANDS) + 1], dims=dims, coords=coords)
            valid = valid & valid_from_scl(clm, invalid_classes=(CLM_CLOUD,),
                                           cloud_classes=(CLM_CLOUD,), buffer_px=buffer_px)
        out["valid"] = valid & has_data
        out = out.assign_coords(scene_id=("time", [a.scene_id for a in acqs]))
        out.attrs["crs"] = str(grid.crs)
        return out


def _clm_refused(failure: RequestFailed) -> bool:
    return failure.status == 400 and OUT_CLM in failure.reason


def check_sh_settings(source: SourceConfig) -> None:
    """Refuse ``sh_*`` values out of range before anything runs."""
    if not 1 <= source.sh_tile_px <= MAX_TILE_PX:
        raise ConfigError(f"source.sh_tile_px = {source.sh_tile_px}; give 1 to {MAX_TILE_PX} "
                          "(the Process API's largest width and height).")
    if source.sh_max_attempts < 1:
        raise ConfigError(f"source.sh_max_attempts = {source.sh_max_attempts}; give 1 or more.")
    if source.sh_threads < 1:
        raise ConfigError(f"source.sh_threads = {source.sh_threads}; give 1 or more.")
    for name in ("sh_backoff_s", "sh_max_wait_s", "sh_request_budget_s", "sh_timeout_s"):
        if getattr(source, name) < 0:
            raise ConfigError(f"source.{name} = {getattr(source, name)} is negative.")
    if source.sh_timeout_s <= 0:
        raise ConfigError(f"source.sh_timeout_s = {source.sh_timeout_s}; give a timeout above 0.")
    for name in ("sh_base_url", "sh_token_url"):
        if "://" not in getattr(source, name):
            raise ConfigError(f"source.{name} = {getattr(source, name)!r} is not a URL.")
