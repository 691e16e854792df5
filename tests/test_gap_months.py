"""One truth across products (docs/product.md §8, §10; issue 18, points 1, 2 and 10).

A cloudier synthetic archive (five months over the shared small window, ``cloudiness`` 2) is run
by the command line, as a user runs it, with a stricter ``min_valid_pct`` (95 %): April, seen at
about 95 %, and May, at about 25 %, become gap months after two measured months of new digging.
The site is cut into chunks of 64 px, so every area and sum is gathered across chunk edges.

- A gap month shows no new measurement in any product: time series and volume rows empty, the
  GeoJSON, GeoPackage and KML exports carry the areas as last measured (flagged ``gap``, each
  area's ``measured_month``, no ``new_ha_this_month``), and so do its map's title bar, legend and
  popups and the index page, in headless Chromium. April's own state did advance (its
  ``change.tif`` maps more new digging than March's): that is what its export used to claim.
- A month's increment (``new_ha_this_month``) adds up to its ``new_ha``, in areas whose
  ``first_detected`` is older, and the map outlines those areas.
- The command line's stderr says the gaps and a damaged scene in one line of words each, with no
  Python warning, file path or GDAL internals.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
import shapely.geometry
from click.testing import CliRunner

from kpgeo.cli import cli
from kpgeo.methods.change_bands import CHANGE_BANDS, DIGGING_NEW
from kpgeo.products.maps import CLASS_DIGGING, CLASS_INCREMENT
from kpgeo.synth import SynthResult

from .builders import write_site_file

# The map tests' headless Chromium (the fixture ``browser``) and how they open pages.
from .test_maps import _open, _open_map, browser  # noqa: F401

BIN = Path(sys.executable).parent
SITE = "gm"
#: The small archive's window (tests/conftest.py), as tests/test_maps.py cuts it.
SITE_BBOX = (-5.708, 8.712, -5.692, 8.728)
BASELINE = "2024-01..2024-01"
MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
#: What a month's status is with min_valid_pct = 95 on this archive (asserted).
STATUSES = ["ok", "ok", "ok", "gap", "gap"]
LAST_MEASURED = "2024-03"
KML = "{http://www.opengis.net/kml/2.2}"
#: A Python warning as Python shows it (``path.py:12: UserWarning: ...``), or any file path
#: with a line number.
PYTHON_WARNING = re.compile(r"Warning:|\.py:\d+")


@dataclass(frozen=True)
class GapRun:
    out: Path
    stderr: str
    damaged: str
    """The May scene whose nir band was damaged (skipped)."""
    catalog: Path
    aoi: Path
    pipeline: Path


@pytest.fixture(scope="module")
def gap_run(cloudy_archive: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> GapRun:
    """``kpgeo run`` in a process of its own, with the stricter threshold; one May scene
    damaged (May is a gap either way)."""
    root = tmp_path_factory.mktemp("gaps")
    archive = root / "archive"
    shutil.copytree(cloudy_archive.collection.parent, archive)
    damaged = min(p.name for p in archive.iterdir() if p.is_dir() and "202405" in p.name)
    nir = archive / damaged / "nir.tif"
    nir.write_bytes(b"\0" * nir.stat().st_size)
    aoi = write_site_file(root / "gm.geojson", SITE_BBOX, name=SITE)
    pipeline = root / "strict.toml"
    pipeline.write_text(
        f'offline = true\n[source]\nkind = "stac"\ncatalog = "{archive / "collection.json"}"\n'
        "read_attempts = 2\n[composite]\nmin_valid_pct = 95.0\nchunk_px = 64\n")
    out = root / "OUT"
    env = {**os.environ, "DASK_SCHEDULER": "threads"}
    done = subprocess.run(
        [str(BIN / "kpgeo"), "run", str(pipeline), "--aoi", str(aoi), "--baseline", BASELINE,
         "--months", f"{MONTHS[0]}..{MONTHS[-1]}", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    return GapRun(out, done.stderr, damaged, archive / "collection.json", aoi, pipeline)


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return {r["month"]: r for r in csv.DictReader(f)}


def _export(out: Path, month: str) -> dict[str, Any]:
    return dict(json.loads((out / "exports" / f"disturbed-{month}.geojson").read_text(
        encoding="utf-8")))


def _new_pixels(out: Path, month: str) -> int:
    with rasterio.open(out / SITE / month / "change.tif") as src:
        digging = src.read(CHANGE_BANDS.index("digging") + 1)
    return int(np.count_nonzero(digging == DIGGING_NEW))


def _gaps() -> list[str]:
    return [m for m, s in zip(MONTHS, STATUSES, strict=True) if s == "gap"]


# ---- a gap month ------------------------------------------------------------------------------
def test_the_stricter_threshold_makes_gap_months_whose_state_advanced(gap_run: GapRun) -> None:
    rows = _rows(gap_run.out / "timeseries.csv")
    assert [rows[m]["status"] for m in MONTHS] == STATUSES
    april = rows["2024-04"]
    assert int(april["scenes"]) > 0 and 90 < float(april["valid_pct"]) < 95
    # What April saw confirmed more digging: its state is no measurement, yet it is what its
    # export and map showed as the month's digging areas.
    assert _new_pixels(gap_run.out, "2024-04") > _new_pixels(gap_run.out, LAST_MEASURED)
    assert float(rows[LAST_MEASURED]["cumulative_new_ha"]) > 0


def _measured_properties(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != "new_ha_this_month"}


def test_gap_month_exports_carry_the_areas_as_last_measured(gap_run: GapRun) -> None:
    """GeoJSON (export and per site), time series and volume rows: nothing of the gap
    month's own."""
    rows = _rows(gap_run.out / "timeseries.csv")
    volume_columns = [c for c in _rows(gap_run.out / "exports" / "volume-2024-04.csv")
                      ["2024-04"] if c.endswith(("_p10", "_p50", "_p90"))]
    measured = _export(gap_run.out, LAST_MEASURED)
    assert measured["kpgeo"]["status"] == "ok"
    assert measured["kpgeo"]["measured_month"] == LAST_MEASURED
    for month in _gaps():
        row = rows[month]
        assert all(row[c] == "" for c in ("preexisting_ha", "new_ha", "cumulative_new_ha",
                                          "active_ha", "water_ha", "new_dug_ha"))
        volume = _rows(gap_run.out / "exports" / f"volume-{month}.csv")[month]
        assert volume["status"] == "gap" and volume["new_ha"] == ""
        assert all(volume[c] == "" for c in volume_columns)
        doc = _export(gap_run.out, month)
        meta = doc["kpgeo"]
        assert (meta["month"], meta["status"], meta["measured_month"]) == (
            month, "gap", LAST_MEASURED)
        assert meta["sites"][SITE]["status"] == "gap"
        assert meta["sites"][SITE]["measured_month"] == LAST_MEASURED
        # The same areas, ids, outlines and figures as measured, no increment of its own.
        assert [f["id"] for f in doc["features"]] == [f["id"] for f in measured["features"]]
        for feature, before in zip(doc["features"], measured["features"], strict=True):
            assert feature["geometry"] == before["geometry"]
            assert _measured_properties(feature["properties"]) == \
                _measured_properties(before["properties"])
            assert feature["properties"]["measured_month"] == LAST_MEASURED
            assert feature["properties"]["new_ha_this_month"] is None
        # How well the baseline saw a pre-existing area is carried with it (not re-measured
        # either: the baseline is the same).
        pre = [f["properties"] for f in doc["features"]
               if f["properties"]["status"] == "preexisting"]
        assert pre and all(p["baseline_seasons"] is not None
                           and p["certainty"] in ("low", "normal") for p in pre)
        per_site = json.loads((gap_run.out / SITE / month / "disturbed.geojson").read_text(
            encoding="utf-8"))
        assert per_site == doc


