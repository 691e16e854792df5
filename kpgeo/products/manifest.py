"""The run manifest (docs/product.md §8): command, config, versions, scenes, timings, output checksums."""

from __future__ import annotations

import datetime as dt
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from .checksums import sha256
from .export import write_json

_PACKAGES = ("kpgeo", "numpy", "xarray", "dask", "distributed", "rasterio", "odc-stac", "odc-geo",
             "pystac", "pystac-client", "shapely", "pyproj", "sentinelhub", "folium")


def versions() -> dict[str, str]:
    """Versions of Python, GDAL and the packages that shape results."""
    import rasterio

    found = {"python": platform.python_version(), "gdal": rasterio.__gdal_version__}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass
class Manifest:
    """Collects what a run did; written once at the end (and on failure)."""

    config: dict[str, Any]
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    started: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    site_months: list[dict[str, Any]] = field(default_factory=list)
    skipped_scenes: list[dict[str, Any]] = field(default_factory=list)
    retries: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Path] = field(default_factory=list)
    _stamp: str | None = field(default=None, init=False, repr=False)

    def path(self, out_dir: Path) -> Path:
        """Where :meth:`write` puts the manifest, ``runs/<timestamp>.json``: the time of the
        first call, so that the index page written just before the manifest can link it (the
        time of writing when not asked before)."""
        if self._stamp is None:
            self._stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return out_dir / "runs" / f"{self._stamp}.json"

    def write(self, out_dir: Path, *, status: str) -> Path:
        path = self.path(out_dir)
        finished = dt.datetime.now(dt.UTC)
        doc = {
            "status": status,
            "command": self.command,
            "started": self.started,
            "finished": finished.isoformat(),
            "config": self.config,
            "versions": versions(),
            "site_months": self.site_months,
            "skipped_scenes": self.skipped_scenes,
            "retries": self.retries,
            "outputs": [
                {"path": str(p.relative_to(out_dir)), "sha256": sha256(p)}
                for p in self.outputs if p.exists()
            ],
        }
        return write_json(path, doc)
