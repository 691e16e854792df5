"""Shared fixtures: a small synthetic archive, built once per test session."""

from __future__ import annotations

import os
from dataclasses import dataclass
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


@dataclass(frozen=True)
class FinishedRun:
    """A finished run of two sites over :func:`cloudy_archive`, read by the catalog and report
    tests (which work on copies when they change it)."""

    out: Path
    args: tuple[str, ...]
    """``kpgeo run`` arguments that made it, without ``--months`` and ``--out``."""
    sites: tuple[str, ...]
    months: tuple[str, ...]


#: Months of :func:`finished_run`; the archive has one more (2024-05), for a rerun to add.
FINISHED_MONTHS = ("2024-01", "2024-02", "2024-03", "2024-04")


@pytest.fixture(scope="session")
def finished_run(cloudy_archive: SynthResult,
                 tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """``kpgeo run`` of two sites (the small window and its western half) with a strict
    ``min_valid_pct`` of 95 %, so that April is a gap month after two months of new digging
    (for the whole window at least)."""
    from click.testing import CliRunner

    from kpgeo.cli import cli

    from .builders import write_site_file

    root = tmp_path_factory.mktemp("finished")
    west = write_site_file(root / "tw.geojson", (-5.708, 8.712, -5.692, 8.728), name="tw",
                           title="Tortiya window")
    half = write_site_file(root / "th.geojson", (-5.708, 8.712, -5.699, 8.728), name="th",
                           title="Tortiya west half")
    pipeline = root / "strict.toml"
    pipeline.write_text(
        f'name = "finished"\noffline = true\n[source]\nkind = "synthetic"\n'
        f'catalog = "{cloudy_archive.collection}"\n[composite]\nmin_valid_pct = 95.0\n')
    args = (str(pipeline), "--aoi", str(west), "--aoi", str(half), "--baseline",
            "2024-01..2024-01")
    out = root / "OUT"
    result = CliRunner().invoke(cli, ["run", *args, "--months",
                                      f"{FINISHED_MONTHS[0]}..{FINISHED_MONTHS[-1]}",
                                      "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    return FinishedRun(out, args, ("tw", "th"), FINISHED_MONTHS)
