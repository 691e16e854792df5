"""Map pages and the index (docs/product.md §8 "Maps", §10 escaping), in a real browser.

The documented ``kpgeo run`` runs once on the shared synthetic archive for a site whose name
and title hold ``<script>alert(1)</script>``; the map writers then turn its products into pages.
Static checks read the HTML; the rest loads the pages from ``file://`` in Debian's headless
Chromium, started so that it cannot reach any network: every request goes to a proxy on
127.0.0.1:9 where nothing listens, loopback included, and every host name fails to resolve.
Basemap tile failures are the one expected console error, and the page must say so.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import folium
import folium.plugins
import pytest
from click.testing import CliRunner

from kpgeo.aoi import load_site
from kpgeo.cli import cli
from kpgeo.products.index_page import significant, write_index
from kpgeo.products.maps import (
    CLASS_BASELINE,
    CLASS_CHANGE,
    CLASS_DIGGING,
    CLASS_MONTH,
    CLASS_RADAR,
    OSM_TILES,
    RADAR_LAYER,
    TILES_NOTE,
    pick_baseline_month,
    write_site_maps,
    write_site_month_map,
)
from kpgeo.products.offline import OfflineError, check_offline, external_assets
from kpgeo.products.svg_chart import Series, line_chart, runs
from kpgeo.products.synthetic_label import LABEL
from kpgeo.synth import SynthResult

from .builders import write_site_file

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
XSS = "<script>alert(1)</script>"
#: folium compiles what it renders as Jinja templates: a title reaching it would be evaluated.
TEMPLATE_INJECTION = "{{ 7*7 }}"
#: A site inside the 2 x 2 km window of the shared archive (tests/conftest.py).
SITE_BBOX = (-5.708, 8.712, -5.692, 8.728)
BASELINE = "2024-01..2024-01"
MONTHS = ["2024-01", "2024-02", "2024-03"]
WINDOW = (1280, 860)
#: Seconds to wait for a page's map to draw or a control to react.
WAIT_S = 10
#: The only console error expected: a basemap tile that the blocked network could not fetch.
TILE_FAILURE = re.compile(
    "^" + re.escape(OSM_TILES).replace(r"\{z\}", r"\d+").replace(r"\{x\}", r"\d+")
    .replace(r"\{y\}", r"\d+") + r" - Failed to load resource: net::ERR_[A-Z_]+$")


@dataclass(frozen=True)
class Pages:
    """The products of one run and the pages written from them."""

    out: Path
    site: str
    title: str
    maps: dict[str, Path]
    index: Path
    outline: dict[str, Any]
    """The site's outline (GeoJSON, WGS84), drawn on its maps."""


