"""The ``synthetic`` source: an archive written by ``kpgeo synth``, read exactly like ``stac``.

When no catalog is given, the archive of each site is built on first use (deterministic) and
cached under the configured folder, keyed by site, months and seed.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pystac
import xarray as xr

from ..aoi import Site
from ..config import MaskConfig
from ..months import MonthRange
from ..synth import write_archive
from .base import ChunkReads
from .stac import StacSource

#: Held while a source looks up or builds a site's archive.
_BUILDING = threading.Lock()
#: Where archives are cached when the pipeline names no folder.
DEFAULT_CACHE = Path(os.environ.get("KPGEO_CACHE_DIR", "~/.cache/kpgeo")).expanduser() / "synth"


def archive_folder(root: Path, site: Site, months: MonthRange, seed: int) -> Path:
    """Folder of the cached archive of one site."""
    key = hashlib.sha1(f"{site.geometry.wkt}|{months}|{seed}".encode()).hexdigest()[:10]
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
    skipped: list[dict[str, Any]] = field(default_factory=list, init=False)
    """Scenes left out, of every site's archive (see :class:`~.stac.StacSource`)."""
    retries: list[dict[str, Any]] = field(default_factory=list, init=False)
    _sources: dict[str, StacSource] = field(default_factory=dict, init=False, repr=False)

    def source_for(self, site: Site) -> StacSource:
        """The STAC source over this site's archive, writing the archive if needed (once:
        the pipeline searches months from two threads, and two builds of one archive at once
        collided when renaming it into place)."""
        with _BUILDING:
            if site.name not in self._sources:
                folder = archive_folder(self.root, site, self.months, self.seed)
                result = write_archive(site, self.months, folder, seed=self.seed,
                                       replace_stale=True)
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
