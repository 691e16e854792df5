"""The ``sentinelhub`` source against a loopback server that speaks the Sentinel Hub protocol
(token, Catalog, Process): payloads, tiling, retries, skips, the response cache, credentials,
and the same composites as the ``stac`` source on the same archive (docs/product.md §6, §10; issue 5)."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pytest
import rasterio
import requests
from click.testing import CliRunner

from kpgeo.aoi import load_site
from kpgeo.cli import cli
from kpgeo.config import MaskConfig, SourceConfig
from kpgeo.errors import CredentialsError, SourceError
from kpgeo.methods.composite import monthly_composite
from kpgeo.months import parse_month_range
from kpgeo.products.encoding import read_values
from kpgeo.sources import sentinelhub as sh_module
from kpgeo.sources.sentinelhub import SentinelHubSource
from kpgeo.sources.sh_process import tiles_of
from kpgeo.sources.stac import StacSource

from .builders import make_scene, reflectance_to_dn, write_collection, write_site_file
from .sentinelhub_server import SentinelHubTestServer

JAN = parse_month_range("2024-01")
#: The small archive's January scenes on the site's own zone (30); those of zone 29 are
#: reprojected, where GDAL's approximate transformer makes a tile's nearest neighbours differ
#: from the whole grid's at a few pixels.
ZONE30_JAN = {"S2B_T30PSY_20240103T105000_L2A", "S2B_T30PSY_20240113T105000_L2A",
              "S2A_T30PSY_20240118T105000_L2A", "S2A_T30PSY_20240128T105000_L2A"}


@pytest.fixture(autouse=True)
def _sentinelhub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No sentinelhub-py config file in $HOME; OAuth over plain HTTP to 127.0.0.1 only."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


@pytest.fixture()
def server(small_archive):  # type: ignore[no-untyped-def]
    with SentinelHubTestServer(small_archive.collection).running() as running:
        yield running


def _login(server: SentinelHubTestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SH_CLIENT_ID", server.client_id)
    monkeypatch.setenv("SH_CLIENT_SECRET", server.client_secret)


def _config(server: SentinelHubTestServer, cache: Path, **changes: Any) -> SourceConfig:
    """Fast retry bounds: the tests measure that they hold, in seconds."""
    values: dict[str, Any] = {
        "kind": "sentinelhub", "sh_base_url": server.url, "sh_token_url": server.token_url,
        "sh_cache": str(cache), "sh_backoff_s": 0.05, "sh_max_wait_s": 1.0,
        "sh_request_budget_s": 5.0, "sh_timeout_s": 5.0, "sh_max_attempts": 3}
    values.update(changes)
    return SourceConfig(**values)


def _source(server, cache: Path, monkeypatch, **changes: Any) -> SentinelHubSource:  # type: ignore[no-untyped-def]
    _login(server, monkeypatch)
    return SentinelHubSource(_config(server, cache, **changes), chunk_px=128)


def _no_compute(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a dask computation ran where the stage should stay lazy")


def _stac_scenes(archive, site, ids, monkeypatch):  # type: ignore[no-untyped-def]
    stac = StacSource(str(archive.collection), resampling="nearest")
    return stac.load([i for i in stac.search(site, JAN) if i.id in ids], site)


# ---- requests ------------------------------------------------------------------------------
def test_search_sends_the_catalog_payload_and_pages(server, small_site, small_archive,
                                                    tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sh_module, "CATALOG_PAGE", 4)
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, JAN)
    stac = StacSource(str(small_archive.collection))
    assert [i.id for i in items] == [i.id for i in stac.search(small_site, JAN)]
    pages = server.calls("catalog")
    assert len(pages) == 2 and all(p.authorized for p in pages)  # 6 scenes, 4 a page
    first = pages[0].body
    assert first["collections"] == ["sentinel-2-l2a"]
    assert first["datetime"] == "2024-01-01T00:00:00Z/2024-01-31T23:59:59Z"
    assert first["intersects"]["type"] == "Polygon"
    assert first["filter"] == "eo:cloud_cover <= 95" and first["limit"] == 4
    assert pages[1].body["next"] == 4
    assert len(server.calls("token")) == 1
    assert "client_secret" not in server.calls("token")[0].body  # the server records none


def test_process_payload_bbox_crs_size_time_and_evalscript(server, small_site, tmp_path: Path,
                                                            monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, JAN)
    with dask.config.set(scheduler=_no_compute):
        scenes = source.load(items, small_site)  # fetched to the cache, decoded lazily
        monthly_composite(scenes)
    calls = server.calls("process")
    assert len(calls) == 6 and all(c.authorized and c.answered == 200 for c in calls)
    (body,) = [c.body for c in calls if "2024-01-03" in json.dumps(c.body)]
    grid = small_site.grid
    bounds = body["input"]["bounds"]
    assert bounds["properties"]["crs"] == "http://www.opengis.net/def/crs/EPSG/0/32630"
    assert bounds["bbox"] == pytest.approx(list(grid.boundingbox))
    assert (body["output"]["width"], body["output"]["height"]) == (grid.shape.x, grid.shape.y)
    (data,) = body["input"]["data"]
    assert data["type"] == "sentinel-2-l2a"
    assert data["dataFilter"]["timeRange"] == {"from": "2024-01-03T10:40:00Z",
                                               "to": "2024-01-03T11:00:00Z"}
    assert data["processing"] == {"upsampling": "NEAREST", "downsampling": "NEAREST",
                                  "harmonizeValues": True}
    script = body["evalscript"]
    assert '"B02", "B03", "B04", "B08", "B11", "B12", "SCL", "CLM", "dataMask"' in script
    assert '{id: "bands", bands: 6, sampleType: "UINT16"}' in script
    assert [r["identifier"] for r in body["output"]["responses"]] == [
        "bands", "SCL", "CLM", "dataMask"]
    assert all(r["format"]["type"] == "image/tiff" for r in body["output"]["responses"])
    # The Dataset has the stac source's form.
    assert set(scenes.data_vars) == {"blue", "green", "red", "nir", "swir16", "swir22", "valid"}
    assert scenes.red.dims == ("time", "y", "x") and scenes.red.dtype == np.float32
    assert scenes.valid.dtype == bool and scenes.attrs["crs"] == "EPSG:32630"
    assert list(scenes.scene_id.values) == [i.id for i in items]
    assert scenes.sizes == {"time": 6, "y": grid.shape.y, "x": grid.shape.x}


def test_tiles_are_stitched_onto_the_site_grid(server, small_site, small_archive, tmp_path: Path,
                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch, sh_tile_px=101)
    items = source.search(small_site, JAN)[:2]  # one scene on zone 30, one on zone 29
    tiled = source.load(items, small_site)
    calls = server.calls("process")
    assert len(calls) == 2 * 4  # 201 x 201 px in tiles of at most 101 px: 2 x 2
    sizes = {(c.body["output"]["width"], c.body["output"]["height"]) for c in calls}
    assert sizes == {(100, 100), (101, 100), (100, 101), (101, 101)}
    reference = _stac_scenes(small_archive, small_site, {i.id for i in items}, monkeypatch)
    np.testing.assert_array_equal(tiled.valid.values, reference.valid.values)
    same_zone = np.isin(tiled.scene_id.values, list(ZONE30_JAN))
    assert same_zone.tolist() == [True, False]
    for band in ("blue", "red", "nir", "swir16", "swir22"):
        np.testing.assert_allclose(tiled[band].values[same_zone],
                                   reference[band].values[same_zone], atol=1e-6)


def test_aoi_wider_than_2500_px_is_split_within_the_limit(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    site = load_site(write_site_file(tmp_path / "strip.geojson",
                                     (-5.90, 8.700, -5.62, 8.7006), name="strip"))
    grid = site.grid
    assert grid.shape.x > 2500
    cols = np.arange(grid.shape.x)
    red = np.broadcast_to(0.05 + 0.0001 * cols, grid.shape.yx)
    item = make_scene(tmp_path / "s", "S2A_STRIP_20240105", dt.datetime(2024, 1, 5, 10, 50),
                      grid, {"red": reflectance_to_dn(red)}, np.full(grid.shape.yx, 4, "uint8"))
    archive = write_collection(tmp_path / "c", [item])
    with SentinelHubTestServer(archive).running() as server:
        source = _source(server, tmp_path / "cache", monkeypatch)
        scenes = source.load(source.search(site, JAN), site)
        calls = server.calls("process")
    widths = [c.body["output"]["width"] for c in calls]
    assert len(calls) == 2 and max(widths) <= 2500 and sum(widths) == grid.shape.x
    lefts = sorted(c.body["input"]["bounds"]["bbox"][0] for c in calls)
    assert lefts[1] - lefts[0] == pytest.approx(min(widths) * 10.0)
    np.testing.assert_allclose(scenes.red.values[0], red, atol=1e-6)
    assert [[t.grid.shape.x for t in row] for row in tiles_of(grid)] == [sorted(widths)]


def test_server_refuses_more_than_2500_px(server) -> None:  # type: ignore[no-untyped-def]
    token = requests.post(server.token_url, timeout=5, data={
        "grant_type": "client_credentials", "client_id": server.client_id,
        "client_secret": server.client_secret}).json()["access_token"]
    body = {"input": {"bounds": {"bbox": [0, 0, 25010, 100], "properties": {
                "crs": "http://www.opengis.net/def/crs/EPSG/0/32630"}},
            "data": [{"type": "sentinel-2-l2a", "dataFilter": {"timeRange": {
                "from": "2024-01-01T00:00:00Z", "to": "2024-01-02T00:00:00Z"}}}]},
            "evalscript": "//VERSION=3", "output": {"width": 2501, "height": 10,
                                                    "responses": []}}
    answer = requests.post(server.url + "/api/v1/process", json=body, timeout=5,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400 and "2500" in answer.text


# ---- faults ----------------------------------------------------------------------------------
def test_429_with_retry_after_and_500_are_retried_within_bounds(server, small_site,
                                                                tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch, sh_threads=1)
    server.fail("catalog", 503)
    server.fail("process", 429, headers={"Retry-After": "300"})  # milliseconds, as SH sends
    server.fail("process", 500)
    started = time.monotonic()
    scenes = source.load(source.search(small_site, JAN), small_site)
    elapsed = time.monotonic() - started
    assert scenes.sizes["time"] == 6 and source.skipped == []
    problems = [(e["status"], e["wait_s"]) for e in source.retries]
    assert problems == [(503, 0.05), (429, 0.3), (500, 0.05)]
    assert source.retries[0]["label"] == "catalog search"
    assert 0.4 <= elapsed < 5
    answered = [c.answered for c in server.calls("process")]
    assert answered[:3] == [429, 500, 200] and len(answered) == 8


def test_retry_after_longer_than_the_limit_is_not_waited_for(server, small_site, tmp_path: Path,
                                                             monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, JAN)
    first = items[0].id
    server.fail("process", 429, times=None, headers={"Retry-After": "600000"},
                when=lambda body: "2024-01-03" in json.dumps(body))
    started = time.monotonic()
    scenes = source.load(items, small_site)
    assert time.monotonic() - started < 5
    assert first not in scenes.scene_id.values and scenes.sizes["time"] == 5
    (skip,) = source.skipped
    assert skip["scene_id"] == first and "600.0 s" in skip["reason"]
    assert "sh_max_wait_s" in skip["reason"]


def test_requests_that_keep_failing_end_as_recorded_skips_not_a_hang(
        server, small_site, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, JAN)
    server.fail("process", 500, times=None, when=lambda body: "2024-01-08" in json.dumps(body))
    server.fail("process", "drop", times=None,
                when=lambda body: "2024-01-23" in json.dumps(body))
    started = time.monotonic()
    scenes = source.load(items, small_site)
    assert time.monotonic() - started < 5
    assert scenes.sizes["time"] == 4
    skipped = {s["scene_id"]: s for s in source.skipped}
    assert set(skipped) == {"S2A_T29PSY_20240108T105000_L2A", "S2B_T29PSY_20240123T105000_L2A"}
    s500 = skipped["S2A_T29PSY_20240108T105000_L2A"]
    assert s500 == {"site": small_site.name, "month": "2024-01",
                    "scene_id": "S2A_T29PSY_20240108T105000_L2A",
                    "datetime": "2024-01-08T10:50:00Z",
                    "acquisition": "S2A_T29PSY_20240108T105000_L2A",
                    "reason": s500["reason"], "attempts": 3}
    assert "HTTP 500" in s500["reason"] and "gave up after 3 attempts" in s500["reason"]
    assert "ConnectionError" in skipped["S2B_T29PSY_20240123T105000_L2A"]["reason"]
    json.dumps(source.skipped)  # goes into the manifest as it is


def test_refused_credentials_stop_the_run_without_showing_the_secret(
        server, small_site, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SH_CLIENT_ID", server.client_id)
    monkeypatch.setenv("SH_CLIENT_SECRET", "wrong-secret-123")
    source = SentinelHubSource(_config(server, tmp_path / "cache"))
    with pytest.raises(SourceError, match="SH_CLIENT_SECRET") as caught:
        source.search(small_site, JAN)
    assert "wrong-secret-123" not in str(caught.value)
    assert "wrong-secret-123" not in repr(source)


# ---- cache -----------------------------------------------------------------------------------
def test_rerun_comes_from_the_cache_with_the_server_stopped(small_archive, small_site,
                                                            tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    with SentinelHubTestServer(small_archive.collection).running() as server:
        first = _source(server, cache, monkeypatch)
        items = first.search(small_site, JAN)
        before = first.load(items, small_site).compute()
        config = _config(server, cache)
    started = time.monotonic()
    again = SentinelHubSource(config)  # same URLs, nothing listens there any more
    items_again = again.search(small_site, JAN)
    after = again.load(items_again, small_site).compute()
    assert time.monotonic() - started < 5
    assert [i.id for i in items_again] == [i.id for i in items]
    assert again.retries == [] and again.skipped == []
    np.testing.assert_array_equal(after.red.values, before.red.values)
    np.testing.assert_array_equal(after.valid.values, before.valid.values)
    stored = b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())
    assert server.client_secret.encode() not in stored
    assert b"token-1" not in stored


# ---- masks -----------------------------------------------------------------------------------
def test_s2cloudless_mask_is_dilated_and_masked_and_optional(small_archive, small_site,
                                                             tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def clm(items, grid):  # type: ignore[no-untyped-def]
        mask = np.zeros(grid.shape.yx, "uint8")
        mask[100:110, 100:110] = 1
        return mask

    mask = MaskConfig(cloud_buffer_m=20.0)
    with SentinelHubTestServer(small_archive.collection, clm=clm).running() as server:
        _login(server, monkeypatch)
        source = SentinelHubSource(_config(server, tmp_path / "a"), mask=mask)
        items = source.search(small_site, JAN)[:3]
        with_clm = source.load(items, small_site).valid.values
        plain = SentinelHubSource(_config(server, tmp_path / "b", sh_use_clm=False), mask=mask)
        without = plain.load(items, small_site).valid.values
    assert not with_clm[:, 98:112, 100:110].any()  # the block and its 2-pixel buffer
    assert not with_clm[:, 100:110, 98:112].any()
    assert without[:, 100:110, 100:110].any()
    np.testing.assert_array_equal(with_clm[:, :90], without[:, :90])
    with SentinelHubTestServer(small_archive.collection, offer_clm=False).running() as server:
        _login(server, monkeypatch)
        fallback = SentinelHubSource(_config(server, tmp_path / "c"), mask=mask)
        scenes = fallback.load(items, small_site)
        last = server.calls("process")[-1].body
    assert scenes.sizes["time"] == 3 and fallback.skipped == []
    assert "CLM" not in last["evalscript"]
    np.testing.assert_array_equal(scenes.valid.values, without)


# ---- credentials and the command line --------------------------------------------------------
def test_missing_credentials_exit_2_naming_both_variables(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SH_CLIENT_ID", raising=False)
    monkeypatch.delenv("SH_CLIENT_SECRET", raising=False)
    aoi = write_site_file(tmp_path / "my.geojson", (-5.705, 8.715, -5.695, 8.725), name="my")
    before = sorted(tmp_path.rglob("*"))
    result = CliRunner().invoke(cli, [
        "run", "--aoi", str(aoi), "--source", "sentinelhub", "--baseline", "2024-01..2024-01",
        "--months", "2024-01..2024-03", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "SH_CLIENT_ID" in lines[0] and "SH_CLIENT_SECRET" in lines[0]
    assert "Traceback" not in result.output
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no sentinelhub config
    monkeypatch.setenv("SH_CLIENT_ID", "someone")
    with pytest.raises(CredentialsError, match="SH_CLIENT_ID and SH_CLIENT_SECRET; "
                                               "SH_CLIENT_SECRET is not set"):
        SentinelHubSource(SourceConfig(kind="sentinelhub"))


def _read_products(out: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for path in sorted(out.glob("my/2024-*/composite.tif")):
        with rasterio.open(path) as src:  # reflectance as values, then the counts
            found[path.parent.name] = np.stack([*(read_values(src, i) for i in range(1, 7)),
                                                src.read(7).astype("float32")])
    with open(out / "timeseries.csv", newline="") as f:
        found["timeseries"] = list(csv.DictReader(f))
    return found


def _figures(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Time-series rows without their ``source_kind``."""
    return [{k: v for k, v in r.items() if k != "source_kind"} for r in rows]


