"""A month chunk by chunk gives what the whole grid gives (kpgeo.methods.chunkwise): the mapping
unit, the digging areas and their ids, the dug ground's edge and the areas do not see chunk
edges."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from odc.geo.geobox import GeoBox

from kpgeo.config import DetectionConfig
from kpgeo.methods.chunkwise import (
    Advanced,
    Carry,
    ChunkBaseline,
    Layout,
    Ring,
    finish,
    merge_labels,
    ring_of,
    summarize,
)
from kpgeo.methods.detection import EIGHT, DetectionState, digging_signal
from kpgeo.methods.fusion import RadarState, radar_only
from kpgeo.methods.indices import compute_indices
from kpgeo.methods.polygons import AreaPiece, digging_areas, merge_pieces, new_digging_mask
from kpgeo.methods.reference import SeasonalReference
from kpgeo.sources.base import REFLECTANCE_BANDS

SIZE, CHUNK = 40, 20
PARAMS = DetectionConfig(min_area_ha=0.05, footprint_share_min=0.5)  # 5 pixels of 10 m
GRID = GeoBox.from_bbox((700000, 950000 - SIZE * 10, 700000 + SIZE * 10, 950000), "EPSG:32630",
                        resolution=10)
MONTH = "2024-03"


def _world() -> tuple[DetectionState, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A state with digging cut by chunk edges: an area on the corner of all four chunks, a
    group of 4 + 2 pixels across an edge (5 needed), one that crosses an edge only
    diagonally, and a group that stays below the unit."""
    confirmed = np.zeros((SIZE, SIZE), "int32")
    first = np.zeros((SIZE, SIZE), "int32")
    since = np.zeros((SIZE, SIZE), "int32")
    # On the corner of four chunks (rows and columns 17..23), dug over two months.
    confirmed[17:23, 17:23] = 202402
    confirmed[20:23, 20:23] = 202403
    since[17:20, 17:20] = 202402  # mapped last month: the seed's month
    # 4 pixels left of the vertical edge, 2 right of it: 6 in all, one area.
    confirmed[5, 16:20] = 202403
    confirmed[6, 20:22] = 202403
    # Pixels touching only diagonally across the vertical edge: one area of 5.
    confirmed[29, 21] = confirmed[30, 20] = 202403
    confirmed[31:34, 19] = 202403
    # Below the unit, across an edge: 2 + 2.
    confirmed[35, 18:22] = 202403
    first[confirmed > 0] = 202401
    share = np.where(confirmed > 0, 0.8, 0.0).astype("float32")
    share[17, 17] = 0.3  # a corner pixel dug less than half: not footprint
    pre = np.zeros((SIZE, SIZE), bool)
    inside = np.ones((SIZE, SIZE), bool)
    inside[:, -2:] = False
    bands = {b: np.full((SIZE, SIZE), 0.1, "float32") for b in REFLECTANCE_BANDS}
    bands["nir"][:] = 0.3
    return DetectionState(first, confirmed, since, share), pre, inside, bands


def _chunk_baseline(pre: np.ndarray, inside: np.ndarray, rows: slice, cols: slice,
                    ) -> ChunkBaseline:
    shape = inside[rows, cols].shape
    reference = SeasonalReference.unseen(shape).layers()
    return ChunkBaseline(reference, np.ones(shape, bool), np.full(shape, 0.5, "float32"),
                         pre[rows, cols], pre[rows, cols] | ~inside[rows, cols],
                         inside[rows, cols])


def _advanced(state: DetectionState, pre: np.ndarray, bands: dict[str, np.ndarray],
              rows: slice, cols: slice, radar: RadarState | None = None,
              inside: np.ndarray | None = None) -> Advanced:
    """A chunk as :func:`advance` leaves it; with ``radar``, its radar-only pixels (eligible
    within ``inside``) join the groups that may be new digging, as they do there."""
    from scipy import ndimage

    window = DetectionState(state.first_detected[rows, cols], state.confirmed[rows, cols],
                            state.mapped_since[rows, cols],  # type: ignore[index]
                            state.dug_share[rows, cols])  # type: ignore[index]
    dug = (window.confirmed > 0) & ~pre[rows, cols] & (window.dug_share >= 0.5)  # type: ignore[operator]
    radar_window = None
    if radar is not None:
        assert inside is not None
        radar_window = RadarState(radar.streak[rows, cols], radar.first[rows, cols],
                                  radar.since[rows, cols])
        dug |= radar_only(radar_window, window, (pre | ~inside)[rows, cols])
    labels, count = ndimage.label(dug, structure=EIGHT)
    chunk_bands = {b: v[rows, cols] for b, v in bands.items()}
    indices = compute_indices(chunk_bands)
    fresh, water = digging_signal(chunk_bands, PARAMS, indices, window.dug_share)
    return Advanced(np.zeros(dug.shape, "float32"), window, labels, count, indices["ndvi"],
                    fresh, water, np.ones(dug.shape, bool), radar_window)


