"""Monthly compositing on tiny hand-made cubes: exact medians, counts and gaps (docs/product.md §7)."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import ndimage

from kpgeo.methods.composite import (
    COUNT_BAND,
    composite_of_reads,
    masked_median,
    month_quality,
    monthly_composite,
)
from kpgeo.sources.base import REFLECTANCE_BANDS
from kpgeo.sources.masking import _dilate_stack, disk, in_classes, valid_from_scl, valid_pixels


def _cube(red: np.ndarray, valid: np.ndarray) -> xr.Dataset:
    dims = ("time", "y", "x")
    data = {b: (dims, red * (i + 1)) for i, b in enumerate(REFLECTANCE_BANDS)}
    data["red"] = (dims, red)
    data["valid"] = (dims, valid)
    return xr.Dataset(data)


def test_tiny_cube_gives_exact_medians_counts_and_gaps() -> None:
    nan = np.nan
    # Three dates over a 2 x 3 site.
    red = np.array([
        [[0.10, 0.20, 0.30], [0.40, 0.50, nan]],
        [[0.30, 0.90, 0.10], [0.80, 0.50, 0.60]],
        [[0.20, 0.40, 0.70], [0.60, 0.50, 0.20]],
    ], dtype="float32")
    valid = np.array([
        [[1, 1, 1], [1, 0, 1]],
        [[1, 0, 1], [1, 0, 1]],
        [[1, 1, 0], [0, 0, 0]],
    ], dtype=bool)
    result = monthly_composite(_cube(red, valid))
    expected_red = np.array([[0.20, 0.30, 0.20], [0.60, nan, 0.60]], dtype="float32")
    expected_count = np.array([[3, 2, 2], [2, 0, 2]])
    np.testing.assert_allclose(result.red.values, expected_red, rtol=0, atol=1e-7)
    np.testing.assert_allclose(result.swir22.values, expected_red * 6, rtol=1e-6)
    # The NaN at [0, 1, 2] is flagged valid but has no value: the median skips it (sources
    # never flag a no-data pixel valid; the count reports the flags as given).
    assert result[COUNT_BAND].values.tolist() == expected_count.tolist()
    inside = np.ones((2, 3), bool)
    assert month_quality(result[COUNT_BAND].values, inside, 3, 90.0).status == "gap"  # 83 %
    quality = month_quality(result[COUNT_BAND].values, inside, 3, 80.0)
    assert (quality.status, quality.valid_pct) == ("ok", 83.33)
    outside_gap = inside.copy()
    outside_gap[1, 1] = False  # the one pixel without data lies outside the site
    assert month_quality(result[COUNT_BAND].values, outside_gap, 3, 100.0).status == "ok"


def test_dask_and_numpy_composites_agree_and_dask_stays_lazy() -> None:
    rng = np.random.default_rng(4)
    red = rng.random((7, 20, 20)).astype("float32")
    valid = rng.random((7, 20, 20)) > 0.3
    eager = monthly_composite(_cube(red, valid))
    lazy_cube = _cube(red, valid).chunk({"time": 1, "y": 8, "x": 8})
    lazy = monthly_composite(lazy_cube)
    assert isinstance(lazy.red.data, da.Array)
    xr.testing.assert_allclose(eager, lazy.compute())


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_composite_of_reads_equals_the_composite_of_the_scenes(overpasses: int,
                                                               seed: int) -> None:
    """The chunked path's composite (reads NaN wherever unusable, one task per chunk) is the
    xarray path's: the same medians, bit for bit, and the same counts."""
    rng = np.random.default_rng(seed)
    reads = rng.random((overpasses, len(REFLECTANCE_BANDS), 5, 7), dtype=np.float32)
    unusable = rng.random((overpasses, 5, 7)) < 0.4
    reads[np.broadcast_to(unusable[:, None], reads.shape)] = np.nan
    medians, count = composite_of_reads(list(reads))
    valid = ~unusable
    for i in range(len(REFLECTANCE_BANDS)):
        expected = masked_median(np.moveaxis(reads[:, i], 0, -1), np.moveaxis(valid, 0, -1))
        np.testing.assert_array_equal(medians[i], expected)
    np.testing.assert_array_equal(count, valid.sum(axis=0))
    assert count.dtype == np.int16


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(0, 9)),
                  elements=st.one_of(st.floats(-1, 1, width=32), st.just(np.nan))),
       st.integers(0, 2**32 - 1))
