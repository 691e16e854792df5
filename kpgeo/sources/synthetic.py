"""The ``synthetic`` source: an archive written by ``kpgeo synth``, read exactly like ``stac``.

When no catalog is given, the archive of each site is built on first use (deterministic) and
cached under the configured folder, keyed by site, months and seed.

:func:`reads_synthetic` tells whether a run's scenes are synthetic, whichever source reads
them: products made from them are labelled so (docs/product.md §8, "Synthetic data").
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac
import xarray as xr

from ..aoi import Site
from ..config import MaskConfig, RadarConfig
from ..months import MonthRange
from ..synth import write_archive
from ..synth.archive import SYNTH_KEY
from ..synth.ground import Ground
from .base import ChunkReads, RadarReads
from .stac import StacSource
from .stac_radar import StacRadarSource

#: Held while a source looks up or builds a site's archive.
_BUILDING = threading.Lock()
#: Where archives are cached when the pipeline names no folder.
DEFAULT_CACHE = Path(os.environ.get("KPGEO_CACHE_DIR", "~/.cache/kpgeo")).expanduser() / "synth"


def reads_synthetic(kind: str, catalog: str = "") -> bool:
    """Whether a source of ``kind`` over ``catalog`` reads synthetic scenes: the ``synthetic``
    source, or a static collection on disk that ``kpgeo synth`` wrote (its ``collection.json``
    carries :data:`~kpgeo.synth.archive.SYNTH_KEY`) read as ``stac``. An archive served over
    HTTP is not looked at (that would be a request per run to every real catalog too): read it
    with ``kind = "synthetic"`` and its ``catalog``."""
    if kind == "synthetic":
        return True
    return bool(catalog) and "://" not in catalog and _written_by_synth(catalog)


@functools.lru_cache(maxsize=16)
def _written_by_synth(catalog: str) -> bool:
    path = Path(catalog)
    if path.is_dir():
        path = next((path / n for n in ("collection.json", "catalog.json")
                     if (path / n).is_file()), path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and SYNTH_KEY in doc


def archive_folder(root: Path, site: Site, months: MonthRange, seed: int,
                   long_rains: tuple[str, ...] = ()) -> Path:
    """Folder of the cached archive of one site."""
    rains = f"|{','.join(long_rains)}" if long_rains else ""
    key = hashlib.sha1(f"{site.geometry.wkt}|{months}|{seed}{rains}".encode()).hexdigest()[:10]
    return root / f"{site.name}-{months.first}-{months.last}-seed{seed}-{key}"


@dataclass
class SyntheticSource:
    """Per-site synthetic archives covering ``months``, built on demand."""

    months: MonthRange
    seed: int = 7
    root: Path = DEFAULT_CACHE
    mask: MaskConfig = field(default_factory=MaskConfig)
    chunk_px: int = 1024
    read_attempts: int = 3
    radar: RadarConfig | None = None
    """With a ``[radar]`` table, the archives carry Sentinel-1 (:meth:`radar_source`)."""
    long_rains: tuple[str, ...] = ()
    """Month ranges with almost no clear optical view (:class:`~kpgeo.synth.ground.Ground`)."""
    skipped: list[dict[str, Any]] = field(default_factory=list, init=False)
    """Scenes left out, of every site's archive (see :class:`~.stac.StacSource`)."""
    retries: list[dict[str, Any]] = field(default_factory=list, init=False)
    _sources: dict[str, StacSource] = field(default_factory=dict, init=False, repr=False)
    _radar: dict[str, StacRadarSource] = field(default_factory=dict, init=False, repr=False)

    def source_for(self, site: Site) -> StacSource:
        """The STAC source over this site's archive, writing the archive if needed (once:
        the pipeline searches months from two threads, and two builds of one archive at once
        collided when renaming it into place)."""
        with _BUILDING:
            if site.name not in self._sources:
                folder = archive_folder(self.root, site, self.months, self.seed,
                                        self.long_rains)
                result = write_archive(site, self.months, folder, seed=self.seed,
                                       ground=Ground(long_rains=self.long_rains),
                                       replace_stale=True, radar=self.radar is not None)
                if self.radar is not None and result.radar is not None:
                    self._radar[site.name] = StacRadarSource.from_config(
                        self.radar, catalog=str(result.radar), chunk_px=self.chunk_px,
                        read_attempts=self.read_attempts)
                self._sources[site.name] = StacSource(
                    str(result.collection), mask=self.mask, chunk_px=self.chunk_px,
                    read_attempts=self.read_attempts, skipped=self.skipped,
                    retries=self.retries,
                )
            return self._sources[site.name]

    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        return self.source_for(site).search(site, months)

    def load(self, items: list[pystac.Item], site: Site) -> xr.Dataset:
        return self.source_for(site).load(items, site)

    def read_chunks(self, items: list[pystac.Item], site: Site) -> ChunkReads:
        return self.source_for(site).read_chunks(items, site)

    def screen(self, items: list[pystac.Item], site: Site) -> list[pystac.Item]:
        return self.source_for(site).screen(items, site)

    def radar_source(self) -> SyntheticRadar:
        """The radar of the sites' archives (built with them)."""
        return SyntheticRadar(self)


@dataclass
class SyntheticRadar:
    """Sentinel-1 of a :class:`SyntheticSource`'s archives, site by site."""

    owner: SyntheticSource

    def _for(self, site: Site) -> StacRadarSource:
        self.owner.source_for(site)
        return self.owner._radar[site.name]

    def search(self, site: Site, months: MonthRange) -> list[pystac.Item]:
        return self._for(site).search(site, months)

    def read_chunks(self, items: list[pystac.Item], site: Site) -> RadarReads:
        return self._for(site).read_chunks(items, site)
