"""The synthetic archive's Sentinel-1 RTC collection: Planetary Computer form, speckle, passes,
and a radar that sees the optical scenes' world (same digging, pits and floods)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from click.testing import CliRunner
from rio_cogeo.cogeo import cog_validate

from kpgeo.aoi import Site
from kpgeo.cli import cli
from kpgeo.months import parse_month_range
from kpgeo.synth import write_archive
from kpgeo.synth.archive import _world_grid
from kpgeo.synth.backscatter import RadarGround, Weather
from kpgeo.synth.radar_scenes import LOOKS, ORBITS, radar_schedule, render_radar
from kpgeo.synth.world import PIT_FILL_DAYS, build_world

from .builders import write_site_file


def _db(power: np.ndarray) -> np.ndarray:
    return 10 * np.log10(power)


def _checksums(root: Path, *, skip: str = "") -> dict[str, str]:
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()
            and not (skip and f.relative_to(root).parts[0] == skip)}


@pytest.fixture(scope="module")
def tiny_site(small_site: Site) -> Site:
    """A 1 x 1 km corner of the small window, for archives written twice."""
    return small_site.window(-5.700, 8.720, 1.0)


def test_optical_files_are_the_same_with_and_without_radar(tiny_site: Site,
                                                           tmp_path: Path) -> None:
    months = parse_month_range("2024-08..2024-08")
    plain = write_archive(tiny_site, months, tmp_path / "plain", seed=4)
    both = write_archive(tiny_site, months, tmp_path / "both", seed=4, radar=True)
    assert plain.radar is None and both.radar is not None and both.radar_scenes > 0
    assert _checksums(tmp_path / "plain") == _checksums(tmp_path / "both",
                                                         skip="sentinel-1-rtc")
    # Radar added later to the optical archive is the radar written with it.
    later = write_archive(tiny_site, months, tmp_path / "plain", seed=4, radar=True)
    assert not later.cached and later.radar_scenes == both.radar_scenes
    radar = _checksums(tmp_path / "both" / "sentinel-1-rtc")
    assert _checksums(tmp_path / "plain" / "sentinel-1-rtc") == radar
    assert write_archive(tiny_site, months, tmp_path / "plain", seed=4, radar=True).cached


def test_kpgeo_synth_writes_radar_in_planetary_computer_form_unless_no_radar(
        tmp_path: Path) -> None:
    aoi = write_site_file(tmp_path / "s.geojson", (-5.705, 8.715, -5.695, 8.725))
    runner = CliRunner()
    result = runner.invoke(cli, ["synth", "--aoi", str(aoi), "--months", "2024-09..2024-09",
                                 "--out", str(tmp_path / "A")])
    assert result.exit_code == 0, result.output
    assert "radar: 5 scenes" in result.output  # 12-day repeat, two orbits, 30 days
    collection = pystac.read_file(str(tmp_path / "A" / "sentinel-1-rtc" / "collection.json"))
    assert collection.id == "sentinel-1-rtc"
    items = list(collection.get_items(recursive=True))
    assert {i.properties["sat:orbit_state"] for i in items} == {"ascending", "descending"}
    assert len({i.properties["sat:relative_orbit"] for i in items}) == 2
    for item in items:
        assert item.properties["sar:instrument_mode"] == "IW"
        assert item.properties["sar:polarizations"] == ["VV", "VH"]
        assert set(item.assets) == {"vv", "vh"}
        raw = json.loads(Path(item.get_self_href()).read_text())
        assert raw["properties"]["proj:epsg"] == 32630
        for key in ("vv", "vh"):
            asset = item.assets[key]
            band = asset.extra_fields["raster:bands"][0]
            assert band["data_type"] == "float32" and band["spatial_resolution"] == 20
            assert asset.extra_fields["proj:transform"][0] == 20.0
            path = asset.get_absolute_href()
            assert cog_validate(path, quiet=True)[0]
            with rasterio.open(path) as src:
                assert src.dtypes[0] == "float32" and src.res == (20.0, 20.0)
                values = src.read(1)
            assert np.isfinite(values).all() and (values > 0).all()  # linear power
    result = runner.invoke(cli, ["synth", "--aoi", str(aoi), "--months", "2024-09..2024-09",
                                 "--out", str(tmp_path / "B"), "--no-radar"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "B" / "sentinel-1-rtc").exists() and "radar:" not in result.output


def test_passes_every_12_days_per_orbit_and_every_6_with_two_satellites() -> None:
    def days(months: str, state: str) -> list[int]:
        return [int(p.day.astype(int)) for p in radar_schedule(parse_month_range(months))
                if p.orbit.state == state]

    for state in ("ascending", "descending"):
        assert set(np.diff(days("2024-01..2024-06", state))) == {12}  # Sentinel-1A alone
        assert set(np.diff(days("2021-01..2021-06", state))) == {6}  # with 1B
        assert set(np.diff(days("2025-07..2025-12", state))) == {6}  # with 1C
    platforms = {p.platform for p in radar_schedule(parse_month_range("2021-12..2022-01"))}
    assert platforms == {"sentinel-1a", "sentinel-1b"}
    late = [p for p in radar_schedule(parse_month_range("2022-01..2022-01"))]
    assert {p.platform for p in late} == {"sentinel-1a"}


@pytest.fixture(scope="module")
def ground(small_site: Site) -> RadarGround:
    world = build_world(_world_grid(small_site.grid), parse_month_range("2023-01..2024-12"),
                        seed=7)
    return RadarGround(world, seed=7, stream=0)


def _pass_on(day: str, state: str = "ascending") -> object:
    for acq in radar_schedule(parse_month_range(f"{day[:7]}..{day[:7]}")):
        if acq.orbit.state == state and str(acq.day) >= day:
            return acq
    raise AssertionError(day)


def test_speckle_is_gamma_of_about_4_4_looks_and_keeps_the_mean(ground: RadarGround) -> None:
    acq = _pass_on("2024-02-01")
    speckled = render_radar(ground, acq, seed=7)
    mean = render_radar(ground, acq, seed=7, speckle=False)
    assert speckled.vv.shape == tuple(s // 2 for s in ground.world.shape)  # 20 m cells
    for noisy, clean in ((speckled.vv, mean.vv), (speckled.vh, mean.vh)):
        ratio = noisy / clean
        enl = ratio.mean() ** 2 / ratio.var()
        assert 4.0 <= enl <= 5.0, enl
        assert abs(ratio.mean() - 1) < 0.02  # the mean is kept in linear power
    # A homogeneous area (the savanna's most uniform cells): the usual ENL estimate.
    flat = np.abs(_db(mean.vh) - np.median(_db(mean.vh))) < 0.2
    sample = speckled.vh[flat]
    assert sample.size > 500
    assert 4.0 <= sample.mean() ** 2 / sample.var() <= 5.0
    assert LOOKS == pytest.approx(4.4)


def test_digging_and_water_are_darker_than_grass_in_vh(ground: RadarGround) -> None:
    world = ground.world
    # Less in the dry season, when the grass is sparse and dry itself, than in the rains.
    for day_text, moisture, drop_db in (("2024-02-10", 0.05, 2.0), ("2024-08-20", 1.0, 3.5)):
        day = float(np.datetime64(day_text, "D").astype(int))
        gamma0 = ground.mean_gamma0(day, ORBITS[0], Weather(moisture, None))
        vv, vh = _db(gamma0[0]), _db(gamma0[1])
        grass = ~np.isfinite(world.dig_day) & ~world.forest & ~world.field & ~world.road
        water, bars = world.water(day)
        grass &= ~water & ~bars
        # Ground being worked, mostly dug (a pixel half dug is half grass).
        worked = world.active_by(day) & (world.dig_share >= 0.8) & ~world.pit
        pits = world.pit & (world.dig_day + PIT_FILL_DAYS <= day)
        assert worked.sum() > 50 and pits.sum() > 5
        assert np.median(vh[worked]) < np.median(vh[grass]) - drop_db, day_text
        # The VH/VV ratio drops too: rough spoil keeps VV, loses the volume's VH.
        assert np.median((vh - vv)[worked]) < np.median((vh - vv)[grass]) - drop_db
        assert vv[pits].max() < -19 and vh[pits].max() < -25
        assert vh[water].max() < -25
    # The wet season's floodplain is water too, as dark as a pit (the confounder).
    wet_day = float(np.datetime64("2024-09-15", "D").astype(int))
    dry_day = float(np.datetime64("2024-02-15", "D").astype(int))
    flood = world.water(wet_day)[0] & ~world.water(dry_day)[0] & ~world.channel
    assert flood.sum() > 50
    vh_wet = _db(ground.mean_gamma0(wet_day, ORBITS[0], Weather(1.0, None))[1])
    assert vh_wet[flood].max() < -25


def test_seasons_rain_and_incidence_move_the_grass(ground: RadarGround) -> None:
    world = ground.world
    grass = (~np.isfinite(world.dig_day) & ~world.forest & ~world.field & ~world.road
             & ~world.water(0.0)[0])
    feb, aug = (float(np.datetime64(d, "D").astype(int)) for d in ("2024-02-15", "2024-08-15"))

    def vh(day: float, orbit: int = 0, rain: np.ndarray | None = None,
           moisture: float = 0.5) -> float:
        mean = ground.mean_gamma0(day, ORBITS[orbit], Weather(moisture, rain))
        return float(np.median(_db(mean[1])[grass]))

    assert vh(aug, moisture=1.0) > vh(feb, moisture=0.05) + 3  # green cover in the rains
    wet = np.ones(world.shape, dtype="float32")
    assert vh(feb, rain=wet) > vh(feb) + 0.5  # a day after rain
    assert 0.2 < vh(feb, orbit=1) - vh(feb, orbit=0) < 1.0  # the steeper incidence
