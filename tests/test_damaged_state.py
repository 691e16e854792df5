"""Damaged saved state is reported and recomputed, never used (docs/product.md §10; issue 19,
point 2).

A rerun keeps the months an earlier run finished and starts from their saved state. Here a
small run (the cloudy five-month archive of tests/test_gap_months.py: two measured months of
new digging, then two gap months) is damaged in each way an unlucky operator or a failing disk
damages files: another month's ``change.tif`` copied over a gap month's (which made the gap
"ok" and its areas another month's), another month's whole folder copied over, bits flipped in
the middle of a COG, a COG truncated to half, zeroed or emptied, ``baseline.tif`` truncated or
zeroed, the record itself garbled. Each rerun must say which file is damaged and why in one
line, compute it again, and end with the products of the undamaged run: the same
``timeseries.csv`` rows, exports (areas) and rasters.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from kpgeo.cli import cli
from kpgeo.products.checksums import RECORD_NAME, sha256
from kpgeo.synth import SynthResult

from .builders import assert_same_products, data_products, write_site_file

SITE = "gm"
#: The small archive's window (tests/conftest.py), as tests/test_gap_months.py cuts it.
SITE_BBOX = (-5.708, 8.712, -5.692, 8.728)
BASELINE = "2024-01..2024-01"
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
#: What each month is with min_valid_pct = 95 on this archive (asserted by the clean run).
STATUSES = ["ok", "ok", "ok", "gap", "gap"]


@dataclass(frozen=True)
class Clean:
    """The undamaged run: its output folder and the files that make it."""

    out: Path
    pipeline: Path
    aoi: Path


def _run(pipeline: Path, aoi: Path, out: Path, months: str = f"{MONTHS[0]}..{MONTHS[-1]}",
         ) -> Any:
    return CliRunner().invoke(cli, [
        "run", str(pipeline), "--aoi", str(aoi), "--baseline", BASELINE, "--months", months,
        "--out", str(out), "--scheduler", "threads"])


def _clean(cloudy_archive: SynthResult, root: Path, chunk_px: int | None) -> Clean:
    aoi = write_site_file(root / "gm.geojson", SITE_BBOX, name=SITE)
    pipeline = root / "strict.toml"
    chunks = "" if chunk_px is None else f"chunk_px = {chunk_px}\n"
    pipeline.write_text(f'[source]\nkind = "stac"\ncatalog = "{cloudy_archive.collection}"\n'
                        f"[composite]\nmin_valid_pct = 95.0\n{chunks}")
    out = root / "clean"
    result = _run(pipeline, aoi, out)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in _rows(out)] == STATUSES
    assert float(_rows(out)[2]["cumulative_new_ha"]) > 0  # new digging to lose
    return Clean(out, pipeline, aoi)


@pytest.fixture(scope="module")
def clean(cloudy_archive: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Clean:
    """The undamaged run, its site one chunk."""
    return _clean(cloudy_archive, tmp_path_factory.mktemp("clean"), None)


@pytest.fixture(scope="module")
def clean_chunked(cloudy_archive: SynthResult,
                  tmp_path_factory: pytest.TempPathFactory) -> Clean:
    """The undamaged run, its site cut into chunks of 64 px (COGs made from chunk tiles)."""
    return _clean(cloudy_archive, tmp_path_factory.mktemp("chunked"), 64)


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "timeseries.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _manifest(out: Path) -> dict[str, Any]:
    (path,) = (out / "runs").glob("*.json")
    return json.loads(path.read_text())


# ---- ways of damaging a file -------------------------------------------------------------------
def truncate_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_middle(path: Path) -> None:
    """64 bytes in the middle of the file inverted, in place: the size stays."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    path.write_bytes(bytes(data))


def zero(path: Path) -> None:
    path.write_bytes(bytes(path.stat().st_size))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def copy_of(month: str) -> Callable[[Path], None]:
    """The same file of another month copied over this one."""
    def copy(path: Path) -> None:
        shutil.copyfile(path.parent.parent / month / path.name, path)
    return copy


def folder_of(month: str) -> Callable[[Path], None]:
    """Another month's whole folder (its record too) copied over this one's."""
    def copy(path: Path) -> None:
        shutil.rmtree(path)
        shutil.copytree(path.parent / month, path)
    return copy


def garble(path: Path) -> None:
    path.write_text('{"kind": "kpgeo products", "files": ', encoding="utf-8")


