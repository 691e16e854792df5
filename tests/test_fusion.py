"""Radar confirmation and its review by optical imagery (kpgeo.methods.fusion)."""

from __future__ import annotations

import numpy as np
import pytest

from kpgeo.methods.detection import EVIDENCE, NO_EVIDENCE, UNOBSERVED, DetectionState
from kpgeo.methods.fusion import RadarState, radar_only, unmapped

H, N, U = EVIDENCE, NO_EVIDENCE, UNOBSERVED


def codes(*per_pixel: list[int]) -> np.ndarray:
    """Acquisition codes ``(time, 1, pixels)`` from each pixel's sequence."""
    return np.array(per_pixel, dtype="int8").T[:, None, :]


def test_two_acquisitions_in_a_row_confirm_a_one_off_drop_does_not() -> None:
    state = RadarState.empty((1, 4)).advance(codes(
        [H, H, N],      # a lasting drop: dated (what follows no longer counts)
        [H, N, H],      # speckle or a wet day: the run breaks
        [H, U, H],      # an acquisition that missed the pixel does not break the run
        [N, N, H]),     # begun on the last acquisition: waiting
        "2024-07")
    assert state.since.tolist() == [[202407, 0, 202407, 0]]
    assert state.streak.tolist() == [[2, 1, 2, 1]]
    assert state.first.tolist() == [[202407] * 4]


def test_a_run_carries_across_months_and_dates_its_first_evidence() -> None:
    state = RadarState.empty((1, 1)).advance(codes([N, N, H]), "2024-07")
    assert state.since.tolist() == [[0]]
    state = state.advance(codes([H, N]), "2024-08")
    assert state.since.tolist() == [[202407]]
    # Dated once: later acquisitions change nothing.
    assert state.advance(codes([N, N, H]), "2024-09").since.tolist() == [[202407]]
    # A broken run starts afresh, dated by its own first evidence.
    broken = RadarState.empty((1, 1)).advance(codes([H, N]), "2024-07")
    assert broken.advance(codes([H, H]), "2024-08").since.tolist() == [[202408]]


def test_excluded_pixels_are_never_dated() -> None:
    exclude = np.array([[True, False]])
    state = RadarState.empty((1, 2)).advance(codes([H, H], [H, H]), "2024-07",
                                             exclude=exclude)
    assert state.since.tolist() == [[0, 202407]]


def test_review_withdraws_what_optical_saw_clear_and_keeps_the_rest() -> None:
    radar = RadarState(np.full((1, 4), 3, "int16"), np.full((1, 4), 202408, "int32"),
                       np.full((1, 4), 202408, "int32"))
    optical = DetectionState(
        first_detected=np.array([[0, 202411, 0, 202411]], "int32"),
        confirmed=np.array([[0, 0, 0, 202411]], "int32"))
    observed = np.array([[True, True, False, True]])
    reviewed = radar.reviewed(optical, observed, "2024-11")
    # The radar month's own clear views do not judge it: they may predate the digging.
    assert radar.reviewed(optical, observed, "2024-08").since.tolist() == [[202408] * 4]
    # Seen clear without evidence: withdrawn. A candidate, unseen, or confirmed: kept.
    assert reviewed.since.tolist() == [[-202408, 202408, 202408, 202408]]
    assert reviewed.withdrawn_in(radar).tolist() == [[True, False, False, False]]
    # Withdrawn for good: the next rains' drop does not date it again.
    again = reviewed.advance(codes([H, H, H], [H, H, H], [N, N, N], [N, N, N]), "2025-07")
    assert again.since[0, 0] == -202408


def test_radar_only_is_dated_unconfirmed_and_eligible() -> None:
    radar = RadarState(np.zeros((1, 4), "int16"), np.zeros((1, 4), "int32"),
                       np.array([[202408, 202408, 202408, -202408]], "int32"))
    optical = DetectionState(np.zeros((1, 4), "int32"),
                             np.array([[0, 202411, 0, 0]], "int32"))
    exclude = np.array([[False, False, True, False]])
    assert radar_only(radar, optical, exclude).tolist() == [[True, False, False, False]]