def test_masked_median_equals_numpy_nanmedian(values: np.ndarray, seed: int) -> None:
    valid = np.random.default_rng(seed).random(values.shape) > 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = (np.nanmedian(np.where(valid, values, np.nan), axis=-1)
                    if values.shape[-1] else np.full(values.shape[:-1], np.nan))
    np.testing.assert_allclose(masked_median(values, valid), expected, rtol=1e-6, atol=1e-7)


def test_clouds_are_dilated_by_the_buffer_and_other_classes_kept_or_dropped() -> None:
    scl = np.full((1, 21, 21), 4, dtype="uint8")
    scl[0, 10, 10] = 9  # one cloud pixel
    scl[0, 0, 0] = 0  # no data
    scl[0, 20, 20] = 2  # dark area: kept
    scl[0, 20, 0] = 11  # snow: dropped, not grown
    cube = xr.DataArray(scl, dims=("time", "y", "x"))
    kwargs = {"invalid_classes": (0, 1, 3, 8, 9, 10, 11), "cloud_classes": (3, 8, 9, 10),
                  "buffer_px": 3}
    valid = valid_from_scl(cube, **kwargs).values[0]
    assert not valid[0, 0] and valid[20, 20] and not valid[20, 0] and valid[19, 1]
    grown = ~valid[7:14, 7:14]
    assert grown.tolist() == disk(3).tolist()
    lazy = valid_from_scl(cube.chunk({"y": 8, "x": 8}), **kwargs)
    assert isinstance(lazy.data, da.Array)
    assert np.array_equal(lazy.values[0], valid)  # chunk borders do not cut the dilation


@pytest.mark.parametrize("classes", [(), (0,), (0, 1, 3, 8, 9, 10, 11), (15,), (16, 31),
                                     (32, 63), (5, 64), (255,), (3, 3, 200)])
def test_class_membership_equals_isin_for_every_uint8_class(classes: tuple[int, ...]) -> None:
    """The shifted bit mask answers as ``numpy.isin`` for all 256 values, at each width of
    mask (16, 32, 64 bits) and for classes too high for one (the lookup table)."""
    scl = np.arange(256, dtype="uint8").reshape(16, 16)
    got = in_classes(scl, classes)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, np.isin(scl, list(classes)))


def test_numpy_validity_of_one_scene_equals_the_xarray_one() -> None:
    rng = np.random.default_rng(3)
    scl = rng.choice(np.arange(12, dtype="uint8"), size=(40, 50), p=[0.02] + [0.98 / 11] * 11)
    kwargs = {"invalid_classes": (0, 1, 3, 8, 9, 10, 11), "cloud_classes": (3, 8, 9),
              "buffer_px": 2}
    expected = valid_from_scl(xr.DataArray(scl[None], dims=("time", "y", "x")), **kwargs)
    np.testing.assert_array_equal(valid_pixels(scl, **kwargs), expected.values[0])


@pytest.mark.parametrize("seed", range(4))
def test_cloud_buffer_equals_binary_dilation_by_a_disk(seed: int) -> None:
    """The row-by-row dilation (on the flagged pixels' bounding box only) grows exactly what
    ``binary_dilation`` by the disk grows, clouds at the edges and boxes narrower than the disk
    included."""
    rng = np.random.default_rng(seed)
    flagged = np.zeros((4, 60, 70), dtype=bool)
    flagged[0] = rng.random((60, 70)) < 0.002  # a few scattered pixels
    flagged[1, 2:9, 55:70] = True  # a cloud on the edge
    flagged[2] = False  # none
    flagged[3, 30, 40] = True  # a box of one pixel
    for radius in (1, 3, 6, 11):
        expected = np.stack([ndimage.binary_dilation(f, structure=disk(radius)) for f in flagged])
        np.testing.assert_array_equal(_dilate_stack(flagged, radius), expected)
