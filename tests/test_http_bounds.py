"""HTTP requests bounded in total time and size (docs/product.md §10; issue 19, point 8): a
server that sends one byte at a time, one that streams without end and one that declares a
terabyte, as a static catalog, a STAC API's landing page and its search, and a COG dripping
its bytes to GDAL. Each ends in seconds: a one-line error, or the scene skipped with the reason.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from kpgeo.cli import cli
from kpgeo.errors import SourceError
from kpgeo.months import parse_month_range
from kpgeo.sources.http_bounds import MAX_JSON_BYTES
from kpgeo.sources.stac import StacSource

from .builders import range_server, write_site_file
from .hostile_http import DRIP, ENDLESS, HUGE, api_landing, hostile_server
from .test_faults import MONTH, archive, manifest, run_pipeline, scenes_of

__all__ = ["archive"]  # the fixture, shared with tests/test_faults.py

JAN = parse_month_range("2024-01")
#: What each hostile answer is refused for.
REASONS = {DRIP: "timed out, no complete answer within 1 s",
           ENDLESS: f"goes on past {MAX_JSON_BYTES:,} bytes",
           HUGE: f"an answer of {2**40:,} bytes"}
CATALOG = {"type": "Catalog", "id": "c", "description": "d", "stac_version": "1.0.0",
           "links": [{"rel": "child", "href": "{base}/child.json"}]}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture()
def site(small_site):  # type: ignore[no-untyped-def]
    return small_site


@pytest.mark.parametrize("mode", [DRIP, ENDLESS, HUGE])
@pytest.mark.parametrize("where", ["static catalog", "its child", "API search"])
def test_hostile_catalog_answer_ends_in_seconds_with_one_error(site, mode: str,
                                                              where: str) -> None:  # type: ignore[no-untyped-def]
    routes = {"static catalog": {"/catalog.json": mode},
              "its child": {"/catalog.json": CATALOG, "/child.json": mode},
              "API search": {"/": api_landing(), "/search": mode}}[where]
    root = "/" if where == "API search" else "/catalog.json"
    before = _peak_mb()
    with hostile_server(routes) as url:
        source = StacSource(url + root, read_attempts=2, http_timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            source.search(site, JAN)
        elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed  # attempts of 1 s and a wait of 0.5 s; never the drip's hours
    message = str(caught.value)
    assert REASONS[mode] in message and "\n" not in message, message
    assert _peak_mb() - before < 400  # an endless answer is cut at 32 MB


def test_run_against_a_dripping_api_exits_1_in_seconds(tmp_path: Path) -> None:
    aoi = write_site_file(tmp_path / "my.geojson", (-5.705, 8.715, -5.695, 8.725), name="my")
    with hostile_server({"/": api_landing(), "/search": DRIP}) as url:
        pipeline = tmp_path / "p.toml"
        pipeline.write_text(f'[source]\nkind = "stac"\ncatalog = "{url}/"\n'
                            "http_timeout_s = 1\nread_attempts = 2\n")
        started = time.monotonic()
        result = CliRunner().invoke(cli, [
            "run", str(pipeline), "--aoi", str(aoi), "--baseline", "2024-01..2024-01",
            "--months", "2024-01..2024-02", "--out", str(tmp_path / "out"),
            "--scheduler", "threads"])
    assert time.monotonic() - started < 15
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("kpgeo: error:")]
    assert REASONS[DRIP] in line
    assert "Traceback" not in result.output


def test_cog_dripping_its_bytes_is_cut_by_gdal_s_total_timeout(archive: Path,
                                                               tmp_path: Path) -> None:
    """GDAL_HTTP_TIMEOUT is curl's time of a whole transfer: a COG sent one byte every 0.2 s
    fails each read in a second, and its scene is skipped."""
    scene = scenes_of(archive, MONTH)[1]
    started = time.monotonic()
    with range_server(archive, {f"/{scene}/red.tif": "drip"}) as url:
        result, out = run_pipeline(tmp_path, f"{url}/collection.json")
    assert time.monotonic() - started < 60
    assert result.exit_code == 0, result.output
    (skipped,) = manifest(out)["skipped_scenes"]
    assert skipped["scene_id"] == scene and skipped["reason"].startswith("red: ")
    assert "timed out" in skipped["reason"], skipped


def _features(collection: Path, month: str) -> list[dict[str, object]]:
    """The items of a kpgeo archive of one month, as an API's search answers them (asset
    hrefs made absolute)."""
    found = []
    for path in sorted(collection.parent.glob("*/*.json")):
        doc = json.loads(path.read_text())
        if doc["properties"]["datetime"].startswith(month):
            for asset in doc["assets"].values():
                asset["href"] = str((path.parent / asset["href"]).resolve())
            found.append(doc)
    return found


@pytest.mark.parametrize("loop", ["next is itself", "next leads back"])
def test_api_whose_next_link_loops_is_read_once(small_archive, site, loop: str,
                                                caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    """pystac-client follows ``next`` while pages hold features: an API whose next page is
    one already read was read for ever (a run hung past 10 minutes). Each item is read once
    and the search ends in seconds."""
    features = _features(small_archive.collection, "2024-01")
    assert len(features) >= 2
    half = len(features) // 2
    routes: dict[str, object]
    if loop == "next is itself":
        routes = {"/": api_landing(), "/search": {
            "type": "FeatureCollection", "features": features,
            "links": [{"rel": "next", "href": "{base}/search"}]}}
    else:
        routes = {"/": api_landing(), "/search": {
            "type": "FeatureCollection", "features": features[:half],
            "links": [{"rel": "next", "href": "{base}/page2"}]},
            "/page2": {"type": "FeatureCollection", "features": features[half:],
                       "links": [{"rel": "next", "href": "{base}/search"}]}}
    with hostile_server(routes) as url:
        source = StacSource(url + "/", read_attempts=1, http_timeout_s=2.0)
        started = time.monotonic()
        items = source.search(site, JAN)
        elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed
    assert sorted(i.id for i in items) == sorted(str(f["id"]) for f in features)
    assert "'next' link loops" in caplog.text


def test_api_paging_without_end_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                       site) -> None:  # type: ignore[no-untyped-def]
    """Pages that keep bringing new items stop at MAX_SEARCH_ITEMS with one line."""
    from kpgeo.sources import stac

    monkeypatch.setattr(stac, "MAX_SEARCH_ITEMS", 5)
    pages = ({"type": "FeatureCollection", "features": [{"id": f"item-{n}"}]}
             for n in range(1_000_000))
    with pytest.raises(SourceError) as caught:
        stac._search_pages(pages, "http://127.0.0.1:9/")
    message = str(caught.value)
    assert "more than 5 items" in message and "\n" not in message
