"""Months, ranges and pipeline files: parsing, validation, and one-line refusals (docs/product.md §4, §10)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from kpgeo.cli import build_run_config, cli
from kpgeo.config import PipelineConfig, SiteConfig, Window, load_pipeline, validate
from kpgeo.errors import ConfigError, MonthError
from kpgeo.months import MonthRange, parse_month, parse_month_range

from .conftest import REPO, TORTIYA


@given(st.integers(1900, 2200), st.integers(1, 12), st.integers(0, 40))
def test_month_ranges_round_trip(year: int, month: int, length: int) -> None:
    first = parse_month(f"{year:04d}-{month:02d}")
    last = first + length
    span = parse_month_range(f"{first}..{last}")
    assert len(span) == length + 1
    assert span.labels()[0] == f"{year:04d}-{month:02d}"
    assert span.labels()[-1] == str(last)
    assert str(span) == f"{first}..{last}"


def test_single_month_is_a_range_of_one() -> None:
    assert parse_month_range("2024-06").labels() == ["2024-06"]
    assert MonthRange.single(np.datetime64("2024-06", "M")).months() == [
        np.datetime64("2024-06", "M")]


BAD_MONTHS = {
    "2024-13": "month 13",
    "2024-00": "month 00",
    "24-01": "write it as YYYY-MM",
    "2024/01": "write it as YYYY-MM",
    "June": "write it as YYYY-MM",
}
BAD_RANGES = {
    "2024-06..2024-01": "runs backwards",
    "2024-01..": "FIRST..LAST",
    "2024-01..2024-02..2024-03": "FIRST..LAST",
    "2024-01..2024-14": "month 14",
}


@pytest.mark.parametrize("text", sorted(BAD_MONTHS))
def test_bad_month(text: str) -> None:
    with pytest.raises(MonthError, match=BAD_MONTHS[text]):
        parse_month(text)


@pytest.mark.parametrize("text", sorted(BAD_RANGES))
def test_bad_range(text: str) -> None:
    with pytest.raises(MonthError, match=BAD_RANGES[text]):
        parse_month_range(text)


CLI_BAD = [
    (["run", "--month", "2024-13"], "--month '2024-13' has month 13"),
    (["run", "--months", "2024-06..2024-01"], "runs backwards"),
    (["run", "--months", "2024-01..2024-06", "--baseline", "2024-x"], "--baseline '2024-x'"),
    (["run", "--months", "2024-01..2024-06", "--baseline", "2024-01..2024-06"],
     "does not end before the last month"),
    (["run", "--month", "2024-01", "--months", "2024-01..2024-02"], "not both"),
    (["run", "--months", "2023-06..2024-06", "--baseline", "2024-01..2024-03"],
     "start before the baseline"),
    (["run", "--source", "sentinel", "--months", "2024-01..2024-06"], "--source 'sentinel'"),
    (["run", "--source", "stac", "--months", "2014-01..2024-06", "--baseline",
      "2014-01..2014-12"], "before Sentinel-2 data exist"),
    (["run", "--source", "stac", "--months", "2024-01..2199-06", "--baseline",
      "2024-01..2024-03"], "ends after the current month"),
    (["run", "--months", "2024-01..2024-06", "--baseline", "2024-01..2024-03",
      "--site", "atlantis", str(REPO / "pipelines" / "demo.toml")], "--site 'atlantis'"),
    (["run", "--months", "2024-01..2024-06", "--baseline", "2024-01..2024-03",
      "--source", "stac", "--catalog", "/nonexistent/collection.json"], "does not exist"),
    (["run", "--months", "2024-01..2024-06", "--baseline", "2024-01..2024-03",
      "--workers", "-1"], "--workers -1"),
    (["synth", "--aoi", "AOI", "--months", "2024-03..2024-01", "--out", "OUT"], "runs backwards"),
    (["synth", "--aoi", "AOI", "--months", "2024-1", "--out", "OUT"], "YYYY-MM"),
    (["export", "--month", "2024-99"], "month 99"),
    (["export", "--month", "2024-05", "--format", "shp"], "--format 'shp'"),
    (["export", "--month", "2024-05", "--out", "OUT"], "run `kpgeo run"),
]


@pytest.mark.parametrize(("args", "expected"), CLI_BAD, ids=[" ".join(a[:3]) for a, _ in CLI_BAD])
def test_bad_command_line_is_one_line_exit_2_nothing_written(
        args: list[str], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [a.replace("AOI", str(TORTIYA)).replace("OUT", str(tmp_path / "out")) for a in args]
    if args[0] == "run" and "--aoi" not in args and not any(a.endswith(".toml") for a in args):
        args += ["--aoi", str(TORTIYA)]
    if args[0] == "run" and "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_shipped_pipelines_load_and_validate() -> None:
    demo = load_pipeline(REPO / "pipelines" / "demo.toml")
    assert demo.source.kind == "synthetic"
    assert len(demo.baseline or []) == 12 and len(demo.months or []) == 24
    assert demo.months is not None and demo.baseline is not None
    assert demo.baseline.first == demo.months.first
    assert {Path(s.aoi).name for s in demo.sites} == {"bobi-seguela.geojson", "tortiya.geojson"}
    assert all(s.window is not None and s.window.size_km == 6 for s in demo.sites)
    monthly = load_pipeline(REPO / "pipelines" / "monthly.toml")
    assert monthly.source.kind == "stac"
    assert monthly.source.catalog.startswith("https://earth-search")
    assert monthly.source.collection == "sentinel-2-c1-l2a"
    assert all(Path(s.aoi).is_file() for s in monthly.sites)
    with pytest.raises(AttributeError):
        monthly.name = "changed"  # type: ignore[misc]  # frozen


def test_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('name = "x"\n[composite]\nmin_valid_pct = 20\nchunk_pixels = 512\n')
    with pytest.raises(ConfigError, match=r"p\.toml: unknown key 'composite\.chunk_pixels'"):
        load_pipeline(path)
    result = CliRunner().invoke(cli, ["run", str(path), "--month", "2024-01"])
    assert result.exit_code == 2
    assert "composite.chunk_pixels" in result.output and "p.toml" in result.output


def test_bad_values_in_pipeline_files(tmp_path: Path) -> None:
    cases = {
        'months = "2024-13..2024-14"': "month 13",
        '[source]\nkind = "ftp"': "kind = 'ftp'",
        '[composite]\nmin_valid_pct = "high"': "should be of type float",
        "[[sites]]\nwindow = { lon = 1.0, lat = 2.0 }": "aoi",
        "this is = not toml =": "not valid TOML",
    }
    for text, expected in cases.items():
        path = tmp_path / "p.toml"
        path.write_text(text + "\n")
        with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
            load_pipeline(path)


def test_negative_mapping_unit_is_refused_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                    f'[[sites]]\naoi = "{TORTIYA}"\n[detection]\nmin_area_ha = -1.0\n')
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert "detection.min_area_ha = -1.0" in result.output
    assert not (tmp_path / "out").exists()


def test_options_override_the_pipeline_file(tmp_path: Path) -> None:
    config = build_run_config(REPO / "pipelines" / "demo.toml", months_text="2023-01..2023-06",
                              baseline="2023-01..2023-03", aoi_files=(TORTIYA,),
                              source="stac", catalog=str(tmp_path), out=tmp_path / "o",
                              workers=2)
    assert config.source.kind == "stac" and config.source.catalog == str(tmp_path)
    assert [s.aoi for s in config.sites] == [str(TORTIYA)]
    assert str(config.months) == "2023-01..2023-06" and str(config.baseline) == "2023-01..2023-03"
    assert config.out_dir == tmp_path / "o" and config.workers == 2
    doc = config.to_dict()
    assert doc["months"] == "2023-01..2023-06" and doc["source"]["kind"] == "stac"


@pytest.mark.parametrize("setting, expected", [
    ("footprint_share_min = 1.5", "detection.footprint_share_min = 1.5 is out of range; give a number above 0 and at most 1"),
    ("preexisting_share_min = nan", "detection.preexisting_share_min = nan is out of range"),
    ("preexisting_undug_share_max = 0.6",
     "detection.preexisting_undug_share_max (0.6) < preexisting_share_min (0.5)"),
    ("worked_ndvi = 1.0", "detection.worked_ndvi = 1.0 is not an NDVI"),
    ("green_season_contrast = 0.0", "detection.green_season_contrast = 0.0"),
])
def test_dug_share_thresholds_out_of_range_are_refused_with_exit_2(
        tmp_path: Path, setting: str, expected: str) -> None:
    """The dug-share thresholds are shares in order (undug < dug <= surely dug), worked
    ground's NDVI an NDVI: anything else is exit 2 naming the value, nothing written."""
    path = tmp_path / "p.toml"
    path.write_text(f'baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                    f'[[sites]]\naoi = "{TORTIYA}"\n[detection]\n{setting}\n')
    result = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert not (tmp_path / "out").exists()


def _config_with(key: str, value: Any) -> PipelineConfig:
    """The default configuration (with a windowed site) with the number at ``key`` (as
    :func:`kpgeo.limits.numbers` names it) set to ``value``."""
    def replaced(obj: Any, parts: list[str]) -> Any:
        head, rest = parts[0], parts[1:]
        name, index = (head[:-1].split("[") + [None])[:2] if head.endswith("]") else (head, None)
        current = getattr(obj, name)
        if index is not None:
            items = list(current)
            items[int(index)] = replaced(items[int(index)], rest) if rest else value
            return dataclasses.replace(obj, **{name: tuple(items)})
        if not rest:
            if dataclasses.is_dataclass(current):  # a ranged assumption: both ends
                return dataclasses.replace(obj, **{name: dataclasses.replace(
                    current, low=value, high=value)})
            return dataclasses.replace(obj, **{name: value})
        return dataclasses.replace(obj, **{name: replaced(current, rest)})

    base = PipelineConfig(sites=(SiteConfig(str(TORTIYA), Window(-5.7, 8.72, 6.0)),),
                          baseline=parse_month_range("2024-01..2024-03"),
                          months=parse_month_range("2024-01..2024-06"))
    return replaced(base, key.split("."))


def test_every_number_of_a_pipeline_has_a_range_and_nan_inf_and_huge_values_are_refused(
        ) -> None:
    """Every numeric field of the configuration has a range in kpgeo.limits, and NaN, ±inf
    and 1e12 are each refused with the key named: no number reaches a run unchecked."""
    from kpgeo.limits import limit_of, numbers

    base = _config_with("workers", 0)
    keys = [k for k, _ in numbers(base)]
    assert len(keys) > 50
    assert [k for k in keys if limit_of(k) is None] == []
    assert validate(base) is base  # the defaults are in range
    for key in keys:
        for bad in (float("nan"), float("inf"), -float("inf"), 1e12):
            with pytest.raises(ConfigError) as caught:
                validate(_config_with(key, bad))
            shown = key if key != "workers" else "--workers"
            assert shown in str(caught.value), (key, bad, str(caught.value))


def test_a_number_of_the_wrong_kind_in_a_pipeline_file_is_refused_with_its_range(
        tmp_path: Path) -> None:
    """``chunk_px = nan`` (TOML reads a float where a whole number goes) or ``ndvi_drop =
    true`` is refused as of the wrong type, and the refusal gives the range as an out-of-range
    value's does: every number of the file, under its table."""
    from kpgeo.limits import limit_of, numbers

    base = _config_with("workers", 0)
    for key, value in numbers(base):
        if key.startswith("sites[") or "[" in key:
            continue  # windows and SCL lists: covered below
        table, _, name = key.rpartition(".")
        whole = isinstance(value, int)
        bad = "nan" if whole else "true"
        if isinstance(value, tuple):  # a ranged assumption: its high end
            table, name, bad = key, "high", "true"
        header = f"[{table}]\n" if table else ""
        path = tmp_path / "p.toml"
        path.write_text(f"{header}{name} = {bad}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_pipeline(path)
        limit = limit_of(key)
        assert limit is not None
        assert f"give {limit.describe()}" in str(caught.value), (key, str(caught.value))
    (tmp_path / "p.toml").write_text(
        '[mask]\ninvalid_scl = [0, 1.5]\n[[sites]]\naoi = "x.geojson"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"invalid_scl\[1\] = 1.5 .* from 0 to 11"):
        load_pipeline(tmp_path / "p.toml")