@dataclass(frozen=True)
class Damage:
    id: str
    target: str
    """Under the site's folder."""
    damage: Callable[[Path], None]
    reported: tuple[str, ...]
    """What the one log line says: the file (under the output folder) and why."""
    recomputed: tuple[str, ...]
    """The months the rerun computes."""
    months: str = f"{MONTHS[0]}..{MONTHS[-1]}"
    """The months the rerun asks for."""


AFTER_BASELINE = tuple(MONTHS)
DAMAGES = [
    # A gap month made "ok" with March's areas (and cumulative area) before this was checked.
    Damage("change-of-another-month", "2024-04/change.tif", copy_of("2024-03"),
           ("gm 2024-04: ", "gm/2024-04/change.tif has ", "bytes where",
            "truncated or replaced", "computing the month again"), ("2024-04", "2024-05")),
    Damage("folder-of-another-month", "2024-04", folder_of("2024-03"),
           (f"gm/2024-04/{RECORD_NAME} is of 2024-03, not 2024-04",), ("2024-04", "2024-05")),
    Damage("change-bits-flipped", "2024-03/change.tif", flip_middle,
           ("gm/2024-03/change.tif is not the file written", "SHA-256 differs"),
           ("2024-03", "2024-04", "2024-05")),
    Damage("composite-bits-flipped", "2024-04/composite.tif", flip_middle,
           ("gm/2024-04/composite.tif is not the file written",), ("2024-04", "2024-05")),
    Damage("composite-truncated", "2024-03/composite.tif", truncate_half,
           ("gm/2024-03/composite.tif has ", "truncated or replaced"),
           ("2024-03", "2024-04", "2024-05")),
    Damage("change-zeroed", "2024-02/change.tif", zero,
           ("gm/2024-02/change.tif is not the file written",), MONTHS[1:]),
    Damage("change-emptied", "2024-05/change.tif", empty,
           ("gm/2024-05/change.tif has 0 bytes",), ("2024-05",)),
    Damage("geojson-truncated", "2024-02/disturbed.geojson", truncate_half,
           ("gm/2024-02/disturbed.geojson has ",), MONTHS[1:]),
    Damage("indices-truncated", "2024-01/indices.tif", truncate_half,
           ("gm/2024-01/indices.tif has ",), AFTER_BASELINE),
    Damage("baseline-truncated", "baseline.tif", truncate_half,
           ("gm: ", "gm/baseline.tif has ", "building the baseline and every month after"),
           AFTER_BASELINE),
    Damage("baseline-zeroed", "baseline.tif", zero,
           ("gm/baseline.tif is not the file written",), AFTER_BASELINE),
    Damage("record-garbled", f"2024-03/{RECORD_NAME}", garble,
           (f"gm/2024-03/{RECORD_NAME} cannot be read",), ("2024-03", "2024-04", "2024-05")),
    # A monthly run: the saved state it would start from (March, the latest measured month
    # before the gap April) is damaged: it starts before it.
    Damage("start-state-damaged", "2024-03/change.tif", flip_middle,
           ("gm/2024-03/change.tif is not the file written",),
           ("2024-03", "2024-04", "2024-05"), months="2024-05..2024-05"),
    Damage("start-state-truncated", "2024-04/change.tif", truncate_half,
           ("gm/2024-04/change.tif has ",), ("2024-04", "2024-05"), months="2024-05..2024-05"),
]


def _damaged_rerun(clean: Clean, damage: Damage, tmp_path: Path) -> tuple[Any, Path]:
    out = tmp_path / "damaged"
    shutil.copytree(clean.out, out)
    shutil.rmtree(out / "runs")
    damage.damage(out / SITE / damage.target)
    return _run(clean.pipeline, clean.aoi, out, damage.months), out


def _check_rerun(clean: Clean, damage: Damage, result: Any, out: Path, *,
                 exact: bool = True) -> None:
    """The damage reported in one line, the months from it computed again, and the figures
    of the undamaged run; ``exact``: every product the same bytes (COGs: pixels and tags)."""
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    # One line says which file and why.
    lines = [line for line in result.stderr.splitlines()
             if all(part in line for part in damage.reported)]
    assert len(lines) == 1, (damage.reported, result.stderr)
    assert [m["month"] for m in _manifest(out)["site_months"]] == list(damage.recomputed)
    # Computed again: the rows and the exports' areas are the undamaged run's.
    assert _rows(out) == _rows(clean.out)
    for month in MONTHS:
        assert _areas(out, month) == _areas(clean.out, month), month
    if not exact:
        return
    assert_same_products(clean.out, out)
    target = out / SITE / damage.target
    for path in [target] if target.is_file() else sorted(target.iterdir()):
        if path.name != "map.html":  # maps carry random element ids
            twin = clean.out / path.relative_to(out)
            assert sha256(path) == sha256(twin), path