@pytest.mark.parametrize("chunk", [CHUNK, 13, SIZE])
def test_chunks_give_the_new_digging_areas_and_sums_of_the_whole_grid(chunk: int) -> None:
    state, pre, inside, bands = _world()
    previous = np.zeros((SIZE, SIZE), bool)
    previous[17:20, 17:20] = True  # last month's footprint
    starts = range(0, SIZE, chunk)
    layout = Layout(tuple(slice(s, min(s + chunk, SIZE)) for s in starts),
                    tuple(slice(s, min(s + chunk, SIZE)) for s in starts))
    chunks = layout.chunks()
    advanced = [_advanced(state, pre, bands, r, c) for r, c in chunks]
    carries = [Carry(DetectionState.empty(a.labels.shape), previous[r, c])
               for a, (r, c) in zip(advanced, chunks, strict=True)]
    baselines = [_chunk_baseline(pre, inside, r, c) for r, c in chunks]
    summaries = [summarize(a, carry, b)
                 for a, carry, b in zip(advanced, carries, baselines, strict=True)]
    keep, numbers = merge_labels(layout, summaries, min_px=5)
    new_edges = [{side: keep[i][labels] & s.inside_edges[side]
                  for side, labels in s.edges.items()} for i, s in enumerate(summaries)]
    old_edges = [s.previous_new_edges for s in summaries]
    new = np.zeros((SIZE, SIZE), bool)
    sums: dict[str, float] = {}
    pieces = []
    for i, (rows, cols) in enumerate(chunks):
        done = finish(advanced[i], carries[i], baselines[i], MONTH, True, keep[i], numbers[i],
                      {"new": ring_of(layout, i, new_edges),
                       "previous_new": ring_of(layout, i, old_edges)}, PARAMS, 0.01,
                      (GRID, rows, cols))
        new[rows, cols] = keep[i][advanced[i].labels] & baselines[i].inside
        pieces += done.pieces
        for name, value in done.sums.items():
            sums[name] = sums.get(name, 0.0) + value

    expected = new_digging_mask(state, pre, PARAMS.min_area_ha, 10.0, 0.5) & inside
    np.testing.assert_array_equal(new, expected)
    assert new[17:23, 17:23].sum() == 35 and new[5, 16:20].all() and new[31:34, 19].all()
    assert not new[35].any()

    # The whole grid as one chunk gives the same sums.
    whole = Layout((slice(0, SIZE),), (slice(0, SIZE),))
    one = _advanced(state, pre, bands, slice(0, SIZE), slice(0, SIZE))
    base = _chunk_baseline(pre, inside, slice(0, SIZE), slice(0, SIZE))
    carry = Carry(DetectionState.empty((SIZE, SIZE)), previous)
    summary = summarize(one, carry, base)
    (k,), (n,) = merge_labels(whole, [summary], min_px=5)
    ring = Ring.empty((SIZE, SIZE))
    reference = finish(one, carry, base, MONTH, True, k, n,
                       {"new": ring, "previous_new": ring}, PARAMS, 0.01,
                       (GRID, slice(0, SIZE), slice(0, SIZE)))
    assert sums == pytest.approx(reference.sums, abs=1e-9)
    assert reference.sums["new_dug_ha"] > 0

    # One feature per area, with the id, dates, size and outline the whole grid gives.
    mapped = reference.carry.state
    areas = merge_pieces("s", GRID, pieces, "new")
    whole_areas = [a for a in digging_areas("s", GRID, pre, expected, mapped,
                                            increment=expected & ~previous)
                   if a.status == "new"]
    assert len(areas) == len(whole_areas) == 3
    by_id = {a.id: a for a in areas}
    for area in whole_areas:
        got = by_id[area.id]
        assert (got.pixels, got.first_detected, got.confirmed, got.new_ha_this_month) == (
            area.pixels, area.first_detected, area.confirmed, area.new_ha_this_month)
        assert shapely.equals(got.geometry, area.geometry), area.id
    corner = max(areas, key=lambda a: a.pixels)
    assert corner.geometry.geom_type == "Polygon" and corner.confirmed == "2024-02"
    # The month's increment, area by area, wherever chunk edges cut them: the corner area grew
    # by all but the 8 pixels of last month's footprint in it (the ninth, dug less than half,
    # is no footprint), and the areas' increments add up to the month's new_ha.
    assert corner.new_ha_this_month == pytest.approx((corner.pixels - 8) * 0.01)
    assert sum(a.new_ha_this_month or 0.0 for a in areas) == pytest.approx(sums["new_ha"])


