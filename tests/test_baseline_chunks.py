"""The baseline chunk by chunk gives what the whole grid gives (kpgeo.compute.baseline_graph):
groups of pixels merged across chunk edges and corners, the site's median from binned counts, and
``baseline.tif`` with its pre-existing map, for workings cut by the chunks' edges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import shapely.geometry
from odc.geo.geobox import GeoBox
from scipy import ndimage

from kpgeo.compute import baseline_graph
from kpgeo.methods.baseline_seasons import SEASONS_MIN, BaselineCoverage
from kpgeo.methods.chunkwise import Layout
from kpgeo.methods.detection import build_baseline, clear_land, remove_small, water_index
from kpgeo.methods.indices import ndvi
from kpgeo.methods.polygons import merge_pieces, preexisting_areas
from kpgeo.methods.site_parts import (
    EIGHT,
    FOUR,
    SiteMedian,
    bin_counts,
    by_label,
    components,
    merge_components,
    values_in_bins,
)
from kpgeo.products.encoding import REFLECTANCE, decode
from kpgeo.products.export import write_cog
from kpgeo.products.tiles import TILES_FOLDER
from kpgeo.sources.base import REFLECTANCE_BANDS
from tests.test_detection import (
    CLEAR_WATER,
    GRAVEL,
    PARAMS,
    PIXEL_M,
    SHAPE,
    Region,
    baseline_composites,
)


def _layout(shape: tuple[int, int], step_rows: int, step_cols: int) -> Layout:
    def cut(n: int, step: int) -> tuple[slice, ...]:
        return tuple(slice(s, min(s + step, n)) for s in range(0, n, step))

    return Layout(cut(shape[0], step_rows), cut(shape[1], step_cols))


# ---- groups across chunk edges ---------------------------------------------------------------
@pytest.mark.parametrize("eight", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_groups_merged_across_chunks_are_the_whole_grids(eight: bool, seed: int) -> None:
    """Random masks cut into uneven chunks: two pixels are in one merged group exactly when
    the whole grid labels them together, with the group's size and border flag."""
    rng = np.random.default_rng(seed)
    mask = rng.random((47, 53)) < 0.45
    structure = EIGHT if eight else FOUR
    whole, count = ndimage.label(mask, structure=structure)
    whole_sizes = np.bincount(whole.ravel(), minlength=count + 1)
    on_border = np.zeros(count + 1, bool)
    for edge in (whole[0], whole[-1], whole[:, 0], whole[:, -1]):
        on_border[edge] = True
    on_border[0] = False
    layout = _layout(mask.shape, 13, 11)
    labels, parts = [], []
    for rows, cols in layout.chunks():
        sides = tuple(side for side, on in (("top", rows.start == 0),
                                            ("bottom", rows.stop == mask.shape[0]),
                                            ("left", cols.start == 0),
                                            ("right", cols.stop == mask.shape[1])) if on)
        chunk_labels, part = components(mask[rows, cols], structure, sides)
        labels.append(chunk_labels)
        parts.append(part)
    groups, sizes, border, numbers = merge_components(*layout.shape, parts, eight=eight)
    merged = np.zeros(mask.shape, "int64")
    size = np.zeros(mask.shape, "int64")
    touches = np.zeros(mask.shape, bool)
    for i, (rows, cols) in enumerate(layout.chunks()):
        merged[rows, cols] = by_label(groups[i], numbers)[labels[i]]
        size[rows, cols] = by_label(groups[i], sizes)[labels[i]]
        touches[rows, cols] = by_label(groups[i], border, False)[labels[i]]
    assert count > 20  # the mask has many groups, many of them cut
    assert sorted(np.unique(merged[mask])) == list(range(1, count + 1))  # numbered 1..n
    # The same partition: each whole-grid label maps to one merged group and back.
    pairs = np.unique(np.stack([whole[mask], merged[mask]]), axis=1)
    assert pairs.shape[1] == count
    np.testing.assert_array_equal(size, whole_sizes[whole] * mask)
    np.testing.assert_array_equal(touches, on_border[whole])


