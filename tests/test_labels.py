"""What the products tell a reader before any figure (docs/product.md §8): synthetic data is
labelled as such in every product and real data never is (issue 18, point 4); how well the
baseline saw each site and each pre-existing area (point 3); and the map's outlines, legend and
start without the basemap (point 9), checked in headless Chromium as in ``test_maps``.

Two documented runs: one on the shared synthetic archive (``--source synthetic --catalog``),
and one on a hand-made STAC collection of real form (``--source stac``), whose baseline year
never sees the east of the site from June to September, under cloud: a pre-existing working
there, whose July and August seasons went unseen, is less certain than one in the clear west.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
import xml.etree.ElementTree as ET
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import pytest
from click.testing import CliRunner

from kpgeo.aoi import load_site
from kpgeo.cli import cli
from kpgeo.methods.baseline_seasons import SEASONS_MIN, median_seasons, seasons_seen
from kpgeo.products.map_layers import NO_VIEW_HATCH, true_colour
from kpgeo.products.synthetic_label import EXPLANATION, LABEL
from kpgeo.sources.synthetic import reads_synthetic
from kpgeo.synth import SynthResult

from .builders import make_scene, reflectance_to_dn, write_collection, write_site_file
from .test_maps import (
    CLASS_DIGGING,
    CLASS_MONTH,
    _count,
    _open_map,
    _severe,
    _wait,
    browser,
)

__all__ = ["browser"]  # the Chromium fixture of test_maps, shared

KML = "{http://www.opengis.net/kml/2.2}"
#: A 400 x 400 m site west of Tortiya (40 x 40 pixels).
REAL_BBOX = (-5.9000, 8.7000, -5.8964, 8.7036)
REAL_BASELINE, REAL_MONTHS = "2024-01..2024-12", ("2024-01", "2025-01")
#: Savanna and bare worked ground, reflectance of blue, green, red, NIR, SWIR 1.6, SWIR 2.2.
SAVANNA = (0.04, 0.07, 0.06, 0.30, 0.20, 0.12)
BARE = (0.10, 0.15, 0.20, 0.22, 0.30, 0.28)
BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")
#: Pre-existing workings: in the west, seen all baseline long; in the east, under cloud
#: from June to September. New digging from January 2025, in the south-west.
WEST, EAST, NEW = (slice(8, 18), slice(3, 13)), (slice(24, 34), slice(27, 37)), \
    (slice(30, 38), slice(2, 10))
#: Columns under cloud in the cloudy months (the 60 m buffer reaches six columns further).
CLOUDED_FROM = 22
SYNTH_BBOX = (-5.708, 8.712, -5.692, 8.728)
SYNTH_MONTHS = ("2024-01", "2024-02")


@dataclass(frozen=True)
class Run:
    out: Path
    site: str
    months: tuple[str, ...]


def _run(aoi: Path, out: Path, *args: str) -> None:
    result = CliRunner().invoke(cli, ["run", "--aoi", str(aoi), *args, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)


def _export(run: Run, fmt: str) -> Path:
    month = run.months[-1]
    result = CliRunner().invoke(cli, ["export", "--month", month, "--format", fmt,
                                      "--out", str(run.out)])
    assert result.exit_code == 0, result.output
    return run.out / "exports" / f"disturbed-{month}.{fmt}"


def _scene(folder: Path, grid: Any, day: dt.date, clouded: bool, new: bool) -> Any:
    shape = grid.shape.yx
    ground = np.zeros(shape, bool)
    for block in (WEST, EAST, *((NEW,) if new else ())):
        ground[block] = True
    cloud = np.zeros(shape, bool)
    if clouded:
        cloud[:, CLOUDED_FROM:] = True
    dn = {b: reflectance_to_dn(np.where(cloud, 0.6, np.where(ground, bare, savanna)))
          for b, bare, savanna in zip(BANDS, BARE, SAVANNA, strict=True)}
    scl = np.where(cloud, 9, 4).astype("uint8")
    when = dt.datetime(day.year, day.month, day.day, 10, 50)
    return make_scene(folder, f"S2X_{day:%Y%m%d}", when, grid, dn, scl)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The hand-made collection (two scenes a month, January 2024 to January 2025) and its
    run."""
    root = tmp_path_factory.mktemp("real")
    aoi = write_site_file(root / "real.geojson", REAL_BBOX, name="real", title="Real site")
    grid = load_site(aoi).grid
    months = [(2024, m) for m in range(1, 13)] + [(2025, 1)]
    items = [_scene(root / "scenes", grid, dt.date(year, month, day),
                    year == 2024 and 6 <= month <= 9, year == 2025)
             for year, month in months for day in (5, 20)]
    collection = write_collection(root / "collection", items)
    out = root / "OUT"
    _run(aoi, out, "--source", "stac", "--catalog", str(collection), "--baseline",
         REAL_BASELINE, "--months", "..".join(REAL_MONTHS), "--offline")
    return Run(out, "real", tuple(f"{y}-{m:02d}" for y, m in months))


