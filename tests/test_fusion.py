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


def test_three_acquisitions_in_a_row_confirm_a_one_off_drop_does_not() -> None:
    state = RadarState.empty((1, 4)).advance(codes(
        [H, H, H],      # a lasting drop: dated
        [H, N, H],      # speckle or a wet day: the run breaks
        [H, U, H],      # an acquisition that missed the pixel does not break the run
        [N, N, H]),     # begun on the last acquisition: waiting
        "2024-07")
    assert state.since.tolist() == [[202407, 0, 0, 0]]
    assert state.streak.tolist() == [[3, 1, 2, 1]]


def test_a_run_carries_across_months_and_dates_the_month_it_completes() -> None:
    state = RadarState.empty((1, 1)).advance(codes([N, H, H]), "2024-07")
    assert state.since.tolist() == [[0]]
    state = state.advance(codes([H, H]), "2024-08")
    assert state.since.tolist() == [[202408]]
    # Dated once: later acquisitions change nothing.
    assert state.advance(codes([N, N, H]), "2024-09").since.tolist() == [[202408]]


def test_excluded_pixels_are_never_dated() -> None:
    exclude = np.array([[True, False]])
    state = RadarState.empty((1, 2)).advance(codes([H, H, H], [H, H, H]), "2024-07",
                                             exclude=exclude)
    assert state.since.tolist() == [[0, 202407]]


def test_review_withdraws_what_optical_saw_clear_and_keeps_the_rest() -> None:
    radar = RadarState(np.full((1, 4), 3, "int16"), np.full((1, 4), 202408, "int32"))
    optical = DetectionState(
        first_detected=np.array([[0, 202411, 0, 202411]], "int32"),
        confirmed=np.array([[0, 0, 0, 202411]], "int32"))
    observed = np.array([[True, True, False, True]])
    reviewed = radar.reviewed(optical, observed)
    # Seen clear without evidence: withdrawn. A candidate, unseen, or confirmed: kept.
    assert reviewed.since.tolist() == [[-202408, 202408, 202408, 202408]]
    assert reviewed.withdrawn_in(radar).tolist() == [[True, False, False, False]]
    # Withdrawn for good: the next rains' drop does not date it again.
    again = reviewed.advance(codes([H, H, H], [H, H, H], [N, N, N], [N, N, N]), "2025-07")
    assert again.since[0, 0] == -202408


def test_radar_only_is_dated_unconfirmed_and_eligible() -> None:
    radar = RadarState(np.zeros((1, 4), "int16"),
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