def test_a_diagonal_touch_across_a_chunk_corner_joins_eight_connected_groups_only() -> None:
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = mask[2, 2] = True  # touching only at the corner of four 2 x 2 chunks
    layout = _layout(mask.shape, 2, 2)
    for eight, expected in ((True, 1), (False, 2)):
        parts = [components(mask[r, c], EIGHT if eight else FOUR)[1] for r, c in layout.chunks()]
        _, sizes, _, _ = merge_components(2, 2, parts, eight=eight)
        assert int((sizes > 0).sum()) == expected


# ---- the site's median -----------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 1001])
def test_site_median_from_chunks_equals_numpy(n: int) -> None:
    """Odd and even counts, ties, values beyond -1..1 and NaN: the median as
    ``np.nanmedian`` gives it in float32, from each chunk's bin counts and a few values."""
    rng = np.random.default_rng(n)
    values = rng.normal(0.3, 0.6, n).astype("float32")
    values[rng.random(n) < 0.2] = np.float32(0.9)  # ties
    values[rng.random(n) < 0.1] = np.nan
    chunks = np.array_split(values, 4)
    finite = [c[np.isfinite(c)] for c in chunks]
    median = SiteMedian(sum(bin_counts(c) for c in finite))
    sent = [values_in_bins(c, median.bins) for c in finite]
    assert sum(len(s) for s in sent) <= max(2, n // 50)  # a few values, not all of them
    assert median.median(sent) == np.float32(np.nanmedian(values))


def test_site_median_of_no_values_is_none() -> None:
    median = SiteMedian(bin_counts(np.zeros(0, "float32")))
    assert median.bins == () and median.median([]) is None


# ---- baseline.tif chunk by chunk -------------------------------------------------------------
#: Workings cut by the edges of 16 px chunks (rows and columns 0:16, 16:32, 32:40).
CORNER_PIT = Region(12, 21, 12, 21)  # on the corner of four chunks
EDGE_POND = Region(14, 18, 26, 30)  # a pit full of water at the baseline's end, across an edge
SLIVER = Region(30, 34, 23, 25)  # 8 px across an edge: below the mapping unit (10 px)
RIVER = Region(0, 40, 34, 40)  # a body of water beyond pond_max_ha: not a pit
#: Two pits 2 px apart across a vertical edge: closed into one working (cluster_gap_m).
PAIR = (Region(2, 8, 9, 15), Region(2, 8, 17, 23))
#: Unseen in the rains next to the river, across a vertical edge: there only water far from
#: the river can be new (the stored pit-water months depend on the distance to the river).
CLOUDED = Region(22, 40, 26, 34)


def _write_composites(folder: Path, composites: list[dict[str, np.ndarray]], grid: GeoBox,
                      ) -> list[Path]:
    paths = []
    for month, bands in enumerate(composites, start=1):
        path = folder / f"{month}" / "composite.tif"
        path.parent.mkdir(parents=True)
        write_cog(path, [bands[b] for b in REFLECTANCE_BANDS], grid,
                  descriptions=list(REFLECTANCE_BANDS),
                  encoding=[REFLECTANCE] * len(REFLECTANCE_BANDS))
        paths.append(path)
    return paths


def _decoded(bands: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A composite as the baseline reads it back from ``composite.tif``."""
    return {b: decode(REFLECTANCE.encode(v), REFLECTANCE.scale, REFLECTANCE.offset,
                      REFLECTANCE.nodata) for b, v in bands.items()}


def test_baseline_chunk_by_chunk_equals_the_whole_grid(tmp_path: Path) -> None:
    grid = GeoBox.from_bbox((700000, 950000 - SHAPE[0] * PIXEL_M,
                             700000 + SHAPE[1] * PIXEL_M, 950000), "EPSG:32630",
                            resolution=PIXEL_M)
    composites = baseline_composites(
        {CORNER_PIT: GRAVEL, EDGE_POND: GRAVEL, SLIVER: GRAVEL, RIVER: CLEAR_WATER,
         PAIR[0]: GRAVEL, PAIR[1]: GRAVEL})
    for rainy in composites[5:8]:
        for band in REFLECTANCE_BANDS:
            rainy[band][CLOUDED.s] = np.nan
    # The pond's pit fills with water in the last months of the baseline.
    for late in composites[-3:]:
        for band, value in zip(REFLECTANCE_BANDS, CLEAR_WATER, strict=True):
            late[band][EDGE_POND.s] = value
    composites = [_decoded(c) for c in composites]
    paths = _write_composites(tmp_path, composites, grid)
    months = list(range(1, 13))
    layout = _layout(SHAPE, 16, 16)
    # The site's typical land of each month, from the chunks' binned counts.
    typicals = []
    for bands in composites:
        counts, parts = [], []
        for rows, cols in layout.chunks():
            medians = np.stack([bands[b][rows, cols] for b in REFLECTANCE_BANDS])
            values, chunk_counts = baseline_graph.clear_counts(medians, PARAMS)
            parts.append(values)
            counts.append(chunk_counts)
        median = SiteMedian(sum(counts))
        typical = median.median([values_in_bins(v, median.bins) for v in parts])
        vi = ndvi(bands)
        assert typical == np.float32(np.nanmedian(
            vi[clear_land(bands, vi, water_index(bands), PARAMS)]))
        typicals.append(None if typical is None else float(typical))
    # The site: the grid but its last two columns (the clip cuts the corner pit's groups too).
    outline = shapely.geometry.box(700000, 950000 - SHAPE[0] * PIXEL_M,
                                   700000 + (SHAPE[1] - 2) * PIXEL_M, 950000)
    inside = np.ones(SHAPE, bool)
    inside[:, -2:] = False

    path, pieces, coverage = baseline_graph.build(layout, grid, outline, tmp_path,
                                        list(zip(paths, months, typicals, strict=True)),
                                        PARAMS, {"site": "test"})

    whole = build_baseline(composites, PARAMS, PIXEL_M, months=months)
    preexisting = remove_small(whole.preexisting & inside, PARAMS.min_area_ha, PIXEL_M)
    assert preexisting[CORNER_PIT.s].all() and preexisting[EDGE_POND.s].all()
    assert not preexisting[SLIVER.s].any() and not preexisting[RIVER.s].any()
    assert preexisting[3:7, 15:17].all()  # the pair's gap is closed
    names, layers = whole.stored(PARAMS.water_buffer_m, PIXEL_M)
    with rasterio.open(path) as src:
        assert list(src.descriptions) == list(names)
        assert src.tags()["site"] == "test"
        for index, (name, layer) in enumerate(zip(names, layers, strict=True), start=1):
            expected = preexisting.astype("float32") if name == "preexisting" else layer
            np.testing.assert_array_equal(src.read(index), expected, err_msg=name)
    assert not (tmp_path / TILES_FOLDER).exists()  # the chunks' tiles are gone
    # The pre-existing areas from the chunks' pieces are the whole grid's polygons, seen in as
    # many seasons by the baseline.
    merged = merge_pieces("test", grid, pieces, "preexisting")
    expected_areas = preexisting_areas("test", grid, preexisting, whole.seasons)
    assert len(merged) == len(expected_areas) == 4  # with the landscape's old pit
    for got, want in zip(sorted(merged, key=lambda a: a.id),
                         sorted(expected_areas, key=lambda a: a.id), strict=True):
        assert (got.id, got.pixels, got.baseline_seasons) == (want.id, want.pixels,
                                                               want.baseline_seasons)
        assert got.baseline_seasons is not None
        assert shapely.equals(got.geometry, want.geometry)
    # The site's coverage: the chunks' counts add up to the whole grid's. Under cloud from
    # June to August, the July season went unseen.
    assert (whole.seasons[CLOUDED.s] == 11).all() and (whole.seasons == 12).any()
    assert (coverage.months, coverage.months_seen) == (12, 12)
    assert coverage.pixels == inside.sum()
    assert coverage.pixels_seen == (inside & (whole.seasons >= SEASONS_MIN)).sum()
    with rasterio.open(path) as src:
        assert BaselineCoverage.from_tags(src.tags()) == coverage