def _chunked(state: DetectionState, pre: np.ndarray, inside: np.ndarray,
             bands: dict[str, np.ndarray], radar: RadarState, chunk: int,
             ) -> tuple[np.ndarray, list[AreaPiece], np.ndarray]:
    """A month finished chunk by chunk of ``chunk`` px: its new digging, the pieces of its
    digging areas and its ``change.tif`` bands, whole."""
    starts = range(0, SIZE, chunk)
    layout = Layout(tuple(slice(s, min(s + chunk, SIZE)) for s in starts),
                    tuple(slice(s, min(s + chunk, SIZE)) for s in starts))
    chunks = layout.chunks()
    advanced = [_advanced(state, pre, bands, r, c, radar, inside) for r, c in chunks]
    carries = [Carry(DetectionState.empty(a.labels.shape), np.zeros(a.labels.shape, bool),
                     a.radar) for a in advanced]
    baselines = [_chunk_baseline(pre, inside, r, c) for r, c in chunks]
    summaries = [summarize(a, carry, b)
                 for a, carry, b in zip(advanced, carries, baselines, strict=True)]
    keep, numbers = merge_labels(layout, summaries, min_px=5)
    new_edges = [{side: keep[i][labels] & s.inside_edges[side]
                  for side, labels in s.edges.items()} for i, s in enumerate(summaries)]
    old_edges = [s.previous_new_edges for s in summaries]
    new = np.zeros((SIZE, SIZE), bool)
    layers = np.zeros((10, SIZE, SIZE), "float32")
    pieces: list[AreaPiece] = []
    for i, (rows, cols) in enumerate(chunks):
        done = finish(advanced[i], carries[i], baselines[i], MONTH, False, keep[i], numbers[i],
                      {"new": ring_of(layout, i, new_edges),
                       "previous_new": ring_of(layout, i, old_edges)}, PARAMS, 0.01,
                      (GRID, rows, cols))
        new[rows, cols] = keep[i][advanced[i].labels] & baselines[i].inside
        layers[:, rows, cols] = done.layers["change"]
        pieces += done.pieces
    return new, pieces, layers


