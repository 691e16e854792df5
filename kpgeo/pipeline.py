"""Composes the stages per site and month (STYLE.md "Data flow").

This version runs search → load → monthly composite → COG for every site-month of the baseline
and the months to process, and writes the run manifest. Detection, areas and exports are built
on these composites by later stages.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dask
import numpy as np

from .aoi import Site, load_site
from .composite import COUNT_BAND, MonthQuality, month_quality, monthly_composite
from .config import PipelineConfig
from .errors import ConfigError, LowCoverageWarning
from .export import write_cog
from .manifest import Manifest
from .months import Month, MonthRange
from .sources import REFLECTANCE_BANDS, SceneSource, open_source

log = logging.getLogger(__name__)


def resolve_sites(config: PipelineConfig, names: tuple[str, ...] = ()) -> list[Site]:
    """Load the configured sites (applying windows), optionally only those named.

    Raises
    ------
    AOIError, ConfigError
        On a bad site file or an unknown site name.
    """
    sites = []
    for entry in config.sites:
        site = load_site(entry.aoi)
        if entry.window is not None:
            site = site.window(entry.window.lon, entry.window.lat, entry.window.size_km)
        sites.append(site)
    if names:
        known = {s.name: s for s in sites}
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"--site {name!r} is not a site of this pipeline; known sites: "
                    f"{', '.join(sorted(known)) or 'none'}."
                )
        sites = [known[n] for n in names]
    return sites


def months_to_process(config: PipelineConfig) -> list[Month]:
    """The baseline's months and the months asked for, in order, each once."""
    assert config.months is not None and config.baseline is not None
    return sorted(set(config.baseline.months()) | set(config.months.months()))


@dataclass
class SiteMonth:
    """What one site-month produced."""

    site: str
    month: str
    quality: MonthQuality
    scene_ids: list[str]
    seconds: float
    outputs: list[Path] = field(default_factory=list)
    reused: bool = False


def composite_site_month(source: SceneSource, site: Site, month: Month, config: PipelineConfig,
                         folder: Path) -> SiteMonth:
    """Search, load, composite and write one site-month."""
    started = time.perf_counter()
    items = source.search(site, MonthRange.single(month))
    scenes = source.load(items, site)
    composite = monthly_composite(scenes)
    with warnings.catch_warnings():
        # GDAL warns about in-memory arrays it reprojects; the grids are always explicit here.
        warnings.filterwarnings("ignore", message="Dataset has no geotransform")
        composite = composite.compute()
    count = composite[COUNT_BAND].values
    quality = month_quality(count, site.pixel_mask(), len(items), config.composite.min_valid_pct)
    if quality.status == "gap":
        warnings.warn(
            f"{site.name} {month}: only {quality.valid_pct:.1f}% of the site has a valid "
            f"observation ({len(items)} scenes); the month is a gap.",
            LowCoverageWarning,
            stacklevel=2,
        )
    cube = np.stack([composite[b].values for b in REFLECTANCE_BANDS]
                    + [count.astype("float32")])
    path = write_cog(
        folder / "composite.tif",
        cube,
        site.grid,
        descriptions=[*REFLECTANCE_BANDS, COUNT_BAND],
        tags={"site": site.name, "month": str(month), "status": quality.status,
              "scenes": len(items), "valid_pct": quality.valid_pct,
              "units": "surface reflectance (bands 1-6), valid observations (band 7)"},
    )
    return SiteMonth(site.name, str(month), quality, [i.id for i in items],
                     time.perf_counter() - started, [path])


@contextlib.contextmanager
def _dask_context(config: PipelineConfig) -> Iterator[None]:
    """A distributed client for ``--scheduler``, else dask's threaded scheduler."""
    if config.scheduler:
        from distributed import Client

        with Client(config.scheduler, timeout="30s"):
            yield
    else:
        workers = config.workers or None
        with dask.config.set(scheduler="threads", num_workers=workers):
            yield


def run(config: PipelineConfig, *, site_names: tuple[str, ...] = (),
        progress: Callable[[str], None] = log.info) -> list[SiteMonth]:
    """Run the pipeline: composites for every site-month, then the manifest.

    Returns
    -------
    list of SiteMonth
        One entry per site and month, in processing order.
    """
    sites = resolve_sites(config, site_names)
    months = months_to_process(config)
    out_dir = config.out_dir
    source = open_source(config)
    manifest = Manifest(config=config.to_dict())
    results: list[SiteMonth] = []
    status = "failed"
    try:
        with _dask_context(config):
            for site in sites:
                for month in months:
                    folder = out_dir / site.name / str(month)
                    result = composite_site_month(source, site, month, config, folder)
                    results.append(result)
                    manifest.outputs.extend(result.outputs)
                    manifest.site_months.append({
                        "site": result.site, "month": result.month,
                        "status": result.quality.status, "scenes": result.quality.scenes,
                        "valid_pct": result.quality.valid_pct, "scene_ids": result.scene_ids,
                        "seconds": round(result.seconds, 2),
                    })
                    progress(
                        f"{site.name} {month}: {result.quality.status}, "
                        f"{result.quality.scenes} scenes, {result.quality.valid_pct:.1f}% valid "
                        f"({result.seconds:.1f} s)"
                    )
        status = "ok"
    finally:
        if results or status == "ok":
            path = manifest.write(out_dir, status=status)
            progress(f"manifest: {path}")
    return results
