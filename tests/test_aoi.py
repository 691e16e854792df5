"""Sites: the two real site files, grids, and every kind of bad site file (docs/product.md §5, §10)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from kpgeo.aoi import MAX_SITE_AREA_KM2, load_site
from kpgeo.cli import cli
from kpgeo.errors import AOIError

from .conftest import BOBI, TORTIYA


def test_real_sites_have_their_utm_zones_and_whole_pixel_grids() -> None:
    bobi, tortiya = load_site(BOBI), load_site(TORTIYA)
    assert (bobi.name, bobi.epsg) == ("bobi-seguela", 32629)
    assert (tortiya.name, tortiya.epsg) == ("tortiya", 32630)
    for site in (bobi, tortiya):
        grid = site.grid
        assert grid.resolution.x == 10 and grid.resolution.y == -10
        # Snapped to whole pixels: the grid's corner lies on a multiple of 10 m.
        assert grid.affine.c % 10 == 0 and grid.affine.f % 10 == 0
        assert 900 < site.area_km2 < 1300
        assert site.source and site.country == "CIV"


def test_aoi_check_prints_name_area_epsg_and_grid() -> None:
    result = CliRunner().invoke(cli, ["aoi", "check", str(BOBI)])
    assert result.exit_code == 0, result.output
    assert "bobi-seguela" in result.output
    assert "EPSG:32629" in result.output
    assert "km²" in result.output and " px " in result.output
    result = CliRunner().invoke(cli, ["aoi", "check", str(TORTIYA)])
    assert "EPSG:32630" in result.output


def test_window_keeps_the_site_grid_alignment() -> None:
    site = load_site(TORTIYA)
    window = site.window(-5.70, 8.72, 6.0)
    assert window.epsg == site.epsg
    assert 35 < window.area_km2 < 37
    assert (window.grid.affine.c - site.grid.affine.c) % 10 == 0


def test_pixel_mask_follows_the_polygon(tmp_path: Path) -> None:
    path = tmp_path / "tri.geojson"
    path.write_text(json.dumps({"type": "Polygon", "coordinates": [
        [[-5.70, 8.70], [-5.68, 8.70], [-5.70, 8.72], [-5.70, 8.70]]]}))
    site = load_site(path)
    mask = site.pixel_mask()
    share = mask.mean()
    assert 0.4 < share < 0.6  # a right triangle fills half its bounding box
    assert site.name == "tri"


def _polygon(ring: list[list[float]]) -> dict:
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "x"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}}]}


SQUARE = [[-5.7, 8.7], [-5.6, 8.7], [-5.6, 8.8], [-5.7, 8.8], [-5.7, 8.7]]
BAD_SITES = {
    "not-json": ("{ this is not json", "is not JSON"),
    "not-geojson": (json.dumps({"hello": "world"}), "not GeoJSON"),
    "unknown-type": (json.dumps({"type": "Banana"}), "not GeoJSON"),
    "point": (json.dumps({"type": "Feature", "properties": {},
                          "geometry": {"type": "Point", "coordinates": [-5.7, 8.7]}}),
              "is a Point, not a polygon"),
    "self-intersecting": (json.dumps(_polygon(
        [[-5.7, 8.7], [-5.6, 8.8], [-5.6, 8.7], [-5.7, 8.8], [-5.7, 8.7]])), "Self-intersection"),
    "out-of-range": (json.dumps(_polygon(
        [[-5.7, 98.7], [-5.6, 98.7], [-5.6, 98.8], [-5.7, 98.8], [-5.7, 98.7]])), "out of range"),
    # A site near lon 125 E written [lat, lon]: latitude -130 cannot be.
    "swapped": (json.dumps(_polygon([[p[1], p[0] - 125] for p in SQUARE])),
                "[latitude, longitude]"),
    "empty-collection": (json.dumps({"type": "FeatureCollection", "features": []}),
                         "empty FeatureCollection"),
    "unclosed-ring": (json.dumps(_polygon(SQUARE[:-1] + [[-5.65, 8.65]])), "unclosed ring"),
    "too-large": (json.dumps(_polygon(
        [[-6.0, 7.0], [-4.0, 7.0], [-4.0, 9.0], [-6.0, 9.0], [-6.0, 7.0]])),
        f"more than the {MAX_SITE_AREA_KM2:,.0f} km²"),
    "other-crs": (json.dumps({**_polygon(SQUARE), "crs": {"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG::32630"}}}), "reproject it"),
    "binary": (b"\xff\xfe\x00garbage", "not text"),
}


@pytest.mark.parametrize("case", sorted(BAD_SITES))
def test_bad_site_file_is_one_line_exit_2_nothing_written(case: str, tmp_path: Path) -> None:
    content, expected = BAD_SITES[case]
    path = tmp_path / f"{case}.geojson"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(AOIError, match=None):
        load_site(path)
    out = tmp_path / "out"
    for args in (["aoi", "check", str(path)],
                 ["synth", "--aoi", str(path), "--months", "2024-01..2024-02", "--out", str(out)],
                 ["run", "--aoi", str(path), "--months", "2024-01..2024-03",
                  "--baseline", "2024-01..2024-01", "--out", str(out)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert expected in lines[0], lines[0]
        assert str(path) in lines[0] or case == "missing"
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_missing_site_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.geojson"
    result = CliRunner().invoke(cli, ["aoi", "check", str(missing)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "does not exist" in result.output and "nowhere.geojson" in result.output
    assert not list(tmp_path.iterdir())


def test_multipolygon_features_merge_into_one_site(tmp_path: Path) -> None:
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Two Parts", "title": "Two <b>parts</b>"},
         "geometry": {"type": "Polygon", "coordinates": [SQUARE]}},
        {"type": "Feature", "properties": {},
         "geometry": {"type": "Polygon", "coordinates": [[[x + 0.2, y] for x, y in SQUARE]]}}]}
    path = tmp_path / "two.geojson"
    path.write_text(json.dumps(doc))
    site = load_site(path)
    assert site.name == "two-parts"
    assert site.title == "Two <b>parts</b>"  # kept as given; escaped wherever it reaches HTML
    assert site.geometry.geom.geom_type == "MultiPolygon"
    assert np.isclose(site.area_km2, 2 * 11.0 * 11.0, rtol=0.05)


def test_heights_and_a_byte_order_mark_are_accepted(tmp_path: Path) -> None:
    """What some GIS and Windows editors write: [lon, lat, z] positions, a UTF-8 BOM."""
    ring = [[-5.705, 8.715], [-5.695, 8.715], [-5.695, 8.725], [-5.705, 8.725], [-5.705, 8.715]]
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {"name": "flat"},
        "geometry": {"type": "Polygon", "coordinates": [ring]}}]}
    flat = tmp_path / "flat.geojson"
    flat.write_text(json.dumps(doc), encoding="utf-8")
    doc["features"][0]["geometry"]["coordinates"] = [[[*p, 312.5] for p in ring]]
    doc["features"][0]["properties"]["name"] = "heights"
    heights = tmp_path / "heights.geojson"
    heights.write_text(json.dumps(doc), encoding="utf-8-sig")
    assert heights.read_bytes().startswith(b"\xef\xbb\xbf")
    a, b = load_site(flat), load_site(heights)
    assert not b.geometry.geom.has_z
    assert a.grid == b.grid and a.geometry.geom.equals(b.geometry.geom)
