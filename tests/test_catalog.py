"""``catalog.json`` (docs/product.md §8): the run's products as a STAC catalog.

The catalog of a finished run validates against the STAC schemas (the core ones pystac ships and
the three extensions' vendored in ``tests/data/stac-schemas/``: no schema is fetched), lists every
site-month of ``timeseries.csv`` once, with the month's status and scene ids, and each raster's
scale and offset; a rerun that adds a month adds its items and duplicates none; and ``kpgeo run``
refuses the catalog as a scene archive.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pystac
import pystac.stac_io
import pystac.validation
import pytest
import rasterio
from click.testing import CliRunner
from pystac.validation.stac_validator import JsonSchemaSTACValidator

from kpgeo.cli import cli
from kpgeo.products.catalog import PRODUCTS_FIELD

from .conftest import FinishedRun

SCHEMAS = Path(__file__).parent / "data" / "stac-schemas"
#: Extension schemas by the URI items name them with (files from the stac-extensions
#: repositories at these tags, Apache-2.0).
EXTENSION_SCHEMAS = {
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json": "projection-v2.0.0.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json": "eo-v1.1.0.json",
}


@pytest.fixture
def offline_validator(monkeypatch: pytest.MonkeyPatch) -> Iterator[JsonSchemaSTACValidator]:
    """pystac's JSON-schema validator with every schema on disk; reading any URL fails."""
    validator = JsonSchemaSTACValidator()
    for uri, name in EXTENSION_SCHEMAS.items():
        validator.schema_cache[uri] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    read = pystac.stac_io.DefaultStacIO.read_text_from_href

    def local_only(self: pystac.stac_io.DefaultStacIO, href: str) -> str:
        if "://" in href:
            raise AssertionError(f"a test tried to read {href}")
        return read(self, href)

    monkeypatch.setattr(pystac.stac_io.DefaultStacIO, "read_text_from_href", local_only)
    pystac.validation.set_validator(validator)
    yield validator
    pystac.validation.set_validator(JsonSchemaSTACValidator())


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "timeseries.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _items(out: Path) -> list[pystac.Item]:
    return list(pystac.Catalog.from_file(str(out / "catalog.json")).get_items(recursive=True))


def test_the_catalog_validates_and_lists_every_site_month(
        finished_run: FinishedRun, offline_validator: JsonSchemaSTACValidator) -> None:
    catalog = pystac.Catalog.from_file(str(finished_run.out / "catalog.json"))
    catalog.validate_all()
    # Every document was checked against its extensions' schemas, from disk.
    assert set(EXTENSION_SCHEMAS) <= set(offline_validator.schema_cache)
    collections = {c.id: c for c in catalog.get_collections()}
    assert sorted(collections) == sorted(finished_run.sites)
    items = [i for c in collections.values() for i in c.get_items()]
    ids = [i.id for i in items]
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(f"{r['site']}-{r['month']}" for r in _rows(finished_run.out))
    for row in _rows(finished_run.out):
        item = collections[row["site"]].get_item(f"{row['site']}-{row['month']}")
        assert item is not None
        assert item.properties["kpgeo:status"] == row["status"]
        assert item.properties["kpgeo:scenes"] == int(row["scenes"])
        assert item.properties["kpgeo:synthetic"] is True
        assert item.properties["title"].startswith("SYNTHETIC DATA: ")
        assert item.common_metadata.start_datetime is not None
        assert item.common_metadata.start_datetime.strftime("%Y-%m") == row["month"]


