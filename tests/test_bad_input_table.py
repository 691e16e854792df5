"""The README's "Bad input" table, row by row, through the ``kpgeo`` command line (docs/product.md §10).

The table is the source of truth: :data:`CASES` maps the first column of every row to concrete
command lines, and :func:`test_every_readme_row_has_cases` fails when a row has no case or a
case no row. Each case must exit with code 2, print exactly one line ``kpgeo: error: ...`` on
stderr naming the bad value, and write nothing. All refusals happen while validating, so no
case reaches a source, a network or the computation.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kpgeo.cli import cli

from .builders import write_site_file
from .conftest import REPO

Bbox = tuple[float, float, float, float]

#: A good 1 x 1 km site at Tortiya; every case has it as ``site.geojson``.
SITE_BBOX: Bbox = (-5.705, 8.715, -5.695, 8.725)
SITE = "site.geojson"
OUT = "out"
#: The outline of :data:`SITE_BBOX`, counter-clockwise, closed.
RING = [[-5.705, 8.715], [-5.695, 8.715], [-5.695, 8.725], [-5.705, 8.725], [-5.705, 8.715]]
ERROR_PREFIX = "kpgeo: error: "
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class Case:
    """One refusal: a command line, the files it reads, and what its one line must name."""

    id: str
    """Test id, unique over all rows."""
    argv: tuple[str, ...]
    """Arguments after ``kpgeo``; paths are relative to the case's working folder."""
    names: tuple[str, ...]
    """Substrings the error line must hold: the bad value (and where useful the fix)."""
    files: Mapping[str, str | bytes | Bbox | dict[str, Any]] = field(default_factory=dict)
    """Files to create first: text, bytes, a site rectangle (``write_site_file``) or JSON."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Environment variables to set; ``SH_CLIENT_ID``/``SH_CLIENT_SECRET`` start unset."""
    xfail: str = ""
    """Why kpgeo does not refuse this yet (strict xfail), empty when it does."""


#: A run's ``catalog.json`` and an item of it, as kpgeo writes them (kpgeo.products.catalog).
KPGEO_CATALOG = {"type": "Catalog", "id": "kpgeo-demo", "stac_version": "1.1.0",
                 "description": "kpgeo products", "links": [], "kpgeo:products": "kpgeo 0.1.0"}
KPGEO_ITEM = {"type": "Feature", "stac_version": "1.1.0", "id": "a-2024-01", "geometry": None,
              "properties": {"datetime": None, "kpgeo:products": "kpgeo 0.1.0"}, "links": [],
              "assets": {}}
#: A finished run's ``timeseries.csv``: site ``a``, 2024-01 and 2024-02.
REPORT_RUN = {"run/timeseries.csv": (
    "source_kind,site,month,status,scenes,valid_pct,preexisting_ha,new_ha,cumulative_new_ha,"
    "active_ha,water_ha,new_dug_ha,cumulative_new_dug_ha\n"
    "synthetic,a,2024-01,ok,6,100.00,1.00,0.00,0.00,0.50,0.00,0.00,0.00\n"
    "synthetic,a,2024-02,ok,6,100.00,1.00,0.20,0.20,0.50,0.00,0.10,0.10\n")}


def _report(*options: str, months: str = "2024-01..2024-02", out: str = "run") -> tuple[str, ...]:
    """``kpgeo report --months M OPTIONS --out run`` (good unless changed)."""
    return ("report", "--months", months, *options, "--out", out)


def _run(*options: str, aoi: str = SITE, months: str | None = "2024-01..2024-06",
         baseline: str = "2024-01..2024-03", out: str = OUT) -> tuple[str, ...]:
    """``kpgeo run --aoi AOI --baseline B --months M OPTIONS --out out`` (good unless changed)."""
    months_option = ("--months", months) if months is not None else ()
    return ("run", "--aoi", aoi, "--baseline", baseline, *months_option, *options, "--out", out)


def _run_pipeline(*options: str, out: str | None = OUT) -> tuple[str, ...]:
    """``kpgeo run p.toml OPTIONS --out out`` (None: the pipeline's ``out``)."""
    return ("run", "p.toml", *options, *(("--out", out) if out is not None else ()))


def _pipeline(tables: str = "", *, top: str = "", baseline: str = '"2024-01..2024-03"',
              months: str = '"2024-01..2024-06"', aoi: str = SITE) -> dict[str, str]:
    """A pipeline file ``p.toml``, good unless changed: top-level keys and values are TOML."""
    return {"p.toml": (f"{top}baseline = {baseline}\nmonths = {months}\n"
                       f'[[sites]]\naoi = "{aoi}"\n{tables}')}


