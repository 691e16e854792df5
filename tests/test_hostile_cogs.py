"""COGs that cannot be the band their STAC item describes, or would cost more to read than a
chunk allows (docs/product.md §10; issue 19, points 4, 8 and 10): another CRS, another size, no
CRS, a sparse 200 000 x 200 000 px file, one strip of 4096 x 4096 px, pixels of another size or
turned than the item's ``proj:transform``. Each scene is skipped at once
with the reason, recorded in the manifest and not counted as used; the run takes seconds and
reads no more than its chunks.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from kpgeo.sources.cog_checks import CogMismatch, check_window
from kpgeo.sources.reader import Asset, read_reflectance

from .builders import grid_for, range_server
from .test_faults import MONTH, archive, manifest, run_pipeline, scenes_of, series_row

__all__ = ["archive"]  # the fixture, shared with tests/test_faults.py

TILED = {"driver": "GTiff", "tiled": True, "blockxsize": 256, "blockysize": 256,
         "compress": "deflate", "count": 1, "nodata": 0}


def _damage(path: Path, how: str) -> None:
    """Replace a COG of the archive by a hostile one of the same name."""
    with rasterio.open(path) as src:
        crs, transform, (height, width), dtype = src.crs, src.transform, src.shape, src.dtypes[0]
        data = src.read(1)
    path.unlink()
    if how == "other CRS":  # the same pixels, labelled one UTM zone east
        with rasterio.open(path, "w", crs="EPSG:32631", transform=transform, width=width,
                           height=height, dtype=dtype, **TILED) as dst:
            dst.write(data, 1)
    elif how == "other size":  # a corner of the scene only
        with rasterio.open(path, "w", crs=crs, transform=transform, width=10, height=10,
                           dtype=dtype, **TILED) as dst:
            dst.write(data[:10, :10], 1)
    elif how == "no CRS":
        with rasterio.open(path, "w", transform=transform, width=width, height=height,
                           dtype=dtype, **TILED) as dst:
            dst.write(data, 1)
    elif how == "sparse 200000 px":  # declared over the scene's extent, nothing written
        fine = Affine(transform.a * width / 200_000, 0, transform.c,
                      0, transform.e * height / 200_000, transform.f)
        with rasterio.open(path, "w", crs=crs, transform=fine, width=200_000, height=200_000,
                           dtype=dtype, sparse_ok=True, **TILED):
            pass
    elif how == "one strip":  # a few hundred kB declaring one block of 4096 x 4096 px
        with rasterio.open(path, "w", driver="GTiff", crs=crs, transform=transform, width=4096,
                           height=4096, dtype=dtype, count=1, nodata=0, compress="deflate",
                           blockysize=4096) as dst:
            dst.write(np.full((4096, 4096), 1000, dtype), 1)
    else:
        raise AssertionError(how)


HOSTILE = {  # band damaged, and the reason the manifest gives
    "other CRS": ("scl", "does not cover its item's footprint"),
    "other size": ("nir", "does not cover its item's footprint"),
    "no CRS": ("green", "has no CRS"),
    "sparse 200000 px": ("swir16", "is not the one its item gives it"),
    "one strip": ("blue", "blocks are 4096 x 4096 px"),
}


@pytest.mark.parametrize("served", ["disk", "http"])
def test_cog_that_is_not_its_item_s_band_skips_its_scene_at_once(
        archive: Path, tmp_path: Path, served: str) -> None:
    scenes = scenes_of(archive, MONTH)
    # A scene's bands are read where its SCL leaves a usable pixel: the clearest are damaged.
    clearest = sorted(scenes, key=lambda s: json.loads(
        (archive / s / f"{s}.json").read_text())["properties"]["eo:cloud_cover"])
    damaged = dict(zip(HOSTILE, clearest, strict=False))
    for how, scene in damaged.items():
        _damage(archive / scene / f"{HOSTILE[how][0]}.tif", how)
    started = time.monotonic()
    if served == "http":
        with range_server(archive) as url:
            result, out = run_pipeline(tmp_path, f"{url}/collection.json")
    else:
        result, out = run_pipeline(tmp_path, str(archive / "collection.json"))
    assert time.monotonic() - started < 90
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    doc = manifest(out)
    skipped = {s["scene_id"]: s for s in doc["skipped_scenes"]}
    assert sorted(skipped) == sorted(damaged.values())
    for how, scene in damaged.items():
        band, reason = HOSTILE[how]
        record = skipped[scene]
        assert record["reason"].startswith(f"{band}: ") and reason in record["reason"], record
        assert record["attempts"] == 1 and record["month"] == MONTH  # never read again
    month = next(m for m in doc["site_months"] if m["month"] == MONTH)
    assert month["scene_ids"] == [s for s in scenes if s not in damaged.values()]
    assert month["scenes"] == len(scenes) - len(damaged)
    assert series_row(out, MONTH)["scenes"] == str(len(scenes) - len(damaged))


def test_read_of_a_finer_cog_is_refused_before_it_allocates(tmp_path: Path) -> None:
    """A 200 000 x 200 000 px COG (1 mm pixels over a 200 m chunk): refused as it opens, not
    after decoding 80 GB."""
    grid = grid_for("EPSG:32630", 500_000, 1_000_000, (20, 20))
    path = tmp_path / "fine.tif"
    with rasterio.open(path, "w", crs="EPSG:32630", dtype="uint16", width=200_000,
                       height=200_000, transform=Affine(0.001, 0, 500_000, 0, -0.001, 1_000_000),
                       sparse_ok=True, **TILED):
        pass
    started = time.monotonic()
    with pytest.raises(CogMismatch, match=r"^red: the COG's pixels are \d+ times finer"):
        read_reflectance(Asset("red", str(path)), grid, "bilinear")
    assert time.monotonic() - started < 5
    with pytest.raises(CogMismatch):
        check_window(rasterio.windows.Window(0, 0, 1000, 1000), (10, 10))
    check_window(rasterio.windows.Window(0, 0, 42, 42), (40, 40))  # a 10 m band, padded


@pytest.mark.parametrize("how", ["20 m pixels", "turned", "shifted by a pixel", "more rows"])
def test_cog_on_another_grid_than_its_item_gives_is_refused(tmp_path: Path, how: str) -> None:
    """A COG whose pixels are 20 m where its item's ``proj:transform`` says 10 m covers its
    footprint (twice over) and was read, its reflectances stretched over the site; so was one
    turned or shifted. Each is refused before a pixel is read; the item's own grid reads."""
    grid = grid_for("EPSG:32630", 500_000, 1_000_000, (20, 20))
    item_transform = (10.0, 0.0, 500_000.0, 0.0, -10.0, 1_000_000.0)
    transform, rows = {
        "20 m pixels": (Affine(20, 0, 500_000, 0, -20, 1_000_000), 20),
        "turned": (Affine(10, 1, 500_000, 1, -10, 1_000_000), 20),
        "shifted by a pixel": (Affine(10, 0, 499_990, 0, -10, 1_000_000), 20),
        "more rows": (Affine(10, 0, 500_000, 0, -10, 1_000_000), 30),
    }[how]
    path = tmp_path / "band.tif"
    with rasterio.open(path, "w", crs="EPSG:32630", dtype="uint16", width=20, height=rows,
                       transform=transform, **TILED) as dst:
        dst.write(np.full((rows, 20), 1000, "uint16"), 1)
    asset = Asset("red", str(path), grid=((20, 20), item_transform))
    with pytest.raises(CogMismatch, match=r"^red: the COG's grid \(.*\) is not the one its item"):
        read_reflectance(asset, grid, "bilinear")
    fine = tmp_path / "fine.tif"
    with rasterio.open(fine, "w", crs="EPSG:32630", dtype="uint16", width=20, height=20,
                       transform=Affine(*item_transform), **TILED) as dst:
        dst.write(np.full((20, 20), 1000, "uint16"), 1)
    assert np.isfinite(read_reflectance(Asset("red", str(fine), grid=asset.grid), grid,
                                        "bilinear")).all()


