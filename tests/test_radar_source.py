"""Sentinel-1 RTC through the ``stac`` source: a static collection on disk (the synthetic
archive's) read on the site grid, and the ``[radar]`` table of a pipeline."""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from kpgeo.aoi import Site
from kpgeo.cli import cli
from kpgeo.config import RadarConfig, SourceConfig, load_pipeline, validate
from kpgeo.errors import ConfigError
from kpgeo.months import parse_month_range
from kpgeo.sources import open_radar_source, open_source
from kpgeo.sources.radar_reader import to_power
from kpgeo.sources.stac_radar import RADAR_PAD_PX, StacRadarSource
from kpgeo.synth import SynthResult, write_archive

from .builders import radar_pass_on_grid
from .conftest import TORTIYA

MONTHS = "2024-08..2024-09"


@pytest.fixture(scope="module")
def radar_archive(small_site: Site, tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return write_archive(small_site, parse_month_range(MONTHS),
                         tmp_path_factory.mktemp("radar") / "tortiya", seed=3, radar=True)


def test_static_rtc_collection_is_read_on_the_site_grid_pass_by_pass(
        radar_archive: SynthResult, small_site: Site) -> None:
    assert radar_archive.radar is not None
    source = StacRadarSource.from_config(RadarConfig(catalog=str(radar_archive.radar)),
                                         chunk_px=128)
    items = source.search(small_site, parse_month_range("2024-09..2024-09"))
    assert len(items) == radar_archive.radar_scenes - len(
        source.search(small_site, parse_month_range("2024-08..2024-08")))
    reads = source.read_chunks(items, small_site)
    assert len(reads.times) == len(items) and reads.pad_px == RADAR_PAD_PX == 3
    assert set(reads.orbit_states) == {"ascending", "descending"}
    assert len(set(reads.relative_orbits)) == 2
    assert len(reads.chunks) == 4  # 200 px in chunks of 128
    y, x, crop, parts = reads.chunks[0]
    assert crop == (slice(0, y.stop - y.start), slice(0, x.stop - x.start))
    part = dask.compute(parts[0])[0]
    assert part.shape == (2, y.stop - y.start + 3, x.stop - x.start + 3)  # padded inside
    gamma0 = radar_pass_on_grid(reads, 0)
    assert gamma0.shape == (2, *small_site.grid.shape.yx)
    assert np.isfinite(gamma0).all() and (gamma0 > 0).all()
    # The 20 m cells interpolated onto the 10 m grid: the mean power is the COG's.
    with rasterio.open(items[0].assets["vh"].get_absolute_href()) as src:
        cells = src.read(1)
    assert gamma0[1].mean() == pytest.approx(cells.mean(), rel=0.05)
    assert -25 < 10 * np.log10(np.median(gamma0[1])) < -10


def test_stored_units_become_linear_power() -> None:
    power = np.array([0.01, 0.1, 0.0, np.nan], dtype="float32")
    assert np.allclose(to_power(10 * np.log10(power[:2]), "db"), power[:2])
    assert np.allclose(to_power(np.sqrt(power[:2]), "amplitude"), power[:2])
    assert np.isnan(to_power(power.copy(), "power")[2:]).all()  # 0 is no data


def test_a_synthetic_pipeline_with_radar_reads_the_archives_radar(
        radar_archive: SynthResult, small_site: Site, tmp_path: Path) -> None:
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(f'[source]\nkind = "synthetic"\ncatalog = "{radar_archive.collection}"\n'
                        "[radar]\n")
    config = load_pipeline(pipeline)
    assert config.radar == RadarConfig()
    radar = open_radar_source(config, open_source(config))
    assert radar is not None
    assert len(radar.search(small_site, parse_month_range(MONTHS))) == radar_archive.radar_scenes
    plain = tmp_path / "q.toml"
    plain.write_text('[source]\nkind = "synthetic"\n')
    assert open_radar_source(load_pipeline(plain), None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("table", "names"), [
    ('units = "dB"', ("radar.units = 'dB'", '"db"')),
    ('backscatter = "sigma0"', ("radar.backscatter = 'sigma0'", "gamma0")),
    ('sign = "azure"', ("radar.sign = 'azure'", "planetary-computer")),
    ('vh_asset = ""', ("radar.vh_asset is empty",)),
])
def test_a_bad_radar_table_is_refused_naming_the_value_and_the_fix(
        tmp_path: Path, table: str, names: tuple[str, ...]) -> None:
    pipeline = tmp_path / "bad.toml"
    pipeline.write_text(f'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                        f'[source]\nkind = "synthetic"\n[[sites]]\naoi = "{TORTIYA}"\n'
                        f'[radar]\n{table}\n')
    config = load_pipeline(pipeline)
    with pytest.raises(ConfigError, match=names[0].replace(".", r"\.").replace("'", ".")):
        validate(config)
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--out", str(tmp_path / "OUT")])
    assert result.exit_code == 2, result.output
    assert all(name in result.output for name in names), result.output
    assert not (tmp_path / "OUT").exists()


def test_planetary_computer_is_the_default_radar_of_the_stac_source() -> None:
    source = StacRadarSource.from_config(RadarConfig(sign="planetary-computer"))
    assert source.catalog.catalog == "https://planetarycomputer.microsoft.com/api/stac/v1"
    assert source.catalog.collection == "sentinel-1-rtc"
    assert SourceConfig().kind == "synthetic"


def test_planetary_computer_search_signing_and_reads_through_loopback(
        radar_archive: SynthResult, small_site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """The STAC API, the SAS token endpoint and the blob storage on 127.0.0.1: the assets
    read only with the package's signature, and are the archive's pixels."""
    import planetary_computer
    from planetary_computer.settings import Settings

    from .planetary_server import planetary_server

    assert radar_archive.radar is not None
    september = parse_month_range("2024-09..2024-09")
    local = StacRadarSource.from_config(RadarConfig(catalog=str(radar_archive.radar)))
    expected = radar_pass_on_grid(
        local.read_chunks(local.search(small_site, september), small_site), 0)
    with planetary_server(radar_archive.radar.parent) as pc:
        monkeypatch.setenv("GDAL_HTTP_PROXY", pc.proxy)  # the blob storage's host, on loopback
        monkeypatch.setattr(Settings.get(), "sas_url", pc.url + "/api/sas/v1/token")
        monkeypatch.setattr(planetary_computer.sas, "TOKEN_CACHE", {})
        config = RadarConfig(catalog=pc.url + "/api/stac/v1/", sign="planetary-computer")
        source = StacRadarSource.from_config(config, chunk_px=128, http_timeout_s=10)
        items = source.search(small_site, september)
        assert [i.id for i in items] == [i.id for i in local.search(small_site, september)]
        assert all("blob.core.windows.net" in i.assets["vv"].href for i in items)
        gamma0 = radar_pass_on_grid(source.read_chunks(items, small_site), 0)
        assert pc.tokens and pc.signed and not pc.refused
        np.testing.assert_allclose(gamma0, expected, rtol=1e-6)
        unsigned = StacRadarSource.from_config(RadarConfig(catalog=config.catalog),
                                               http_timeout_s=10)
        with pytest.raises(rasterio.errors.RasterioIOError):
            radar_pass_on_grid(unsigned.read_chunks(items[:1], small_site), 0)
        assert pc.refused

