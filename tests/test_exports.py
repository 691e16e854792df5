"""Products of ``kpgeo run`` and their RFC 7946 GeoJSON form (docs/product.md §8).

Two parts: digging areas made by hand on a real site grid (a polygon with a hole, two pixel
groups touching at a corner) go through :func:`kpgeo.methods.polygons.feature_collection`; then the
documented command runs end to end on the shared synthetic archive, once, plus reruns. Every
GeoJSON is checked by an RFC 7946 checker written here, not by the writer's own code.
"""

from __future__ import annotations

import _thread
import csv
import hashlib
import itertools
import json
import math
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from odc.geo.geobox import GeoBox
from rio_cogeo.cogeo import cog_validate

from kpgeo.aoi import load_site
from kpgeo.cli import cli
from kpgeo.methods.change_bands import CHANGE_BANDS
from kpgeo.methods.detection import DetectionState
from kpgeo.methods.indices import INDEX_NAMES
from kpgeo.methods.polygons import (
    digging_areas,
    feature_collection,
    preexisting_areas,
)
from kpgeo.products.export import (
    BackgroundWrites,
    write_feature_collection,
    write_geojson,
    write_json,
)
from kpgeo.sources import REFLECTANCE_BANDS
from kpgeo.synth import SynthResult

from .builders import write_site_file

REPO = Path(__file__).resolve().parent.parent
UTM_30N = "EPSG:32630"
SITE = "tw"
#: A site inside the 2 x 2 km window of the shared archive (tests/conftest.py).
SITE_BBOX = (-5.708, 8.712, -5.692, 8.728)
BASELINE = "2024-01..2024-01"
MONTHS = ("2024-01", "2024-02", "2024-03")
TIMESERIES_COLUMNS = ["source_kind", "site", "month", "status", "scenes", "valid_pct", "preexisting_ha",
                      "new_ha", "cumulative_new_ha", "active_ha", "water_ha", "new_dug_ha",
                      "cumulative_new_dug_ha"]
#: A feature's properties, in order: what the area is and what it rests on, this month's growth
#: of it, how sure the pre-existing map is of it, and the month it was measured in
#: (docs/product.md §8).
PROPERTY_KEYS = ["site", "id", "status", "first_detected", "confirmed", "evidence", "area_ha",
                 "new_ha_this_month", "baseline_seasons", "certainty", "measured_month"]
MAX_DECIMALS = 6
#: Tolerance of areas measured on reprojected polygons against pixel-counted areas.
AREA_RTOL = 0.01
MONTH_RE = re.compile(r"^\d{4}-\d{2}$")


# ---- an RFC 7946 checker, independent of kpgeo ------------------------------------------------
def signed_area(ring: list[list[float]]) -> float:
    """Shoelace area of a closed ring: positive when counter-clockwise."""
    total = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        total += x0 * y1 - x1 * y0
    return total / 2


