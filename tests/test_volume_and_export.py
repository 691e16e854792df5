"""Production-volume figures (docs/product.md §7) and ``kpgeo export`` to GeoPackage and KML (docs/product.md §8)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import geopandas
import numpy as np
import pytest
from click.testing import CliRunner

from kpgeo.cli import cli
from kpgeo.config import Assumption, VolumeConfig
from kpgeo.methods.volume import COLUMNS, draw_factors, quantiles, volume_rows
from kpgeo.synth import SynthResult

from .builders import write_site_file

MONTHS = ("2024-01", "2024-02", "2024-03")


def _row(new_ha: str, cumulative_ha: str, status: str = "ok") -> dict[str, str]:
    return {"site": "s", "month": "2024-05", "status": status, "new_ha": new_ha,
            "cumulative_new_ha": cumulative_ha}


def test_percentiles_are_ordered_and_positive() -> None:
    q = quantiles(12.5, *draw_factors(VolumeConfig()))
    assert 0 < q["gravel_m3_p10"] <= q["gravel_m3_p50"] <= q["gravel_m3_p90"]
    assert 0 < q["carats_p10"] <= q["carats_p50"] <= q["carats_p90"]
    # The spread is real: the ranges are wide, P90 is well above P10.
    assert q["carats_p90"] > 2 * q["carats_p10"]


def test_figures_scale_linearly_with_area_for_fixed_assumptions() -> None:
    factors = draw_factors(VolumeConfig())
    one, three = quantiles(1.0, *factors), quantiles(3.0, *factors)
    for key, value in one.items():
        assert three[key] == pytest.approx(3 * value, rel=1e-12)
    assert all(v == 0 for v in quantiles(0.0, *factors).values())


def test_point_assumptions_give_the_formula_exactly() -> None:
    """With every range collapsed to a point, P10 = P50 = P90 = area x f x h x G x r."""
    point = VolumeConfig(
        gravel_fraction=Assumption(0.5, 0.5), gravel_thickness_m=Assumption(1.0, 1.0),
        grade_ct_per_m3=Assumption(1.0, 1.0), recovery=Assumption(0.7, 0.7))
    q = quantiles(10.0, *draw_factors(point))
    assert q["gravel_m3_p10"] == pytest.approx(50_000.0) == q["gravel_m3_p90"]
    assert q["carats_p50"] == pytest.approx(35_000.0)  # docs/domain.md 1.7 sanity check


def test_same_seed_same_figures_other_seed_other_figures() -> None:
    rows = [_row("2.50", "10.00")]
    a = volume_rows(rows, VolumeConfig(seed=1))
    b = volume_rows(rows, VolumeConfig(seed=1))
    c = volume_rows(rows, VolumeConfig(seed=2))
    assert a == b and a != c


def test_a_gap_month_has_no_figures() -> None:
    (row,) = volume_rows([_row("", "", status="gap")], VolumeConfig())
    assert all(row.get(c, "") == "" for c in COLUMNS[5:])


@pytest.fixture(scope="module")
def run_out(small_archive: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The documented run on the shared synthetic archive."""
    root = tmp_path_factory.mktemp("volume")
    aoi = write_site_file(root / "v.geojson", (-5.708, 8.712, -5.692, 8.728), name="v")
    out = root / "OUT"
    result = CliRunner().invoke(cli, [
        "run", "--aoi", str(aoi), "--source", "stac", "--catalog",
        str(small_archive.collection), "--baseline", "2024-01..2024-01", "--months",
        f"{MONTHS[0]}..{MONTHS[-1]}", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_run_writes_a_volume_csv_per_month_matching_the_time_series(run_out: Path) -> None:
    series = {r["month"]: r for r in csv.DictReader((run_out / "timeseries.csv").open())}
    for month in MONTHS:
        with open(run_out / "exports" / f"volume-{month}.csv", newline="") as f:
            reader = csv.DictReader(f)
            assert tuple(reader.fieldnames or ()) == COLUMNS
            (row,) = list(reader)
        assert row["new_ha"] == series[month]["new_ha"]
        assert row["cumulative_new_ha"] == series[month]["cumulative_new_ha"]
        values = [float(row[f"cumulative_carats_p{q}"]) for q in (10, 50, 90)]
        assert values == sorted(values)
    last = float(series[MONTHS[-1]]["cumulative_new_ha"])
    assert last > 0  # the archive has new digging, so the figures are not trivially zero


@pytest.mark.parametrize("fmt", ["gpkg", "kml"])
def test_export_formats_hold_the_same_features_and_areas(run_out: Path, fmt: str) -> None:
    month = MONTHS[-1]
    result = CliRunner().invoke(cli, ["export", "--month", month, "--format", fmt,
                                      "--out", str(run_out)])
    assert result.exit_code == 0, result.output
    path = run_out / "exports" / f"disturbed-{month}.{fmt}"
    assert str(path) in result.output
    geojson = geopandas.read_file(run_out / "exports" / f"disturbed-{month}.geojson")
    other = geopandas.read_file(path)
    assert len(geojson) > 0 and len(other) == len(geojson)
    assert other.crs is not None and other.crs.to_epsg() == 4326
    ids = other["Name"] if fmt == "kml" else other["id"]  # KML names placemarks by id
    assert sorted(ids) == sorted(geojson["id"])
    a = geojson.set_index("id").sort_index()
    b = other.assign(id=list(ids)).set_index("id").sort_index()
    for column in ("site", "status", "first_detected", "confirmed"):
        assert [None if v in (None, "") or v != v else v for v in b[column]] == \
               [None if v in (None, "") or v != v else v for v in a[column]]
    np.testing.assert_allclose(b["area_ha"].astype(float), a["area_ha"].astype(float))
    utm_a = a.geometry.to_crs(32630).area.to_numpy()
    utm_b = geopandas.GeoSeries(b.geometry, crs=4326).to_crs(32630).area.to_numpy()
    np.testing.assert_allclose(utm_b, utm_a, rtol=1e-6)
    np.testing.assert_allclose(utm_a / 1e4, a["area_ha"].astype(float), rtol=0.01)


def test_bad_volume_range_is_refused_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    aoi = Path(__file__).resolve().parent.parent / "aoi" / "tortiya.geojson"
    path.write_text(f'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                    f'[[sites]]\naoi = "{aoi}"\n[volume.recovery]\nlow = 0.9\nhigh = 0.5\n')
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "volume.recovery = [0.9, 0.5]" in result.output
    assert not (tmp_path / "out").exists()


def test_volume_config_round_trips_through_the_manifest_view() -> None:
    from kpgeo.config import PipelineConfig

    doc = PipelineConfig().to_dict()
    assert doc["volume"]["grade_ct_per_m3"]["low"] == 0.3
    assert "docs/domain.md" in doc["volume"]["recovery"]["source"]
    assert dataclasses.asdict(VolumeConfig())["draws"] == 20000