@pytest.fixture(scope="module")
def pages(small_archive: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Pages:
    root = tmp_path_factory.mktemp("maps")
    aoi = write_site_file(root / "xss.geojson", SITE_BBOX, name=f"tw {XSS}",
                          title=f"Tortiya {XSS} {TEMPLATE_INJECTION}")
    site = load_site(aoi)
    out = root / "OUT"
    result = CliRunner().invoke(cli, [
        "run", "--aoi", str(aoi), "--source", "stac", "--catalog", str(small_archive.collection),
        "--baseline", BASELINE, "--months", f"{MONTHS[0]}..{MONTHS[-1]}", "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    maps = {m: write_site_month_map(out, site.name, site.title, m, MONTHS,
                                    pick_baseline_month(out, site.name, m, [MONTHS[0]]),
                                    outline=site.geometry.json)
            for m in MONTHS}
    return Pages(out, site.name, site.title, maps, write_index(out, [(site.name, site.title)]),
                 site.geometry.json)


def _features(pages: Pages, month: str) -> list[dict[str, Any]]:
    path = pages.out / pages.site / month / "disturbed.geojson"
    return list(json.loads(path.read_text(encoding="utf-8"))["features"])


# ---- static checks ---------------------------------------------------------------------------
class _Loads(HTMLParser):
    """Every address a page would load by itself, found independently of kpgeo.products.offline."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src") is not None:
            self.addresses.append(str(values["src"]))
        if tag == "link" and values.get("href") is not None:
            self.addresses.append(str(values["href"]))
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.addresses += re.findall(r"@import[^;]*", data)
            self.addresses += [u for u in re.findall(r"url\(\s*['\"]?([^'\")]*)", data)
                               if not u.startswith(("data:", "#"))]


def test_offline_pages_load_no_script_or_style_from_a_network_or_file(pages: Pages) -> None:
    for page in [*pages.maps.values(), pages.index]:
        html = page.read_text(encoding="utf-8")
        parser = _Loads()
        parser.feed(html)
        assert parser.addresses == [], (page, parser.addresses)
        assert "file://" not in html and "cdn." not in html, page
    html = pages.maps["2024-03"].read_text(encoding="utf-8")
    assert "leaflet-control-measure" in html and 'imagePath = ""' in html  # inlined plugins


def test_offline_checker_rejects_what_it_should() -> None:
    for page in ('<script src="https://cdn.example/leaflet.js"></script>',
                 '<link rel="stylesheet" href="file:///tmp/leaflet.css"/>',
                 '<script src="leaflet.js"></script>',
                 "<style>.a { background: url(images/layers.png) }</style>",
                 "<style>@import 'https://fonts.example/a.css';</style>"):
        assert external_assets(page), page
        with pytest.raises(OfflineError, match="still loads"):
            check_offline(page)
    assert external_assets('<style>.a { background: url("data:image/png;base64,AA==") }</style>'
                           '<script>L.tileLayer("https://tile.example/{z}.png")</script>') == []


def test_online_map_links_cdns_and_folium_class_lists_stay_untouched(pages: Pages,
                                                                      tmp_path: Path) -> None:
    before = (list(folium.Map.default_js), list(folium.plugins.MeasureControl.default_js))
    out = pages.out
    online = write_site_month_map(out, pages.site, pages.title, "2024-02", MONTHS, "2024-01",
                                  offline=False, outline=pages.outline)
    html = online.read_text(encoding="utf-8")
    assert re.search(r'<script src="https://[^"]*leaflet', html)
    assert (list(folium.Map.default_js), list(folium.plugins.MeasureControl.default_js)) == before
    assert all(url.startswith("https://") for _, url in folium.Map.default_js)
    write_site_month_map(out, pages.site, pages.title, "2024-02", MONTHS, "2024-01",
                         outline=pages.outline)


def test_maps_are_identical_when_written_again_and_neighbours_are_refreshed(
        pages: Pages) -> None:
    before = {m: p.read_bytes() for m, p in pages.maps.items()}
    outline = pages.outline
    written = write_site_maps(pages.out, pages.site, pages.title, [MONTHS[0]],
                              months=[MONTHS[-1]], outline=outline)
    assert [p.parent.name for p in written] == MONTHS[-2:]  # the month and the one before
    assert {m: p.read_bytes() for m, p in pages.maps.items()} == before
    pages.maps[MONTHS[0]].unlink()  # as after an interrupted run
    assert [p.parent.name for p in write_site_maps(pages.out, pages.site, pages.title,
                                                   [MONTHS[0]], months=[],
                                                   outline=outline)] == MONTHS[:2]
    assert pages.maps[MONTHS[0]].read_bytes() == before[MONTHS[0]]


def test_text_from_files_is_escaped_in_the_html(pages: Pages) -> None:
    for page in [*pages.maps.values(), pages.index]:
        html = page.read_text(encoding="utf-8")
        assert XSS not in html, page
        assert f"&lt;script&gt;alert(1)&lt;/script&gt; {TEMPLATE_INJECTION}" in html, page
        assert "Tortiya &lt;script&gt;alert(1)&lt;/script&gt; 49" not in html, page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in pages.maps["2024-03"].read_text(
        encoding="utf-8")  # the title as data for the popups, escaped for a <script>


class _Anchors(HTMLParser):
    """``<a href>`` of a page's markup (scripts are not parsed as markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.add(href)


def _hrefs(page: Path) -> set[str]:
    parser = _Anchors()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.hrefs


def test_map_links_previous_next_and_index(pages: Pages) -> None:
    for i, month in enumerate(MONTHS):
        hrefs = _hrefs(pages.maps[month])
        assert "../../index.html" in hrefs
        if i > 0:
            assert f"../{MONTHS[i - 1]}/map.html" in hrefs
        if i + 1 < len(MONTHS):
            assert f"../{MONTHS[i + 1]}/map.html" in hrefs
        for href in hrefs - {"https://www.openstreetmap.org/copyright"}:
            assert (pages.maps[month].parent / href).is_file(), (month, href)


def test_index_links_every_map_and_export(pages: Pages) -> None:
    html = pages.index.read_text(encoding="utf-8")
    for month in MONTHS:
        assert f'href="{pages.site}/{month}/map.html"' in html
        assert f'href="exports/disturbed-{month}.geojson"' in html
    for href in _hrefs(pages.index):
        assert (pages.out / href).is_file(), href


def test_index_links_the_time_series_volume_csvs_and_run_manifests(pages: Pages) -> None:
    hrefs = _hrefs(pages.index)
    manifests = sorted((pages.out / "runs").glob("*.json"))
    assert manifests
    expected = {"timeseries.csv", *(f"runs/{m.name}" for m in manifests),
                *(f"exports/volume-{month}.csv" for month in MONTHS)}
    assert expected <= hrefs, expected - hrefs
    for href in hrefs:
        assert (pages.out / href).is_file(), href


def test_index_shows_carats_to_two_significant_figures(pages: Pages) -> None:
    html = pages.index.read_text(encoding="utf-8")
    shown = 0
    for month in MONTHS:
        with open(pages.out / "exports" / f"volume-{month}.csv", newline="",
                  encoding="utf-8") as f:
            (row,) = list(csv.DictReader(f))
        p10, p50, p90 = (float(row[f"cumulative_carats_p{q}"]) for q in (10, 50, 90))
        cell = f"{significant(p50)} ({significant(p10)}&#8211;{significant(p90)})"
        assert f"<td>{cell}</td>" in html, (month, cell)
        for q in (10, 50, 90):
            raw = row[f"cumulative_carats_p{q}"]  # one decimal, e.g. 8150.3
            if float(raw) >= 100:  # never shown unrounded, with or without separators
                whole = f"{float(raw):,.0f}"
                assert raw not in html
                assert whole == significant(float(raw)) or whole not in html, (month, q)
        shown += p50 > 0
    assert shown  # the archive has new digging: the figures are not all zero


@pytest.mark.parametrize("value, text", [
    (1234.0, "1,200"), (0.0456, "0.046"), (6750.0, "6,800"), (2880.0, "2,900"),
    (12_345_678.0, "12,000,000"), (99.0, "99"), (1.0, "1.0"), (0.0, "0")])
def test_carats_are_rounded_to_two_significant_figures(value: float, text: str) -> None:
    assert significant(value) == text


def test_chart_breaks_lines_at_gap_months() -> None:
    assert runs([1.0, None, 2.0, 3.0, None]) == [[(0, 1.0)], [(2, 2.0), (3, 3.0)]]
    months = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05"]
    svg = line_chart(months, [Series("a", "#000000", [1.0, 2.0, None, 3.0, 4.0]),
                              Series(XSS, "#ff0000", [0.0, 0.0, None, 0.0, None])],
                     unit="ha", shaded={"2024-03": "gap"}, title=XSS)
    assert svg.count("<polyline") == 3  # a: two runs; the other: one run and a lone point
    assert svg.count("<circle") == 7 and "gap" in svg
    assert XSS not in svg


def test_baseline_month_is_the_same_calendar_month_when_seen(pages: Pages) -> None:
    assert pick_baseline_month(pages.out, pages.site, "2025-01", ["2024-01"]) == "2024-01"
    assert pick_baseline_month(pages.out, pages.site, "2024-03", ["2024-01", "2024-02"]) \
        == "2024-02"


# ---- radar -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RadarMap:
    """A month's map made from :func:`pages`' products with radar's findings planted in its
    ``change.tif`` (the shared archive's run has no radar) and its composite a radar month's."""

    page: Path
    radar_only: int
    """Pixels of new digging planted as radar-only."""
    withdrawn: int


@pytest.fixture(scope="module")
def radar_map(pages: Pages, tmp_path_factory: pytest.TempPathFactory) -> RadarMap:
    import numpy as np
    import rasterio
    from odc.geo.geobox import GeoBox

    from kpgeo.methods.change_bands import CHANGE_BANDS, DIGGING_NEW, DIGGING_NONE
    from kpgeo.products.export import write_cog

    out = tmp_path_factory.mktemp("radar") / "OUT"
    shutil.copytree(pages.out / pages.site, out / pages.site)
    month = MONTHS[-1]
    folder = out / pages.site / month
    with rasterio.open(folder / "change.tif") as src:
        bands = {name: src.read(i + 1) for i, name in enumerate(CHANGE_BANDS)}
        grid = GeoBox((src.height, src.width), src.transform, src.crs)
        descriptions, tags = list(src.descriptions), src.tags()
    new = bands["digging"] == DIGGING_NEW
    cols = np.nonzero(new)[1]
    # The western part of the new digging rests on radar alone (as in a month clouds hid)...
    only = new & (np.arange(new.shape[1])[None, :] <= np.median(cols))
    bands["confirmed"][only] = 0
    bands["radar_since"][only] = 202403
    # ... and a block of untouched ground is a finding a clear view withdrew.
    rows, columns = np.nonzero(bands["digging"] == DIGGING_NONE)
    r, c = int(np.median(rows)), int(np.median(columns))
    withdrawn = np.zeros_like(new)
    withdrawn[r:r + 12, c:c + 12] = bands["digging"][r:r + 12, c:c + 12] == DIGGING_NONE
    bands["radar_since"][withdrawn] = -202402
    (folder / "change.tif").unlink()
    write_cog(folder / "change.tif", [bands[n] for n in CHANGE_BANDS], grid,
              descriptions=descriptions, tags=tags, resampling="nearest", predictor=False)
    with rasterio.open(folder / "composite.tif", "r+", IGNORE_COG_LAYOUT_BREAK="YES") as dst:
        dst.update_tags(status="radar")
    areas = json.loads((folder / "disturbed.geojson").read_text(encoding="utf-8"))
    for feature in areas["features"]:
        if feature["properties"]["status"] == "new":
            feature["properties"]["evidence"] = "radar"
    (folder / "disturbed.geojson").write_text(json.dumps(areas), encoding="utf-8")
    page = write_site_month_map(out, pages.site, pages.title, month, MONTHS,
                                pick_baseline_month(out, pages.site, month, [MONTHS[0]]),
                                outline=pages.outline)
    return RadarMap(page, int(only.sum()), int(withdrawn.sum()))


def test_radar_findings_are_coloured_solid_or_striped() -> None:
    """Radar-only new digging (radar-dated, not optically confirmed, mapped new) is solid
    blue; a withdrawn finding striped; radar-dated digging optical imagery confirmed, radar
    below the mapping unit and no data are transparent."""
    import numpy as np

    from kpgeo.methods.change_bands import DIGGING_NEW, DIGGING_NONE
    from kpgeo.products.map_layers import (
        RADAR_ALPHA,
        RADAR_COLOUR,
        radar_colour,
        radar_findings,
    )

    since = np.array([[202408, 202408, 202408, -202408, np.nan, 0]] * 6, "float32")
    confirmed = np.array([[0, 202411, 0, 0, 0, 0]] * 6, "float32")
    digging = np.array([[DIGGING_NEW, DIGGING_NEW, DIGGING_NONE, DIGGING_NONE, 0, 0]] * 6,
                       "float32")
    only, withdrawn = radar_findings(since, confirmed, digging)
    assert only[:, 0].all() and not only[:, 1:].any()
    assert withdrawn[:, 3].all() and not withdrawn[:, [0, 1, 2, 4, 5]].any()
    rgba = radar_colour(only, withdrawn)
    assert (rgba[:, 0, 3] == RADAR_ALPHA).all()
    assert rgba[0, 0, :3].tolist() == [int(RADAR_COLOUR[i:i + 2], 16) for i in (1, 3, 5)]
    stripes = rgba[:, 3, 3]
    assert 0 < np.count_nonzero(stripes) < len(stripes)  # striped, with clear gaps
    assert not rgba[:, [1, 2, 4, 5], 3].any()


def test_a_run_without_radar_has_no_radar_layer(pages: Pages) -> None:
    from kpgeo.products.map_layers import radar_image

    for month, page in pages.maps.items():
        assert radar_image(pages.out / pages.site / month / "change.tif") is None
        html = page.read_text(encoding="utf-8")
        assert RADAR_LAYER not in html and CLASS_RADAR not in html, month
        assert "resting on radar" not in html


def test_radar_layer_and_legend_say_what_rests_on_radar(radar_map: RadarMap) -> None:
    from kpgeo.products.map_layers import radar_image

    assert radar_map.radar_only > 0 and radar_map.withdrawn > 0
    image = radar_image(radar_map.page.parent / "change.tif")
    assert image is not None and image.withdrawn
    # Drawn at the demo's native resolution: every planted pixel shows, give or take the
    # reprojection to Web Mercator.
    from kpgeo.products.map_layers import RADAR_ALPHA

    solid = int((image.rgba[..., 3] == RADAR_ALPHA).sum())
    assert solid == pytest.approx(radar_map.radar_only, rel=0.15)
    html = radar_map.page.read_text(encoding="utf-8")
    assert html.count(f'"{RADAR_LAYER}"') == 1 and f'"className": "{CLASS_RADAR}"' in html
    assert "kpgeo-legend-radar" in html and "kpgeo-legend-radar-withdrawn" in html
    assert "new digging radar alone dated" in html and "radar finding withdrawn" in html
    assert "resting on radar: " in html and "on Sentinel-1 radar alone" in html


# ---- in the browser --------------------------------------------------------------------------
CHROMIUM_ARGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-first-run", "--disable-extensions",
    # Every request through a proxy where nothing listens, loopback too; no name resolves.
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)
#: Records alert() calls instead of showing them, installed before any page script runs.
ALERT_TRAP = "window.__alerts = []; window.alert = function (m) { window.__alerts.push(String(m)); };"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        reason = ("the map tests need Debian's chromium and chromium-driver "
                  "(`make test` installs them: apt-get install chromium chromium-driver)")
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver and browser keep Selenium Manager (which would download) out of it.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ALERT_TRAP})
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, script: str) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script(script))


