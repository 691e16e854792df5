"""Faults during a run (docs/product.md §10): a corrupt COG, a missing asset, a server answering 500 or
stalling. Each scene is retried a bounded number of times, then skipped and recorded in the
manifest with its reason; a month left without a usable scene is a gap. The archive is served
by a loopback HTTP server that injects the faults.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kpgeo.cli import cli

from .builders import assert_same_products, range_server, write_site_file

MONTH = "2024-03"  # the detection month the faults hit (baseline 2024-01..2024-02)


@pytest.fixture()
def archive(small_archive, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A private copy of the small archive (tests damage its files)."""
    root = tmp_path / "archive"
    shutil.copytree(small_archive.collection.parent, root)
    return root


def scenes_of(root: Path, month: str) -> list[str]:
    """Scene ids of a month, oldest first."""
    compact = month.replace("-", "")
    return sorted((p.name for p in root.iterdir() if p.is_dir() and compact in p.name),
                  key=lambda name: name.split("_")[2])


def run_pipeline(tmp_path: Path, catalog: str, *, out: str = "out",
                 baseline: str = "2024-01..2024-02", **source: Any) -> tuple[Any, Path]:
    """``kpgeo run`` of the small site over the archive; quick fault settings."""
    aoi = write_site_file(tmp_path / "my.geojson", (-5.705, 8.715, -5.695, 8.725), name="my")
    settings = {"read_attempts": 2, "http_timeout_s": 1.0, "http_retries": 1, **source}
    lines = ["[source]", 'kind = "stac"', f'catalog = "{catalog}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    pipeline = tmp_path / "faults.toml"
    pipeline.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, [
        "run", str(pipeline), "--aoi", str(aoi), "--baseline", baseline,
        "--months", "2024-01..2024-03", "--out", str(tmp_path / out), "--scheduler", "threads"])
    return result, tmp_path / out


def manifest(out: Path) -> dict[str, Any]:
    (path,) = (out / "runs").glob("*.json")
    return json.loads(path.read_text())


