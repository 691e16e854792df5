"""Radar through the rains, end to end: a pipeline with a ``[radar]`` table over a synthetic
archive of a wet year, whose months of long rains optical imagery cannot measure."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from kpgeo.cli import cli
from kpgeo.methods.change_bands import CHANGE_BANDS, CHANGE_DESCRIPTIONS

from .conftest import TORTIYA


@pytest.fixture(scope="module")
def wet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 2 km window of Tortiya: a year's baseline (2023-06..2024-05), then June to
    September 2024, whose July and August are long rains."""
    folder = tmp_path_factory.mktemp("wet")
    pipeline = folder / "wet.toml"
    pipeline.write_text(f'''
baseline = "2023-06..2024-05"
months = "2024-06..2024-09"
scheduler = "threads"
[synthetic]
seed = 11
archive = "{folder / 'archive'}"
long_rains = ["2024-07..2024-08"]
[radar]
[[sites]]
aoi = "{TORTIYA}"
window = {{ lon = -5.700, lat = 8.720, size_km = 2.0 }}
''')
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--out", str(folder / "OUT")])
    assert result.exit_code == 0, result.output
    return folder / "OUT"


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "timeseries.csv", newline="", encoding="utf-8") as f:
        return {r["month"]: r for r in csv.DictReader(f)}


def test_months_of_long_rains_are_radar_and_the_others_optical(wet_run: Path) -> None:
    rows = _rows(wet_run)
    status = {m: r["status"] for m, r in rows.items() if m >= "2024-06"}
    assert status == {"2024-06": "ok", "2024-07": "radar", "2024-08": "radar",
                      "2024-09": "ok"}
    for month in ("2024-07", "2024-08"):
        row = rows[month]
        assert float(row["valid_pct"]) < 30  # optical imagery saw too little
        assert row["new_ha"] != "" and row["cumulative_new_ha"] != ""
        assert row["active_ha"] == "" and row["new_dug_ha"] == ""  # optical measures these


def test_radars_state_is_in_change_tif_and_its_findings_are_reviewed(wet_run: Path) -> None:
    def band(month: str, name: str) -> np.ndarray:
        with rasterio.open(wet_run / "tortiya" / month / "change.tif") as src:
            assert list(src.descriptions) == list(CHANGE_DESCRIPTIONS)
            return src.read(CHANGE_BANDS.index(name) + 1)

    august = band("2024-08", "radar_since")
    assert (august > 0).any()  # radar dated changes in the rains
    assert (august[august > 0] <= 202408).all() and (august[august > 0] >= 202406).all()
    september = band("2024-09", "radar_since")
    # The clear month reviewed them: some withdrawn, never un-withdrawn.
    assert (september < 0).any()
    assert ((september < 0) | (august >= 0)).all()


def test_the_rains_areas_say_they_rest_on_radar(wet_run: Path) -> None:
    import json

    doc = json.loads((wet_run / "exports" / "disturbed-2024-08.geojson").read_text())
    assert doc["kpgeo"]["sites"]["tortiya"]["status"] == "radar"
    new = [f["properties"] for f in doc["features"]
           if f["properties"]["status"] == "new"]
    assert new and {p["evidence"] for p in new} <= {"radar", "optical+radar", "optical"}
    assert any(p["evidence"] != "optical" for p in new)
    page = (wet_run / "tortiya" / "2024-08" / "map.html").read_text(encoding="utf-8")
    assert "Radar (Sentinel-1) findings" in page