@pytest.fixture(scope="module")
def synthetic(small_archive: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("synthetic")
    aoi = write_site_file(root / "syn.geojson", SYNTH_BBOX, name="syn", title="Tortiya")
    out = root / "OUT"
    _run(aoi, out, "--source", "synthetic", "--catalog", str(small_archive.collection),
         "--baseline", "2024-01..2024-01", "--months", "..".join(SYNTH_MONTHS), "--offline")
    return Run(out, "syn", SYNTH_MONTHS)


def _geojson(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


# ---- point 4: synthetic is labelled ----------------------------------------------------------
def test_every_product_of_a_synthetic_run_says_synthetic(synthetic: Run) -> None:
    out, site = synthetic.out, synthetic.site
    for month in synthetic.months:
        for path in (out / "exports" / f"disturbed-{month}.geojson",
                     out / site / month / "disturbed.geojson"):
            doc = _geojson(path)
            assert doc["kpgeo"]["synthetic"] is True, path
            assert doc["name"] == f"{LABEL}: kpgeo digging areas {month}", path
            assert list(doc)[:2] == ["type", "name"]
        columns, rows = _csv(out / "exports" / f"volume-{month}.csv")
        assert columns[0] == "source_kind" and {r["source_kind"] for r in rows} == {"synthetic"}
        page = (out / site / month / "map.html").read_text(encoding="utf-8")
        assert f"<title>{LABEL}: Tortiya {month}" in page
        assert '<span class="kpgeo-synthetic"' in page and "kpgeo-synthetic-banner" in page
    columns, rows = _csv(out / "timeseries.csv")
    assert columns[0] == "source_kind" and {r["source_kind"] for r in rows} == {"synthetic"}
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f"<title>{LABEL}: kpgeo" in index
    assert index.count(f'<span class="kpgeo-synthetic">{LABEL}</span>') == 2  # page and site
    # The KML's document name and description, the GeoPackage's metadata and layer title.
    document = ET.parse(_export(synthetic, "kml")).getroot().find(f"{KML}Document")
    assert document is not None
    assert (document.findtext(f"{KML}name") or "").startswith(f"{LABEL}: ")
    assert (document.findtext(f"{KML}description") or "").startswith(f"<p><b>{LABEL}</b>")
    gpkg = _export(synthetic, "gpkg")
    assert pyogrio.read_info(gpkg)["dataset_metadata"]["synthetic"] == "true"
    with closing(sqlite3.connect(gpkg)) as db:
        ((identifier, description),) = db.execute(
            "SELECT identifier, description FROM gpkg_contents WHERE table_name = 'digging'")
    assert identifier.startswith(f"{LABEL}: ") and description.startswith(f"{LABEL}: ")


def test_a_real_source_run_carries_no_synthetic_label(real: Run) -> None:
    out = real.out
    texts = [(out / "index.html").read_text(encoding="utf-8"),
             *((out / real.site / m / "map.html").read_text(encoding="utf-8")
               for m in real.months),
             _export(real, "kml").read_text(encoding="utf-8")]
    for text in texts:  # (their stylesheets know the badge's class, unused)
        assert LABEL not in text and 'class="kpgeo-synthetic' not in text
        assert EXPLANATION not in text
    for month in real.months:
        doc = _geojson(out / "exports" / f"disturbed-{month}.geojson")
        assert doc["kpgeo"]["synthetic"] is False and "name" not in doc
        _, rows = _csv(out / "exports" / f"volume-{month}.csv")
        assert {r["source_kind"] for r in rows} == {"stac"}
    _, rows = _csv(out / "timeseries.csv")
    assert {r["source_kind"] for r in rows} == {"stac"}
    gpkg = _export(real, "gpkg")
    assert pyogrio.read_info(gpkg)["dataset_metadata"]["synthetic"] == "false"
    with closing(sqlite3.connect(gpkg)) as db:
        ((identifier, description),) = db.execute(
            "SELECT identifier, description FROM gpkg_contents WHERE table_name = 'digging'")
    assert LABEL not in f"{identifier} {description}"


def test_a_synthetic_archive_read_as_stac_is_still_synthetic(small_archive: SynthResult,
                                                             tmp_path: Path) -> None:
    collection = small_archive.collection
    assert reads_synthetic("synthetic") and reads_synthetic("stac", str(collection))
    assert reads_synthetic("stac", str(collection.parent))  # its folder
    plain = tmp_path / "collection.json"
    plain.write_text(json.dumps({"type": "Collection", "id": "x"}))
    assert not reads_synthetic("stac", str(plain))
    assert not reads_synthetic("stac", "https://earth-search.aws.element84.com/v1")
    assert not reads_synthetic("sentinelhub")


# ---- point 3: how well the baseline saw the site ---------------------------------------------
def test_seasons_seen_are_the_calendar_months_with_a_view_in_or_beside_them() -> None:
    rains = 0b1111 << 5  # June to September
    land = np.array([0b1, 0b100, 0xFFF & ~rains, 0xFFF & ~(0b111 << 5), 0], "int32")
    water = np.array([0b10, 0, 0, 0, 0b1000_0000], "int32")
    # January and February: the seasons of December to March; March: February to April; the
    # rains unseen: not the seasons of July and August; three months unseen: not July's.
    assert seasons_seen(land, water).tolist() == [4, 3, 10, 11, 3]
    assert median_seasons((0, 0, 3, 0, 1)) == 2 and median_seasons((0,) * 13) is None
    assert median_seasons((0, 1, 1)) == 1  # the lower median


def test_pre_existing_areas_seen_too_rarely_are_flagged_low_certainty(real: Run) -> None:
    month = real.months[-1]
    doc = _geojson(real.out / "exports" / f"disturbed-{month}.geojson")
    pre = {f["id"]: f["properties"] for f in doc["features"]
           if f["properties"]["status"] == "preexisting"}
    assert len(pre) == 2, pre
    west, east = sorted(pre.values(), key=lambda p: p["id"].split("-")[2])
    assert (west["baseline_seasons"], west["certainty"]) == (12, "normal")
    assert (east["baseline_seasons"], east["certainty"]) == (10, "low")
    new = [f["properties"] for f in doc["features"] if f["properties"]["status"] == "new"]
    assert new and all(p["baseline_seasons"] is None and p["certainty"] is None for p in new)
    coverage = doc["kpgeo"]["sites"][real.site]["baseline_coverage"]
    assert coverage == {"months": 12, "months_seen": 12, "seasons_min": SEASONS_MIN,
                        "seen_share": round(_seen_share(real), 4)}
    # Every month's export and the KML say the same.
    for m in real.months:
        other = _geojson(real.out / "exports" / f"disturbed-{m}.geojson")
        assert other["kpgeo"]["sites"][real.site]["baseline_coverage"] == coverage
        assert {f["id"]: f["properties"]["certainty"] for f in other["features"]
                if f["properties"]["status"] == "preexisting"} == \
               {k: p["certainty"] for k, p in pre.items()}
    kml = ET.parse(_export(real, "kml")).getroot()
    low = [p for p in kml.iter(f"{KML}Placemark")
           if p.findtext(f"{KML}styleUrl") == "#preexisting-low"]
    assert [p.findtext(f"{KML}name") for p in low] == [east["id"]]


def _seen_share(run: Run) -> float:
    """The site's share seen often enough: its pixels west of the clouds and of their 60 m
    buffer."""
    inside = load_site(run.out.parent / "real.geojson").pixel_mask()
    return float(inside[:, :CLOUDED_FROM - 6].sum() / inside.sum())


def test_index_and_map_say_how_well_the_baseline_saw_the_site(real: Run) -> None:
    text = (f"Baseline {REAL_BASELINE}: 12 of 12 months seen; "
            f"{100 * _seen_share(real):.0f}% of the site seen in every season (a calendar "
            "month or one beside it)")
    index = (real.out / "index.html").read_text(encoding="utf-8")
    assert text in index and "certainty: low" in index
    page = (real.out / real.site / real.months[-1] / "map.html").read_text(encoding="utf-8")
    assert text in page and "kpgeo-legend-low" in page


def test_a_rerun_keeps_the_certainty_read_back_from_the_saved_baseline(
        real: Run, tmp_path: Path) -> None:
    """A later run reuses ``baseline.tif``: the areas come from its pre-existing map and
    seasons seen, the same as when the chunks made them."""
    month = real.months[-1]
    before = (real.out / "exports" / f"disturbed-{month}.geojson").read_bytes()
    aoi = real.out.parent / "real.geojson"
    _run(aoi, real.out, "--source", "stac", "--catalog",
         str(real.out.parent / "collection" / "collection.json"), "--baseline", REAL_BASELINE,
         "--month", month, "--overwrite", "--offline")
    assert (real.out / "exports" / f"disturbed-{month}.geojson").read_bytes() == before


# ---- point 9: the map ------------------------------------------------------------------------
def test_true_colour_hatches_the_grid_without_a_clear_view() -> None:
    red = np.full((6, 8), 0.1, "float32")
    red[2:4, 2:6] = np.nan
    red[:, 7] = np.nan
    footprint = np.ones(red.shape, bool)
    footprint[:, 7] = False  # outside the grid
    rgba = true_colour(red, red, red, footprint)
    hatch = {tuple(int(NO_VIEW_HATCH[i][k:k + 2], 16) for k in (1, 3, 5)) for i in (0, 1)}
    assert {tuple(int(v) for v in rgba[r, c, :3]) for r in (2, 3) for c in range(2, 6)} == hatch
    assert (rgba[2:4, 2:6, 3] == 255).all() and (rgba[:, 7, 3] == 0).all()
    assert (rgba[0, :7, 3] == 255).all()


def test_map_draws_outlines_over_casings_with_a_legend_and_no_banner_for_real_data(
        browser: Any, real: Run) -> None:
    month = real.months[-1]
    features = _geojson(real.out / real.site / month / "disturbed.geojson")["features"]
    logs = _open_map(browser, real.out / real.site / month / "map.html")
    assert _severe(logs) == [] and _count(browser, ".leaflet-tile") == 0  # no basemap
    assert not browser.title.startswith(LABEL)
    assert _count(browser, ".kpgeo-synthetic-banner") == 0
    assert _count(browser, ".kpgeo-watermark") == 0
    areas = _count(browser, f"path.{CLASS_DIGGING}")
    assert areas == len(features) == _count(browser, "path.kpgeo-casing")
    # The low-certainty area is dashed; every casing lies under the outlines, above the image.
    dashed = browser.execute_script(
        f"return [...document.querySelectorAll('path.{CLASS_DIGGING}')]"
        ".filter(p => p.getAttribute('stroke-dasharray')).length")
    assert dashed == 1
    # ... and over the images (every layer of the overlay pane, in its stacking order).
    order = browser.execute_script(f"""
        const z = e => Number(getComputedStyle(e).zIndex) || 0;
        const images = [...document.querySelectorAll('.leaflet-overlay-pane > img')];
        return [z(document.querySelector('path.kpgeo-casing').closest('.leaflet-pane')),
                z(document.querySelector('path.{CLASS_DIGGING}').closest('.leaflet-pane')),
                Math.max(...images.map(z)), images.length];""")
    assert order[2] < order[0] < order[1] and order[3] >= 1, order
    # The image lies on its corners (no page style moves it off them, away from the outlines).
    offset = browser.execute_script(f"""
        const m = Object.values(window).find(v => v instanceof L.Map);
        const box = document.querySelector('img.{CLASS_MONTH}').getBoundingClientRect();
        const map = m.getContainer().getBoundingClientRect();
        const nw = m.latLngToContainerPoint([KPGEO.bounds[1][0], KPGEO.bounds[0][1]]);
        return [box.left - map.left - nw.x, box.top - map.top - nw.y];""")
    assert all(abs(v) <= 1 for v in offset), offset
    # The site outline, within the image it was cut from.
    assert _count(browser, "path.kpgeo-outline") == 1
    assert _count(browser, "path.kpgeo-outline-casing") == 1
    inside = browser.execute_script(f"""
        const image = document.querySelector('img.{CLASS_MONTH}').getBoundingClientRect();
        const box = document.querySelector('path.kpgeo-outline').getBoundingClientRect();
        return box.width > 100 && box.left >= image.left - 3 && box.right <= image.right + 3
            && box.top >= image.top - 3 && box.bottom <= image.bottom + 3;""")
    assert inside
    legend = browser.find_element("css selector", ".kpgeo-legend").text
    for entry in ("pre-existing (dug by the end of the baseline)",
                  "pre-existing, not seen in every season by the baseline: less certain",
                  "site outline", "no clear view in the month shown (cloud-masked)",
                  "Baseline 2024-01..2024-12: 12 of 12 months seen"):
        assert entry in legend, (entry, legend)
    # The low-certainty area's popup says how often the baseline saw it.
    browser.execute_script(f"""
        const path = [...document.querySelectorAll('path.{CLASS_DIGGING}')]
            .find(p => p.getAttribute('stroke-dasharray'));
        const box = path.getBoundingClientRect();
        path.dispatchEvent(new MouseEvent('click', {{bubbles: true,
            clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}}));""")
    _wait(browser, "return document.querySelector('.kpgeo-popup') !== null")
    popup = browser.find_element("css selector", ".kpgeo-popup").get_attribute("textContent")
    assert "seen in baseline10 of 12 seasons: less certain" in popup, popup
    # Toggling the digging areas takes their casings with them.
    browser.execute_script("""
        for (const label of document.querySelectorAll('.leaflet-control-layers-overlays label'))
            if (label.textContent.trim().startsWith('Digging areas'))
                label.querySelector('input').click();""")
    assert _count(browser, "path.kpgeo-casing") == 0 == _count(browser, f"path.{CLASS_DIGGING}")


def test_synthetic_map_shows_a_banner_and_watermark_over_the_whole_map(
        browser: Any, synthetic: Run) -> None:
    page = synthetic.out / synthetic.site / synthetic.months[-1] / "map.html"
    _open_map(browser, page)
    assert browser.title.startswith(f"{LABEL}: ")
    badge = browser.find_element("css selector", ".kpgeo-bar .kpgeo-synthetic")
    banner = browser.find_element("css selector", ".kpgeo-synthetic-banner")
    assert badge.is_displayed() and badge.text == LABEL
    assert banner.is_displayed() and banner.text.startswith(LABEL)
    # The watermark covers all of the map and lies over it, and lets clicks through.
    covers = browser.execute_script("""
        const mark = document.querySelector('.kpgeo-watermark');
        const map = document.querySelector('.folium-map').getBoundingClientRect();
        const box = mark.getBoundingClientRect();
        const style = getComputedStyle(mark);
        const x = map.left + map.width / 2, y = map.top + map.height / 2;
        return box.left <= map.left && box.right >= map.right && box.top <= map.top
            && box.bottom >= map.bottom && style.pointerEvents === 'none'
            && style.backgroundImage.includes('SYNTHETIC') && style.display !== 'none'
            && document.elementsFromPoint(x, y).indexOf(mark)
               < document.elementsFromPoint(x, y).findIndex(e => e.closest('.folium-map'));""")
    assert covers
