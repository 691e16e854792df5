"""Atomic writes (:mod:`kpgeo.products.atomic`): a file appears whole under its name or
not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from kpgeo.products.atomic import PART_SUFFIX, atomic_path, write_bytes


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "timeseries.csv"
    write_bytes(target, b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["timeseries.csv"]


def test_the_temporary_keeps_the_extension_for_gdal_drivers(tmp_path: Path) -> None:
    """GDAL's vector drivers judge a file by its extension and will not write over one."""
    target = tmp_path / "disturbed-2024-03.kml"
    with atomic_path(target, keep_suffix=True) as tmp:
        assert tmp.name.startswith(".") and tmp.name.endswith(PART_SUFFIX + ".kml")
        assert not tmp.exists()
        tmp.write_text("<kml/>")
    assert target.read_text() == "<kml/>"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