def _open(driver: Any, page: Path) -> list[dict[str, Any]]:
    """Load ``page``; return the console entries of this load."""
    driver.get("about:blank")  # ends the previous page's requests (tiles still failing)...
    driver.get_log("browser")  # ...so that its console entries can be dropped here
    driver.get(page.as_uri())
    _wait(driver, "return document.readyState === 'complete'")
    return list(driver.get_log("browser"))


def _open_map(driver: Any, page: Path) -> list[dict[str, Any]]:
    logs = _open(driver, page)
    _wait(driver, f"return document.querySelectorAll('img.{CLASS_MONTH}').length > 0")
    return logs


def _severe(entries: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in entries if e["level"] == "SEVERE"]


def test_map_and_index_load_without_errors_and_say_tiles_need_a_network(
        browser: Any, pages: Pages) -> None:
    """An offline map starts on its imagery with the basemap off: nothing asks the network
    and no note covers the map; switched on, the basemap's tiles fail and the page says so."""
    logs = _open_map(browser, pages.maps["2024-03"])
    assert _count(browser, ".leaflet-tile") == 0
    assert _count(browser, f"img.{CLASS_MONTH}") == 1
    assert not browser.find_element("id", "kpgeo-tiles-note").is_displayed()
    assert _severe(logs + browser.get_log("browser")) == []
    _toggle(browser, "OpenStreetMap basemap")
    _wait(browser, "return !document.getElementById('kpgeo-tiles-note').hidden")
    note = browser.find_element("id", "kpgeo-tiles-note")
    assert note.is_displayed() and note.text == TILES_NOTE
    logs += browser.get_log("browser")
    severe = _severe(logs)
    tile_failures = [m for m in severe if TILE_FAILURE.match(m)]
    assert tile_failures, "the blocked basemap should have failed to load"
    assert [m for m in severe if not TILE_FAILURE.match(m)] == []
    assert browser.execute_script("return typeof L.Control.Measure") == "function"
    assert _severe(_open(browser, pages.index)) == []
    assert browser.find_elements("css selector", "svg.kpgeo-chart polyline")


