"""Production-volume figures (docs/product.md §7) and ``kpgeo export`` to GeoPackage and KML (docs/product.md §8)."""

from __future__ import annotations

import csv
import dataclasses
import html
import json
import sqlite3
import xml.etree.ElementTree as ET
from contextlib import closing
from pathlib import Path
from typing import Any

import geopandas
import numpy as np
import pandas
import pyogrio
import pytest
from click.testing import CliRunner

from kpgeo.cli import cli
from kpgeo.config import Assumption, VolumeConfig
from kpgeo.methods.volume import COLUMNS, draw_factors, quantiles, volume_rows
from kpgeo.products.kml import kml_colour, write_kml
from kpgeo.products.map_layers import DETECTION_COLOURS, PREEXISTING_COLOUR
from kpgeo.synth import SynthResult

from .builders import write_site_file

MONTHS = ("2024-01", "2024-02", "2024-03")


def _row(new_ha: str, cumulative_ha: str, status: str = "ok") -> dict[str, str]:
    return {"site": "s", "month": "2024-05", "status": status, "new_ha": new_ha,
            "cumulative_new_ha": cumulative_ha}


def test_percentiles_are_ordered_and_positive() -> None:
    q = quantiles(12.5, *draw_factors(VolumeConfig()))
    assert 0 < q["gravel_m3_p10"] <= q["gravel_m3_p50"] <= q["gravel_m3_p90"]
    assert 0 < q["carats_p10"] <= q["carats_p50"] <= q["carats_p90"]
    # The spread is real: the ranges are wide, P90 is well above P10.
    assert q["carats_p90"] > 2 * q["carats_p10"]


def test_figures_scale_linearly_with_area_for_fixed_assumptions() -> None:
    factors = draw_factors(VolumeConfig())
    one, three = quantiles(1.0, *factors), quantiles(3.0, *factors)
    for key, value in one.items():
        assert three[key] == pytest.approx(3 * value, rel=1e-12)
    assert all(v == 0 for v in quantiles(0.0, *factors).values())


def test_point_assumptions_give_the_formula_exactly() -> None:
    """With every range collapsed to a point, P10 = P50 = P90 = area x f x h x G x r."""
    point = VolumeConfig(
        gravel_fraction=Assumption(0.5, 0.5), gravel_thickness_m=Assumption(1.0, 1.0),
        grade_ct_per_m3=Assumption(1.0, 1.0), recovery=Assumption(0.7, 0.7))
    q = quantiles(10.0, *draw_factors(point))
    assert q["gravel_m3_p10"] == pytest.approx(50_000.0) == q["gravel_m3_p90"]
    assert q["carats_p50"] == pytest.approx(35_000.0)  # docs/domain.md 1.7 sanity check


def test_same_seed_same_figures_other_seed_other_figures() -> None:
    rows = [_row("2.50", "10.00")]
    a = volume_rows(rows, VolumeConfig(seed=1))
    b = volume_rows(rows, VolumeConfig(seed=1))
    c = volume_rows(rows, VolumeConfig(seed=2))
    assert a == b and a != c


def test_a_gap_month_has_no_figures() -> None:
    (row,) = volume_rows([_row("", "", status="gap")], VolumeConfig())
    assert all(row.get(c, "") == "" for c in COLUMNS[COLUMNS.index("new_gravel_m3_p10"):])