def test_withdrawn_pixels_radar_alone_mapped_are_unmapped() -> None:
    optical = DetectionState(np.zeros((1, 3), "int32"), np.array([[0, 202411, 0]], "int32"),
                             np.array([[202408, 202408, 202408]], "int32"))
    withdrawn = np.array([[True, True, False]])
    # The optically confirmed pixel keeps the month radar dated it.
    assert unmapped(optical, withdrawn).mapped_since.tolist() == [[0, 202408, 202408]]


def test_confirm_after_must_be_positive() -> None:
    with pytest.raises(ValueError, match="confirm_after must be at least 1"):
        RadarState.empty((1, 1)).advance(codes([H]), "2024-07", confirm_after=0)


# ---- through a chunk's month (kpgeo.methods.chunkwise) ------------------------------------
def _month(carry, optical: np.ndarray, radar: np.ndarray | None, month: str):
    """A one-chunk site's month: ``optical`` evidence codes ``(overpass, y, x)`` (their
    valid pixels are those observed), ``radar`` codes ``(acquisition, y, x)``."""
    from odc.geo.geobox import GeoBox

    from kpgeo.config import DetectionConfig
    from kpgeo.methods.chunkwise import (
        ChunkBaseline,
        Layout,
        Observed,
        Ring,
        advance,
        finish,
        merge_labels,
        summarize,
    )
    from kpgeo.methods.reference import SeasonalReference
    from kpgeo.sources.base import REFLECTANCE_BANDS

    shape = optical.shape[1:]
    params = DetectionConfig(min_area_ha=0.05, footprint_share_min=0.0)  # 5 pixels
    seen = np.any(optical != U, axis=0)
    medians = np.full((len(REFLECTANCE_BANDS), *shape), np.nan, "float32")
    medians[:, seen] = 0.1
    baseline = ChunkBaseline(SeasonalReference.unseen(shape).layers(), np.ones(shape, bool),
                             np.full(shape, 0.5, "float32"), np.zeros(shape, bool),
                             np.zeros(shape, bool), np.ones(shape, bool))
    observed = Observed(medians, seen.astype("int16"), optical, radar)
    advanced, _ = advance(observed, carry, baseline, month, params)
    summary = summarize(advanced, carry, baseline)
    layout = Layout((slice(0, shape[0]),), (slice(0, shape[1]),))
    keep, numbers = merge_labels(layout, [summary], 5)
    grid = GeoBox.from_bbox((700000, 949800, 700200, 950000), "EPSG:32630", resolution=10)
    ring = Ring.empty(shape)
    done = finish(advanced, carry, baseline, month, True, keep[0], numbers[0],
                  {"new": ring, "previous_new": ring}, params, 0.01, (grid, *layout.chunks()[0]))
    return done, summary


def _areas(done):  # type: ignore[no-untyped-def]
    """The new digging areas of a one-chunk month (:func:`_month`)."""
    from odc.geo.geobox import GeoBox

    from kpgeo.methods.polygons import merge_pieces

    grid = GeoBox.from_bbox((700000, 949800, 700200, 950000), "EPSG:32630", resolution=10)
    return merge_pieces("s", grid, done.pieces, "new")