def test_map_draws_every_digging_area(browser: Any, pages: Pages) -> None:
    for month in ("2024-02", "2024-03"):  # a January-only baseline maps no pre-existing digging
        features = _features(pages, month)
        assert features, f"the synthetic archive has digging in {month}"
        _open_map(browser, pages.maps[month])
        drawn = browser.execute_script(
            f"return document.querySelectorAll('.leaflet-overlay-pane path.{CLASS_DIGGING}')"
            ".length")
        assert drawn == len(features), month
        # ... on the imagery: every area lies within the month's image, at the same scale.
        outside = browser.execute_script(f"""
            const image = document.querySelector('img.{CLASS_MONTH}').getBoundingClientRect();
            return [...document.querySelectorAll('path.{CLASS_DIGGING}')].filter(path => {{
                const box = path.getBoundingClientRect();
                return box.left < image.left - 2 || box.right > image.right + 2
                    || box.top < image.top - 2 || box.bottom > image.bottom + 2; }}).length;""")
        assert outside == 0, month


def _toggle(driver: Any, label_start: str) -> None:
    for label in driver.find_elements("css selector", ".leaflet-control-layers-overlays label"):
        if label.text.strip().startswith(label_start):
            label.find_element("css selector", "input").click()
            return
    raise AssertionError(f"no layer control entry starting with {label_start!r}")