def polygons_of(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    """The polygons (lists of rings) of a Polygon or MultiPolygon."""
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    assert geometry["type"] == "MultiPolygon", geometry["type"]
    return list(geometry["coordinates"])


def _keys(obj: Any) -> Iterator[str]:
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield key
            yield from _keys(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from _keys(value)


def _numbers(obj: Any) -> Iterator[Decimal]:
    if isinstance(obj, Decimal):
        yield obj
    elif isinstance(obj, list):
        for value in obj:
            yield from _numbers(value)


def check_rfc7946(text: str) -> dict[str, Any]:
    """Assert that ``text`` is an RFC 7946 FeatureCollection of polygonal digging areas.

    No ``crs`` member anywhere; WGS84 lon/lat within range with at most 6 decimals; rings
    closed with at least 4 positions; exterior rings counter-clockwise, holes clockwise.
    Returns the parsed document (floats as floats).
    """
    exact = json.loads(text, parse_float=Decimal)
    assert exact["type"] == "FeatureCollection"
    assert "crs" not in set(_keys(exact)), "RFC 7946 §4: no crs member"
    for feature in exact["features"]:
        assert feature["type"] == "Feature"
        coordinates = feature["geometry"]["coordinates"]
        for number in _numbers(coordinates):
            exponent = number.as_tuple().exponent
            assert isinstance(exponent, int) and -exponent <= MAX_DECIMALS, number
    doc = json.loads(text)
    for feature in doc["features"]:
        polygons = polygons_of(feature["geometry"])
        assert polygons, feature["id"]
        for polygon in polygons:
            for i, ring in enumerate(polygon):
                assert len(ring) >= 4 and ring[0] == ring[-1], (feature["id"], "ring not closed")
                for lon, lat in ring:
                    assert -180 <= lon <= 180 and -90 <= lat <= 90, (lon, lat)
                area = signed_area(ring)
                if i == 0:
                    assert area > 0, (feature["id"], "exterior ring not counter-clockwise")
                else:
                    assert area < 0, (feature["id"], "hole not clockwise")
    return doc


def check_properties(doc: dict[str, Any], month: str | None = None) -> None:
    """Each feature names its site, id, status and months, and its area in ha."""
    for feature in doc["features"]:
        props = feature["properties"]
        assert list(props) == PROPERTY_KEYS, props
        assert feature["id"] == props["id"]
        assert props["status"] in {"preexisting", "new"}
        assert props["evidence"] in {"optical", "radar", "optical+radar"}
        assert props["status"] == "new" or props["evidence"] == "optical"
        assert isinstance(props["area_ha"], float) and props["area_ha"] > 0
        # The month's increment: none in pre-existing digging; null where not measured.
        increment = props["new_ha_this_month"]
        assert increment is None or 0 <= increment <= props["area_ha"]
        assert props["status"] == "new" or increment in (None, 0.0)
        assert props["measured_month"] is None or MONTH_RE.match(props["measured_month"])
        assert month is None or props["measured_month"] is None or \
            props["measured_month"] <= month
        if props["status"] == "preexisting":
            assert props["first_detected"] is None and props["confirmed"] is None
            assert f"{props['site']}-p-" in props["id"]
            seasons = props["baseline_seasons"]  # None only where unknown (a hand-made mask)
            assert (seasons is None and props["certainty"] is None) or (
                0 <= seasons <= 12 and props["certainty"] == ("low" if seasons < 12
                                                              else "normal"))
        else:
            assert props["baseline_seasons"] is None and props["certainty"] is None
            assert MONTH_RE.match(props["first_detected"]) and MONTH_RE.match(props["confirmed"])
            assert props["first_detected"] <= props["confirmed"]
            assert month is None or props["confirmed"] <= month
            assert f"{props['site']}-n-" in props["id"]
    ids = [f["id"] for f in doc["features"]]
    assert len(ids) == len(set(ids)), "ids are unique within a month"


def check_areas_in_utm(path: Path, min_area_ha: float = 0.1) -> int:
    """Areas of the features read by geopandas, in UTM 30N, match ``area_ha`` within 1 %.

    Returns the number of features compared.
    """
    frame = geopandas.read_file(path)
    assert frame.crs is not None and frame.crs.to_epsg() == 4326
    if frame.empty:  # a month with no digging: no columns to compare
        return 0
    big = frame[frame["area_ha"] >= min_area_ha]
    measured_ha = big.to_crs(UTM_30N).area / 1e4
    np.testing.assert_allclose(measured_ha.to_numpy(), big["area_ha"].to_numpy(),
                               rtol=AREA_RTOL)
    return len(big)


# ---- digging areas made by hand on a real site grid ------------------------------------------
@pytest.fixture(scope="module")
def grid() -> GeoBox:
    """The 1 km window of Tortiya's grid (UTM 30N, 10 m)."""
    return load_site(REPO / "aoi" / "tortiya.geojson").window(-5.70, 8.72, 1.0).grid


def _expected_id(grid: GeoBox, prefix: str, row: int, col: int) -> str:
    x, y, _ = grid.affine @ (col + 0.5, row + 0.5, 1.0)
    return f"tortiya-{prefix}-{math.floor(x)}-{math.floor(y)}"


def _hand_made(grid: GeoBox) -> tuple[np.ndarray, np.ndarray, DetectionState]:
    """A 6 x 6 old working with a 2 x 2 hole; new digging in two 3 x 3 groups touching at a
    corner (the lower right one confirmed first) and a separate 4 x 5 block."""
    shape = grid.shape.yx
    pre = np.zeros(shape, dtype=bool)
    pre[10:16, 10:16] = True
    pre[12:14, 12:14] = False
    new = np.zeros(shape, dtype=bool)
    first = np.zeros(shape, dtype="int32")
    confirmed = np.zeros(shape, dtype="int32")
    new[40:43, 40:43] = True
    first[40:43, 40:43], confirmed[40:43, 40:43] = 202403, 202403
    new[43:46, 43:46] = True
    first[43:46, 43:46], confirmed[43:46, 43:46] = 202401, 202402
    new[70:74, 20:25] = True
    first[70:74, 20:25], confirmed[70:74, 20:25] = 202402, 202403
    return pre, new, DetectionState(first, confirmed)


def test_hand_made_areas_have_seed_ids_months_and_pixel_areas(grid: GeoBox) -> None:
    """Ids spell the seed pixel (top-left for old digging, first confirmed for new), diagonal
    neighbours form one area, months and areas come from the pixels."""
    assert grid.crs is not None and grid.crs.epsg == 32630 and grid.shape.yx[0] >= 80
    pre, new, state = _hand_made(grid)
    areas = digging_areas("tortiya", grid, pre, new, state)
    assert [a.status for a in areas] == ["preexisting", "new", "new"]
    old, *fresh = areas
    assert old.id == _expected_id(grid, "p", 10, 10)
    assert (old.pixels, old.area_ha, old.first_detected, old.confirmed) == (32, 0.32, None, None)
    assert old.geometry.geom_type == "Polygon" and len(old.geometry.interiors) == 1
    assert old.geometry.area == pytest.approx(3200.0)
    by_id = {a.id: a for a in fresh}
    corner = by_id[_expected_id(grid, "n", 43, 43)]
    assert (corner.pixels, corner.area_ha) == (18, 0.18)
    assert (corner.first_detected, corner.confirmed) == ("2024-01", "2024-02")
    assert corner.geometry.area == pytest.approx(1800.0)
    block = by_id[_expected_id(grid, "n", 70, 20)]
    assert (block.pixels, block.first_detected, block.confirmed) == (20, "2024-02", "2024-03")
    assert [a.id for a in fresh] == sorted(by_id)


def test_preexisting_areas_given_once_equal_those_from_the_mask(grid: GeoBox) -> None:
    """The pipeline polygonizes pre-existing digging once per baseline and hands the areas in;
    the result, and its GeoJSON (converted once per geometry), are those made from the mask."""
    pre, new, state = _hand_made(grid)
    from_mask = digging_areas("tortiya", grid, pre, new, state)
    given = preexisting_areas("tortiya", grid, pre)
    assert [a.status for a in given] == ["preexisting"]
    from_areas = digging_areas("tortiya", grid, given, new, state)
    assert from_areas == from_mask and from_areas[0] is given[0]
    crs_of = {"tortiya": grid.crs}
    first = feature_collection(from_areas, crs_of)
    assert feature_collection(from_mask, crs_of) == first
    assert feature_collection(from_areas, crs_of) == first  # memoized: the same document
    assert given[0].geojson_geometry(grid.crs) is first["features"][0]["geometry"]


def test_hand_made_areas_as_rfc7946_geojson(grid: GeoBox, tmp_path: Path) -> None:
    """The hole comes out clockwise inside a counter-clockwise exterior, the corner-touching
    groups as two polygons of one feature; geopandas reads the file and UTM areas match."""
    pre, new, state = _hand_made(grid)
    areas = digging_areas("tortiya", grid, pre, new, state)
    foreign = {"month": "2024-03", "note": "hand-made"}
    doc = feature_collection(areas, {"tortiya": grid.crs}, foreign)
    text = json.dumps(doc)
    checked = check_rfc7946(text)
    check_properties(checked, "2024-03")
    assert checked["kpgeo"] == foreign
    by_id = {f["id"]: f for f in checked["features"]}
    old = by_id[_expected_id(grid, "p", 10, 10)]
    corner = by_id[_expected_id(grid, "n", 43, 43)]
    assert old["geometry"]["type"] == "Polygon" and len(old["geometry"]["coordinates"]) == 2
    hole = old["geometry"]["coordinates"][1]
    assert signed_area(hole) < 0 and len(hole) == 5
    assert corner["properties"]["area_ha"] == 0.18
    parts = polygons_of(corner["geometry"])
    assert len(parts) == 2 and all(len(p) == 1 for p in parts)
    path = write_geojson(tmp_path / "hand.geojson", areas, {"tortiya": grid.crs}, foreign)
    assert json.loads(path.read_text()) == doc
    assert check_areas_in_utm(path) == 3


def test_hand_made_ids_survive_growth(grid: GeoBox) -> None:
    """An area that grows (pixels confirmed later, above and left of its seed) keeps its id;
    when areas grow together the one confirmed first gives the id."""
    pre, new, state = _hand_made(grid)
    before = {a.id for a in digging_areas("tortiya", grid, pre, new, state)}
    grown = new.copy()
    first, confirmed = state.first_detected.copy(), state.confirmed.copy()
    later = np.zeros_like(new)
    later[36:40, 30:46] = True  # above and left of both corner groups
    later[46:70, 43:45] = True  # a trench down from the lower group ...
    later[68:70, 24:45] = True  # ... and across to the block
    later &= ~new
    grown |= later
    first[later], confirmed[later] = 202404, 202404
    after = digging_areas("tortiya", grid, pre, grown, DetectionState(first, confirmed))
    assert {a.id for a in after} == before - {_expected_id(grid, "n", 70, 20)}
    joined = next(a for a in after if a.status == "new")
    assert joined.id == _expected_id(grid, "n", 43, 43)
    assert joined.pixels == int(grown.sum())
    assert (joined.first_detected, joined.confirmed) == ("2024-01", "2024-02")


def test_an_unmapped_group_joining_an_area_does_not_take_its_id(grid: GeoBox) -> None:
    """A group confirmed early but too small to be mapped, which later joins a mapped area,
    does not change the area's id: seeds are chosen by the month pixels were first mapped."""
    shape = grid.shape.yx
    pre = np.zeros(shape, dtype=bool)
    small = np.zeros(shape, dtype=bool)
    small[20:22, 20:22] = True  # 4 px, confirmed 2025-01: below the 0.1 ha unit
    area = np.zeros(shape, dtype=bool)
    area[20:24, 23:28] = True  # 20 px, confirmed and mapped 2025-02
    confirmed = np.where(small, 202501, np.where(area, 202502, 0)).astype("int32")
    state = DetectionState(confirmed.copy(), confirmed.copy()).mapped(area, "2025-02")
    (feb,) = digging_areas("tortiya", grid, pre, area, state)
    assert feb.id == _expected_id(grid, "n", 20, 23)
    bridge = np.zeros(shape, dtype=bool)
    bridge[20:22, 22] = True  # 2025-03: the small group joins the area
    confirmed[bridge] = 202503
    joined = small | area | bridge
    state = DetectionState(confirmed.copy(), confirmed.copy(), state.mapped_since).mapped(
        joined, "2025-03")
    (mar,) = digging_areas("tortiya", grid, pre, joined, state)
    assert mar.id == feb.id and mar.pixels == 26


# ---- the documented command end to end -------------------------------------------------------
@dataclass(frozen=True)
class Products:
    """What a run left in its output folder, read right after it finished."""

    out: Path
    exports: dict[str, str]
    """Month -> text of ``exports/disturbed-YYYY-MM.geojson``."""
    per_site: dict[str, str]
    """Month -> text of ``<site>/<month>/disturbed.geojson``."""
    timeseries: str
    manifests: list[Path]
    hashes: dict[str, str]
    """Relative path -> sha256 of every product outside ``runs/`` (of ``index.html``, without
    its list of the run manifests, which each run adds to)."""
    runs_listed: list[str]
    """The run manifests ``index.html`` links, in its order."""
    sha256: dict[str, str]
    """Relative path -> sha256 of every file outside ``runs/``, as it is."""


#: The index page's list of run manifests (kpgeo/products/index_page.html).
RUNS_SECTION = re.compile(rb'<section class="kpgeo-site kpgeo-runs" id="runs">.*?</section>',
                          re.DOTALL)


def _digest(out: Path, path: Path) -> str:
    data = path.read_bytes()
    if path == out / "index.html":
        data = RUNS_SECTION.sub(b"", data)
    return hashlib.sha256(data).hexdigest()


def _read_products(out: Path) -> Products:
    files = sorted(p for p in out.rglob("*") if p.is_file() and "runs" not in p.parts)
    index = (out / "index.html").read_bytes()
    runs = RUNS_SECTION.search(index)
    return Products(
        out=out,
        exports={m: (out / "exports" / f"disturbed-{m}.geojson").read_text(encoding="utf-8")
                 for m in MONTHS if (out / "exports" / f"disturbed-{m}.geojson").is_file()},
        per_site={m: (out / SITE / m / "disturbed.geojson").read_text(encoding="utf-8")
                  for m in MONTHS if (out / SITE / m / "disturbed.geojson").is_file()},
        timeseries=(out / "timeseries.csv").read_text(encoding="utf-8"),
        manifests=sorted((out / "runs").glob("*.json")),
        hashes={str(p.relative_to(out)): _digest(out, p) for p in files},
        runs_listed=re.findall(r'href="(runs/[^"]+)"', runs.group().decode() if runs else ""),
        sha256={str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in files},
    )


def _run(aoi: Path, catalog: Path, out: Path, months: str, *extra: str) -> None:
    """``kpgeo run --aoi AOI --source stac --catalog DIR/collection.json --baseline A..B
    --months A..C --out OUT``, exactly as documented."""
    result = CliRunner().invoke(cli, [
        "run", "--aoi", str(aoi), "--source", "stac", "--catalog", str(catalog),
        "--baseline", BASELINE, "--months", months, "--out", str(out), *extra])
    assert result.exit_code == 0, (result.output, result.exception)


@pytest.fixture(scope="module")
def run_inputs(small_archive: SynthResult,
               tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The site file, the archive's collection and the output folder."""
    root = tmp_path_factory.mktemp("exports")
    aoi = write_site_file(root / "tw.geojson", SITE_BBOX, name=SITE)
    return aoi, small_archive.collection, root / "OUT"


@pytest.fixture(scope="module")
def first_run(run_inputs: tuple[Path, Path, Path]) -> Products:
    """One run of all three months into a new folder."""
    aoi, catalog, out = run_inputs
    _run(aoi, catalog, out, f"{MONTHS[0]}..{MONTHS[-1]}")
    return _read_products(out)


@pytest.fixture(scope="module")
def reruns(run_inputs: tuple[Path, Path, Path],
           first_run: Products) -> tuple[Products, Products]:
    """The same command again with ``--overwrite``, then only the last month, recomputed
    (``--overwrite``) from the state saved by the month before."""
    aoi, catalog, out = run_inputs
    _run(aoi, catalog, out, f"{MONTHS[0]}..{MONTHS[-1]}", "--overwrite")
    overwritten = _read_products(out)
    _run(aoi, catalog, out, f"{MONTHS[-1]}..{MONTHS[-1]}", "--overwrite")
    return overwritten, _read_products(out)


def test_every_product_exists_and_rasters_are_cogs(first_run: Products) -> None:
    """Per site and month: composite, indices and change as valid COGs on the UTM grid with
    every band described, and disturbed.geojson; the exports; one manifest."""
    out = first_run.out
    bands = {"composite.tif": len(REFLECTANCE_BANDS) + 1, "indices.tif": len(INDEX_NAMES),
             "change.tif": len(CHANGE_BANDS)}
    for month in MONTHS:
        for name, count in bands.items():
            path = out / SITE / month / name
            valid, errors, _ = cog_validate(str(path), quiet=True)
            assert valid, (path, errors)
            with rasterio.open(path) as src:
                assert src.count == count and src.crs.to_epsg() == 32630
                assert all(d and d.strip() for d in src.descriptions), (path, src.descriptions)
                assert src.tags()["month"] == month
        assert (out / SITE / month / "disturbed.geojson").is_file()
        assert month in first_run.exports
    with rasterio.open(out / SITE / MONTHS[0] / "indices.tif") as src:
        assert [d.split()[0] for d in src.descriptions] == [n.upper() for n in INDEX_NAMES]
        assert INDEX_NAMES[:4] == ("ndvi", "mndwi", "bsi", "ndti")
    assert len(first_run.manifests) == 1
    manifest = json.loads(first_run.manifests[0].read_text())
    assert manifest["status"] == "ok"
    listed = {o["path"] for o in manifest["outputs"]}
    assert {"timeseries.csv", *(f"exports/disturbed-{m}.geojson" for m in MONTHS)} <= listed
    for output in manifest["outputs"]:
        assert first_run.sha256[output["path"]] == output["sha256"], output["path"]


def test_reflectance_and_indices_are_stored_as_scaled_integers(first_run: Products) -> None:
    """composite.tif holds reflectance as Sentinel-2 L2A does (uint16, DN * 1e-4 - 0.1, DN 0
    no data) and indices.tif ten-thousandths (int16): read with their scales and offsets, as
    GDAL users do, the stored NDVI is the NDVI of the stored reflectance."""
    folder = first_run.out / SITE / MONTHS[-1]
    with rasterio.open(folder / "composite.tif") as src:
        assert set(src.dtypes) == {"uint16"} and src.nodata == 0
        assert src.scales == (1e-4,) * 6 + (1.0,) and src.offsets == (-0.1,) * 6 + (0.0,)
        cube = src.read(masked=True).astype("float64")
        reflectance = {b: cube[i] * 1e-4 - 0.1 for i, b in enumerate(REFLECTANCE_BANDS)}
        count = src.read(7)
    with rasterio.open(folder / "indices.tif") as src:
        assert set(src.dtypes) == {"int16"} and src.nodata == -32768
        assert src.scales == (1e-4,) * len(INDEX_NAMES) and set(src.offsets) == {0.0}
        stored_ndvi = src.read(INDEX_NAMES.index("ndvi") + 1, masked=True) * 1e-4
    valid = count > 0
    assert 0.5 < valid.mean() and not np.ma.getmaskarray(reflectance["red"])[valid].any()
    red, nir = reflectance["red"][valid], reflectance["nir"][valid]
    assert 0.0 < float(red.mean()) < 0.3 and 0.1 < float(nir.mean()) < 0.6
    # Each stored value is within half a DN of the float composite: the NDVI of the stored
    # bands is within a few ten-thousandths of the NDVI stored from the float bands.
    ndvi = (nir - red) / (nir + red)
    np.testing.assert_allclose(stored_ndvi[valid], ndvi, atol=5e-3)
    assert float(np.ma.median(np.abs(stored_ndvi[valid] - ndvi))) < 2e-4


def test_timeseries_columns_rows_and_areas_agree_with_geojson(first_run: Products) -> None:
    """timeseries.csv has exactly the documented columns, one ok row per month, and its
    pre-existing and cumulative new areas equal the sums of the month's polygons."""
    lines = first_run.timeseries.splitlines()
    assert lines[0] == ",".join(TIMESERIES_COLUMNS)
    rows = list(csv.DictReader(lines))
    assert [(r["site"], r["month"], r["status"]) for r in rows] == [
        (SITE, m, "ok") for m in MONTHS]
    for row in rows:
        doc = json.loads(first_run.exports[row["month"]])
        for status, column in (("preexisting", "preexisting_ha"), ("new", "cumulative_new_ha")):
            total = sum(f["properties"]["area_ha"] for f in doc["features"]
                        if f["properties"]["status"] == status)
            assert float(row[column]) == pytest.approx(total, abs=0.006), (row, status)
        assert int(row["scenes"]) > 0 and 0 < float(row["valid_pct"]) <= 100


def test_geojson_products_are_rfc7946_with_provenance(first_run: Products) -> None:
    """Exports and per-site files: RFC 7946, complete properties, and a ``kpgeo`` member with
    month, software, source, sites with their scene ids, and parameters; at least one
    digging area in some month, else this test proves nothing."""
    manifest = json.loads(first_run.manifests[0].read_text())
    scenes = {(m["site"], m["month"]): m["scene_ids"] for m in manifest["site_months"]}
    n_features = 0
    for month in MONTHS:
        export = check_rfc7946(first_run.exports[month])
        per_site = check_rfc7946(first_run.per_site[month])
        assert export["features"] == per_site["features"]
        check_properties(export, month)
        assert all(f["properties"]["site"] == SITE for f in export["features"])
        meta = export["kpgeo"]
        assert {"month", "software", "source", "sites", "parameters"} <= set(meta)
        assert meta["month"] == month and meta["software"].startswith("kpgeo ")
        assert meta["source"]["kind"] == "stac" and meta["source"]["catalog"]
        assert meta["sites"][SITE]["scene_ids"] == scenes[(SITE, month)]
        assert meta["sites"][SITE]["scene_ids"]
        assert meta["parameters"]["detection"]["min_area_ha"] == 0.1
        assert per_site["kpgeo"] == meta
        n_features += len(export["features"])
    assert n_features > 0, "the small archive gave no digging area in any month"


def test_exports_load_in_geopandas_with_utm_areas_matching(first_run: Products) -> None:
    """geopandas reads every export; areas measured after .to_crs(EPSG:32630) match
    ``area_ha`` within 1 % for every feature of at least 0.1 ha."""
    compared = sum(check_areas_in_utm(first_run.out / "exports" / f"disturbed-{m}.geojson")
                   for m in MONTHS)
    assert compared > 0


def test_ids_are_stable_across_months(first_run: Products) -> None:
    """Areas only grow: every id of month M is still there in month M + 1, with the same
    status and months, and an area no smaller."""
    docs = [json.loads(first_run.exports[m]) for m in MONTHS]
    for earlier, later in itertools.pairwise(docs):
        after = {f["id"]: f["properties"] for f in later["features"]}
        for feature in earlier["features"]:
            props = feature["properties"]
            assert feature["id"] in after, feature["id"]
            kept = after[feature["id"]]
            assert (kept["status"], kept["first_detected"], kept["confirmed"]) == (
                props["status"], props["first_detected"], props["confirmed"])
            assert kept["area_ha"] >= props["area_ha"]


def _features(text: str) -> list[dict[str, Any]]:
    return json.loads(text)["features"]


def test_rerun_with_overwrite_gives_identical_products(first_run: Products,
                                                       reruns: tuple[Products, Products]) -> None:
    """The same command with --overwrite rewrites the same features, ids and rows; every
    product (GeoJSON, CSV, COG) is byte-identical; a second manifest is added."""
    overwritten, _ = reruns
    for month in MONTHS:
        assert _features(overwritten.exports[month]) == _features(first_run.exports[month])
        assert _features(overwritten.per_site[month]) == _features(first_run.per_site[month])
    assert overwritten.timeseries == first_run.timeseries
    changed = [p for p in first_run.hashes if overwritten.hashes.get(p) != first_run.hashes[p]]
    assert not [p for p in changed if p.endswith((".geojson", ".csv"))]
    assert not changed, "rasters differ after a rerun (README, Method: rerunning a month gives identical products)"
    assert overwritten.hashes.keys() == first_run.hashes.keys()
    assert len(overwritten.manifests) == 2
    # The index links every run's manifest, newest first, this run's included.
    assert overwritten.runs_listed == [f"runs/{p.name}" for p in overwritten.manifests[::-1]]


def test_rerun_of_the_last_month_gives_identical_products(first_run: Products,
                                                          reruns: tuple[Products, Products],
                                                          ) -> None:
    """``--months`` of only the last month, from the stored state of the month before: the
    same features and ids, and timeseries.csv keeps identical rows."""
    _, last_only = reruns
    month = MONTHS[-1]
    assert _features(last_only.exports[month]) == _features(first_run.exports[month])
    assert ([f["id"] for f in _features(last_only.per_site[month])]
            == [f["id"] for f in _features(first_run.per_site[month])])
    assert last_only.timeseries == first_run.timeseries
    for earlier in MONTHS[:-1]:
        assert last_only.exports[earlier] == first_run.exports[earlier]
    assert last_only.hashes == first_run.hashes
    assert len(last_only.manifests) == 3


def _collection(*rings: list[list[float]], **members: Any) -> str:
    """A one-feature FeatureCollection of a polygon with ``rings``, as JSON text."""
    return json.dumps({"type": "FeatureCollection", **members, "features": [{
        "type": "Feature", "id": "a", "properties": {},
        "geometry": {"type": "Polygon", "coordinates": list(rings)}}]})


def _ring(x0: float, y0: float, side: float) -> list[list[float]]:
    """A counter-clockwise square ring with its lower-left corner at ``(x0, y0)``."""
    return [[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side], [x0, y0]]


@pytest.mark.parametrize("doc", [
    {"type": "FeatureCollection", "kpgeo": {"month": "2024-03", "note": "é"},
     "features": [{"type": "Feature", "id": "a", "properties": {"x": [1, 2]},
                   "geometry": {"type": "Point", "coordinates": [-5.7, 8.72]}},
                  {"type": "Feature", "id": "b", "properties": {}, "geometry": None}]},
    {"type": "FeatureCollection", "features": []},
    {"features": [{"a": 1}]},
    {"command": "run", "nested": {"features": [1, 2]}},
])
def test_json_products_parse_back_with_one_feature_a_line(tmp_path: Path,
                                                          doc: dict[str, object]) -> None:
    """GeoJSON is written one feature per line (json's fast encoder), anything else indented;
    both parse back to the same document."""
    features = doc.get("features")
    write = write_feature_collection if isinstance(features, list) else write_json
    text = write(tmp_path / "doc.json", doc).read_text(encoding="utf-8")  # type: ignore[arg-type]
    assert json.loads(text) == doc
    if isinstance(features, list):
        lines = text.splitlines()
        for feature in features:
            assert json.dumps(feature, ensure_ascii=False) in {line.strip().rstrip(",")
                                                               for line in lines}
    else:
        assert text == json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def test_rfc7946_checker_rejects_what_it_should() -> None:
    """The checker passes a square with a hole and fails a crs member, a clockwise exterior,
    a counter-clockwise hole, an open ring, 7 decimals and a latitude out of range."""
    outer, hole = _ring(-5.7, 8.72, 0.001), _ring(-5.6997, 8.7203, 0.0004)
    check_rfc7946(_collection(outer, hole[::-1]))
    bad = [
        _collection(outer, crs={"type": "name", "properties": {"name": "EPSG:4326"}}),
        _collection(outer[::-1]),
        _collection(outer, hole),
        _collection(outer[:-1]),
        _collection(_ring(-5.7, 8.7200001, 0.001)),
        _collection(_ring(-5.7, 89.9995, 0.001)),
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            check_rfc7946(text)


def test_saved_state_made_with_other_parameters_is_recomputed(
        run_inputs: tuple[Path, Path, Path], first_run: Products, tmp_path: Path) -> None:
    """Rerunning the last month with another threshold must not carry the earlier month's
    state made with the old one: the saved baseline and state are recomputed."""
    import dataclasses
    import shutil

    from kpgeo.cli import build_run_config
    from kpgeo.run import SIGNATURE_TAG, run

    aoi, catalog, _ = run_inputs
    before = list(csv.DictReader(first_run.timeseries.splitlines()))
    assert float(before[-1]["cumulative_new_ha"]) > 0  # there was new digging to lose
    out = tmp_path / "copy"
    shutil.copytree(first_run.out, out)
    config = build_run_config(None, months_text=MONTHS[-1], aoi_files=(aoi,), source="stac",
                              catalog=str(catalog), baseline=BASELINE, out=out)
    # No loss of NDVI and no water counts as new any more: nothing new can be confirmed.
    strict = dataclasses.replace(config.detection, ndvi_drop=2.0, wet_ndvi_drop=2.0,
                                 water_index_min=2.0)
    run(dataclasses.replace(config, detection=strict), progress=lambda _: None)
    for month in MONTHS[1:]:  # the earlier month was recomputed too, with the new threshold
        with rasterio.open(out / SITE / month / "change.tif") as src:
            assert '"ndvi_drop": 2.0' in src.tags()[SIGNATURE_TAG]
    rows = list(csv.DictReader((out / "timeseries.csv").open(encoding="utf-8")))
    assert [r["cumulative_new_ha"] for r in rows if r["month"] in MONTHS[1:]] == ["0.00", "0.00"]


def test_done_site_months_are_kept_without_overwrite(
        run_inputs: tuple[Path, Path, Path], reruns: tuple[Products, Products]) -> None:
    """A rerun without ``--overwrite`` keeps finished site-months (docs/product.md §9): nothing changes."""
    aoi, catalog, out = run_inputs
    before = _read_products(out)
    result = CliRunner().invoke(cli, [
        "-v", "run", "--aoi", str(aoi), "--source", "stac", "--catalog", str(catalog),
        "--baseline", BASELINE, "--months", f"{MONTHS[0]}..{MONTHS[-1]}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "0 site-months written" in result.output
    after = _read_products(out)
    assert after.hashes == before.hashes


def test_two_runs_cannot_write_one_output_folder(run_inputs: tuple[Path, Path, Path],
                                                 tmp_path: Path) -> None:
    """While one run holds the folder's lock, another is refused with a clear message."""
    import fcntl

    from kpgeo.run import LOCK_NAME

    aoi, catalog, _ = run_inputs
    out = tmp_path / "busy"
    out.mkdir()
    with open(out / LOCK_NAME, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = CliRunner().invoke(cli, [
            "run", "--aoi", str(aoi), "--source", "stac", "--catalog", str(catalog),
            "--baseline", BASELINE, "--months", f"{MONTHS[0]}..{MONTHS[-1]}",
            "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "another kpgeo run is writing" in result.output
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]


def test_background_writes_stop_after_a_failure_and_raise_it(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A month's products are queued in order (composite ... change.tif, which marks the month
    done): after a failed write nothing queued behind it is written, and the failure is raised
    by the next wait, or logged when the run is already failing."""
    writes = BackgroundWrites()
    writes.submit(write_json, tmp_path / "first.json", {"ok": 1})

    def disk_full(path: Path) -> None:
        raise OSError(28, "No space left on device", str(path))

    writes.submit(disk_full, tmp_path / "composite.tif")
    writes.submit(write_json, tmp_path / "change.json", {"done": True})
    with pytest.raises(OSError, match="No space left"):
        writes.wait()
    writes.close()
    assert (tmp_path / "first.json").is_file() and not (tmp_path / "change.json").exists()

    failing = BackgroundWrites()
    failing.submit(disk_full, tmp_path / "indices.tif")
    failing.close()  # the caller is failing already: the write's failure is logged, not lost
    assert "No space left" in caplog.text


@pytest.mark.parametrize("dtype", ["float32", "uint16"])
def test_cogs_are_written_without_gdal_complaints(tmp_path: Path, caplog, dtype: str) -> None:  # type: ignore[no-untyped-def]
    """Every creation option is one GDAL's COG driver knows (it logs, and ignores, others)."""
    from kpgeo.products.export import write_cog

    grid = GeoBox((600, 600), rasterio.Affine(10, 0, 500000, 0, -10, 900000), "EPSG:32630")
    values = (np.random.default_rng(0).random((2, 600, 600)) * 1000).astype(dtype)
    with caplog.at_level("WARNING"):
        path = write_cog(tmp_path / f"{dtype}.tif", values, grid, nodata=0)
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")], caplog.text
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), values)
        # Floats take GDAL's floating-point predictor (smaller files, no more CPU); integers
        # the horizontal-differencing one.
        predictor = src.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"]
        assert predictor == ("3" if dtype == "float32" else "2")


@pytest.mark.parametrize(("shape", "tile"), [((601, 601), 304), ((600, 600), 304),
                                            ((3327, 3345), 336), ((100, 100), 256),
                                            ((1024, 1024), 256), ((700, 2000), 352)])
def test_cog_tiles_cover_the_raster_with_the_least_padding(tmp_path: Path,
                                                           shape: tuple[int, int],
                                                           tile: int) -> None:
    """Of 256 to 512 px (multiples of 16), the tile size whose whole tiles pad the raster
    least, checked against every candidate; a small raster written with it is a valid COG."""
    from kpgeo.products.export import block_px, write_cog

    def padded(size: int) -> int:
        return math.ceil(shape[0] / size) * size * math.ceil(shape[1] / size) * size

    assert block_px(*shape) == tile
    assert tile % 16 == 0 and all(padded(tile) <= padded(s) for s in range(256, 513, 16))
    if max(shape) <= 700:
        grid = GeoBox(shape, rasterio.Affine(10, 0, 500000, 0, -10, 900000), "EPSG:32630")
        path = write_cog(tmp_path / "t.tif", np.ones(shape, "uint16"), grid, nodata=0)
        assert cog_validate(str(path), quiet=True)[0]
        with rasterio.open(path) as src:
            assert src.block_shapes == [(tile, tile)]


def test_background_writes_interrupted_wait_still_reports_the_failure(tmp_path: Path,
                                                                      caplog) -> None:  # type: ignore[no-untyped-def]
    """A wait interrupted (Ctrl-C) before a queued write fails: close() still logs it."""
    release = threading.Event()
    writes = BackgroundWrites()

    def slow_failure(path: Path) -> None:
        release.wait(5)
        raise OSError(28, "No space left on device", str(path))

    writes.submit(slow_failure, tmp_path / "change.tif")
    timer = threading.Timer(0.2, release.set)
    timer.start()
    interrupter = threading.Timer(0.05, _thread.interrupt_main)
    interrupter.start()
    with pytest.raises(KeyboardInterrupt):
        writes.wait()
    writes.close()
    timer.join()
    assert "No space left" in caplog.text


def test_dug_ground_is_the_footprint_and_its_confirmed_edge() -> None:
    """The dug area sums the footprint's shares and its edge's: confirmed pixels beside it
    (dug less than half), not confirmed pixels elsewhere nor pre-existing ones."""
    from kpgeo.methods.polygons import dug_ground

    footprint = np.zeros((10, 10), dtype=bool)
    footprint[3:6, 3:6] = True
    confirmed = np.zeros_like(footprint)
    confirmed[2:7, 2:7] = True  # the footprint and a ring around it
    confirmed[9, 9] = True  # far away
    pre = np.zeros_like(footprint)
    pre[2, 2] = True
    expected = confirmed.copy()
    expected[9, 9] = expected[2, 2] = False
    np.testing.assert_array_equal(dug_ground(footprint, confirmed, pre), expected)