def _site_doc(geometry: dict[str, Any], **members: Any) -> dict[str, Any]:
    """A one-feature site FeatureCollection with any geometry and top-level members."""
    return {"type": "FeatureCollection", **members, "features": [
        {"type": "Feature", "properties": {"name": "bad"}, "geometry": geometry}]}


def _polygon_doc(ring: list[list[float]], **members: Any) -> dict[str, Any]:
    return _site_doc({"type": "Polygon", "coordinates": [ring]}, **members)


def _bad_site(case_id: str, content: str | bytes | Bbox | dict[str, Any], *names: str,
              command: str = "run") -> Case:
    """``kpgeo run --aoi FILE`` (or ``aoi check``, ``synth``) on a bad site file ``FILE``."""
    path = f"{case_id}.geojson"
    argv = {"run": _run(aoi=path), "aoi": ("aoi", "check", path),
            "synth": ("synth", "--aoi", path, "--months", "2024-01..2024-02", "--out", OUT)}
    return Case(case_id, argv[command], (repr(path), *names), {path: content})


CASES: dict[str, list[Case]] = {
    "site file missing, not UTF-8, not JSON, not GeoJSON": [
        Case("missing", _run(aoi="gone.geojson"), ("'gone.geojson'", "does not exist")),
        Case("missing-aoi-check", ("aoi", "check", "gone.geojson"), ("'gone.geojson'",)),
        Case("missing-in-pipeline", _run_pipeline(), ("'gone.geojson'", "does not exist"),
             _pipeline(aoi="gone.geojson")),
        _bad_site("latin-1", json.dumps(_polygon_doc(RING)).replace('"bad"', '"Séguéla"')
                  .encode("latin-1"), "not UTF-8"),
        _bad_site("utf-16", json.dumps(_polygon_doc(RING)).encode("utf-16"), "not UTF-8",
                  command="aoi"),
        _bad_site("binary", b"\xff\xfe\x00garbage", "not UTF-8", command="synth"),
        _bad_site("not-json", "{ this is not json", "not JSON"),
        _bad_site("empty-file", "", "not JSON"),
        _bad_site("json-list", "[1, 2]", "not GeoJSON"),
        _bad_site("json-object", json.dumps({"hello": "world"}), "not GeoJSON"),
        _bad_site("topojson", json.dumps({"type": "Topology", "objects": {}}), "'Topology'"),
        _bad_site("feature-without-geometry", json.dumps({"type": "Feature", "properties": {}}),
                  "no geometry"),
    ],
    "empty FeatureCollection, a Point/Line, a ring with < 4 positions": [
        _bad_site("empty-collection", {"type": "FeatureCollection", "features": []},
                  "empty FeatureCollection"),
        _bad_site("point", _site_doc({"type": "Point", "coordinates": RING[0]}),
                  "is a Point, not a polygon"),
        _bad_site("line", _site_doc({"type": "LineString", "coordinates": RING}),
                  "is a LineString, not a polygon", command="aoi"),
        _bad_site("ring-of-3", _polygon_doc([RING[0], RING[1], RING[0]]),
                  "ring of 3 positions", "at least 4"),
        _bad_site("no-coordinates", _site_doc({"type": "Polygon", "coordinates": []}),
                  "no coordinates"),
    ],
    "unclosed ring, self-intersection": [
        _bad_site("unclosed-ring", _polygon_doc(RING[:-1]), "unclosed ring",
                  str(RING[0]), str(RING[-2])),
        _bad_site("bow-tie", _polygon_doc([RING[0], RING[2], RING[1], RING[3], RING[0]]),
                  "Self-intersection", "QGIS"),
        _bad_site("hole-outside", _site_doc({"type": "Polygon", "coordinates": [
            RING, [[0, 0], [1, 0], [1, 1], [0, 0]]]}), "invalid polygon", "QGIS",
                  command="aoi"),
    ],
    "coordinates out of range, or in [lat, lon] order that puts one out of range": [
        _bad_site("latitude-98", _polygon_doc([[lon, lat + 90] for lon, lat in RING]),
                  "[-5.705, 98.715] out of range"),
        _bad_site("longitude-185", _polygon_doc([[lon - 180, lat] for lon, lat in RING]),
                  "[-185.705, 8.715] out of range"),
        # Near 125 E, [lat, lon] puts the latitude out of range: the order can be told.
        _bad_site("lat-lon-out-of-range",
                  _polygon_doc([[lat, lon - 120] for lon, lat in RING]),
                  "[8.715, -125.705]", "[latitude, longitude]", command="aoi"),
        _bad_site("position-not-numbers", _polygon_doc([["8.7", "-5.7"]] * 4),
                  "position ['8.7', '-5.7']", "[longitude, latitude]"),
        # JSON's true is a Python bool, which is an int.
        _bad_site("longitude-true", _polygon_doc([[True, lat] for _, lat in RING]),
                  "position [True, 8.715]", "[longitude, latitude] numbers"),
        Case("lat-lon-in-range", ("aoi", "check", "swapped.geojson"),
             ("'swapped.geojson'", "[latitude, longitude]"),
             {"swapped.geojson": _polygon_doc([[lat, lon] for lon, lat in RING])},
             xfail="a site in Côte d'Ivoire written [lat, lon] is [8.7, -5.7]: in range, so it "
                   "is accepted as a site in the open Atlantic (exit 0); kpgeo can only tell "
                   "the order when a value is out of range"),
    ],
    "a `crs` other than WGS84": [
        _bad_site("crs-utm", _polygon_doc(RING, crs={
            "type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32630"}}),
            "'urn:ogc:def:crs:EPSG::32630'", "reproject"),
        _bad_site("crs-web-mercator", _polygon_doc(RING, crs={
            "type": "name", "properties": {"name": "EPSG:3857"}}), "'EPSG:3857'",
            command="aoi"),
        _bad_site("crs-bare-string", _polygon_doc(RING, crs="EPSG:3857"), "'EPSG:3857'"),
        _bad_site("crs-link", _polygon_doc(RING, crs={
            "type": "link", "properties": {"href": "site.prj"}}), "'site.prj'"),
    ],
    "site over 5,000 km² or under 0.01 km²": [
        _bad_site("over-5000-km2", (-6.5, 8.0, -5.5, 9.0), "12,201 km²", "5,000 km²", "split"),
        _bad_site("under-0.01-km2", (-5.7, 8.7, -5.6995, 8.7005), "0.0030 km²", "0.01 km²",
                  command="aoi"),
    ],
    "a site whose grid is over 50 Mpx (parts far apart), or across the antimeridian": [
        _bad_site("tortiya-and-alaska", _site_doc({"type": "MultiPolygon", "coordinates": [
            [RING], [[[-150.0, 61.0], [-149.99, 61.0], [-149.99, 61.01], [-150.0, 61.01],
                      [-150.0, 61.0]]]]}), "Mpx", "split it into one site file per area",
                  command="aoi"),
        _bad_site("two-far-parts", _site_doc({"type": "MultiPolygon", "coordinates": [
            [RING], [[[lon + 1.5, lat + 1.0] for lon, lat in RING]]]}), "Mpx", "split"),
        _bad_site("antimeridian", _site_doc({"type": "MultiPolygon", "coordinates": [
            [[[179.99, -17.0], [180.0, -17.0], [180.0, -16.99], [179.99, -16.99],
              [179.99, -17.0]]],
            [[[-180.0, -17.0], [-179.99, -17.0], [-179.99, -16.99], [-180.0, -16.99],
              [-180.0, -17.0]]]]}), "antimeridian", command="aoi"),
    ],
    "two sites of one name (a file listed twice, or names that make one folder name)": [
        Case("same-file-twice", _run_pipeline(), ("both named 'test-site'", "'name' properties"),
             {"p.toml": 'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                        f'[[sites]]\naoi = "{SITE}"\n[[sites]]\naoi = "{SITE}"\n'}),
        Case("dup-and-dup!", _run_pipeline(), ("both named 'dup'",),
             {"a.geojson": _polygon_doc(RING) | {"features": [
                 {"type": "Feature", "properties": {"name": "Dup"},
                  "geometry": {"type": "Polygon", "coordinates": [RING]}}]},
              "b.geojson": _polygon_doc(RING) | {"features": [
                  {"type": "Feature", "properties": {"name": "dup!"},
                   "geometry": {"type": "Polygon", "coordinates": [RING]}}]},
              "p.toml": 'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                        '[[sites]]\naoi = "a.geojson"\n[[sites]]\naoi = "b.geojson"\n'}),
    ],
    "a site name over 64 characters, or `runs`, `exports`, `reports`": [
        _bad_site("long-name", _polygon_doc(RING) | {"features": [
            {"type": "Feature", "properties": {"name": "x" * 5000},
             "geometry": {"type": "Polygon", "coordinates": [RING]}}]},
                  "5,000 characters", "at most 64"),
        *(_bad_site(f"named-{name}", _polygon_doc(RING) | {"features": [
            {"type": "Feature", "properties": {"name": name.title()},
             "geometry": {"type": "Polygon", "coordinates": [RING]}}]},
                    f"named '{name}'", f"own {name}/ folder") for name in ("runs", "exports")),
        _bad_site("named-reports", _polygon_doc(RING) | {"features": [
            {"type": "Feature", "properties": {"name": "reports"},
             "geometry": {"type": "Polygon", "coordinates": [RING]}}]},
                  "named 'reports'", command="aoi"),
    ],
    "a site north of 84° N or south of 80° S": [
        _bad_site("north-pole", (0.0, 89.9, 10.0, 89.92), "latitude 89.92", "84° N",
                  command="aoi"),
        _bad_site("far-south", (0.0, -85.0, 1.0, -84.9), "latitude -85", "80° S"),
    ],
    "month not `YYYY-MM`, month 00 or 13, range backwards or malformed": [
        Case("month-word", _run("--month", "June", months=None), ("--month 'June'", "YYYY-MM")),
        Case("month-slash", _run(months="2024/01..2024/06"), ("'2024/01'", "YYYY-MM")),
        Case("month-one-digit", ("synth", "--aoi", SITE, "--months", "2024-1", "--out", OUT),
             ("--months '2024-1'", "YYYY-MM")),
        Case("month-range-as-month", _run("--month", "2024-01..2024-06", months=None),
             ("--month '2024-01..2024-06'", "YYYY-MM")),
        Case("month-00", _run(months="2024-00..2024-06"), ("'2024-00'", "month 00")),
        Case("month-13", _run("--month", "2024-13", months=None),
             ("--month '2024-13'", "month 13")),
        Case("month-13-export", ("export", "--month", "2024-13"), ("'2024-13'", "month 13")),
        Case("range-backwards", _run(months="2024-06..2024-01"),
             ("'2024-06..2024-01'", "runs backwards", "2024-01..2024-06")),
        Case("baseline-backwards", _run(baseline="2024-03..2024-01"),
             ("--baseline '2024-03..2024-01'", "runs backwards")),
        Case("range-open-end", _run(months="2024-01.."), ("'2024-01..'", "FIRST..LAST")),
        Case("range-open-start", _run(baseline="..2024-03"), ("'..2024-03'", "FIRST..LAST")),
        Case("range-three-ends", _run(months="2024-01..2024-02..2024-03"),
             ("'2024-01..2024-02..2024-03'", "FIRST..LAST")),
        Case("range-three-dots", _run(months="2024-01...2024-06"), ("'.2024-06'", "YYYY-MM")),
        Case("month-00-in-pipeline", _run_pipeline(),
             ("p.toml", "'2024-00'", "month 00"),
             _pipeline(months='"2024-00..2024-06"')),
        Case("months-not-a-string-in-pipeline", _run_pipeline(),
             ("p.toml", "months", "2024-01..2024-12"),
             _pipeline(months="202406")),
    ],
    "real-source months before 2015-07 or after the current month": [
        Case("stac-months-2014", _run("--source", "stac", months="2014-01..2016-06",
                                      baseline="2014-01..2014-12"),
             ("--months 2014-01..2016-06", "before Sentinel-2", "2015-07")),
        Case("stac-baseline-2015-01", _run("--source", "stac", months="2016-01..2016-06",
                                           baseline="2015-01..2015-12"),
             ("--baseline 2015-01..2015-12", "before Sentinel-2", "2015-07")),
        Case("sentinelhub-months-2014", _run("--source", "sentinelhub",
                                             months="2014-01..2016-06",
                                             baseline="2014-01..2014-12"),
             ("--months 2014-01..2016-06", "before Sentinel-2")),
        Case("stac-months-2199", _run("--source", "stac", months="2024-01..2199-06"),
             ("--months 2024-01..2199-06", "after the current month")),
        Case("stac-months-2199-in-pipeline", _run_pipeline(),
             ("2024-01..2199-06", "after the current month"),
             _pipeline('[source]\nkind = "stac"\n', months='"2024-01..2199-06"')),
    ],
    "baseline not ending before the last month": [
        Case("baseline-equals-months", _run(baseline="2024-01..2024-06"),
             ("baseline 2024-01..2024-06", "(2024-06)", "months after the baseline")),
        Case("baseline-after-months", _run(baseline="2024-01..2024-12"),
             ("baseline 2024-01..2024-12", "(2024-06)")),
        Case("month-is-baseline-end", _run("--month", "2024-03", months=None),
             ("baseline 2024-01..2024-03", "(2024-03)")),
        Case("baseline-in-pipeline", _run_pipeline(), ("baseline 2024-01..2024-06",),
             _pipeline(baseline='"2024-01..2024-06"')),
    ],
    "`--months` starting before the baseline": [
        Case("months-before-baseline", _run(months="2023-12..2024-06"),
             ("months 2023-12..2024-06", "baseline 2024-01..2024-03", "at or after 2024-01")),
        Case("months-before-baseline-in-pipeline", _run_pipeline("--months", "2023-06..2024-06"),
             ("months 2023-06..2024-06", "baseline 2024-01..2024-03"), _pipeline()),
    ],
    "`[detection] min_area_ha` negative": [
        Case("min-area-negative", _run_pipeline(), ("detection.min_area_ha = -0.5",),
             _pipeline("[detection]\nmin_area_ha = -0.5\n")),
    ],
    "`--scheduler` neither an address nor `threads`/`synchronous`; `--workers` negative": [
        Case("scheduler-not-an-address", _run("--scheduler", "cluster1"),
             ("--scheduler 'cluster1'", "tcp://host:8786")),
        Case("scheduler-in-pipeline", _run_pipeline(), ("--scheduler 'my laptop'",),
             _pipeline(top='scheduler = "my laptop"\n')),
        Case("workers-negative", _run("--workers", "-2"), ("--workers -2", "from 0 to 256")),
    ],
    "`[source]` read_attempts under 1, http_timeout_s not above 0, http_retries negative": [
        Case("read-attempts-zero", _run_pipeline(), ("source.read_attempts = 0", "from 1 to 20"),
             _pipeline("[source]\nread_attempts = 0\n")),
        Case("http-timeout-zero", _run_pipeline(), ("source.http_timeout_s = 0.0", "above 0"),
             _pipeline("[source]\nhttp_timeout_s = 0\n")),
        Case("http-retries-negative", _run_pipeline(), ("source.http_retries = -1",),
             _pipeline("[source]\nhttp_retries = -1\n")),
    ],
    "a `[volume]` range with low > high, or under 100 draws": [
        Case("volume-low-above-high", _run_pipeline(),
             ("volume.recovery = [0.9, 0.5]", "low <= high"),
             _pipeline("[volume.recovery]\nlow = 0.9\nhigh = 0.5\n")),
        Case("volume-negative-low", _run_pipeline(), ("volume.grade_ct_per_m3 = [-1.0, 1.9]",),
             _pipeline("[volume.grade_ct_per_m3]\nlow = -1.0\nhigh = 1.9\n")),
        Case("volume-99-draws", _run_pipeline(), ("volume.draws = 99", "from 100 to"),
             _pipeline("[volume]\ndraws = 99\n")),
        Case("volume-0-draws", _run_pipeline(), ("volume.draws = 0",),
             _pipeline("[volume]\ndraws = 0\n")),
    ],
    "any other number of a pipeline file not finite or out of its range (`nan`, `inf`, a "
    "negative size, `chunk_px` under 64, an SCL class above 11, a negative seed)": [
        Case("ndvi-drop-nan", _run_pipeline(), ("detection.ndvi_drop = nan", "above 0"),
             _pipeline("[detection]\nndvi_drop = nan\n")),
        Case("min-months-negative", _run_pipeline(),
             ("detection.preexisting_min_months = -5", "from 1 to 120"),
             _pipeline("[detection]\npreexisting_min_months = -5\n")),
        Case("chunk-px-negative", _run_pipeline(), ("composite.chunk_px = -5", "from 64 to"),
             _pipeline("[composite]\nchunk_px = -5\n")),
        Case("chunk-px-zero", _run_pipeline(), ("composite.chunk_px = 0",),
             _pipeline("[composite]\nchunk_px = 0\n")),
        Case("chunk-px-one", _run_pipeline(), ("composite.chunk_px = 1",),
             _pipeline("[composite]\nchunk_px = 1\n")),
        Case("window-negative", _run_pipeline(), ("sites[0].window.size_km = -3.0", "above 0"),
             {"p.toml": 'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                        f'[[sites]]\naoi = "{SITE}"\n'
                        "window = {lon = -5.7, lat = 8.72, size_km = -3}\n"}),
        Case("cloud-buffer-huge", _run_pipeline(), ("mask.cloud_buffer_m = 1000000000.0",),
             _pipeline("[mask]\ncloud_buffer_m = 1e9\n")),
        Case("cloud-buffer-inf", _run_pipeline(), ("mask.cloud_buffer_m = inf",),
             _pipeline("[mask]\ncloud_buffer_m = inf\n")),
        Case("http-timeout-nan", _run_pipeline(), ("source.http_timeout_s = nan",),
             _pipeline("[source]\nhttp_timeout_s = nan\n")),
        Case("min-area-inf", _run_pipeline(), ("detection.min_area_ha = inf",),
             _pipeline("[detection]\nmin_area_ha = inf\n")),
        Case("scl-class-300", _run_pipeline(), ("mask.invalid_scl[1] = 300", "from 0 to 11"),
             _pipeline("[mask]\ninvalid_scl = [0, 300]\n")),
        Case("read-attempts-huge", _run_pipeline(), ("source.read_attempts = 1000000000",),
             _pipeline("[source]\nread_attempts = 1000000000\n")),
        Case("workers-million", _run("--workers", "1000000"), ("--workers 1000000",)),
        Case("volume-seed-negative", _run_pipeline(), ("volume.seed = -1",),
             _pipeline("[volume]\nseed = -1\n")),
        Case("volume-high-inf", _run_pipeline(), ("volume.recovery = [0.5, inf]",),
             _pipeline("[volume.recovery]\nlow = 0.5\nhigh = inf\n")),
    ],
    "`--source sentinelhub` without `SH_CLIENT_ID` and `SH_CLIENT_SECRET`": [
        Case("sentinelhub-no-credentials", _run("--source", "sentinelhub"),
             ("SH_CLIENT_ID and SH_CLIENT_SECRET are not set",)),
        Case("sentinelhub-no-secret", _run("--source", "sentinelhub"),
             ("SH_CLIENT_ID and SH_CLIENT_SECRET;", "SH_CLIENT_SECRET is not set"),
             env={"SH_CLIENT_ID": "someone"}),
        Case("sentinelhub-blank-id", _run("--source", "sentinelhub"),
             ("SH_CLIENT_ID and SH_CLIENT_SECRET;", "SH_CLIENT_ID is not set"),
             env={"SH_CLIENT_ID": "  ", "SH_CLIENT_SECRET": "secret-value"}),
        Case("sentinelhub-in-pipeline", _run_pipeline(),
             ("SH_CLIENT_ID and SH_CLIENT_SECRET are not set",),
             _pipeline('[source]\nkind = "sentinelhub"\n')),
    ],
    "`[radar]` with `--source sentinelhub` and `composite.chunk_px` over `sh_tile_px` − 6": [
        Case("sentinelhub-radar-chunk", _run_pipeline(),
             ("composite.chunk_px = 2500", "2506 px", "composite.chunk_px <= 2494"),
             _pipeline('[source]\nkind = "sentinelhub"\n[composite]\nchunk_px = 2500\n'
                       "[radar]\n")),
        Case("sentinelhub-radar-tile", _run_pipeline(),
             ("composite.chunk_px = 1024", "source.sh_tile_px = 1000",
              "composite.chunk_px <= 994"),
             _pipeline('[source]\nkind = "sentinelhub"\nsh_tile_px = 1000\n[radar]\n'),
             env={"SH_CLIENT_ID": "someone", "SH_CLIENT_SECRET": "secret-value"}),
    ],
    "unknown source, site, export format, pipeline key": [
        Case("unknown-source", _run("--source", "sentinel"),
             ("--source 'sentinel'", "synthetic, stac, sentinelhub")),
        Case("unknown-source-in-pipeline", _run_pipeline(),
             ("p.toml", "source.kind = 'ftp'", "synthetic, stac, sentinelhub"),
             _pipeline('[source]\nkind = "ftp"\n')),
        Case("unknown-site", _run("--site", "atlantis"),
             ("--site 'atlantis'", "known sites: test-site")),
        Case("unknown-site-in-pipeline", _run_pipeline("--site", "atlantis"),
             ("--site 'atlantis'", "known sites: test-site"), _pipeline()),
        Case("unknown-export-format", ("export", "--month", "2024-05", "--format", "shp",
                                       "--out", "run"),
             ("--format 'shp'", "geojson, gpkg, kml"),
             {"run/exports/disturbed-2024-05.geojson": {"type": "FeatureCollection",
                                                        "features": []}}),
        Case("unknown-top-level-key", _run_pipeline(), ("p.toml", "'nmae'", "name"),
             _pipeline(top='nmae = "x"\n')),
        Case("unknown-table", _run_pipeline(), ("p.toml", "'detecton'", "detection"),
             _pipeline("[detecton]\nmin_area_ha = 1.0\n")),
        Case("unknown-nested-key", _run_pipeline(),
             ("p.toml", "'composite.chunk_pixels'", "chunk_px"),
             _pipeline("[composite]\nchunk_pixels = 512\n")),
        Case("unknown-site-key", _run_pipeline(), ("p.toml", "'sites[0].windw'", "window"),
             _pipeline("windw = 3\n")),
    ],
    "`--catalog` path that does not exist, or a folder without a catalog": [
        Case("catalog-missing-file", _run("--source", "stac", "--catalog",
                                          "nowhere/collection.json"),
             ("--catalog 'nowhere/collection.json'", "STAC API URL", "collection.json")),
        Case("catalog-folder-without-collection", _run("--source", "stac", "--catalog", "empty"),
             ("--catalog 'empty' is a folder without a catalog", "collection.json"),
             {"empty/README": "not a catalog"}),
        Case("catalog-etc", _run("--source", "stac", "--catalog", "etc"),
             ("--catalog 'etc' is a folder without a catalog",),
             {"etc/hosts": "127.0.0.1 localhost\n", "etc/passwd": "root:x:0:0::/root:/bin/sh\n"}),
        Case("catalog-synthetic-source", _run("--catalog", "nowhere.json"),
             ("--catalog 'nowhere.json'",)),
        Case("catalog-missing-in-pipeline", _run_pipeline(),
             ("--catalog 'nowhere/collection.json'",),
             _pipeline('[source]\nkind = "stac"\ncatalog = "nowhere/collection.json"\n')),
    ],
    # A read-only folder needs a read-only mount to test as root, who may write anywhere
    # else: tests/test_out_folder.py.
    "`--out` a file, under a file, or a folder that cannot be written (read-only)": [
        Case("out-is-a-file", _run(out="afile"), ("--out 'afile' is a file",),
             {"afile": "not a folder"}),
        Case("out-under-a-file", _run(out="afile/out"),
             ("--out 'afile/out' lies under 'afile', which is a file",), {"afile": "a file"}),
        Case("out-under-a-file-synth", ("synth", "--aoi", SITE, "--months", "2024-01..2024-02",
                                        "--out", "afile/deep/archive"),
             ("--out 'afile/deep/archive' lies under 'afile'",), {"afile": "a file"}),
        Case("out-in-pipeline-under-a-file", _run_pipeline(out=None),
             ("--out", "lies under", "afile"),
             {**_pipeline(top='out = "afile/out"\n'), "afile": "a file"}),
    ],
    "`--out` holding files kpgeo did not write (a user's `index.html`), without `--overwrite`": [
        Case("out-with-users-index", _run(), ("--out 'out'", "index.html", "--overwrite"),
             {f"{OUT}/index.html": "<html>my own page</html>"}),
        Case("out-with-users-files", _run(), ("--out 'out'", "a.txt, b.txt, c.txt, ..."),
             {f"{OUT}/{name}.txt": name for name in "abcd"}),
    ],
    "a `timeseries.csv` in `--out` that kpgeo did not write (another program's, binary, "
    "headerless)": [
        Case("timeseries-binary", _run(), ("'out/timeseries.csv' is not a kpgeo time series",
                                           "not UTF-8", "move it"),
             {f"{OUT}/.kpgeo.lock": "", f"{OUT}/timeseries.csv": b"\xff\xfe\x00\x01\x9c"}),
        Case("timeseries-headerless", _run(),
             ("'out/timeseries.csv'", "first line 'test-site,2024-01,ok,6,100.00,",
              "kpgeo's header"),
             {f"{OUT}/.kpgeo.lock": "",
              f"{OUT}/timeseries.csv": "test-site,2024-01,ok,6,100.00,0,0,0,0,0,0,0\n"}),
        Case("timeseries-foreign", _run("--overwrite"),
             ("'out/timeseries.csv'", "first line 'date,value'"),
             {f"{OUT}/timeseries.csv": "date,value\n2024-01-01,3\n"}),
        Case("timeseries-short-row", _run(),
             ("'out/timeseries.csv'", "line 3 has 4 fields, not 13"),
             {f"{OUT}/.kpgeo.lock": "", f"{OUT}/timeseries.csv":
              "source_kind,site,month,status,scenes,valid_pct,preexisting_ha,new_ha,"
              "cumulative_new_ha,active_ha,water_ha,new_dug_ha,cumulative_new_dug_ha\n"
              "synthetic,t,2024-01,ok,6,100.00,0.00,0.00,0.00,0.00,0.00,0.00,0.00\n"
              "synthetic,t,2024-02,ok\n"}),
    ],
    "`--catalog` file that is not JSON, or JSON but no STAC catalog, collection or item": [
        Case("catalog-not-json", _run("--source", "stac", "--catalog", "c.json"),
             ("--catalog 'c.json' is not JSON", "catalog.json"), {"c.json": "not json"}),
        Case("catalog-feature-collection", _run("--source", "stac", "--catalog", "c.json"),
             ("--catalog 'c.json'", "'FeatureCollection'"),
             {"c.json": {"type": "FeatureCollection", "features": []}}),
        Case("catalog-json-list", _run("--source", "stac", "--catalog", "c.json"),
             ("--catalog 'c.json'", "a JSON list"), {"c.json": "[1, 2]"}),
    ],
    "`--catalog` of a kpgeo run's `catalog.json` (or its collections or items)": [
        Case("catalog-of-kpgeo-products", _run("--source", "stac", "--catalog", "k/catalog.json"),
             ("--catalog 'k/catalog.json' is a catalog of kpgeo products",
              "not of Sentinel-2 scenes"), {"k/catalog.json": KPGEO_CATALOG}),
        Case("item-of-kpgeo-products", _run("--source", "stac", "--catalog", "k/item.json"),
             ("--catalog 'k/item.json' is a catalog of kpgeo products",),
             {"k/item.json": KPGEO_ITEM}),
    ],
    "`kpgeo report`: `--out` not a finished run (no `timeseries.csv`), an unknown `--site`, `--months` outside the run's months": [
        Case("report-out-not-a-run", _report(out="notes"), ("--out 'notes' is not a kpgeo run",
                                                            "timeseries.csv"),
             {"notes/todo.txt": "not a run"}),
        Case("report-unknown-site", _report("--site", "nowhere"),
             ("--site 'nowhere' is not a site of the run", "its sites: a"), REPORT_RUN),
        Case("report-months-outside", _report(months="2023-12..2024-01"),
             ("--months 2023-12..2024-01", "no products of a for 2023-12",
              "its months: 2024-01..2024-02"), REPORT_RUN),
        Case("report-months-backwards", _report(months="2024-02..2024-01"),
             ("--months '2024-02..2024-01' runs backwards",), REPORT_RUN),
    ],
    "`kpgeo report --declared`: missing, not UTF-8, another header, a line without 3 fields, a scope neither a site nor a site's country, a period outside `--months`, carats not a positive number": [
        Case("declared-missing", _report("--declared", "d.csv"), ("'d.csv' does not exist",),
             REPORT_RUN),
        Case("declared-latin-1", _report("--declared", "d.csv"), ("is not UTF-8",),
             {**REPORT_RUN, "d.csv": "scope,period,carats\na,2024-01,5 é\n".encode("latin-1")}),
        Case("declared-header", _report("--declared", "d.csv"),
             ("'site,ct'", "scope,period,carats"), {**REPORT_RUN, "d.csv": "site,ct\na,5\n"}),
        Case("declared-fields", _report("--declared", "d.csv"), ("line 2 has 2 fields",),
             {**REPORT_RUN, "d.csv": "scope,period,carats\na,5\n"}),
        Case("declared-scope", _report("--declared", "d.csv"), ("scope 'GHA'",),
             {**REPORT_RUN, "d.csv": "scope,period,carats\nGHA,2024-01,5\n"}),
        Case("declared-period", _report("--declared", "d.csv"),
             ("period '2024-03'", "not within the report's months 2024-01..2024-02"),
             {**REPORT_RUN, "d.csv": "scope,period,carats\na,2024-03,5\n"}),
        Case("declared-carats", _report("--declared", "d.csv"), ("carats '0'",
                                                                 "positive number"),
             {**REPORT_RUN, "d.csv": "scope,period,carats\na,2024-01..2024-02,0\n"}),
    ],
}


def readme_bad_input_rows(readme: Path = REPO / "README.md") -> list[str]:
    """First-column text of every row of the README's "Bad input" table, in order."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"^## Bad input\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## Bad input' section"
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in match.group(1).splitlines() if line.startswith("|")]
    assert rows and rows[0][0] == "input", rows[:1]  # the header
    return [row[0] for row in rows[1:] if not re.fullmatch(r":?-+:?", row[0])]


def _params() -> list[Any]:
    params = []
    for row, cases in CASES.items():
        for case in cases:
            marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
            params.append(pytest.param(row, case, id=case.id, marks=marks))
    return params


def _write_inputs(root: Path, files: Mapping[str, str | bytes | Bbox | dict[str, Any]]) -> None:
    write_site_file(root / SITE, SITE_BBOX)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif isinstance(content, tuple):
            write_site_file(path, content)
        else:
            path.write_text(json.dumps(content), encoding="utf-8")


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with its bytes (None for a folder)."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refusals happen before any request: a connection beyond 127.0.0.1 fails the case."""
    connect = socket.socket.connect

    def loopback_connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOOPBACK:
            raise OSError(f"test tried to reach {address!r} beyond 127.0.0.1")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", loopback_connect)


@pytest.mark.parametrize(("row", "case"), _params())
def test_bad_input_is_one_line_exit_2_nothing_written(
        row: str, case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SH_CLIENT_ID", raising=False)
    monkeypatch.delenv("SH_CLIENT_SECRET", raising=False)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    _write_inputs(tmp_path, case.files)
    before = _snapshot(tmp_path)

    result = CliRunner().invoke(cli, list(case.argv))

    assert result.exit_code == 2, (row, result.output, result.exc_info)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), result.stderr
    for expected in case.names:
        assert expected in lines[0], (expected, lines[0])
    assert _snapshot(tmp_path) == before, "a refused command wrote files"
    if OUT in case.argv and OUT not in before:
        assert not (tmp_path / OUT).exists()


def test_every_readme_row_has_cases() -> None:
    rows = readme_bad_input_rows()
    assert len(rows) == len(set(rows)), rows
    assert [r for r in rows if not CASES.get(r)] == [], "README rows without a case in CASES"
    assert [r for r in CASES if r not in rows] == [], "CASES rows the README table lacks"
    assert [r for r in rows if all(c.xfail for c in CASES[r])] == [], \
        "README rows no passing case covers"
    ids = [c.id for cases in CASES.values() for c in cases]
    assert len(ids) == len(set(ids)), "case ids must be unique"