def _count(driver: Any, css: str) -> int:
    return int(driver.execute_script(f"return document.querySelectorAll({css!r}).length"))


def test_layer_control_switches_overlays(browser: Any, pages: Pages) -> None:
    _open_map(browser, pages.maps["2024-03"])
    month, baseline, change = (f"img.{c}" for c in (CLASS_MONTH, CLASS_BASELINE, CLASS_CHANGE))
    assert (_count(browser, month), _count(browser, baseline), _count(browser, change)) == (1, 0, 0)
    _toggle(browser, "Baseline true colour 2024-01")
    _wait(browser, f"return document.querySelectorAll({baseline!r}).length === 1")
    _toggle(browser, "True colour 2024-03")
    _wait(browser, f"return document.querySelectorAll({month!r}).length === 0")
    _toggle(browser, "Change score")
    _wait(browser, f"return document.querySelectorAll({change!r}).length === 1")
    _toggle(browser, "Digging areas")
    _wait(browser, f"return document.querySelectorAll('path.{CLASS_DIGGING}').length === 0")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_screenshots_of_map_and_index(browser: Any, pages: Pages) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _open_map(browser, pages.maps["2024-03"])
    shots = {"map-2024-03.png": None, "index.png": pages.index}
    for name, page in shots.items():
        if page is not None:
            _open(browser, page)
        path = ARTIFACTS / name
        assert browser.save_screenshot(str(path))
        width, height = _png_size(path)
        assert width >= WINDOW[0] * 0.9 and height >= WINDOW[1] * 0.5, (name, width, height)


