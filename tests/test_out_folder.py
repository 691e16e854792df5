"""An output folder that cannot take the products (docs/product.md §10; issue 19, point 10).

A read-only ``--out`` is refused in one line (exit 2, nothing written). A disk that fills up
during a run ends it in one line (exit 1), never a traceback; the products written so far are
whole (a GeoTIFF GDAL leaves short as the disk fills takes no product's name), and the next run,
with space again, resumes and ends with the products of a run that never failed. The full disk
is simulated by a write that raises ENOSPC, and, where this process may mount one, by a small
tmpfs that really fills up.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import rasterio.shutil
from click.testing import CliRunner
from odc.geo.geobox import GeoBox

from kpgeo.cli import cli
from kpgeo.products import checksums
from kpgeo.products.atomic import PART_SUFFIX
from kpgeo.products.export import write_cog
from kpgeo.products.tiff_whole import check_tiff_whole
from kpgeo.synth import SynthResult

from .builders import assert_same_products, write_site_file

MONTHS = ("2024-01", "2024-02", "2024-03")
ERROR = "kpgeo: error: "


def _args(small_archive: SynthResult, tmp_path: Path, out: Path) -> list[str]:
    aoi = tmp_path / "my.geojson"
    if not aoi.is_file():
        write_site_file(aoi, (-5.705, 8.715, -5.695, 8.725), name="my")
    return ["run", "--aoi", str(aoi), "--source", "stac", "--catalog",
            str(small_archive.collection), "--baseline", "2024-01..2024-01", "--months",
            f"{MONTHS[0]}..{MONTHS[-1]}", "--out", str(out), "--scheduler", "threads"]


def _one_error_line(result: Any) -> str:
    """The error line, the only one of its kind, with no traceback anywhere."""
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith(ERROR)]
    assert len(errors) == 1, result.stderr
    assert result.stderr.rstrip().endswith(errors[0])
    return errors[0]


def _assert_whole(out: Path) -> None:
    """Every file under ``out`` is whole: no temporary file left, each GeoTIFF reads to its
    last pixel, each JSON parses, and each folder's record vouches for what it lists."""
    assert not list(out.rglob(f"*{PART_SUFFIX}*"))
    for path in out.rglob("*"):
        if path.suffix == ".tif":
            with rasterio.open(path) as src:
                src.read()
        elif path.suffix in (".json", ".geojson"):
            json.loads(path.read_text(encoding="utf-8"))
        if path.name == checksums.RECORD_NAME:
            record = json.loads(path.read_text())
            for name, entry in record["files"].items():
                assert checksums.sha256(path.parent / name) == entry["sha256"], path