@pytest.mark.parametrize("chunk", [CHUNK, 13])
def test_chunks_give_each_areas_radar_evidence_of_the_whole_grid(chunk: int) -> None:
    """A month optical imagery could not measure: radar-only pixels (radar-dated, not
    optically confirmed) extend the area on the corner of four chunks (``optical+radar``) and
    make an area of their own across a chunk edge (``radar``); the other areas are optical;
    a withdrawn finding and a radar-dated pixel too small to map are no digging. Every area
    has the evidence, pixel counts and outline the whole grid gives."""
    from kpgeo.methods.change_bands import CHANGE_BANDS

    state, pre, inside, bands = _world()
    since = np.zeros((SIZE, SIZE), "int32")
    since[23:25, 17:23] = 202402  # radar-only, below the corner area: 12 pixels
    since[20, 20] = 202402  # radar-dated and optically confirmed: optical
    since[10:12, 18:22] = 202403  # radar-only, across the vertical edge at 20: 8 pixels
    since[2:4, 30:33] = -202402  # withdrawn by a clear optical view: no digging
    since[27, 5] = 202403  # radar-only but below the mapping unit
    radar = RadarState(np.where(since > 0, 2, 0).astype("int16"), np.abs(since), since)

    new, pieces, layers = _chunked(state, pre, inside, bands, radar, chunk)
    whole_new, whole_pieces, whole_layers = _chunked(state, pre, inside, bands, radar, SIZE)
    np.testing.assert_array_equal(new, whole_new)
    np.testing.assert_array_equal(layers, whole_layers)
    assert new[23:25, 17:23].all() and new[10:12, 18:22].all()
    assert not new[2:4, 30:33].any() and not new[27, 5]

    areas = {a.id: a for a in merge_pieces("s", GRID, pieces, "new")}
    whole = {a.id: a for a in merge_pieces("s", GRID, whole_pieces, "new")}
    assert sorted(areas) == sorted(whole) and len(areas) == 4
    for key, area in whole.items():
        got = areas[key]
        assert (got.pixels, got.radar_pixels, got.evidence, got.first_detected) == (
            area.pixels, area.radar_pixels, area.evidence, area.first_detected), key
        assert got.properties() == area.properties()
        assert shapely.equals(got.geometry, area.geometry), key
    by_evidence: dict[str, list[int]] = {}
    for area in areas.values():
        by_evidence.setdefault(area.evidence, []).append(area.radar_pixels)
    assert by_evidence == {"optical+radar": [12], "radar": [8], "optical": [0, 0]}
    corner = max(areas.values(), key=lambda a: a.pixels)
    assert corner.evidence == "optical+radar" and corner.pixels == 35 + 12
    assert (corner.first_detected, corner.confirmed) == ("2024-01", "2024-02")  # optical's
    (alone,) = [a for a in areas.values() if a.evidence == "radar"]
    assert (alone.first_detected, alone.confirmed) == ("2024-03", "2024-03")  # radar's month

    # The radar-only pixels are what change.tif says: radar-dated, not confirmed, mapped.
    band = {name: whole_layers[i] for i, name in enumerate(CHANGE_BANDS)}
    radar_only_px = (band["radar_since"] > 0) & (band["confirmed"] == 0) & (band["digging"] == 2)
    assert radar_only_px.sum() == sum(a.radar_pixels for a in areas.values())
    # The whole grid's own polygons give the same evidence.
    found = digging_areas("s", GRID, pre, whole_new, state, radar_since=band["radar_since"])
    assert {a.id: a.evidence for a in found} == {k: a.evidence for k, a in areas.items()}


@pytest.mark.parametrize("season", [2, 8])
def test_the_stored_baseline_read_by_chunk_gives_the_whole_grids_inputs(
        tmp_path, season: int) -> None:  # type: ignore[no-untyped-def]
    """baseline.tif (Baseline.stored) read chunk by chunk gives each chunk the reference,
    pit-water and fixed layers the whole grid computes, across the chunks' edges: the
    misregistration allowance looks at neighbours and "far from water" 60 m around."""
    import shapely.geometry

    from kpgeo.compute.chunk_baseline import read_chunk_baseline
    from kpgeo.methods.detection import build_baseline
    from kpgeo.products.export import write_planes
    from tests.test_detection import CLEAR_WATER, PIXEL_M, Region, baseline_composites

    river = Region(0, 40, 19, 21)  # water across the chunks' vertical edge
    composites = baseline_composites({river: CLEAR_WATER})
    baseline = build_baseline(composites[:6] + composites[8:], PARAMS, PIXEL_M,
                              months=[1, 2, 3, 4, 5, 6, 9, 10, 11, 12])
    path = tmp_path / "baseline.tif"
    names, layers = baseline.stored(PARAMS.water_buffer_m, PIXEL_M)
    write_planes(path, names, layers, GRID)
    outline = shapely.geometry.box(700000, 950000 - 300, 700000 + 380, 950000)  # part of it
    whole_inside = np.zeros((SIZE, SIZE), bool)
    whole_inside[:30, :38] = True
    reference = baseline.reference(season).layers()
    possible = baseline.new_water_possible(season, PARAMS.water_buffer_m, PIXEL_M)
    assert possible.any() and not possible.all()  # the river's surroundings are not
    for rows in (slice(0, 13), slice(13, 26), slice(26, 40)):
        for cols in (slice(0, 20), slice(20, 40)):
            chunk = read_chunk_baseline(path, GRID, rows, cols, season, outline)
            np.testing.assert_array_equal(chunk.reference, reference[:, rows, cols])
            np.testing.assert_array_equal(chunk.possible, possible[rows, cols])
            np.testing.assert_array_equal(chunk.inside, whole_inside[rows, cols])
            np.testing.assert_array_equal(
                chunk.exclude, (baseline.dug_at_end | ~whole_inside)[rows, cols])
            np.testing.assert_array_equal(chunk.preexisting, baseline.preexisting[rows, cols])