def test_title_with_markup_shows_as_text_and_never_runs(browser: Any, pages: Pages) -> None:
    _open_map(browser, pages.maps["2024-03"])
    assert browser.title.startswith(f"{LABEL}: {pages.title}")  # a synthetic archive's map
    assert browser.find_element("id", "kpgeo-site-title").get_attribute("textContent") \
        == pages.title
    # Open a digging area's popup by clicking its path.
    browser.execute_script(f"""
        const path = document.querySelector('path.{CLASS_DIGGING}');
        const box = path.getBoundingClientRect();
        const at = {{bubbles: true, clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}};
        path.dispatchEvent(new MouseEvent('click', at));""")
    _wait(browser, "return document.querySelector('.kpgeo-popup-title') !== null")
    popup = browser.find_element("css selector", ".kpgeo-popup")
    assert popup.find_element("css selector", ".kpgeo-popup-title").get_attribute(
        "textContent") == pages.title
    # Its text as the DOM holds it: while the popup fades in, Selenium's visible text is empty.
    text = popup.get_attribute("textContent")
    assert any(f["properties"]["id"] in text for f in _features(pages, "2024-03"))
    assert "ha" in text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "map-popup.png"))
    assert browser.execute_script("return window.__alerts") == []
    _open(browser, pages.index)
    assert browser.find_element("css selector", ".kpgeo-site-title").get_attribute(
        "textContent") == pages.title
    assert browser.execute_script("return window.__alerts") == []
    assert _count(browser, "script") == 0