def test_asset_grid_is_read_from_the_asset_or_left_unchecked() -> None:
    """``proj:shape`` and ``proj:transform`` of the asset; a grid given with other than
    numbers is not checked, rather than the scene skipped."""
    import pystac

    from kpgeo.sources.stac_items import asset_grid

    def item(asset_fields: dict[str, object], **props: object) -> pystac.Item:
        doc = {"type": "Feature", "stac_version": "1.0.0", "id": "x", "geometry": None,
               "properties": {"datetime": "2024-01-01T00:00:00Z", **props}, "links": [],
               "assets": {"red": {"href": "red.tif", **asset_fields}}}
        return pystac.Item.from_dict(doc)

    t = [10, 0, 500000, 0, -10, 1000000]
    assert asset_grid(item({"proj:shape": [5, 6], "proj:transform": t}), "red") == (
        (5, 6), (10.0, 0.0, 500000.0, 0.0, -10.0, 1000000.0))
    assert asset_grid(item({"proj:shape": [5, 6], "proj:transform": t + [0, 0, 1]}),
                      "red") is not None
    # an item's grid is not taken for its assets' (a 20 m SCL under a 10 m item grid)
    assert asset_grid(item({}, **{"proj:shape": [5, 6], "proj:transform": t}), "red") is None
    for bad in ({"proj:shape": [5], "proj:transform": t},
                {"proj:shape": ["5", 6], "proj:transform": t},
                {"proj:shape": [5, 6], "proj:transform": [*t[:5], "x"]},
                {"proj:shape": [5, 6], "proj:transform": [*t[:5], float("nan")]},
                {"proj:shape": [5, 6]}):
        assert asset_grid(item(bad), "red") is None
