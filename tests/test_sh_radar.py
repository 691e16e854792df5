"""Sentinel-1 GRD through the ``sentinelhub`` source against the loopback Sentinel Hub server:
the Catalog search, the Process request of each pass and padded chunk, reads in linear power on
the chunk's grid, the response cache, retries and skips, and ``[radar]`` in a sentinelhub
pipeline (issue 20)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pystac
import pytest
from click.testing import CliRunner

from kpgeo.aoi import Site
from kpgeo.cli import cli
from kpgeo.config import SourceConfig, load_pipeline
from kpgeo.errors import ConfigError
from kpgeo.months import parse_month_range
from kpgeo.sources import open_radar_source, open_source
from kpgeo.sources.sentinelhub import SentinelHubSource
from kpgeo.sources.sh_radar import S1_PROCESSING, SentinelHubRadarSource
from kpgeo.sources.stac_radar import RADAR_PAD_PX, padded_chunks

from .builders import radar_pass_on_grid
from .conftest import REPO, TORTIYA
from .sentinelhub_server import SentinelHubTestServer, plane_gamma0

AUGUST = parse_month_range("2024-08")
DESC, ASC = "descending", "ascending"


@pytest.fixture(autouse=True)
def _sentinelhub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No sentinelhub-py config file in $HOME; OAuth over plain HTTP to 127.0.0.1 only."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _item(site: Site, item_id: str, when: dt.datetime, state: str, orbit: int,
          mode: str = "IW", pols: tuple[str, ...] = ("VV", "VH")) -> pystac.Item:
    footprint = site.grid.extent.to_crs("EPSG:4326").buffer(0.01)
    return pystac.Item(item_id, footprint.json, list(footprint.boundingbox), when, {
        "sar:instrument_mode": mode, "sar:polarizations": list(pols),
        "sat:orbit_state": state, "sat:relative_orbit": orbit})


@pytest.fixture(scope="module")
def radar_collection(small_site: Site, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Metadata of six scenes: a descending pass in two frames, an ascending pass, a later
    descending pass, and two the search must leave out (VV only; EW mode)."""
    items = [
        _item(small_site, "S1A_IW_0803_F1", dt.datetime(2024, 8, 3, 6, 10, 5), DESC, 124),
        _item(small_site, "S1A_IW_0803_F2", dt.datetime(2024, 8, 3, 6, 10, 30), DESC, 124),
        _item(small_site, "S1A_IW_0805_A", dt.datetime(2024, 8, 5, 18, 20), ASC, 147),
        _item(small_site, "S1A_IW_0815_D", dt.datetime(2024, 8, 15, 6, 10, 5), DESC, 124),
        _item(small_site, "S1A_IW_0809_SV", dt.datetime(2024, 8, 9, 6, 10), DESC, 51,
              pols=("VV",)),
        _item(small_site, "S1A_EW_0811", dt.datetime(2024, 8, 11, 6, 10), DESC, 80, mode="EW"),
    ]
    root = tmp_path_factory.mktemp("s1grd")
    collection = pystac.Collection("sentinel-1-grd", "loopback S1GRD metadata",
                                   pystac.Extent(pystac.SpatialExtent([items[0].bbox]),
                                                 pystac.TemporalExtent([[None, None]])))
    for item in items:
        collection.add_item(item)
    collection.normalize_hrefs(str(root))
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "collection.json"


@pytest.fixture()
def server(radar_collection: Path):  # type: ignore[no-untyped-def]
    with SentinelHubTestServer(radar=radar_collection).running() as running:
        yield running


def _config(server: SentinelHubTestServer, cache: Path, **changes: Any) -> SourceConfig:
    values: dict[str, Any] = {
        "kind": "sentinelhub", "sh_base_url": server.url, "sh_token_url": server.token_url,
        "sh_cache": str(cache), "sh_backoff_s": 0.05, "sh_max_wait_s": 1.0,
        "sh_request_budget_s": 5.0, "sh_timeout_s": 5.0, "sh_max_attempts": 3}
    values.update(changes)
    return SourceConfig(**values)