def test_gap_month_geopackage_and_kml_say_as_last_measured(gap_run: GapRun) -> None:
    month = "2024-04"
    cumulative = float(_rows(gap_run.out / "timeseries.csv")[LAST_MEASURED]
                       ["cumulative_new_ha"])
    for fmt in ("gpkg", "kml"):
        result = CliRunner().invoke(cli, ["export", "--month", month, "--format", fmt,
                                          "--out", str(gap_run.out)])
        assert result.exit_code == 0, result.output
    gpkg = gap_run.out / "exports" / f"disturbed-{month}.gpkg"
    frame = geopandas.read_file(gpkg)
    assert len(frame) > 0 and frame["new_ha_this_month"].isna().all()
    assert set(frame["measured_month"]) == {LAST_MEASURED}
    new = frame[frame["status"] == "new"]["area_ha"].sum()
    assert new == pytest.approx(cumulative, abs=0.006)  # the last measured month's, no more
    metadata = pyogrio.read_info(gpkg)["dataset_metadata"]
    assert (metadata["status"], metadata["measured_month"]) == ("gap", LAST_MEASURED)

    root = ET.parse(gap_run.out / "exports" / f"disturbed-{month}.kml").getroot()
    description = root.findtext(f"{KML}Document/{KML}description") or ""
    assert "not measured this month" in description.lower() or \
        "measured this month (too little clear view)" in description
    assert f"as measured in {LAST_MEASURED}" in description
    placemarks = list(root.iter(f"{KML}Placemark"))
    assert placemarks
    for placemark in placemarks:
        data = {d.get("name"): d.text for d in placemark.iter(f"{KML}SimpleData")}
        assert "new_ha_this_month" not in data
        assert data["measured_month"] == LAST_MEASURED
    sites = {f.findtext(f"{KML}name"): f.findtext(f"{KML}description") or ""
             for f in root.findall(f"{KML}Document/{KML}Folder")}
    assert f"not measured this month: the areas as measured in {LAST_MEASURED}" in sites[SITE]


