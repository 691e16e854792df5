"""kpgeo: Sentinel-2 monitoring of artisanal alluvial diamond digging for Kimberley Process work.

Public API: load sites and pipelines, search and load scenes, build monthly composites.
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
    LowCoverageWarning,
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
    "LowCoverageWarning",
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