def _areas(out: Path, month: str) -> tuple[Any, list[dict[str, Any]]]:
    """A month's export: its ``kpgeo`` member and each area's properties (id, status, areas,
    months)."""
    doc = json.loads((out / f"exports/disturbed-{month}.geojson").read_text())
    return doc["kpgeo"], [f["properties"] for f in doc["features"]]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.id for d in DAMAGES])
def test_damaged_state_is_reported_and_recomputed(clean: Clean, damage: Damage,
                                                  tmp_path: Path) -> None:
    result, out = _damaged_rerun(clean, damage, tmp_path)
    _check_rerun(clean, damage, result, out)


CHUNKED = [d for d in DAMAGES if d.id in ("change-of-another-month", "baseline-truncated",
                                          "start-state-damaged")]


@pytest.mark.parametrize("damage", CHUNKED, ids=[d.id for d in CHUNKED])
def test_damaged_state_of_a_chunked_site_is_recomputed(clean_chunked: Clean, damage: Damage,
                                                       tmp_path: Path) -> None:
    """As above, on a site of several chunks. Its rasters and figures are the undamaged run's;
    the outlines of pre-existing areas are not quite (a few m² of their vertices, whatever
    the damage): a chunked site's are merged from the chunks' pieces when the baseline is
    built, and traced from the whole ``baseline.tif`` when a run keeps it."""
    result, out = _damaged_rerun(clean_chunked, damage, tmp_path)
    _check_rerun(clean_chunked, damage, result, out, exact=False)
    products = data_products(clean_chunked.out)
    assert sorted(data_products(out)) == sorted(products)
    for name, path in data_products(out).items():
        if path.suffix == ".tif":
            with rasterio.open(path) as x, rasterio.open(products[name]) as y:
                np.testing.assert_array_equal(x.read(), y.read(), err_msg=name)
                assert x.tags() == y.tags(), name
        elif path.suffix == ".csv":
            assert path.read_bytes() == products[name].read_bytes(), name


def test_undamaged_rerun_keeps_every_month_and_says_nothing(clean: Clean,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "again"
    shutil.copytree(clean.out, out)
    shutil.rmtree(out / "runs")
    result = _run(clean.pipeline, clean.aoi, out)
    assert result.exit_code == 0, result.output
    assert "0 site-months written" in result.output
    assert [line for line in result.stderr.splitlines() if "gm/" in line] == []
    assert_same_products(clean.out, out)


def test_month_without_its_record_is_unfinished_and_computed_again(
        clean: Clean, tmp_path: Path) -> None:
    """A run killed after a month's products and before its record: not finished, which is
    said as such, no damage."""
    out = tmp_path / "interrupted"
    shutil.copytree(clean.out, out)
    shutil.rmtree(out / "runs")
    (out / SITE / "2024-04" / RECORD_NAME).unlink()
    result = _run(clean.pipeline, clean.aoi, out)
    assert result.exit_code == 0, result.output
    assert [m["month"] for m in _manifest(out)["site_months"]] == ["2024-04", "2024-05"]
    (line,) = [line for line in result.stderr.splitlines() if "2024-04/" in line]
    assert line.endswith(f"gm/2024-04/{RECORD_NAME} is missing (not finished by an earlier "
                         "run); computing the month again."), line
    assert_same_products(clean.out, out)


def test_every_finished_folder_has_a_record_of_its_products(clean: Clean) -> None:
    """What a rerun checks: each month's four products and the site's baseline.tif, each
    with its size and SHA-256, and what they are."""
    for month in MONTHS:
        record = json.loads((clean.out / SITE / month / RECORD_NAME).read_text())
        assert (record["site"], record["month"]) == (SITE, month)
        assert sorted(record["files"]) == sorted(["composite.tif", "indices.tif",
                                                  "change.tif", "disturbed.geojson"])
        for name, entry in record["files"].items():
            path = clean.out / SITE / month / name
            assert entry == {"bytes": path.stat().st_size, "sha256": sha256(path)}
    record = json.loads((clean.out / SITE / RECORD_NAME).read_text())
    assert record["month"] is None and list(record["files"]) == ["baseline.tif"]
    assert record["baseline_months"] == {"2024-01": "ok"}