def test_gap_month_map_and_index_claim_no_measurement(
        browser: Any, gap_run: GapRun) -> None:  # noqa: F811 (the fixture)
    measured = _export(gap_run.out, LAST_MEASURED)
    cumulative = sum(f["properties"]["area_ha"] for f in measured["features"]
                     if f["properties"]["status"] == "new")
    for month in _gaps():
        _open_map(browser, gap_run.out / SITE / month / "map.html")
        summary = browser.find_element("css selector", ".kpgeo-summary").get_attribute(
            "textContent")
        assert summary.startswith(f"not measured this month; as measured in {LAST_MEASURED}")
        assert f"{cumulative:.2f} ha new since the baseline" in summary
        assert "this month" not in summary.split(";", 1)[1]
        assert browser.find_element("css selector", ".kpgeo-status").get_attribute(
            "textContent").startswith("gap:")
        legend = browser.find_element("css selector", ".kpgeo-not-measured").text
        assert f"as measured in {LAST_MEASURED}" in legend
        assert not browser.find_elements("css selector", ".kpgeo-increment-entry")
        assert browser.execute_script(
            f"return document.querySelectorAll('path.{CLASS_INCREMENT}').length") == 0
        assert browser.execute_script(
            f"return document.querySelectorAll('path.{CLASS_DIGGING}').length") == len(
            measured["features"])
        popups = browser.execute_script(
            "return KPGEO.areas.features.map(f => kpgeoPopup(f.properties).textContent)")
        assert popups and all("new this monthnot measured this month" in p
                              and f"measured{LAST_MEASURED}" in p for p in popups)

    _open(browser, gap_run.out / "index.html")
    cells = browser.execute_script(f"""
        return [...document.querySelectorAll('#site-{SITE} tbody tr')].map(
            tr => [...tr.cells].map(td => td.textContent.replace(/\\s+/g, ' ').trim()));""")
    by_month = {row[0]: row for row in cells}
    for month in _gaps():
        row = by_month[month]
        assert row[1].startswith("gap") and f"measured in {LAST_MEASURED}" in row[1]
        assert row[3:9] == ["\u2014"] * 6  # five areas and the carats: unknown, not zero
    assert by_month[LAST_MEASURED][4] != "\u2014"
    note = browser.find_element("css selector", f"#site-{SITE} p.kpgeo-not-measured").text
    assert f"areas shown are of {LAST_MEASURED}" in note