@contextmanager
def tmpfs(path: Path, size: str, *, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` for the block (skips where none can be)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "kpgeo-test", str(path)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture(scope="module")
def clean_run(small_archive: SynthResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run that never failed, to compare with."""
    root = tmp_path_factory.mktemp("clean")
    result = CliRunner().invoke(cli, _args(small_archive, root, root / "out"))
    assert result.exit_code == 0, result.output
    return root / "out"


# ---- a folder that cannot be written --------------------------------------------------------
def test_out_on_a_read_only_folder_is_refused(small_archive: SynthResult,
                                              tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere but on a read-only file system
        context = tmpfs(tmp_path / "ro", "1m", read_only=True)
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        context = contextmanager(lambda: iter([tmp_path / "ro"]))()
    with context as folder:
        for out, names in [(folder, (f"--out {str(folder)!r}", "read-only")),
                           (folder / "new" / "out", (f"{str(folder)!r}, where it would be made",
                                                     "read-only"))]:
            result = CliRunner().invoke(cli, _args(small_archive, tmp_path, out))
            assert result.exit_code == 2, result.output
            line = _one_error_line(result)
            assert "give a folder you can write to" in line
            if os.geteuid() == 0:
                assert all(name in line for name in names), line
            assert list(folder.iterdir()) == []


# ---- a full disk ------------------------------------------------------------------------------
def test_full_disk_ends_the_run_in_one_line_and_the_next_run_resumes(
        small_archive: SynthResult, clean_run: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up as March's ``change.tif`` is written: exit 1 and one line; February
    and before stay whole and recorded, March has no record; with space again, the next run
    computes March only and ends with the products of a run that never failed."""
    out = tmp_path / "out"
    copy = rasterio.shutil.copy

    def filling_up(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        if "2024-03" in str(dst) and ".change.tif." in str(dst):
            Path(dst).write_bytes(b"II*\0" + bytes(1000))  # what got written before
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        return copy(src, dst, *args, **kwargs)

    monkeypatch.setattr(rasterio.shutil, "copy", filling_up)
    result = CliRunner().invoke(cli, _args(small_archive, tmp_path, out))
    assert result.exit_code == 1, result.output
    line = _one_error_line(result)
    assert line.startswith(f"{ERROR}the disk is full: no space left to write "), line
    assert "free some space and run again" in line
    _assert_whole(out)
    assert not (out / "my" / "2024-03" / "change.tif").exists()
    assert not (out / "my" / "2024-03" / checksums.RECORD_NAME).exists()
    assert (out / "my" / "2024-02" / checksums.RECORD_NAME).is_file()

    monkeypatch.setattr(rasterio.shutil, "copy", copy)
    for manifest in (out / "runs").glob("*.json"):
        manifest.unlink()
    again = CliRunner().invoke(cli, _args(small_archive, tmp_path, out))
    assert again.exit_code == 0, again.output
    (manifest,) = (out / "runs").glob("*.json")
    assert [m["month"] for m in json.loads(manifest.read_text())["site_months"]] == ["2024-03"]
    assert_same_products(clean_run, out)


@pytest.mark.parametrize("size", ["1m", "2800k", "4400k"])
def test_a_real_full_disk_leaves_whole_products(small_archive: SynthResult, clean_run: Path,
                                                tmp_path: Path, size: str,
                                                capfd: pytest.CaptureFixture[str]) -> None:
    """On a tmpfs too small for the run (3.5 MB, and about 5 MB while ``baseline.tif`` is made
    from its chunk tiles): full while a chunk tile is written (1 MB), or ``baseline.tif``, which
    GDAL leaves short without an error (the larger two; found by the check of every GeoTIFF
    before it takes its name): one line, exit 1, whole files; then, with space, the run
    completes as if it had never failed."""
    with tmpfs(tmp_path / "disk", size) as disk:
        out = disk / "out"
        result = CliRunner().invoke(cli, _args(small_archive, tmp_path, out))
        assert result.exit_code == 1, result.output
        assert "the disk is full" in _one_error_line(result)
        # Nothing past Python either: libtiff wrote "_tiffWriteProc: No space left on
        # device." straight to the process's stderr for every tile it could not write.
        assert "No space left" not in capfd.readouterr().err
        _assert_whole(out)
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        for manifest in (out / "runs").glob("*.json"):
            manifest.unlink()
        again = CliRunner().invoke(cli, _args(small_archive, tmp_path, out))
        assert again.exit_code == 0, again.output
        assert_same_products(clean_run, out)


# ---- a GeoTIFF GDAL leaves short --------------------------------------------------------------
def _grid() -> GeoBox:
    return GeoBox((300, 300), rasterio.Affine(10, 0, 500000, 0, -10, 900000), "EPSG:32630")


def test_a_geotiff_left_short_is_found(tmp_path: Path) -> None:
    values = np.random.default_rng(1).integers(0, 10000, (3, 300, 300)).astype("uint16")
    path = write_cog(tmp_path / "whole.tif", values, _grid(), nodata=0)
    check_tiff_whole(path)
    short = tmp_path / "short.tif"
    short.write_bytes(path.read_bytes()[:-100])  # its last tile cut, its header whole
    with rasterio.open(short):  # it still opens
        pass
    with pytest.raises(OSError, match="was not written whole: its blocks end at byte"):
        check_tiff_whole(short)
    short.write_bytes(path.read_bytes()[:200])
    with pytest.raises(OSError, match="was not written whole"):
        check_tiff_whole(short)


def test_a_cog_gdal_left_short_does_not_take_the_products_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """GDAL's copy returns without an error but leaves the file short (as on a disk that
    fills while it closes the file): the write fails, and the product written before stays."""
    grid = _grid()
    before = np.ones((300, 300), "float32")
    target = write_cog(tmp_path / "change.tif", before, grid)
    copy = rasterio.shutil.copy

    def silently_short(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
        done = copy(src, dst, *args, **kwargs)
        with open(dst, "r+b") as f:
            f.truncate(os.path.getsize(dst) - 100)
        return done

    monkeypatch.setattr(rasterio.shutil, "copy", silently_short)
    with pytest.raises(OSError, match="not written whole"):
        write_cog(target, np.zeros((300, 300), "float32"), grid)
    with rasterio.open(target) as src:
        np.testing.assert_array_equal(src.read(1), before)
    assert [p.name for p in tmp_path.iterdir()] == ["change.tif"]
