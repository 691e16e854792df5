"""Products written chunk by chunk (kpgeo.products.tiles): the COG made from the chunks' tiles is
the whole-grid writer's, pixel for pixel, with overview levels of GDAL's sizes that each chunk made
of its own part."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from rasterio.enums import ColorInterp
from rio_cogeo.cogeo import cog_validate

from kpgeo.products.encoding import REFLECTANCE
from kpgeo.products.export import block_px, cog_options, write_cog
from kpgeo.products.tiles import TILES_FOLDER, assemble_cog, overview_factors, write_tile


@pytest.mark.parametrize("shape, chunk", [((1500, 1030), 512), ((601, 601), 256)])
def test_cog_from_chunk_tiles_equals_the_whole_grid_writers(tmp_path: Path,
                                                            shape: tuple[int, int],
                                                            chunk: int) -> None:
    height, width = shape
    grid = GeoBox.from_bbox((700000, 900000 - height * 10, 700000 + width * 10, 900000),
                            "EPSG:32630", resolution=10)
    rng = np.random.default_rng(3)
    bands = [(0.1 + 0.05 * i + rng.random(shape) * 0.1).astype("float32") for i in range(3)]
    bands[0][:40, :70] = np.nan  # no data in a corner
    encoding = [REFLECTANCE] * 3
    tags = {"site": "s", "note": '<&"quoted">'}
    colours = ["blue", "undefined", "red"]
    write_cog(tmp_path / "whole.tif", bands, grid, descriptions=["a", "b", "c"],
              encoding=encoding, tags=tags, colours=colours)
    factors = (overview_factors(shape, block_px(*shape), chunk)
               if max(shape) > 1024 else [])
    chunks = [(slice(y, min(y + chunk, height)), slice(x, min(x + chunk, width)))
              for y in range(0, height, chunk) for x in range(0, width, chunk)]
    for rows, cols in chunks:
        write_tile(tmp_path, "chunked", grid, rows, cols, [b[rows, cols] for b in bands],
                   encoding, factors=factors)
    assemble_cog(tmp_path, "chunked", grid, chunks, descriptions=["a", "b", "c"],
                 dtype="uint16", nodata=0, encoding=encoding, tags=tags, factors=factors,
                 cog_options=cog_options(shape, np.dtype("uint16")), colours=colours)
    path = tmp_path / "chunked.tif"
    assert cog_validate(str(path), quiet=True)[0]
    assert not (tmp_path / TILES_FOLDER).exists()
    with rasterio.open(tmp_path / "whole.tif") as whole, rasterio.open(path) as chunked:
        full = whole.read()
        np.testing.assert_array_equal(chunked.read(), full)
        assert chunked.tags() == whole.tags() and chunked.descriptions == whole.descriptions
        assert (chunked.scales, chunked.offsets, chunked.nodata) == (
            whole.scales, whole.offsets, whole.nodata)
        assert chunked.overviews(1) == whole.overviews(1) == factors
        assert chunked.colorinterp == whole.colorinterp == (
            ColorInterp.blue, ColorInterp.undefined, ColorInterp.red)
    for level, factor in enumerate(factors):
        with rasterio.open(tmp_path / "whole.tif", overview_level=level) as whole, \
                rasterio.open(path, overview_level=level) as chunked:
            assert chunked.shape == whole.shape
            if factor == 2:
                # Each pixel the mean of its 2 x 2 block's valid DN, across the chunks.
                dn = full[1, :height // 2 * 2, :width // 2 * 2].astype("float64")
                mean = dn.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3))
                np.testing.assert_array_equal(chunked.read(2), np.floor(mean + 0.5))
                corner = chunked.read(1)[:20, :35]
                assert (corner == 0).all()  # no data stays no data