def test_digging_radar_finds_in_the_rains_is_mapped_then_confirmed_or_withdrawn() -> None:
    from kpgeo.methods.chunkwise import Carry

    shape = (20, 20)
    carry = Carry(DetectionState.empty(shape), np.zeros(shape, bool))
    # August, under cloud: no optical view; radar sees a 4 x 6 working on three
    # acquisitions, and a one-off drop elsewhere.
    radar = np.full((3, *shape), N, "int8")
    radar[:, 4:8, 4:10] = H
    radar[1, 15, 15] = H
    august, summary = _month(carry, np.full((2, *shape), U, "int8"), radar, "2024-08")
    assert summary.radar_seen == 400 and summary.valid == 0
    dug = august.carry.state.mapped_since == 202408
    assert dug.sum() == 24 and dug[4:8, 4:10].all()
    assert august.sums["new_ha"] == pytest.approx(0.24)
    (area,) = _areas(august)
    assert (area.pixels, area.radar_pixels, area.properties()["evidence"]) == (24, 24, "radar")
    # Radar detected and confirmed it: the month radar dated it to.
    assert (area.first_detected, area.confirmed) == ("2024-08", "2024-08")
    august_id = area.id
    # November, clear: optical sees the working's right half dug (twice: confirmed) and its
    # left half clear without evidence: the left half was not digging (a flood, say).
    optical = np.full((2, *shape), N, "int8")
    optical[:, 4:8, 7:10] = H
    november, _ = _month(august.carry, optical, np.full((3, *shape), N, "int8"), "2024-11")
    state = november.carry.state
    assert (state.mapped_since[4:8, 7:10] == 202408).all()  # dated by radar
    assert (state.confirmed[4:8, 7:10] == 202411).all()
    assert (state.mapped_since[4:8, 4:7] == 0).all()
    assert (november.carry.radar.since[4:8, 4:7] == -202408).all()
    assert november.sums["cumulative_new_ha"] == pytest.approx(0.12)
    # Optical imagery confirmed what is left of the area: it rests on optical evidence now.
    (area,) = _areas(november)
    assert (area.pixels, area.radar_pixels, area.evidence) == (12, 0, "optical")
    assert (area.first_detected, area.confirmed) == ("2024-08", "2024-08")  # radar dated it
    # Had November's clouds hidden the left half, both would be used: radar for the half
    # optical imagery has not seen, optical for the half it confirmed.
    optical[:, 4:8, 4:7] = U
    cloudy, _ = _month(august.carry, optical, np.full((3, *shape), N, "int8"), "2024-11")
    (area,) = _areas(cloudy)
    assert (area.pixels, area.radar_pixels, area.evidence) == (24, 12, "optical+radar")
    # Optical confirmation of part of it moves neither its months nor its seed.
    assert (area.first_detected, area.confirmed, area.id) == ("2024-08", "2024-08", august_id)


def test_without_radar_a_month_is_what_it_was() -> None:
    from kpgeo.methods.chunkwise import Carry

    shape = (12, 12)
    optical = np.full((2, *shape), N, "int8")
    optical[:, 2:5, 2:5] = H
    carry = Carry(DetectionState.empty(shape), np.zeros(shape, bool))
    alone, _ = _month(carry, optical, None, "2024-11")
    assert alone.carry.radar is None
    quiet, _ = _month(carry, optical, np.full((2, *shape), N, "int8"), "2024-11")
    for a, b in zip(alone.layers["change"], quiet.layers["change"], strict=True):
        np.testing.assert_array_equal(a, b)
    assert alone.sums == quiet.sums


def test_long_rains_of_a_synthetic_archive_must_be_month_ranges(tmp_path) -> None:
    from click.testing import CliRunner

    from kpgeo.cli import cli

    pipeline = tmp_path / "p.toml"
    pipeline.write_text('baseline = "2024-01..2024-03"\nmonths = "2024-01..2024-06"\n'
                        '[synthetic]\nlong_rains = ["2024-13..2024-14"]\n[[sites]]\n'
                        'aoi = "aoi/tortiya.geojson"\n')
    result = CliRunner().invoke(cli, ["run", str(pipeline), "--out", str(tmp_path / "OUT")])
    assert result.exit_code == 2, result.output
    assert "synthetic.long_rains '2024-13..2024-14'" in result.output
    assert 'long_rains = ["2024-07..2024-10"]' in result.output
    assert not (tmp_path / "OUT").exists()


def test_a_radar_finding_the_months_clear_view_contradicts_waits_unmapped() -> None:
    from kpgeo.methods.chunkwise import Carry

    shape = (12, 12)
    carry = Carry(DetectionState.empty(shape), np.zeros(shape, bool))
    # October: clear; radar sees a 4 x 4 drop twice, optical sees the ground without evidence.
    radar = np.full((2, *shape), N, "int8")
    radar[:, 2:6, 2:6] = H
    october, _ = _month(carry, np.full((2, *shape), N, "int8"), radar, "2024-10")
    assert (october.carry.radar.since[2:6, 2:6] == 202410).all()  # dated, not withdrawn
    assert october.sums["cumulative_new_ha"] == 0  # but not mapped against the clear view
    # November: clear again, still nothing: withdrawn.
    november, _ = _month(october.carry, np.full((2, *shape), N, "int8"),
                         np.full((2, *shape), N, "int8"), "2024-11")
    assert (november.carry.radar.since[2:6, 2:6] == -202410).all()