def test_items_carry_the_products_with_roles_grid_bands_and_scenes(
        finished_run: FinishedRun) -> None:
    out = finished_run.out
    items = {i.id: i for i in _items(out)}
    item = items["tw-2024-03"]
    assert {k: a.roles for k, a in item.assets.items()} == {
        "composite": ["data", "reflectance"], "indices": ["data"], "change": ["data"],
        "digging-areas": ["data"], "map": ["overview"]}
    for key, asset in item.assets.items():
        assert Path(asset.get_absolute_href() or "").is_file(), key
        assert not Path(asset.href).is_absolute()  # the folder can be moved
    areas = json.loads((out / "tw" / "2024-03" / "disturbed.geojson").read_text("utf-8"))
    assert item.properties["kpgeo:scene_ids"] == areas["kpgeo"]["sites"]["tw"]["scene_ids"]
    assert len(item.properties["kpgeo:scene_ids"]) == item.properties["kpgeo:scenes"] > 0
    with rasterio.open(out / "tw" / "2024-03" / "composite.tif") as src:
        assert item.properties["proj:code"] == f"EPSG:{src.crs.to_epsg()}"
        assert item.properties["proj:shape"] == list(src.shape)
        assert item.properties["proj:transform"] == list(src.transform)[:6]
        raster = item.assets["composite"].extra_fields["raster:bands"]
        assert [b["scale"] for b in raster] == list(src.scales)
        assert [b["offset"] for b in raster] == list(src.offsets)
        assert [b["data_type"] for b in raster] == list(src.dtypes)
    eo = item.assets["composite"].extra_fields["eo:bands"]
    assert [b.get("common_name") for b in eo][:6] == ["blue", "green", "red", "nir", "swir16",
                                                      "swir22"]
    assert items["tw-2024-04"].properties["kpgeo:status"] == "gap"
    assert items["tw-2024-04"].properties["kpgeo:measured_month"] == "2024-03"


def test_the_index_links_the_catalog(finished_run: FinishedRun) -> None:
    page = (finished_run.out / "index.html").read_text(encoding="utf-8")
    assert 'href="catalog.json"' in page


def test_a_rerun_adds_the_new_month_and_duplicates_nothing(
        finished_run: FinishedRun, tmp_path: Path,
        offline_validator: JsonSchemaSTACValidator) -> None:
    out = tmp_path / "OUT"
    shutil.copytree(finished_run.out, out)
    before = (out / "catalog.json").read_bytes(), (out / "tw" / "collection.json").read_bytes()
    runner = CliRunner()
    months = f"{finished_run.months[0]}..{finished_run.months[-1]}"
    same = runner.invoke(cli, ["run", *finished_run.args, "--months", months, "--out", str(out)])
    assert same.exit_code == 0, same.output
    # Nothing computed, nothing changed: the same documents, byte for byte.
    assert ((out / "catalog.json").read_bytes(),
            (out / "tw" / "collection.json").read_bytes()) == before
    more = runner.invoke(cli, ["run", *finished_run.args, "--months",
                               f"{finished_run.months[0]}..2024-05", "--out", str(out)])
    assert more.exit_code == 0, more.output
    ids = [i.id for i in _items(out)]
    assert len(ids) == len(set(ids)) == len(_rows(out))
    assert {f"{s}-2024-05" for s in finished_run.sites} <= set(ids)
    pystac.Catalog.from_file(str(out / "catalog.json")).validate_all()


@pytest.mark.parametrize("document", ["catalog.json", "tw/collection.json",
                                      "tw/2024-02/item.json"])
def test_a_kpgeo_catalog_is_refused_as_scenes(finished_run: FinishedRun, tmp_path: Path,
                                              document: str) -> None:
    out = tmp_path / "NEW"
    result = CliRunner().invoke(cli, [
        "run", *finished_run.args[1:], "--source", "stac", "--catalog",
        str(finished_run.out / document), "--months", "2024-01..2024-02", "--out", str(out)])
    assert result.exit_code == 2, result.output
    message = result.output.strip()
    assert len(message.splitlines()) == 1
    assert "catalog of kpgeo products" in message and document in message
    assert "not of Sentinel-2 scenes" in message
    assert not out.exists()


def test_every_document_is_marked_as_products(finished_run: FinishedRun) -> None:
    docs: list[dict[str, Any]] = [json.loads(p.read_text(encoding="utf-8")) for p in (
        finished_run.out / "catalog.json", finished_run.out / "tw" / "collection.json")]
    assert all(d[PRODUCTS_FIELD].startswith("kpgeo ") for d in docs)
