"""Scene sources behind one interface (docs/product.md §6): ``synthetic``, ``stac``,
``sentinelhub``.

Reads and scene validity: searching and loading scenes, the COG reader, GDAL settings, the
Sentinel Hub client and cache, and SCL masking (``masking``). Modules here may import the
top-level modules (``synth`` included), ``methods`` (``blocks``, the band list) and the
``products`` they read or write with (``encoding``, ``atomic``), never ``compute`` or ``run``.
"""

from __future__ import annotations

from pathlib import Path

from ..config import PipelineConfig
from ..errors import ConfigError
from ..synth.radar_archive import RADAR_COLLECTION
from .base import READ_ERRORS, REFLECTANCE_BANDS, SCL_BAND, RadarSource, SceneSource
from .stac import StacSource
from .stac_radar import StacRadarSource
from .synthetic import DEFAULT_CACHE, SyntheticSource

__all__ = ["READ_ERRORS", "REFLECTANCE_BANDS", "SCL_BAND", "RadarSource", "SceneSource",
           "StacSource", "SyntheticSource", "open_radar_source", "open_source"]


def open_source(config: PipelineConfig) -> SceneSource:
    """The scene source a configuration asks for.

    A ``synthetic`` source with a ``catalog`` reads that archive; without one it builds (or
    reuses) an archive per site covering the baseline and the months. ``sentinelhub`` reads
    its credentials from the environment here, before anything is written.

    Raises
    ------
    CredentialsError
        ``sentinelhub`` without ``SH_CLIENT_ID``/``SH_CLIENT_SECRET`` (exit code 2).
    ConfigError
        An unknown source or ``sh_*`` setting out of range.
    """
    kind = config.source.kind
    if kind == "stac" or (kind == "synthetic" and config.source.catalog):
        return StacSource(
            config.source.catalog,
            collection=config.source.collection,
            mask=config.mask,
            chunk_px=config.composite.chunk_px,
            max_scene_cloud_pct=config.source.max_scene_cloud_pct,
            resampling=config.source.resampling,
            read_attempts=config.source.read_attempts,
            http_timeout_s=config.source.http_timeout_s,
            http_retries=config.source.http_retries,
        )
    if kind == "synthetic":
        assert config.months is not None and config.baseline is not None
        from ..months import MonthRange

        span = MonthRange(min(config.months.first, config.baseline.first),
                          max(config.months.last, config.baseline.last))
        root = Path(config.synthetic.archive) if config.synthetic.archive else DEFAULT_CACHE
        return SyntheticSource(span, seed=config.synthetic.seed, root=root, mask=config.mask,
                               long_rains=config.synthetic.long_rains,
                               chunk_px=config.composite.chunk_px,
                               read_attempts=config.source.read_attempts, radar=config.radar)
    if kind == "sentinelhub":
        # ^ imported here: sentinelhub-py is only needed by those who use it
        from .sentinelhub import SentinelHubSource

        if config.radar is not None:
            from .sh_radar import check_radar_chunks

            # ^ here, before any request or write, not when the radar is first read
            check_radar_chunks(config.source, config.composite.chunk_px)
        return SentinelHubSource(config.source, mask=config.mask,
                                 chunk_px=config.composite.chunk_px)
    raise ConfigError(
        f"source {kind!r} is unknown; use synthetic, stac or sentinelhub."
    )


def open_radar_source(config: PipelineConfig, scenes: SceneSource) -> RadarSource | None:
    """The Sentinel-1 source of a configuration with a ``[radar]`` table (None without one),
    beside its optical source ``scenes`` (:func:`open_source`).

    ``stac`` reads ``radar.catalog`` (Planetary Computer's API by default); a synthetic
    archive its own radar collection (``sentinel-1-rtc/`` beside the optical one);
    ``sentinelhub`` asks the Process API for S1GRD gamma0 with the optical source's
    credentials, cache and retry bounds (:mod:`.sh_radar`).

    Raises
    ------
    ConfigError
        For ``sentinelhub``, chunks too wide for one Process request with their border.
    CredentialsError
        For ``sentinelhub`` without ``SH_CLIENT_ID``/``SH_CLIENT_SECRET``.
    """
    radar = config.radar
    if radar is None:
        return None
    settings = {"read_attempts": config.source.read_attempts,
                "http_timeout_s": config.source.http_timeout_s,
                "http_retries": config.source.http_retries,
                "resampling": config.source.resampling}
    chunk_px = config.composite.chunk_px
    if isinstance(scenes, SyntheticSource):
        return scenes.radar_source()
    if config.source.kind == "synthetic":
        # An archive given as a catalog: its radar lies beside its collection.
        beside = Path(config.source.catalog).parent / RADAR_COLLECTION / "collection.json"
        return StacRadarSource.from_config(radar, catalog=str(beside), chunk_px=chunk_px,
                                           **settings)
    if config.source.kind == "stac":
        return StacRadarSource.from_config(radar, chunk_px=chunk_px, **settings)
    if config.source.kind == "sentinelhub":
        from .sentinelhub import SentinelHubSource
        from .sh_radar import SentinelHubRadarSource

        # The optical source's credentials, read once; [radar]'s catalog, collection, assets,
        # units and signing describe a STAC collection and have no part in an S1GRD request.
        sh_config = scenes.sh_config if isinstance(scenes, SentinelHubSource) else None
        return SentinelHubRadarSource(config.source, chunk_px=chunk_px, sh_config=sh_config)
    raise ConfigError(f"source {config.source.kind!r} has no radar; use synthetic, stac or "
                      "sentinelhub.")