def series_row(out: Path, month: str) -> dict[str, str]:
    with open(out / "timeseries.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["month"] == month)


def check_skipped(out: Path, scene: str, reason: str) -> dict[str, Any]:
    """The run finished, the scene is recorded as skipped with the reason, and the month was
    computed from the others."""
    doc = manifest(out)
    assert doc["status"] == "ok"
    skipped = doc["skipped_scenes"]
    assert [s["scene_id"] for s in skipped] == [scene], skipped
    assert skipped[0]["month"] == MONTH and skipped[0]["site"] == "my"
    assert reason in skipped[0]["reason"], skipped[0]["reason"]
    month = next(m for m in doc["site_months"] if m["month"] == MONTH)
    assert scene not in month["scene_ids"]
    assert month["scenes"] == len(month["scene_ids"]) > 0
    assert series_row(out, MONTH)["status"] == "ok"
    return doc


@pytest.mark.parametrize("fault, reason", [("500", "500"), ("404", "404"),
                                            ("stall", "timed out")])
def test_scene_the_server_fails_is_retried_then_skipped_and_recorded(
        archive: Path, tmp_path: Path, fault: str, reason: str) -> None:
    scene = scenes_of(archive, MONTH)[1]
    with range_server(archive, {f"/{scene}/red.tif": fault}, stall_s=20) as url:
        result, out = run_pipeline(tmp_path, f"{url}/collection.json")
    assert result.exit_code == 0, result.output
    doc = check_skipped(out, scene, reason)
    assert doc["skipped_scenes"][0]["attempts"] == 2
    assert doc["skipped_scenes"][0]["reason"].startswith("red: ")
    assert [r["attempt"] for r in doc["retries"] if r.get("scene_id") == scene] == [1]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cog_is_skipped_and_recorded(archive: Path, tmp_path: Path, damage: str) -> None:
    scene = scenes_of(archive, MONTH)[2]
    path = archive / scene / "nir.tif"
    data = path.read_bytes()
    # Garbage: not a TIFF at all. Truncated: the header reads, the tiles do not.
    path.write_bytes(os.urandom(len(data)) if damage == "garbage" else data[: len(data) // 2])
    with range_server(archive) as url:
        result, out = run_pipeline(tmp_path, f"{url}/collection.json")
    assert result.exit_code == 0, result.output
    doc = check_skipped(out, scene, "nir: ")
    assert doc["skipped_scenes"][0]["attempts"] == 2


def test_scene_without_an_asset_is_skipped_at_search(archive: Path, tmp_path: Path) -> None:
    scene = scenes_of(archive, MONTH)[0]
    item_path = archive / scene / f"{scene}.json"
    item = json.loads(item_path.read_text())
    del item["assets"]["swir16"]
    item_path.write_text(json.dumps(item))
    result, out = run_pipeline(tmp_path, str(archive / "collection.json"))
    assert result.exit_code == 0, result.output
    doc = check_skipped(out, scene, "no asset 'swir16'")
    assert doc["skipped_scenes"][0]["attempts"] == 0


def test_month_without_a_usable_scene_is_a_gap_and_retried_by_the_next_run(
        archive: Path, tmp_path: Path) -> None:
    faults = {f"/{scene}/scl.tif": "500" for scene in scenes_of(archive, MONTH)}
    with range_server(archive, faults) as url:
        result, out = run_pipeline(tmp_path, f"{url}/collection.json")
        assert result.exit_code == 0, result.output
        # The run says so in one log line on stderr.
        assert f"{MONTH}: only 0.0% of the site has a valid observation" in result.stderr
        doc = manifest(out)
        assert {s["scene_id"] for s in doc["skipped_scenes"]} == set(scenes_of(archive, MONTH))
        assert all(s["reason"].startswith("scl: ") for s in doc["skipped_scenes"])
        row = series_row(out, MONTH)
        assert row["status"] == "gap" and row["scenes"] == "0"
        assert row["new_ha"] == "" and row["cumulative_new_ha"] == ""  # a gap, never zero
        assert series_row(out, "2024-02")["status"] == "ok"
        faults.clear()  # the server recovers: the next run computes the month again
        for path in (out / "runs").glob("*.json"):
            path.unlink()
        result = CliRunner().invoke(cli, ["run", *_same_args(tmp_path, out)])
    assert result.exit_code == 0, result.output
    doc = manifest(out)
    assert doc["skipped_scenes"] == []
    assert [m["month"] for m in doc["site_months"]] == [MONTH]  # the others were kept
    assert series_row(out, MONTH)["status"] == "ok"


def _same_args(tmp_path: Path, out: Path) -> list[str]:
    return [str(tmp_path / "faults.toml"), "--aoi", str(tmp_path / "my.geojson"),
            "--baseline", "2024-01..2024-02", "--months", "2024-01..2024-03",
            "--out", str(out), "--scheduler", "threads"]


def test_transient_fault_is_retried_and_the_scene_used(archive: Path, tmp_path: Path) -> None:
    scene = scenes_of(archive, MONTH)[3]
    faults = {f"/{scene}/green.tif": "500-once"}
    with range_server(archive, faults) as url:
        # No retry inside GDAL: the month's computation fails, the scene reads when screened.
        result, out = run_pipeline(tmp_path, f"{url}/collection.json", http_retries=0)
    assert result.exit_code == 0, result.output
    assert faults == {}  # the fault fired
    assert "a read failed" in result.stderr
    doc = manifest(out)
    assert doc["skipped_scenes"] == [] and doc["retries"] == []
    month = next(m for m in doc["site_months"] if m["month"] == MONTH)
    assert scene in month["scene_ids"] and month["scenes"] == 6


def test_rerun_after_a_fault_gives_the_products_of_a_clean_run(
        archive: Path, tmp_path: Path) -> None:
    """A fault in a month before the last: the next run computes it and every month after it
    again (their saved states came from the faulty month), as if nothing had happened."""
    scene = scenes_of(archive, "2024-02")[2]
    faults: dict[str, str] = {}
    with range_server(archive, faults) as url:
        catalog = f"{url}/collection.json"  # the same catalog for all runs: same signatures
        faults[f"/{scene}/red.tif"] = "500"
        first, out = run_pipeline(tmp_path, catalog, baseline="2024-01..2024-01")
        assert first.exit_code == 0, first.output
        assert [s["scene_id"] for s in manifest(out)["skipped_scenes"]] == [scene]
        faults.clear()
        for path in (out / "runs").glob("*.json"):
            path.unlink()
        again, out = run_pipeline(tmp_path, catalog, baseline="2024-01..2024-01")
        assert again.exit_code == 0, again.output
        # A run that never saw the fault (last: GDAL in this process has read the files).
        clean, clean_out = run_pipeline(tmp_path, catalog, out="clean",
                                        baseline="2024-01..2024-01")
        assert clean.exit_code == 0, clean.output
    assert manifest(out)["skipped_scenes"] == []
    assert [m["month"] for m in manifest(out)["site_months"]] == ["2024-02", "2024-03"]
    assert_same_products(clean_out, out)


def test_catalog_answer_that_fails_once_is_read_again(archive: Path, tmp_path: Path) -> None:
    scene = scenes_of(archive, MONTH)[0]
    faults = {f"/{scene}/{scene}.json": "500-once"}
    with range_server(archive, faults) as url:
        result, out = run_pipeline(tmp_path, f"{url}/collection.json")
    assert result.exit_code == 0, result.output
    assert faults == {}
    (retry,) = manifest(out)["retries"]
    assert retry["attempt"] == 1 and "500" in retry["reason"]
    assert scene in next(m for m in manifest(out)["site_months"]
                         if m["month"] == MONTH)["scene_ids"]


def test_stalled_catalog_fails_the_run_in_bounded_time(archive: Path, tmp_path: Path) -> None:
    scene = scenes_of(archive, MONTH)[0]
    with range_server(archive, {f"/{scene}/{scene}.json": "stall"}, stall_s=20) as url:
        result, _ = run_pipeline(tmp_path, f"{url}/collection.json")
    assert result.exit_code == 1
    assert f"static catalog {url}/collection.json cannot be read (2 attempts)" in result.stderr
    assert "timed out" in result.stderr
