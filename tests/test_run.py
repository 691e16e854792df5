"""``kpgeo run`` end to end on a synthetic archive, in exactly the documented form (docs/product.md §4)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner
from rasterio.enums import ColorInterp
from rio_cogeo.cogeo import cog_validate

from kpgeo.cli import cli

from .builders import write_site_file


def test_run_exact_form_writes_products_and_a_manifest(small_archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    aoi = write_site_file(tmp_path / "my.geojson", (-5.705, 8.715, -5.695, 8.725), name="my")
    out = tmp_path / "DIR"
    result = CliRunner().invoke(cli, [
        "run", "--aoi", str(aoi), "--source", "stac", "--catalog", str(small_archive.collection),
        "--baseline", "2024-01..2024-01", "--months", "2024-01..2024-03", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for month in ("2024-01", "2024-02", "2024-03"):
        path = out / "my" / month / "composite.tif"
        assert cog_validate(str(path), quiet=True)[0]
        with rasterio.open(path) as src:
            assert src.descriptions == ("blue", "green", "red", "nir", "swir16", "swir22",
                                        "valid_count")
            assert src.crs.to_epsg() == 32630 and src.res == (10.0, 10.0)
            assert src.tags()["month"] == month
            assert src.read(7).max() >= 1
    manifests = list((out / "runs").glob("*.json"))
    assert len(manifests) == 1
    # The index, written just before the manifest, links it.
    assert f'href="runs/{manifests[0].name}"' in (out / "index.html").read_text(encoding="utf-8")
    doc = json.loads(manifests[0].read_text())
    assert doc["status"] == "ok"
    assert [m["month"] for m in doc["site_months"]] == ["2024-01", "2024-02", "2024-03"]
    assert all(m["scenes"] == 6 and m["scene_ids"] for m in doc["site_months"])
    assert doc["config"]["source"]["kind"] == "stac"
    listed = {o["path"] for o in doc["outputs"]}
    for month in ("2024-01", "2024-02", "2024-03"):
        for name in ("composite.tif", "indices.tif", "change.tif", "disturbed.geojson"):
            assert f"my/{month}/{name}" in listed
        assert f"exports/disturbed-{month}.geojson" in listed
    assert "timeseries.csv" in listed
    assert all(len(o["sha256"]) == 64 for o in doc["outputs"])
    assert "gdal" in doc["versions"] and "odc-stac" in doc["versions"]


@pytest.mark.parametrize("chunk_px", [None, 64])
def test_composite_opens_in_true_colour(small_archive, tmp_path: Path,  # type: ignore[no-untyped-def]
                                        chunk_px: int | None) -> None:
    """QGIS draws a multi-band raster's bands marked red, green and blue as such (bands 1, 2, 3
    otherwise, which are blue, green and red here): the composite's colour interpretation says
    which is which, whether written by its one chunk or made from several chunks' tiles."""
    aoi = write_site_file(tmp_path / "tc.geojson", (-5.705, 8.715, -5.695, 8.725), name="tc")
    pipeline = []
    if chunk_px:
        (tmp_path / "p.toml").write_text(f'name = "kpgeo"\n[composite]\nchunk_px = {chunk_px}\n')
        pipeline = [str(tmp_path / "p.toml")]
    out = tmp_path / "OUT"
    result = CliRunner().invoke(cli, [
        "run", *pipeline, "--aoi", str(aoi), "--source", "stac", "--catalog",
        str(small_archive.collection), "--baseline", "2024-01..2024-01", "--months",
        "2024-01..2024-02", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for month in ("2024-01", "2024-02"):
        with rasterio.open(out / "tc" / month / "composite.tif") as src:
            if chunk_px:
                assert max(src.shape) > chunk_px  # several chunks' tiles made the COG
            by_name = dict(zip(src.descriptions, src.colorinterp, strict=True))
            assert by_name["red"] == ColorInterp.red
            assert by_name["green"] == ColorInterp.green
            assert by_name["blue"] == ColorInterp.blue
            assert all(by_name[b] == ColorInterp.undefined
                       for b in ("nir", "swir16", "swir22", "valid_count"))