def test_a_later_run_of_a_gap_month_finds_the_month_last_measured(
        gap_run: GapRun, tmp_path: Path) -> None:
    """May alone, from April's saved state: it reads the month last measured from April's
    products (itself a gap) and writes the same export."""
    out = tmp_path / "OUT"
    shutil.copytree(gap_run.out, out)
    result = CliRunner().invoke(cli, [
        "run", str(gap_run.pipeline), "--aoi", str(gap_run.aoi), "--baseline", BASELINE,
        "--months", "2024-05..2024-05", "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert _export(out, "2024-05") == _export(gap_run.out, "2024-05")


# ---- this month's digging ---------------------------------------------------------------------
def test_each_months_increment_adds_up_to_its_new_ha(gap_run: GapRun) -> None:
    """Summed over a measured month's export, new_ha_this_month is the month's new_ha (each
    rounded to 0.01 ha in the CSV); growth of older areas is counted where it happened."""
    rows = _rows(gap_run.out / "timeseries.csv")
    grown_older = 0
    for month, status in zip(MONTHS, STATUSES, strict=True):
        if status != "ok":
            continue
        features = _export(gap_run.out, month)["features"]
        increments = [f["properties"]["new_ha_this_month"] for f in features]
        assert all(isinstance(v, float) and v >= 0 for v in increments), month
        assert sum(increments) == pytest.approx(float(rows[month]["new_ha"]), abs=0.005 + 1e-9)
        assert all(f["properties"]["measured_month"] == month for f in features)
        grown_older += sum(1 for f in features if f["properties"]["new_ha_this_month"] > 0
                           and f["properties"]["first_detected"] < month)
    assert float(rows["2024-03"]["new_ha"]) > 0
    assert grown_older > 0, "no area dated earlier grew: the test shows nothing"


def test_the_areas_increments_do_not_depend_on_chunks(gap_run: GapRun, tmp_path: Path) -> None:
    """The same run in one chunk gives the same areas, ids and increments (and outlines, but
    for a vertex where a chunk edge cut one, off its line by the 6-decimal rounding)."""
    pipeline = tmp_path / "whole.toml"
    pipeline.write_text(gap_run.pipeline.read_text().replace("chunk_px = 64\n", ""))
    out = tmp_path / "OUT"
    result = CliRunner().invoke(cli, [
        "run", str(pipeline), "--aoi", str(gap_run.aoi), "--baseline", BASELINE,
        "--months", f"{MONTHS[0]}..{MONTHS[-1]}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for month in MONTHS:
        whole, chunked = (_export(o, month)["features"] for o in (out, gap_run.out))
        assert [f["properties"] for f in whole] == [f["properties"] for f in chunked]
        for a, b in zip(whole, chunked, strict=True):
            assert shapely.hausdorff_distance(shapely.geometry.shape(a["geometry"]),
                                              shapely.geometry.shape(b["geometry"])) < 2e-6


def test_the_map_outlines_the_months_increment(
        browser: Any, gap_run: GapRun) -> None:  # noqa: F811 (the fixture)
    month = LAST_MEASURED
    features = _export(gap_run.out, month)["features"]
    grown = [f for f in features if f["properties"]["new_ha_this_month"] > 0]
    total = sum(f["properties"]["new_ha_this_month"] for f in features)
    assert grown
    _open_map(browser, gap_run.out / SITE / month / "map.html")
    assert browser.execute_script(
        f"return document.querySelectorAll('path.{CLASS_INCREMENT}').length") == len(grown)
    entry = browser.find_element("css selector", ".kpgeo-increment-entry").text
    assert f"grew or appeared this month: {total:.2f} ha" in entry
    summary = browser.find_element("css selector", ".kpgeo-summary").get_attribute(
        "textContent")
    assert summary.endswith(f"{total:.2f} ha of it this month")
    # Drawn over the areas, yet a click on its outline reaches the area below (its popup).
    hit = browser.execute_script(f"""
        const line = document.querySelector('path.{CLASS_INCREMENT}');
        const at = line.getPointAtLength(line.getTotalLength() / 3)
            .matrixTransform(line.getScreenCTM());
        return document.elementFromPoint(at.x, at.y).getAttribute('class');""")
    assert CLASS_DIGGING in hit
    popup = browser.execute_script(
        "return KPGEO.areas.features.filter(f => f.properties.new_ha_this_month > 0)"
        ".map(f => kpgeoPopup(f.properties).textContent)")
    assert all(f"measured{month}" in p for p in popup)
    assert [f"new this month{f['properties']['new_ha_this_month']:.2f} ha" in p
            for f, p in zip(grown, popup, strict=True)] == [True] * len(grown)


# ---- what the user reads on stderr ------------------------------------------------------------
def test_the_command_line_says_gaps_and_skipped_scenes_in_words(gap_run: GapRun) -> None:
    lines = gap_run.stderr.splitlines()
    assert [line for line in lines if PYTHON_WARNING.search(line)] == []
    assert not [line for line in lines if "GDAL signalled" in line or "TIFF" in line]
    for month in _gaps():
        said = [line for line in lines if line.startswith(f"{SITE} {month}: only ")]
        assert len(said) == 1 and "the month is a gap" in said[0], lines
    assert [line for line in lines if f"scene {gap_run.damaged} skipped" in line]


@pytest.fixture()
def user_logging() -> Iterator[None]:
    """The command line's logging for one test, then the test runner's again."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with warnings.catch_warnings():
        yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_python_warning_reaches_the_user_as_one_line_in_words(
        user_logging: None, capsys: pytest.CaptureFixture[str]) -> None:
    from rasterio.errors import NotGeoreferencedWarning

    from kpgeo.userlog import setup_logging

    setup_logging(verbose=0, quiet=0)
    warnings.warn("something odd", UserWarning, stacklevel=1)
    warnings.warn("Dataset has no geotransform", NotGeoreferencedWarning, stacklevel=1)
    np.nanmedian(np.full(3, np.nan))  # numpy: All-NaN slice encountered
    err = capsys.readouterr().err
    assert err == "warning: something odd\n"


def test_an_export_over_sites_says_which_were_measured() -> None:
    """Top-level ``status``: ok when every site was measured in the month, gap when none was,
    partial otherwise; ``measured_month``: the earliest of the sites'."""
    from kpgeo.products.measured import status_member

    ok = {"status": "ok", "measured_month": "2024-04"}
    gap = {"status": "gap", "measured_month": "2024-02"}
    never = {"status": "gap", "measured_month": None}
    assert status_member({"a": ok, "b": ok}) == {"status": "ok", "measured_month": "2024-04"}
    assert status_member({"a": ok, "b": gap}) == {"status": "partial",
                                                  "measured_month": "2024-02"}
    assert status_member({"a": gap, "b": never}) == {"status": "gap", "measured_month": None}
