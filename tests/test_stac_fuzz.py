"""Fuzz the fields of a STAC item (docs/product.md §10; issue 19, acceptance): hypothesis puts
any JSON value (null, booleans, huge integers, NaN and infinities, text that looks like a number
or a date, lists, objects) or nothing at all at one to three places of one scene's item, from
its datetime to a band's ``raster:bands`` nodata, then the scenes are searched and read as a run
does (a failed read screens them one by one). Each example ends in one of: the scene used, the
scene skipped with a one-line reason, or a one-line error; the intact scene is always used; never
a traceback, and every example within seconds.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from kpgeo.errors import KpgeoError
from kpgeo.sources.base import READ_ERRORS, REFLECTANCE_BANDS, SCL_BAND
from kpgeo.sources.stac import StacSource

from .test_stac_items import JAN, scenes

BANDS = (*REFLECTANCE_BANDS, SCL_BAND)
#: Places in the item a value is put: where search, placement and reading look.
PLACES: list[tuple[Any, ...]] = [
    ("type",), ("id",), ("geometry",), ("geometry", "type"), ("geometry", "coordinates"),
    ("bbox",), ("properties",), ("properties", "datetime"), ("properties", "start_datetime"),
    ("properties", "eo:cloud_cover"), ("properties", "proj:epsg"), ("properties", "proj:code"),
    ("assets",), ("links",), ("stac_extensions",),
    *[(("assets", band, *rest)) for band in BANDS for rest in
      [(), ("href",), ("raster:bands",), ("raster:bands", 0), ("raster:bands", 0, "scale"),
       ("raster:bands", 0, "offset"), ("raster:bands", 0, "nodata")]],
]
#: Fields that decide whether a search finds the scene: changed, it may rightly be absent.
SELECTING = {"properties", "geometry"}
DELETE = object()
#: Text a catalog might plausibly hold where a number, a date or a code belongs.
TEXTS = ["", "nan", "NaN", "inf", "-inf", "1e400", "0.0001", "-0.1", "80", "EPSG:32630",
         "EPSG:x", "2024-01-10T10:50:00", "2024-01-10", "2024-01-10T10:50:00+14:00",
         "0001-01-01T00:00:00-12:00", "9999-12-31T23:59:59Z", "2024-13-45T99:99:99Z",
         "last Tuesday", "Feature", "Collection", "Polygon", "MultiPolygon"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**30), 10**30),
    st.sampled_from([10**400, -(10**400), 2**63, -1, 0, 1]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(TEXTS), st.text(max_size=8))
VALUES = st.one_of(st.just(DELETE), st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["type", "coordinates", "scale", "nodata", "href", "x"]),
                      inner, max_size=3), max_leaves=8))
CHANGES = st.lists(st.tuples(st.sampled_from(PLACES), VALUES), min_size=1, max_size=3)


def _put(doc: Any, place: tuple[Any, ...], value: Any) -> bool:
    """Put ``value`` at ``place`` of ``doc`` (or delete it); False where the path is gone."""
    *parents, last = place
    for key in parents:
        try:
            doc = doc[key]
        except (KeyError, IndexError, TypeError):
            return False
    if isinstance(doc, dict):
        if value is DELETE:
            doc.pop(last, None)
        else:
            doc[last] = value
        return True
    if isinstance(doc, list) and isinstance(last, int) and last < len(doc):
        if value is DELETE:
            del doc[last]
        else:
            doc[last] = value
        return True
    return False


def _absolute(path: Path) -> dict[str, Any]:
    """An item document whose asset hrefs are absolute (it is copied elsewhere)."""
    doc = json.loads(path.read_text())
    for asset in doc["assets"].values():
        asset["href"] = str((path.parent / asset["href"]).resolve())
    return doc


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory,
             ) -> tuple[Any, Path, dict[str, Any], dict[str, Any]]:
    site, collection = scenes(tmp_path_factory.mktemp("fuzz"))
    return (site, collection, _absolute(collection.parent / "a" / "a.json"),
            _absolute(collection.parent / "b" / "b.json"))


def _observe(source: StacSource, site: Any) -> list[str]:
    """Search and read January as a run does (:meth:`SiteMonths._summaries`): when a read
    fails, the source screens the scenes and the rest are read again."""
    items = source.search(site, JAN)
    for _ in range(source.read_attempts + 1):
        try:
            source.load(items, site)["valid"].sum().compute()
            return [i.id for i in items]
        except READ_ERRORS:
            items = source.screen(items, site)
    raise AssertionError("a read kept failing after its scenes were screened")


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=CHANGES)
def test_any_value_in_any_field_ends_used_skipped_or_in_one_line(pristine, changes) -> None:  # type: ignore[no-untyped-def]
    site, collection, intact, item = pristine
    doc = copy.deepcopy(item)
    touched = {place[0] for place, value in changes if _put(doc, place, value)}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "collection.json").write_text(collection.read_text())
        for name in ("a", "b"):
            (root / name).mkdir()
        (root / "a" / "a.json").write_text(json.dumps(intact))
        # Python's json writes NaN and Infinity, as a careless catalog does
        (root / "b" / "b.json").write_text(json.dumps(doc))
        source = StacSource(str(root / "collection.json"), read_attempts=1)
        started = time.monotonic()
        try:
            used = _observe(source, site)
        except KpgeoError as exc:
            assert str(exc) and "\n" not in str(exc), exc  # a one-line error
            return
        finally:
            assert time.monotonic() - started < 10
    b_id = doc.get("id")
    assert "a" in used, (changes, source.skipped)  # the intact scene
    for record in source.skipped:
        assert record["scene_id"] != "a" or b_id == "a", record
        assert isinstance(record["reason"], str) and record["reason"], record
        assert "\n" not in record["reason"], record
        json.dumps(record, allow_nan=False)  # fits the manifest
    outcome_known = b_id in used or bool(source.skipped) or bool(touched & SELECTING)
    assert outcome_known, (changes, used, source.skipped)
