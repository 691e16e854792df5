"""kpgeo: Sentinel-2 monitoring of artisanal alluvial diamond digging for Kimberley Process work.

Public API: load sites and pipelines, search and load scenes, build monthly composites.

Layout, in the order data flows: :mod:`kpgeo.sources` reads scenes and their validity;
:mod:`kpgeo.methods` is the numpy of each step, run per chunk by the Dask graphs of
:mod:`kpgeo.compute`; :mod:`kpgeo.products` writes and reads what lands on disk.
:mod:`kpgeo.run` drives the months of a run (resume, the month loop); :mod:`kpgeo.report`
makes a period's report from a finished run's products; :mod:`kpgeo.cli` sits on top. ``config``, ``aoi``, ``months`` and ``errors`` are shared by all; ``synth`` builds
synthetic archives.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .aoi import Site, load_site
from .config import PipelineConfig, load_pipeline
from .errors import (
    AOIError,
    ConfigError,
    CredentialsError,
    InputError,
    KpgeoError,
    MonthError,
    SourceError,
)
from .months import MonthRange, parse_month, parse_month_range

__all__ = [
    "AOIError",
    "ConfigError",
    "CredentialsError",
    "InputError",
    "KpgeoError",
    "MonthError",
    "MonthRange",
    "PipelineConfig",
    "Site",
    "SourceError",
    "__version__",
    "load_pipeline",
    "load_site",
    "parse_month",
    "parse_month_range",
]
