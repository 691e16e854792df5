"""Shared fixtures: a small synthetic archive, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import dask
import pytest

from kpgeo.aoi import Site, load_site
from kpgeo.months import parse_month_range
from kpgeo.synth import SynthResult, write_archive

# Runs compute in the test process with dask's threaded scheduler unless a test asks for a
# cluster (tests/test_scale.py): a local cluster per run would add seconds to each. The
# environment variable reaches the `kpgeo` processes tests start.
os.environ.setdefault("DASK_SCHEDULER", "threads")
dask.config.set(scheduler="threads")

REPO = Path(__file__).resolve().parent.parent
TORTIYA = REPO / "aoi" / "tortiya.geojson"
BOBI = REPO / "aoi" / "bobi-seguela.geojson"


@pytest.fixture(scope="session")
def small_site() -> Site:
    """A 2 x 2 km window of Tortiya on the Bou, around known digging."""
    return load_site(TORTIYA).window(-5.700, 8.720, 2.0)


@pytest.fixture(scope="session")
def cloudy_archive(tmp_path_factory: pytest.TempPathFactory, small_site: Site) -> SynthResult:
    """Five months (2024-01..2024-05) of twice as cloudy scenes over :func:`small_site`, where
    some months are gaps; tests that damage it work on a copy."""
    return write_archive(small_site, parse_month_range("2024-01..2024-05"),
                         tmp_path_factory.mktemp("cloudy") / "tortiya", seed=5, cloudiness=2.0)


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory: pytest.TempPathFactory, small_site: Site) -> SynthResult:
    """Three months of synthetic scenes over :func:`small_site`."""
    out = tmp_path_factory.mktemp("archive") / "tortiya"
    return write_archive(small_site, parse_month_range("2024-01..2024-03"), out, seed=3)