@pytest.mark.slow
def test_run_end_to_end_gives_the_stac_composites(small_archive, tmp_path: Path,
                                                  monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``kpgeo run --source sentinelhub`` against the loopback server fed by the synthetic
    archive, versus ``--source stac`` on the archive itself. The server reads as the service
    does with kpgeo's request (NEAREST resampling), so the stac source is set to read with
    nearest too (`[source] resampling = "nearest"`);
    then every composite matches to one stored DN (the medians' float32 rounding differs
    between harmonised DN x 1e-4 and DN x 1e-4 - 0.1, which tips some half DN one way or the
    other) and the valid counts, time series and areas match exactly."""
    monkeypatch.chdir(tmp_path)
    aoi = write_site_file(tmp_path / "my.geojson", (-5.705, 8.715, -5.695, 8.725), name="my")
    common = ["--aoi", str(aoi), "--baseline", "2024-01..2024-01", "--months", "2024-01..2024-03"]
    # The stac source set to resample as the sentinelhub request does, by a pipeline setting.
    stac_pipeline = tmp_path / "stac.toml"
    stac_pipeline.write_text(f'name = "stac"\n[source]\nkind = "stac"\nresampling = "nearest"\n'
                             f'catalog = "{small_archive.collection}"\n')
    stac_run = CliRunner().invoke(cli, ["run", str(stac_pipeline), *common,
                                        "--out", str(tmp_path / "a")])
    assert stac_run.exit_code == 0, stac_run.output
    with SentinelHubTestServer(small_archive.collection).running() as server:
        _login(server, monkeypatch)
        pipeline = tmp_path / "sh.toml"
        pipeline.write_text(
            f'name = "sh"\n[source]\nkind = "sentinelhub"\nsh_base_url = "{server.url}"\n'
            f'sh_token_url = "{server.token_url}"\nsh_cache = "{tmp_path / "cache"}"\n')
        sh_run = CliRunner().invoke(cli, ["run", str(pipeline), *common,
                                          "--out", str(tmp_path / "b")])
        assert sh_run.exit_code == 0, sh_run.output
        assert len(server.calls("process")) == 18 and len(server.calls("catalog")) == 3
    expected, got = _read_products(tmp_path / "a"), _read_products(tmp_path / "b")
    assert sorted(got) == ["2024-01", "2024-02", "2024-03", "timeseries"]
    for month in ("2024-01", "2024-02", "2024-03"):
        # Nearest resampling across UTM zones picks the same source pixel in both, except
        # where a pixel centre falls within GDAL's approximate transformer's error (0.125 px)
        # of a source pixel edge: the server warps with GDAL, kpgeo from the exact transform.
        one_dn = 1e-4 + 1e-6
        differs = ~np.isclose(got[month], expected[month], atol=one_dn, rtol=0,
                              equal_nan=True).all(axis=0)
        assert differs.mean() < 5e-4, (month, int(differs.sum()))
        same = ~differs
        np.testing.assert_allclose(got[month][:6, same], expected[month][:6, same], atol=one_dn,
                                   rtol=0)
        np.testing.assert_array_equal(got[month][6, same], expected[month][6, same])  # counts
        assert got[month][6].max() >= 3
    # The same figures; only what they were measured from differs: the synthetic archive read
    # as a STAC collection is labelled synthetic, the Sentinel Hub protocol is a real source.
    assert {r["source_kind"] for r in expected["timeseries"]} == {"synthetic"}
    assert {r["source_kind"] for r in got["timeseries"]} == {"sentinelhub"}
    assert _figures(got["timeseries"]) == _figures(expected["timeseries"])
    sh_export = json.loads((tmp_path / "b" / "exports" / "disturbed-2024-03.geojson").read_text())
    assert sh_export["kpgeo"]["synthetic"] is False and "name" not in sh_export
    # Rerun a month with the server gone: its scenes come from the cache.
    shutil.rmtree(tmp_path / "b" / "my" / "2024-03")
    rerun = CliRunner().invoke(cli, ["run", str(pipeline), "--aoi", str(aoi), "--baseline",
                                     "2024-01..2024-01", "--month", "2024-03",
                                     "--out", str(tmp_path / "b")])
    assert rerun.exit_code == 0, rerun.output
    assert "1 site-months written" in rerun.output
    again = _read_products(tmp_path / "b")
    np.testing.assert_array_equal(again["2024-03"], got["2024-03"])
    assert _figures(again["timeseries"]) == _figures(expected["timeseries"])
    secret = server.client_secret.encode()
    for path in [*tmp_path.joinpath("b").rglob("*"), *tmp_path.joinpath("cache").rglob("*")]:
        assert not path.is_file() or secret not in path.read_bytes(), path


# ---- the real service ------------------------------------------------------------------------
@pytest.mark.network
def test_copernicus_data_space_answers_a_small_month(tmp_path: Path) -> None:
    """Runs only with real credentials (``pytest -m network``); CI leaves it out."""
    if not (os.environ.get("SH_CLIENT_ID") and os.environ.get("SH_CLIENT_SECRET")):
        pytest.skip("SH_CLIENT_ID/SH_CLIENT_SECRET are not set")
    site = load_site(write_site_file(tmp_path / "t.geojson", (-5.692, 8.766, -5.688, 8.770),
                                     name="tortiya-town"))
    source = SentinelHubSource(SourceConfig(kind="sentinelhub", sh_cache=str(tmp_path / "c")))
    items = source.search(site, parse_month_range("2024-01"))
    assert items, "no scene over Tortiya in January 2024"
    scenes = source.load(items[:2], site).compute()
    assert scenes.sizes["x"] == site.grid.shape.x and source.skipped == []
    assert 0.0 < float(scenes.red.median()) < 0.5
