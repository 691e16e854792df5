"""Scaled-integer encoding of the raster products (kpgeo.products.encoding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox

from kpgeo.products.encoding import COUNT, INDEX, REFLECTANCE, decode, read_values
from kpgeo.products.export import write_cog


def test_sentinel2_dn_survive_the_reflectance_encoding_exactly() -> None:
    """Every L2A DN, made reflectance as the sources make it (float32 DN * 1e-4 - 0.1), is
    stored as that DN and read back as the same float32 reflectance."""
    dn = np.arange(1, 65536, dtype="uint16")
    reflectance = dn.astype("float32") * np.float32(1e-4) + np.float32(-0.1)
    stored = REFLECTANCE.encode(reflectance)
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(stored, dn)
    np.testing.assert_array_equal(decode(stored, 1e-4, -0.1, 0), reflectance)


def test_encoding_rounds_clips_and_keeps_nodata_for_nan() -> None:
    values = np.array([np.nan, -0.5, -0.09996, 0.123456, 7.0], dtype="float32")
    stored = REFLECTANCE.encode(values)
    # NaN is DN 0; below the range clips to DN 1, not to nodata; above it to 65535.
    np.testing.assert_array_equal(stored, [0, 1, 1, 2235, 65535])
    index = INDEX.encode(np.array([np.nan, -1.0, 0.25004, 1.0, -9.0, 9.0], dtype="float32"))
    np.testing.assert_array_equal(index, [-32768, -10000, 2500, 10000, -32767, 32767])
    decoded = decode(index, INDEX.scale, INDEX.offset, INDEX.nodata)
    assert np.isnan(decoded[0])
    np.testing.assert_allclose(decoded[1:4], [-1.0, 0.25, 1.0], atol=1e-6)


def test_written_scales_and_offsets_are_what_gdal_reads(tmp_path: Path) -> None:
    """Values written with an encoding are stored as its integers, with the band scales and
    offsets in the COG (GDAL, QGIS and rasterio read them); read_values applies them and
    turns nodata into NaN."""
    grid = GeoBox((300, 300), rasterio.Affine(10, 0, 500000, 0, -10, 900000), "EPSG:32630")
    reflectance = np.random.default_rng(1).uniform(-0.05, 0.6, (300, 300)).astype("float32")
    reflectance[:10] = np.nan
    count = np.full((300, 300), 4, dtype="float32")
    path = write_cog(tmp_path / "c.tif", [reflectance, count], grid,
                     encoding=[REFLECTANCE, COUNT])
    with rasterio.open(path) as src:
        assert src.dtypes == ("uint16", "uint16") and src.nodata == 0
        assert src.scales == (1e-4, 1.0) and src.offsets == (-0.1, 0.0)
        values = read_values(src, 1)
        np.testing.assert_array_equal(read_values(src, 2), count)
    assert np.isnan(values[:10]).all()
    np.testing.assert_allclose(values[10:], reflectance[10:], atol=0.5e-4 + 1e-7)
