"""STAC items and catalogs a source does not control (docs/product.md §10; issue 19, point 10):
``scale``/``offset``/``nodata`` as text or null, ``raster:bands`` an object, ``eo:cloud_cover``
null or text, a datetime without a time zone, a catalog whose links loop, a collection listed as
its own item. Each scene is used or skipped with its reason in the manifest; never a traceback.
A fuzz test then throws any JSON at every field (tests/test_stac_fuzz.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from kpgeo.aoi import load_site
from kpgeo.cli import cli
from kpgeo.errors import KpgeoError
from kpgeo.months import parse_month_range
from kpgeo.sources.stac import StacSource

from .builders import make_scene, write_collection, write_site_file
from .hostile_http import api_landing, hostile_server

JAN = parse_month_range("2024-01")
BBOX = (-5.9000, 8.7000, -5.8964, 8.7036)


def scenes(tmp_path: Path) -> tuple[Any, Path]:
    """A site, and a static collection of two clear January scenes ``a`` and ``b`` on it."""
    site = load_site(write_site_file(tmp_path / "site.geojson", BBOX, name="my"))
    grid = site.grid
    scl = np.full(grid.shape.yx, 4, "uint8")
    items = [make_scene(tmp_path / "cogs", name, dt.datetime(2024, 1, day, 10, 50), grid, {}, scl)
             for name, day in (("a", 5), ("b", 10))]
    for item in items:
        item.make_asset_hrefs_absolute()
    return site, write_collection(tmp_path / "c", items)


def edit(collection: Path, scene: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = collection.parent / scene / f"{scene}.json"
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def used_and_skipped(source: StacSource, site: Any) -> tuple[list[str], dict[str, str]]:
    items = source.search(site, JAN)
    scenes_read = source.load(items, site)
    assert bool(scenes_read.valid.any().compute())
    return [i.id for i in items], {s["scene_id"]: s["reason"] for s in source.skipped}


def _band(doc: dict[str, Any], band: str = "red") -> dict[str, Any]:
    return doc["assets"][band]["raster:bands"][0]


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str | None]] = {
    # change to scene b -> the reason it is skipped (None: it is used)
    "scale as text": (lambda d: _band(d).update(scale="0.0001"),
                      "red: raster:bands scale is text '0.0001', not a number"),
    "scale null": (lambda d: _band(d).update(scale=None), "red: raster:bands scale is null"),
    "offset as text": (lambda d: _band(d, "nir").update(offset="-0.1"),
                       "nir: raster:bands offset is text"),
    "scale 1e308": (lambda d: _band(d).update(scale=1e308), "do not make reflectance"),
    "nodata as text": (lambda d: _band(d).update(nodata="none"), "nodata is text 'none'"),
    "nodata null": (lambda d: _band(d, "scl").update(nodata=None), "scl: raster:bands nodata is null"),
    "nodata 'nan'": (lambda d: _band(d).update(nodata="nan"), None),
    "raster:bands an object": (
        lambda d: d["assets"]["red"].update({"raster:bands": _band(d)}),
        "red: raster:bands is an object, not a list of objects"),
    "cloud cover null": (lambda d: d["properties"].update({"eo:cloud_cover": None}), None),
    "cloud cover text": (lambda d: d["properties"].update({"eo:cloud_cover": "cloudy"}), None),
    "datetime without a time zone": (
        lambda d: d["properties"].update(datetime="2024-01-10T10:50:00"), None),
    "datetime not a date": (lambda d: d["properties"].update(datetime="last Tuesday"),
                            "its item cannot be read"),
    "datetime null": (lambda d: d["properties"].update(datetime=None),
                       "If datetime is None, a start_datetime and end_datetime must be"),
    "geometry null": (lambda d: d.update(geometry=None), "its geometry cannot be read"),
    "id a number": (lambda d: d.update(id=12), "its id '12' is not a text"),
    "href null": (lambda d: d["assets"]["green"].update(href=None), "its item cannot be read"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_item_field_of_the_wrong_kind_is_used_or_skipped_with_its_reason(tmp_path: Path,
                                                                         case: str) -> None:
    site, collection = scenes(tmp_path)
    change, reason = CASES[case]
    edit(collection, "b", change)
    used, skipped = used_and_skipped(StacSource(str(collection)), site)
    if reason is None:
        assert used == ["a", "b"] and skipped == {}
    else:
        assert used == ["a"]
        (why,) = skipped.values()
        assert reason in why and "\n" not in why, why


def test_datetime_without_a_time_zone_is_read_as_utc(tmp_path: Path) -> None:
    site, collection = scenes(tmp_path)
    edit(collection, "b", lambda d: d["properties"].update(datetime="2024-01-31T23:30:00"))
    source = StacSource(str(collection))
    items = source.search(site, JAN)
    assert [i.datetime for i in items][-1] == dt.datetime(2024, 1, 31, 23, 30, tzinfo=dt.UTC)
    assert source.search(site, parse_month_range("2024-02")) == []


def test_cloud_cover_as_text_of_a_number_is_read(tmp_path: Path) -> None:
    site, collection = scenes(tmp_path)
    edit(collection, "b", lambda d: d["properties"].update({"eo:cloud_cover": "80"}))
    source = StacSource(str(collection), max_scene_cloud_pct=50)
    assert [i.id for i in source.search(site, JAN)] == ["a"]


def test_catalog_whose_links_loop_is_read_once(tmp_path: Path) -> None:
    site, collection = scenes(tmp_path)
    doc = json.loads(collection.read_text())
    # The collection lists itself as a child and as an item, and a sub-catalog that links
    # back to it.
    (collection.parent / "sub.json").write_text(json.dumps({
        "type": "Catalog", "id": "sub", "description": "loops back", "stac_version": "1.0.0",
        "links": [{"rel": "child", "href": "./collection.json"},
                  {"rel": "item", "href": "./sub.json"},
                  {"rel": "item", "href": "./a/a.json"}]}))
    doc["links"] += [{"rel": "child", "href": "./collection.json"},
                     {"rel": "item", "href": "./collection.json"},
                     {"rel": "child", "href": "./sub.json"}]
    collection.write_text(json.dumps(doc))
    source = StacSource(str(collection))
    used, skipped = used_and_skipped(source, site)
    assert used == ["a", "b"] and skipped == {}


def test_collection_listed_as_an_item_of_another_is_skipped_with_a_reason(tmp_path: Path) -> None:
    site, collection = scenes(tmp_path)
    (collection.parent / "other.json").write_text(json.dumps({
        "type": "Collection", "id": "other", "description": "x", "stac_version": "1.0.0",
        "license": "proprietary", "links": [],
        "extent": {"spatial": {"bbox": [list(BBOX)]},
                   "temporal": {"interval": [["2024-01-01T00:00:00Z", None]]}}}))
    doc = json.loads(collection.read_text())
    doc["links"].append({"rel": "item", "href": "./other.json"})
    collection.write_text(json.dumps(doc))
    used, skipped = used_and_skipped(StacSource(str(collection)), site)
    assert used == ["a", "b"]
    assert skipped == {"other": "its document is a 'Collection', not an item (a Feature)"}


def test_run_over_a_catalog_of_bad_items_exits_0_and_records_them(tmp_path: Path) -> None:
    _, collection = scenes(tmp_path)
    edit(collection, "b", lambda d: _band(d).update(scale="0.0001"))
    edit(collection, "a", lambda d: d["properties"].update(datetime="2024-01-05T10:50:00"))
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(f'[source]\nkind = "stac"\ncatalog = "{collection}"\n')
    result = CliRunner().invoke(cli, [
        "run", str(pipeline), "--aoi", str(tmp_path / "site.geojson"), "--baseline",
        "2024-01..2024-01", "--months", "2024-01..2024-02", "--out", str(tmp_path / "out"),
        "--scheduler", "threads"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    (path,) = (tmp_path / "out" / "runs").glob("*.json")
    doc = json.loads(path.read_text())
    assert [(s["scene_id"], s["month"], s["attempts"]) for s in doc["skipped_scenes"]] == \
        [("b", "2024-01", 0)]
    assert "scale is text" in doc["skipped_scenes"][0]["reason"]
    assert next(m for m in doc["site_months"] if m["month"] == "2024-01")["scene_ids"] == ["a"]


def test_api_search_with_a_bad_item_keeps_the_others(tmp_path: Path) -> None:
    site, collection = scenes(tmp_path)
    good = json.loads((collection.parent / "a" / "a.json").read_text())
    bad = json.loads((collection.parent / "b" / "b.json").read_text())
    bad["properties"]["datetime"] = 20240110
    page = {"type": "FeatureCollection", "features": [good, bad], "links": []}
    with hostile_server({"/": api_landing(), "/search": page}) as url:
        source = StacSource(url + "/", read_attempts=1, http_timeout_s=5)
        assert [i.id for i in source.search(site, JAN)] == ["a"]
    (record,) = source.skipped
    assert record["scene_id"] == "b" and "its item cannot be read" in record["reason"]


def test_api_answering_no_stac_is_one_line(tmp_path: Path) -> None:
    site, _ = scenes(tmp_path)
    with hostile_server({"/": api_landing(), "/search": {"features": "none"}}) as url:
        source = StacSource(url + "/", read_attempts=1, http_timeout_s=5)
        with pytest.raises(KpgeoError) as caught:
            source.search(site, JAN)
    assert "\n" not in str(caught.value) and url in str(caught.value)
