"""The synthetic archive: Earth Search Collection-1 form, valid COGs, truth, determinism (docs/product.md §6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import odc.stac
import pystac
import pytest
import rasterio
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

from kpgeo.cli import cli
from kpgeo.errors import InputError
from kpgeo.months import parse_month_range
from kpgeo.synth import write_archive
from kpgeo.synth.scenes import schedule

from .conftest import TORTIYA


def epsg_of(item: pystac.Item) -> int:
    """EPSG code of an item; pystac migrates ``proj:epsg`` (v1.1) to ``proj:code`` (v2) on read."""
    code = item.properties.get("proj:epsg") or item.properties["proj:code"]
    return int(str(code).removeprefix("EPSG:"))


@pytest.fixture(scope="module")
def cli_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The acceptance command: the full Tortiya site, three months (its radar, tested on a
    small site in tests/test_synth_radar.py, left out: a minute and a half here)."""
    out = tmp_path_factory.mktemp("synth") / "DIR"
    result = CliRunner().invoke(cli, ["synth", "--aoi", str(TORTIYA), "--months",
                                      "2024-01..2024-03", "--out", str(out), "--no-radar"])
    assert result.exit_code == 0, result.output
    return out


def test_cli_archive_reads_with_pystac_loads_with_odc_stac_and_cogs_validate(
        cli_archive: Path) -> None:
    collection = pystac.read_file(str(cli_archive / "collection.json"))
    assert isinstance(collection, pystac.Collection)
    items = list(collection.get_items(recursive=True))
    # Five-day revisit: 18 passes in January to March 2024.
    assert len(items) == len(schedule(parse_month_range("2024-01..2024-03"))) == 18
    tifs = sorted(cli_archive.rglob("*.tif"))
    assert len(tifs) == 18 * 7 + 13  # 7 assets per scene, 13 truth rasters
    for tif in tifs:
        valid, errors, _ = cog_validate(str(tif), quiet=True)
        assert valid, (tif, errors)
    item = items[0]
    assert set(item.assets) == {"blue", "green", "red", "nir", "swir16", "swir22", "scl"}
    for key, res in (("red", 10), ("swir16", 20), ("scl", 20)):
        band = item.assets[key].extra_fields["raster:bands"][0]
        assert band["nodata"] == 0 and band["spatial_resolution"] == res
        if key != "scl":
            assert band["scale"] == 0.0001 and band["offset"] == -0.1
    assert epsg_of(item) in (32629, 32630)
    raw = json.loads(Path(item.get_self_href()).read_text())
    assert raw["properties"]["proj:epsg"] in (32629, 32630)  # written in Earth Search c1 form
    assert "proj:transform" in item.assets["red"].extra_fields
    loaded = odc.stac.load(items[:2], bands=["red", "scl"], crs="EPSG:32630", resolution=100)
    assert loaded.red.shape[0] == 2 and int(loaded.red.max()) > 1000


def test_near_the_zone_boundary_some_scenes_come_on_the_neighbouring_grid(
        cli_archive: Path) -> None:
    items = list(pystac.read_file(str(cli_archive / "collection.json")).get_items(recursive=True))
    zones = [epsg_of(i) for i in items]
    assert zones.count(32630) > zones.count(32629) > 0
    with rasterio.open(items[zones.index(32629)].assets["red"].get_absolute_href()) as src:
        assert src.crs.to_epsg() == 32629


def test_truth_lies_beside_the_archive(small_archive) -> None:  # type: ignore[no-untyped-def]
    truth = small_archive.truth
    with rasterio.open(truth / "first_month.tif") as src:
        first = src.read(1)
    with rasterio.open(truth / "preexisting.tif") as src:
        pre = src.read(1).astype(bool)
    months = set(np.unique(first[first > 0]))
    assert months <= {202401, 202402, 202403}
    assert pre.any() and not (pre & (first > 0)).any()
    series = (truth / "area_series.csv").read_text().splitlines()
    assert series[0] == ("month,preexisting_ha,new_ha,cumulative_new_ha,active_ha,pit_water_ha,"
                         "cumulative_new_dug_ha")
    rows = [dict(zip(series[0].split(","), r.split(","))) for r in series[1:]]
    assert [r["month"] for r in rows] == ["2024-01", "2024-02", "2024-03"]
    assert float(rows[0]["preexisting_ha"]) == pytest.approx(pre.sum() * 0.01, abs=0.01)
    assert float(rows[-1]["cumulative_new_ha"]) == pytest.approx((first > 0).sum() * 0.01,
                                                                 abs=0.01)
    for name in ("fields.tif", "burns.tif", "water.tif", "pits.tif"):
        assert (truth / name).is_file()
    with rasterio.open(truth / "regrown_month.tif") as src:
        regrown = src.read(1)
    # Only dug ground regrows (after abandonment), and never before it was dug.
    assert not (regrown > 0)[~(pre | (first > 0))].any()
    both = (first > 0) & (regrown > 0)
    assert (regrown[both] >= first[both]).all()