@pytest.fixture(scope="module")
def run_out(small_archive: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documented run on the shared synthetic archive."""
    root = tmp_path_factory.mktemp("volume")
    aoi = write_site_file(root / "v.geojson", (-5.708, 8.712, -5.692, 8.728), name="v")
    out = root / "OUT"
    result = CliRunner().invoke(cli, [
        "run", "--aoi", str(aoi), "--source", "stac", "--catalog",
        str(small_archive.collection), "--baseline", "2024-01..2024-01", "--months",
        f"{MONTHS[0]}..{MONTHS[-1]}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_run_writes_a_volume_csv_per_month_matching_the_time_series(run_out: Path) -> None:
    series = {r["month"]: r for r in csv.DictReader((run_out / "timeseries.csv").open())}
    for month in MONTHS:
        with open(run_out / "exports" / f"volume-{month}.csv", newline="") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == COLUMNS
            (row,) = list(reader)
        assert row["new_ha"] == series[month]["new_ha"]
        assert row["cumulative_new_ha"] == series[month]["cumulative_new_ha"]
        values = [float(row[f"cumulative_carats_p{q}"]) for q in (10, 50, 90)]
        assert values == sorted(values)
    last = float(series[MONTHS[-1]]["cumulative_new_ha"])
    assert last > 0  # the archive has new digging, so the figures are not trivially zero


@pytest.mark.parametrize("fmt", ["gpkg", "kml"])
def test_export_formats_hold_the_same_features_and_areas(run_out: Path, fmt: str) -> None:
    month = MONTHS[-1]
    result = CliRunner().invoke(cli, ["export", "--month", month, "--format", fmt,
                                      "--out", str(run_out)])
    assert result.exit_code == 0, result.output
    path = run_out / "exports" / f"disturbed-{month}.{fmt}"
    assert str(path) in result.output
    geojson = geopandas.read_file(run_out / "exports" / f"disturbed-{month}.geojson")
    other = _read_layers(path)
    assert len(geojson) > 0 and len(other) == len(geojson)
    assert other.crs is not None and other.crs.to_epsg() == 4326
    ids = other["Name"] if fmt == "kml" else other["id"]  # KML names placemarks by id
    assert sorted(ids) == sorted(geojson["id"])
    a = geojson.set_index("id").sort_index()
    b = other.assign(id=list(ids)).set_index("id").sort_index()
    for column in ("site", "status", "first_detected", "confirmed", "evidence"):
        assert [None if v in (None, "") or v != v else v for v in b[column]] == \
               [None if v in (None, "") or v != v else v for v in a[column]]
    np.testing.assert_allclose(b["area_ha"].astype(float), a["area_ha"].astype(float))
    utm_a = a.geometry.to_crs(32630).area.to_numpy()
    utm_b = geopandas.GeoSeries(b.geometry, crs=4326).to_crs(32630).area.to_numpy()
    np.testing.assert_allclose(utm_b, utm_a, rtol=1e-6)
    np.testing.assert_allclose(utm_a / 1e4, a["area_ha"].astype(float), rtol=0.01)


def _read_layers(path: Path) -> geopandas.GeoDataFrame:
    """Every layer of a vector file as GDAL reads it (a KML folder is a layer), in one frame."""
    frames = [geopandas.read_file(path, layer=name) for name in pyogrio.list_layers(path)[:, 0]]
    return pandas.concat([f for f in frames if len(f)], ignore_index=True)


def _export(run_out: Path, fmt: str) -> tuple[Path, dict[str, Any]]:
    """``kpgeo export`` of the last month in ``fmt``: its path, and the GeoJSON export."""
    month = MONTHS[-1]
    result = CliRunner().invoke(cli, ["export", "--month", month, "--format", fmt,
                                      "--out", str(run_out)])
    assert result.exit_code == 0, result.output
    source = run_out / "exports" / f"disturbed-{month}.geojson"
    return source.with_suffix(f".{fmt}"), json.loads(source.read_text(encoding="utf-8"))


#: Children each KML element written may have, in the order of the KML 2.2 schema
#: (ogckml22.xsd): a Feature's own elements, then a container's Schema and Features (same rank).
KML_ORDER: dict[str, tuple[tuple[str, ...], ...]] = {
    "kml": (("Document",),),
    "Document": (("name",), ("open",), ("description",), ("styleUrl",), ("Style",),
                 ("ExtendedData",), ("Schema",), ("Folder", "Placemark")),
    "Folder": (("name",), ("open",), ("description",), ("styleUrl",), ("Style",),
               ("ExtendedData",), ("Folder", "Placemark")),
    "Placemark": (("name",), ("description",), ("styleUrl",), ("ExtendedData",),
                  ("Polygon", "MultiGeometry")),
    "Style": (("LineStyle",), ("PolyStyle",)),
    "LineStyle": (("color",), ("width",)),
    "PolyStyle": (("color",),),
    "ExtendedData": (("Data", "SchemaData"),),
    "Data": (("value",),),
    "Schema": (("SimpleField",),),
    "SchemaData": (("SimpleData",),),
    "MultiGeometry": (("Polygon",),),
    "Polygon": (("tessellate",), ("outerBoundaryIs",), ("innerBoundaryIs",)),
    "outerBoundaryIs": (("LinearRing",),),
    "innerBoundaryIs": (("LinearRing",),),
    "LinearRing": (("coordinates",),),
}


def _check_kml_schema_order(element: ET.Element) -> None:
    """Every element is one KML 2.2 allows where it stands, in the schema's order."""
    tag = element.tag.removeprefix(KML)
    ranks = {name: i for i, names in enumerate(KML_ORDER.get(tag, ())) for name in names}
    seen = -1
    for child in element:
        name = child.tag.removeprefix(KML)
        assert child.tag.startswith(KML), child.tag
        assert name in ranks, f"<{name}> inside <{tag}>"
        assert ranks[name] >= seen, f"<{name}> after a later element inside <{tag}>"
        seen = ranks[name]
        _check_kml_schema_order(child)


KML = "{http://www.opengis.net/kml/2.2}"


def _kml_placemarks(root: ET.Element) -> dict[str, tuple[str, str, ET.Element]]:
    """Placemark name -> (site folder, status folder, placemark)."""
    out = {}
    for site in root.findall(f"{KML}Document/{KML}Folder"):
        for status in site.findall(f"{KML}Folder"):
            for placemark in status.findall(f"{KML}Placemark"):
                out[placemark.findtext(f"{KML}name") or ""] = (
                    site.findtext(f"{KML}name") or "", status.findtext(f"{KML}name") or "",
                    placemark)
    return out


def _kml_rings(placemark: ET.Element) -> list[list[list[list[float]]]]:
    """The placemark's polygons as GeoJSON MultiPolygon coordinates."""
    polygons = []
    for polygon in placemark.iter(f"{KML}Polygon"):
        rings = [polygon.find(f"{KML}outerBoundaryIs")]
        rings += polygon.findall(f"{KML}innerBoundaryIs")
        polygons.append([[[float(v) for v in point.split(",")] for point in
                          (ring.findtext(f".//{KML}coordinates") or "").split()]
                         for ring in rings if ring is not None])
    return polygons


def _geojson_rings(geometry: dict[str, Any]) -> list[list[list[list[float]]]]:
    coordinates = geometry["coordinates"]
    return [coordinates] if geometry["type"] == "Polygon" else coordinates


def test_kml_export_is_styled_in_folders_with_its_provenance(run_out: Path) -> None:
    """Google Earth's KML 2.2: the month, source and parameters in the document's description
    and data; a folder per site holding a folder per status; each area styled by status and
    first-detection month, with the GeoJSON's properties and coordinates."""
    path, geojson = _export(run_out, "kml")
    root = ET.parse(path).getroot()
    assert root.tag == f"{KML}kml"
    _check_kml_schema_order(root)
    document = root.find(f"{KML}Document")
    assert document is not None
    meta = geojson["kpgeo"]
    description = document.findtext(f"{KML}description") or ""
    for text in (meta["month"], meta["software"], meta["source"]["kind"],
                 meta["source"]["catalog"], meta["source"]["collection"], meta["baseline"],
                 "detection.ndvi_drop", "detection.min_area_ha", "mask.cloud_buffer_m"):
        assert html.escape(text) in description, text
    data = {d.get("name"): d.findtext(f"{KML}value")
            for d in document.findall(f"{KML}ExtendedData/{KML}Data")}
    assert data["month"] == meta["month"] and data["software"] == meta["software"]
    assert json.loads(data["source"] or "") == meta["source"]
    assert json.loads(data["parameters"] or "") == meta["parameters"]
    styles = {s.get("id"): s for s in document.findall(f"{KML}Style")}
    placemarks = _kml_placemarks(root)
    features = {f["properties"]["id"]: f for f in geojson["features"]}
    assert features and sorted(placemarks) == sorted(features)
    assert [f.findtext(f"{KML}name") for f in document.findall(f"{KML}Folder")] == \
        sorted(meta["sites"])
    for name, (site, status, placemark) in placemarks.items():
        props = features[name]["properties"]
        assert site == props["site"]
        assert status == f"{site}: " + {"new": "new digging",
                                        "preexisting": "pre-existing digging"}[props["status"]]
        style = (placemark.findtext(f"{KML}styleUrl") or "").removeprefix("#")
        assert style == (f"new-{props['first_detected']}" if props["status"] == "new"
                         else "preexisting")
        assert style in styles
        simple = {d.get("name"): d.text for d in placemark.iter(f"{KML}SimpleData")}
        assert simple == {k: str(v) for k, v in props.items() if k != "id" and v is not None}
        assert _kml_rings(placemark) == _geojson_rings(features[name]["geometry"])
    # Read back by GDAL's LIBKML driver, Google's own KML library (and QGIS's reader).
    frame = _read_layers(path)
    assert sorted(frame["Name"]) == sorted(features)
    assert frame["area_ha"].dtype == float


def test_kml_styles_follow_status_and_first_detection_month(tmp_path: Path) -> None:
    """Two sites, pre-existing digging and new digging of two months, one area in two parts:
    a style per status and month, coloured as on the maps, each area in its site's and
    status's folder."""
    square = [[-5.70, 8.71], [-5.69, 8.71], [-5.69, 8.72], [-5.70, 8.72], [-5.70, 8.71]]
    hole = [[-5.698, 8.712], [-5.698, 8.714], [-5.696, 8.714], [-5.698, 8.712]]

    def area(site: str, id_: str, status: str, first: str | None, geometry: dict[str, Any],
             ) -> dict[str, Any]:
        return {"type": "Feature", "id": id_, "geometry": geometry, "properties": {
            "site": site, "id": id_, "status": status, "first_detected": first,
            "confirmed": first, "area_ha": 1.25}}

    polygon = {"type": "Polygon", "coordinates": [square, hole]}
    doc = {"type": "FeatureCollection", "kpgeo": {
        "month": "2024-06", "software": "kpgeo 0", "baseline": "2024-01..2024-03",
        "source": {"kind": "stac", "catalog": "a&b", "collection": "c"},
        "sites": {"a": {"status": "ok", "scene_ids": ["x"]}, "b": {"status": "gap"}},
        "parameters": {"detection": {"ndvi_drop": 0.1}}},
        "features": [
            area("a", "a-p-1", "preexisting", None, polygon),
            area("a", "a-n-1", "new", "2024-04", polygon),
            area("a", "a-n-2", "new", "2024-06",
                 {"type": "MultiPolygon", "coordinates": [[square], [hole]]}),
            area("b", "b-n-1", "new", "2024-04", polygon)]}
    path = write_kml(tmp_path / "d.kml", doc)
    root = ET.parse(path).getroot()
    _check_kml_schema_order(root)
    styles = {s.get("id"): (s.findtext(f"{KML}LineStyle/{KML}color"),
                            s.findtext(f"{KML}PolyStyle/{KML}color"))
              for s in root.iter(f"{KML}Style")}
    assert set(styles) == {"preexisting", "new-2024-04", "new-2024-06"}
    assert styles["preexisting"][0] == kml_colour(PREEXISTING_COLOUR)
    # The ramp runs from the first month after the baseline (orange) to the export's
    # (reddish purple).
    assert styles["new-2024-04"][0] == kml_colour(DETECTION_COLOURS[0]) == "ff009fe6"
    assert styles["new-2024-06"][0] == kml_colour(DETECTION_COLOURS[-1])
    assert all(fill[:2] == "40" and line[:2] == "ff" for line, fill in styles.values())
    placemarks = _kml_placemarks(root)
    assert {n: (site, status) for n, (site, status, _) in placemarks.items()} == {
        "a-p-1": ("a", "a: pre-existing digging"), "a-n-1": ("a", "a: new digging"),
        "a-n-2": ("a", "a: new digging"), "b-n-1": ("b", "b: new digging")}
    assert len(_kml_rings(placemarks["a-n-2"][2])) == 2
    assert _kml_rings(placemarks["a-n-1"][2]) == [[square, hole]]
    document = root.find(f"{KML}Document")
    assert document is not None
    assert "a&amp;b" in (document.findtext(f"{KML}description") or "")  # escaped HTML
    frame = _read_layers(path)
    assert sorted(frame["Name"]) == ["a-n-1", "a-n-2", "a-p-1", "b-n-1"]
    assert set(pyogrio.list_layers(path)[:, 0]) == {
        "a", "a: pre-existing digging", "a: new digging", "b", "b: new digging"}


#: GeoPackage extensions GDAL 3.6 knows (others make it warn when opening the file).
GDAL36_EXTENSIONS = {"gpkg_rtree_index", "gpkg_metadata", "gpkg_schema", "gpkg_crs_wkt",
                     "gpkg_geometry_type_trigger", "gpkg_srs_id_trigger"}


def test_geopackage_export_keeps_provenance_in_a_version_gdal_3_6_reads(run_out: Path) -> None:
    """GeoPackage 1.3 (``user_version`` 10300: GDAL 3.6 warns about 1.4's 10400), with the
    month, software, source, baseline, sites and parameters in its metadata tables."""
    path, geojson = _export(run_out, "gpkg")
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10300
        extensions = {r[0] for r in db.execute("SELECT extension_name FROM gpkg_extensions")}
        assert extensions <= GDAL36_EXTENSIONS, extensions
        ((scope, document),) = db.execute(
            "SELECT m.md_scope, m.metadata FROM gpkg_metadata m JOIN gpkg_metadata_reference r"
            " ON r.md_file_id = m.id WHERE r.reference_scope = 'geopackage'").fetchall()
    assert scope == "dataset"
    meta = geojson["kpgeo"]
    assert f'<MDI key="month">{meta["month"]}</MDI>' in document
    found = pyogrio.read_info(path)["dataset_metadata"]
    assert found["month"] == meta["month"] and found["software"] == meta["software"]
    assert found["baseline"] == meta["baseline"]
    for key in ("source", "sites", "parameters"):
        assert json.loads(found[key]) == meta[key], key
    assert pyogrio.list_layers(path)[:, 0].tolist() == ["digging"]


def test_bad_volume_range_is_refused_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    aoi = Path(__file__).resolve().parent.parent / "aoi" / "tortiya.geojson"
    path.write_text(f'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                    f'[[sites]]\naoi = "{aoi}"\n[volume.recovery]\nlow = 0.9\nhigh = 0.5\n')
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "volume.recovery = [0.9, 0.5]" in result.output
    assert not (tmp_path / "out").exists()


def test_volume_config_round_trips_through_the_manifest_view() -> None:
    from kpgeo.config import PipelineConfig

    doc = PipelineConfig().to_dict()
    assert doc["volume"]["grade_ct_per_m3"]["low"] == 0.3
    assert "docs/domain.md" in doc["volume"]["recovery"]["source"]
    assert dataclasses.asdict(VolumeConfig())["draws"] == 20000