def _source(server, cache: Path, monkeypatch, **changes: Any) -> SentinelHubRadarSource:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SH_CLIENT_ID", server.client_id)
    monkeypatch.setenv("SH_CLIENT_SECRET", server.client_secret)
    return SentinelHubRadarSource(_config(server, cache, **changes), chunk_px=128)


def _no_compute(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a dask computation ran where reads should stay lazy")


# ---- search ----------------------------------------------------------------------------------
def test_search_asks_for_iw_dual_polarisation_and_groups_passes(
        server, small_site: Site, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, AUGUST)
    assert [i.id for i in items] == ["S1A_IW_0803_F1", "S1A_IW_0803_F2", "S1A_IW_0805_A",
                                     "S1A_IW_0815_D"]
    (search,) = server.calls("catalog")
    assert search.body["collections"] == ["sentinel-1-grd"]
    assert search.body["datetime"] == "2024-08-01T00:00:00Z/2024-08-31T23:59:59Z"
    assert "sar:instrument_mode='IW'" in search.body["filter"]
    assert "s1:polarization='DV'" in search.body["filter"]
    with dask.config.set(scheduler=_no_compute):
        reads = source.read_chunks(items, small_site)
    assert reads.scene_ids == ["S1A_IW_0803_F1+S1A_IW_0803_F2", "S1A_IW_0805_A",
                               "S1A_IW_0815_D"]
    assert reads.orbit_states == [DESC, ASC, DESC] and reads.relative_orbits == [124, 147, 124]
    assert reads.times[0] == np.datetime64("2024-08-03T06:10:05")
    assert reads.pad_px == RADAR_PAD_PX and len(reads.chunks) == 4  # 201 px in chunks of 128


# ---- the Process request ---------------------------------------------------------------------
def test_process_body_asks_terrain_flattened_float32_gamma0_on_the_padded_chunk(
        server, small_site: Site, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, AUGUST)
    source.read_chunks(items, small_site)
    calls = server.calls("process")
    assert len(calls) == 3 * 4 and all(c.authorized and c.answered == 200 for c in calls)
    grid = small_site.grid
    expected = set()
    for chunk in padded_chunks(grid.shape.yx, 128, RADAR_PAD_PX):
        box = grid[chunk.padded_rows, chunk.padded_cols]
        expected.add((tuple(round(v, 6) for v in box.boundingbox), box.shape.x, box.shape.y))
    first_pass = [c.body for c in calls if "2024-08-03" in json.dumps(c.body)]
    assert len(first_pass) == 4
    got = {(tuple(round(v, 6) for v in b["input"]["bounds"]["bbox"]), b["output"]["width"],
            b["output"]["height"]) for b in first_pass}
    assert got == expected
    # 201 px in chunks of 128, each grown by 3 px within the grid
    assert {(w, h) for _, w, h in got} == {(131, 131), (76, 131), (131, 76), (76, 76)}
    body = first_pass[0]
    assert body["input"]["bounds"]["properties"]["crs"] == (
        f"http://www.opengis.net/def/crs/EPSG/0/{grid.crs.epsg}")
    (data,) = body["input"]["data"]
    assert data["type"] == "sentinel-1-grd"
    assert data["dataFilter"] == {
        "timeRange": {"from": "2024-08-03T06:00:05Z", "to": "2024-08-03T06:20:30Z"},
        "acquisitionMode": "IW", "polarization": "DV", "resolution": "HIGH",
        "orbitDirection": "DESCENDING"}
    assert data["processing"] == {"backCoeff": "GAMMA0_TERRAIN", "orthorectify": True,
                                  "demInstance": "COPERNICUS_30",
                                  "speckleFilter": {"type": "NONE"}} == S1_PROCESSING
    script = body["evalscript"]
    assert '{id: "gamma0", bands: 2, sampleType: "FLOAT32"}' in script
    assert "s.dataMask == 1 ? [s.VV, s.VH] : [NaN, NaN]" in script
    assert body["output"]["responses"] == [{"identifier": "gamma0",
                                            "format": {"type": "image/tiff"}}]
    ascending = [c.body for c in calls if "2024-08-05" in json.dumps(c.body)]
    assert {b["input"]["data"][0]["dataFilter"]["orbitDirection"] for b in ascending} == {
        "ASCENDING"}


# ---- reads -----------------------------------------------------------------------------------
def test_reads_are_linear_power_on_the_padded_chunk_grid(server, small_site: Site,
                                                         tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, AUGUST)
    reads = source.read_chunks(items, small_site)
    grid = small_site.grid
    for (rows, cols, crop, parts), chunk in zip(reads.chunks, padded_chunks(
            grid.shape.yx, 128, RADAR_PAD_PX), strict=True):
        (part,) = dask.compute(parts[2])
        padded = grid[chunk.padded_rows, chunk.padded_cols]
        assert part.dtype == np.float32 and part.shape == (2, *padded.shape.yx)
        np.testing.assert_allclose(part, plane_gamma0([items[3]], padded), rtol=1e-6)
        assert part[:, crop[0], crop[1]].shape[1:] == (rows.stop - rows.start,
                                                        cols.stop - cols.start)
    whole = radar_pass_on_grid(reads, 0)
    np.testing.assert_allclose(whole, plane_gamma0([items[0]], grid), rtol=1e-6)
    # Linear power, not dB: gamma0 of a few hundredths, VH a fifth of VV.
    assert 0.005 < float(np.median(whole[0])) < 0.1
    np.testing.assert_allclose(whole[1] * 5, whole[0], rtol=1e-6)


def test_no_data_reads_as_nan_not_as_dark_water(radar_collection: Path, small_site: Site,
                                                tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    half = small_site.grid.shape.x // 2
    swath_edge_x = small_site.grid.affine.c + half * small_site.grid.affine.a

    def edge_of_swath(items, grid):  # type: ignore[no-untyped-def]
        """No data west of the site's middle column, whatever grid is asked for."""
        values = plane_gamma0(items, grid)
        x = grid.affine.c + grid.affine.a * (np.arange(grid.shape.x) + 0.5)
        values[:, :, x < swath_edge_x] = np.nan
        return values

    with SentinelHubTestServer(radar=radar_collection, gamma0=edge_of_swath).running() as srv:
        source = _source(srv, tmp_path / "cache", monkeypatch)
        reads = source.read_chunks(source.search(small_site, AUGUST)[:1], small_site)
        whole = radar_pass_on_grid(reads, 0)
    assert np.isnan(whole[:, :, :half]).all()
    assert np.isfinite(whole[:, :, half:]).all() and (whole[:, :, half:] > 0).all()


# ---- cache, retries, skips -------------------------------------------------------------------
def test_a_repeat_comes_from_the_cache_without_a_request(radar_collection: Path,
                                                         small_site: Site, tmp_path: Path,
                                                         monkeypatch) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "cache"
    with SentinelHubTestServer(radar=radar_collection).running() as srv:
        first = _source(srv, cache, monkeypatch)
        items = first.search(small_site, AUGUST)
        before = radar_pass_on_grid(first.read_chunks(items, small_site), 1)
        again = SentinelHubRadarSource(_config(srv, cache), chunk_px=128)
        asked = len(srv.requests)
        again.read_chunks(items, small_site)
        assert len(srv.requests) == asked  # not even a token
        config = _config(srv, cache)
    offline = SentinelHubRadarSource(config, chunk_px=128)  # nothing listens there any more
    items_again = offline.search(small_site, AUGUST)
    after = radar_pass_on_grid(offline.read_chunks(items_again, small_site), 1)
    assert [i.id for i in items_again] == [i.id for i in items]
    assert offline.retries == [] and offline.skipped == []
    np.testing.assert_array_equal(after, before)
    stored = b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())
    assert srv.client_secret.encode() not in stored and b"token-1" not in stored


def test_429_and_5xx_are_retried_within_bounds_as_for_optical_scenes(
        server, small_site: Site, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch, sh_threads=1)
    server.fail("catalog", 503)
    server.fail("process", 429, headers={"Retry-After": "300"})  # milliseconds, as SH sends
    server.fail("process", 502)
    started = time.monotonic()
    items = source.search(small_site, AUGUST)
    reads = source.read_chunks(items, small_site)
    assert time.monotonic() - started < 5
    assert len(reads.times) == 3 and source.skipped == []
    assert [(e["status"], e["wait_s"]) for e in source.retries] == [
        (503, 0.05), (429, 0.3), (502, 0.05)]
    answered = [c.answered for c in server.calls("process")]
    assert answered[:3] == [429, 502, 200] and len(answered) == 12 + 2


def test_a_pass_that_keeps_failing_is_skipped_and_recorded(server, small_site: Site,
                                                           tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source = _source(server, tmp_path / "cache", monkeypatch)
    items = source.search(small_site, AUGUST)
    server.fail("process", 500, times=None, when=lambda body: "2024-08-05" in json.dumps(body))
    started = time.monotonic()
    reads = source.read_chunks(items, small_site)
    assert time.monotonic() - started < 5
    assert reads.scene_ids == ["S1A_IW_0803_F1+S1A_IW_0803_F2", "S1A_IW_0815_D"]
    assert all(len(parts) == 2 for _, _, _, parts in reads.chunks)
    (skip,) = source.skipped
    assert skip["scene_id"] == "S1A_IW_0805_A" and skip["month"] == "2024-08"
    assert skip["attempts"] == 3 and "HTTP 500" in skip["reason"]
    json.dumps(source.skipped)


# ---- the pipeline ----------------------------------------------------------------------------
def test_open_radar_source_gives_s1grd_for_a_sentinelhub_pipeline(
        server, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SH_CLIENT_ID", server.client_id)
    monkeypatch.setenv("SH_CLIENT_SECRET", server.client_secret)
    pipeline = tmp_path / "sh.toml"
    pipeline.write_text(
        f'[source]\nkind = "sentinelhub"\nsh_base_url = "{server.url}"\n'
        f'sh_token_url = "{server.token_url}"\nsh_cache = "{tmp_path / "cache"}"\n[radar]\n')
    config = load_pipeline(pipeline)
    scenes = open_source(config)
    radar = open_radar_source(config, scenes)
    assert isinstance(scenes, SentinelHubSource)
    assert isinstance(radar, SentinelHubRadarSource)
    assert radar.sh_config is scenes.sh_config  # the same credentials, read once
    assert radar.source.sh_cache == str(tmp_path / "cache")
    # The monthly pipeline's [radar] names Planetary Computer for --source stac; with
    # --source sentinelhub its radar is S1GRD.
    monthly = dataclasses.replace(load_pipeline(REPO / "pipelines" / "monthly.toml"),
                                  source=config.source)
    assert isinstance(open_radar_source(monthly, scenes), SentinelHubRadarSource)


def test_chunks_too_wide_for_one_request_exit_2_naming_the_value_and_the_fix(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("SH_CLIENT_ID", raising=False)
    pipeline = tmp_path / "wide.toml"
    pipeline.write_text(
        'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
        f'[source]\nkind = "sentinelhub"\nsh_cache = "{tmp_path / "cache"}"\n'
        f'[composite]\nchunk_px = 2500\n[[sites]]\naoi = "{TORTIYA}"\n[radar]\n')
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--out", str(tmp_path / "OUT")])
    assert result.exit_code == 2, result.output
    assert "composite.chunk_px = 2500" in result.output
    assert "2506 px" in result.output and "composite.chunk_px <= 2494" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "OUT").exists()
    with pytest.raises(ConfigError, match=r"source\.sh_tile_px = 1000"):
        SentinelHubRadarSource(SourceConfig(kind="sentinelhub", sh_tile_px=1000),
                               chunk_px=1024)