def test_measure_control_measures_hectares_offline(browser: Any, pages: Pages) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    _open_map(browser, pages.maps["2024-02"])
    browser.find_element("css selector", ".leaflet-control-measure-toggle").click()
    browser.find_element("css selector", ".leaflet-control-measure .js-start").click()
    area = browser.find_element("css selector", ".folium-map")
    for dx, dy in ((-60, -60), (60, -60), (60, 60), (-60, 60)):
        ActionChains(browser).move_to_element_with_offset(area, dx, dy).click().perform()
    browser.find_element("css selector", ".leaflet-control-measure .js-finish").click()
    # The measure's own popup (a click of the polygon may also land on a digging area's).
    _wait(browser, "return [...document.querySelectorAll('.leaflet-popup-content')]"
                   ".some(e => e.textContent.includes('Hectares'))")
    # Measuring makes a Leaflet marker: its icon must come from the page, not beside it.
    logs = browser.get_log("browser")
    assert [m for m in _severe(logs) if not TILE_FAILURE.match(m)] == []


def test_large_overlays_are_webp_with_their_transparency_and_small_ones_png() -> None:
    """A full site's overlay (2048 px) is lossy WebP: a few hundred kB instead of 11.7 MB of
    PNG, its no-data pixels still transparent; the demo window's stay exact PNG."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    from kpgeo.products.map_layers import image_data_uri, true_colour

    rng = np.random.default_rng(1)
    size = 2048
    # Savanna-like texture: smooth fields with noise, a band of no data along one edge.
    smooth = np.cumsum(rng.normal(0, 0.002, (size, size)), axis=1).astype("float32")
    red = np.clip(0.12 + smooth + rng.normal(0, 0.01, (size, size)), 0, 0.3).astype("float32")
    red[:, :100] = np.nan
    rgba = true_colour(red, red * 0.9, red * 0.7)
    uri = image_data_uri(rgba)
    assert uri.startswith("data:image/webp;base64,")
    data = base64.b64decode(uri.split(",", 1)[1])
    assert len(uri) < 3_000_000, len(uri)
    decoded = np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))
    assert decoded.shape == rgba.shape
    np.testing.assert_array_equal(decoded[..., 3], rgba[..., 3])  # transparency exact
    # Colour within 2.5 % of the range on average, on pixel noise (0.01 reflectance, 8 levels
    # of 255) stronger than a composite's.
    assert np.abs(decoded[..., :3].astype(int) - rgba[..., :3]).mean() < 0.025 * 255
    small = image_data_uri(rgba[:600, :600])
    assert small.startswith("data:image/png;base64,")


def test_map_layers_of_a_large_raster_come_from_its_overviews(tmp_path: Path) -> None:
    """A raster far larger than a map image is reprojected from the coarsest COG overview
    still as fine as the image (not from every pixel), and gives the same picture."""
    import numpy as np
    from odc.geo.geobox import GeoBox
    from rasterio import Affine

    from kpgeo.products.export import write_cog
    from kpgeo.products.map_layers import _coarsest_enough, read_web_mercator

    size = 2400
    grid = GeoBox((size, size), Affine(10, 0, 200_000, 0, -10, 1_000_000), "EPSG:32630")
    # Halves of two values: any overview level keeps them apart.
    values = np.where(np.arange(size)[None, :] < size // 2, 0.1, 0.3).astype("float32")
    path = write_cog(tmp_path / "big.tif", np.broadcast_to(values, (size, size)), grid)
    assert _coarsest_enough(path, 2048) == {}  # 2400 px is fine enough, overviews are not
    assert _coarsest_enough(path, 500) == {"overview_level": 1}  # factor 4: 600 px
    image, _ = read_web_mercator(path, [1], max_px=500)
    full, _ = read_web_mercator(path, [1], max_px=size * 2)
    assert max(image.shape[1:]) <= 500
    assert sorted(np.unique(image[np.isfinite(image)]).round(3).tolist()) == pytest.approx([0.1, 0.3])
    assert np.nanmean(image) == pytest.approx(np.nanmean(full), abs=0.01)


def test_radar_layer_is_shown_in_a_radar_month_and_switches_off(browser: Any,
                                                              radar_map: RadarMap) -> None:
    """A radar month's map starts with radar's findings shown (an overlay of the layer
    control); an area resting on radar says so in its popup."""
    logs = _open_map(browser, radar_map.page)
    assert [m for m in _severe(logs) if not TILE_FAILURE.match(m)] == []
    radar = f"img.{CLASS_RADAR}"
    _wait(browser, f"return document.querySelectorAll({radar!r}).length === 1")
    assert browser.find_element("css selector", ".kpgeo-legend-radar").is_displayed()
    assert browser.find_element("css selector", ".kpgeo-status").text.startswith("radar")
    _toggle(browser, RADAR_LAYER)
    _wait(browser, f"return document.querySelectorAll({radar!r}).length === 0")
    _toggle(browser, RADAR_LAYER)
    _wait(browser, f"return document.querySelectorAll({radar!r}).length === 1")
    browser.execute_script(f"""
        const path = document.querySelector('path.{CLASS_DIGGING}');
        const box = path.getBoundingClientRect();
        const at = {{bubbles: true, clientX: box.x + box.width / 2, clientY: box.y + box.height / 2}};
        path.dispatchEvent(new MouseEvent('click', at));""")
    _wait(browser, "return document.querySelector('.kpgeo-popup') !== null")
    text = browser.find_element("css selector", ".kpgeo-popup").get_attribute("textContent")
    assert "evidenceSentinel-1 radar alone" in text
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "map-radar.png"))