def test_two_sites_of_one_seed_are_different_worlds(tmp_path: Path) -> None:
    """The site's name separates worlds: the demo's two windows must not be twins."""
    from kpgeo.aoi import load_site
    from kpgeo.synth.archive import _world_grid, site_stream
    from kpgeo.synth.world import build_world

    months = parse_month_range("2024-01..2024-02")
    bobi = load_site("aoi/bobi-seguela.geojson").window(-6.732, 8.036, 1.0)
    tortiya = load_site("aoi/tortiya.geojson").window(-5.700, 8.720, 1.0)
    assert bobi.grid.shape == tortiya.grid.shape
    a = build_world(_world_grid(bobi.grid), months, 7, site_stream(bobi))
    b = build_world(_world_grid(tortiya.grid), months, 7, site_stream(tortiya))
    assert not np.array_equal(a.dig_day, b.dig_day)


def test_same_seed_same_archive_other_seed_other_archive(small_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    months = parse_month_range("2024-02")
    a = write_archive(small_site, months, tmp_path / "a", seed=11)
    b = write_archive(small_site, months, tmp_path / "b", seed=11)
    c = write_archive(small_site, months, tmp_path / "c", seed=12)

    def pixels(root: Path) -> list[np.ndarray]:
        out = []
        for tif in sorted(root.rglob("*.tif")):
            with rasterio.open(tif) as src:
                out.append(src.read())
        return out

    assert all(np.array_equal(x, y) for x, y in zip(pixels(a.collection.parent),
                                                    pixels(b.collection.parent), strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(pixels(a.collection.parent),
                                                        pixels(c.collection.parent), strict=True))
    again = write_archive(small_site, months, tmp_path / "a", seed=11)
    assert again.cached
    with pytest.raises(InputError, match="another synthetic archive"):
        write_archive(small_site, months, tmp_path / "a", seed=99)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("precious")
    with pytest.raises(InputError, match="other files"):
        write_archive(small_site, months, tmp_path / "busy", seed=11)
    assert (tmp_path / "busy" / "keep.txt").read_text() == "precious"
    assert json.loads(a.collection.read_text())["kpgeo:synth"]["seed"] == 11


def test_wet_season_is_cloudier_than_dry_season(small_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = write_archive(small_site, parse_month_range("2024-01..2024-08"), tmp_path / "a",
                           seed=5)
    items = list(pystac.read_file(str(result.collection)).get_items(recursive=True))
    cloud = {}
    for item in items:
        cloud.setdefault(item.datetime.month, []).append(item.properties["eo:cloud_cover"])
    assert np.mean(cloud[7] + cloud[8]) > np.mean(cloud[1] + cloud[2]) + 15


def test_the_synthetic_source_builds_a_site_archive_once_when_searched_from_two_threads(
        tmp_path: Path, small_site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The pipeline searches two months at once; the first use of a site's archive builds it.
    Two threads searching together both get its scenes, from one build."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from kpgeo.sources import synthetic

    builds: list[Path] = []

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        builds.append(args[2])
        return write_archive(*args, **kwargs)

    monkeypatch.setattr(synthetic, "write_archive", counted)
    months = parse_month_range("2024-01..2024-02")
    source = synthetic.SyntheticSource(months, seed=5, root=tmp_path / "cache")
    both = threading.Barrier(2, timeout=10)

    def search(month: str) -> list[pystac.Item]:
        both.wait()
        return source.search(small_site, parse_month_range(f"{month}..{month}"))

    with ThreadPoolExecutor(2) as pool:
        january, february = pool.map(search, ["2024-01", "2024-02"])
    assert january and february
    assert {i.datetime.month for i in january} == {1}
    assert {i.datetime.month for i in february} == {2}
    assert len(builds) == 1
    assert len(list((tmp_path / "cache").iterdir())) == 1  # one archive, no leftovers
