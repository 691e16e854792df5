"""Radar and optical evidence of new digging together, for the months clouds hide.

From June to October northern Côte d'Ivoire is under cloud, and digging begun then would be
dated only when the view returns. Sentinel-1 sees through cloud every 6-12 days; its evidence
of new digging at a pixel (one code per acquisition, as optical evidence is one per overpass:
:data:`~.detection.UNOBSERVED`, :data:`~.detection.NO_EVIDENCE`, :data:`~.detection.EVIDENCE`)
is weighed here against the optical detection state (:class:`~.detection.DetectionState`):

1. **Radar confirmation**, as RADD alerts confirm: a pixel's evidence on ``confirm_after``
   acquisitions in a row, whichever month they fall in, makes it *radar-dated*
   (:attr:`RadarState.since`, the month of the run's first evidence); an acquisition without
   evidence breaks the run. Speckle and a rain-wet day are one-off; a pit, its spoil and the
   water in it last.
2. **Radar-only digging.** Radar-dated pixels that are eligible (not pre-existing, not
   outside the site) and not optically confirmed count as new digging, through the same
   mapping unit as optical digging (:func:`radar_only`), in every month until optical imagery
   reviews them; in a month optical imagery cannot measure they are all the month measures
   (its status is ``radar``).
3. **Optical review.** Once a later month observes a radar-dated pixel clear without any
   optical evidence of digging, the radar's finding is withdrawn (:meth:`RadarState.reviewed`:
   :attr:`RadarState.since` becomes negative, never dated again, so that the next rains' flood
   on the same ground is not counted twice); while optical imagery has not looked, or has
   evidence there, the pixel stays radar-dated. A pixel the optical method confirms keeps the
   month radar first saw it as its mapped month: digging begun in the rains is dated by radar.

No files, Dask or sources here; :func:`kpgeo.methods.radar.acquisition_codes` makes the
codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..months import Month
from .detection import EVIDENCE, NO_EVIDENCE, DetectionState, month_label

#: Acquisitions in a row with evidence that confirm a radar change (RADD confirms on the
#: following acquisitions too). On simulated speckle (:mod:`kpgeo.methods.radar`'s margins)
#: two in a row leave about one grass pixel in 7,000 per pair of acquisitions, isolated, which
#: the mapping unit removes; three leave almost none, at the cost of a week or two of delay.
CONFIRM_AFTER = 2


@dataclass(frozen=True)
class RadarState:
    """Per pixel, carried from month to month alongside the optical state."""

    streak: np.ndarray
    """Acquisitions in a row with radar evidence (int16), up to the one that confirmed."""
    first: np.ndarray
    """Month of the current run's first evidence (YYYYMM, int32); 0 = no run."""
    since: np.ndarray
    """Month of the first evidence of the run radar confirmed (YYYYMM, int32); 0 = none,
    negative = withdrawn by optical imagery (``-YYYYMM`` of the month radar had dated)."""

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> RadarState:
        return cls(np.zeros(shape, "int16"), np.zeros(shape, "int32"), np.zeros(shape, "int32"))

    @property
    def dated(self) -> np.ndarray:
        """Radar-dated and not withdrawn."""
        return self.since > 0

    def advance(self, codes: np.ndarray, month: Month | str,
                exclude: np.ndarray | None = None,
                confirm_after: int = CONFIRM_AFTER) -> RadarState:
        """The state after the acquisitions ``codes`` ``(time, y, x)`` of ``month``, oldest
        first; ``exclude`` marks pixels never eligible (pre-existing digging, outside)."""
        if confirm_after < 1:
            raise ValueError(f"confirm_after must be at least 1, not {confirm_after}")
        label = np.int32(month_label(month))
        streak = self.streak.copy()
        first = self.first.copy()
        since = self.since.copy()
        open_ = since == 0  # neither dated nor withdrawn: the runs still count
        if exclude is not None:
            open_ &= ~exclude
        for acquisition in codes:
            hit = open_ & (acquisition == EVIDENCE)
            miss = open_ & (acquisition == NO_EVIDENCE)
            # copyto, not streak[mask] = ...: boolean indexing is several times slower
            np.copyto(first, label, where=hit & (streak == 0))
            np.copyto(streak, streak + 1, where=hit)
            np.copyto(streak, 0, where=miss)
            np.copyto(first, 0, where=miss)
            done = hit & (streak >= confirm_after)
            np.copyto(since, first, where=done)
            open_ &= ~done
        return RadarState(streak, first, since)

    def reviewed(self, optical: DetectionState, observed: np.ndarray,
                 month: Month | str) -> RadarState:
        """The state once ``month``'s optical observations have been taken into ``optical``:
        pixels radar dated before ``month`` that optical imagery ``observed`` in it (a
        valid observation) without any optical evidence are withdrawn. A month's own
        radar findings wait for a later month: its clear views may predate the digging."""
        earlier = self.dated & (self.since < month_label(month))
        withdrawn = earlier & silent_in(optical, observed)
        return RadarState(self.streak, self.first,
                          np.where(withdrawn, -self.since, self.since).astype("int32"))

    def withdrawn_in(self, before: RadarState) -> np.ndarray:
        """Pixels withdrawn since ``before`` (this month's review)."""
        return (self.since < 0) & (before.since > 0)


def silent_in(optical: DetectionState, observed: np.ndarray) -> np.ndarray:
    """Pixels optical imagery ``observed`` (a valid view this month) with no evidence of
    digging in its state (neither a candidate nor confirmed)."""
    return observed & (optical.first_detected == 0) & (optical.confirmed == 0)


def radar_only(radar: RadarState, optical: DetectionState, exclude: np.ndarray) -> np.ndarray:
    """Radar-dated pixels the optical method has not confirmed, eligible for new digging:
    what a month optical imagery cannot measure adds to its new digging."""
    return radar.dated & (optical.confirmed == 0) & ~exclude


def unmapped(optical: DetectionState, withdrawn: np.ndarray) -> DetectionState:
    """``optical`` with the pixels radar alone had mapped, now ``withdrawn``, no longer
    mapped (an area's id is seeded from its mapped month: a withdrawn pixel must not keep
    it)."""
    assert optical.mapped_since is not None
    radar_mapped = withdrawn & (optical.confirmed == 0)
    since = np.where(radar_mapped, 0, optical.mapped_since).astype("int32")
    return DetectionState(optical.first_detected, optical.confirmed, since, optical.dug_share)


def radar_month(radar: RadarState, optical: DetectionState, codes: np.ndarray | None,
                observed: np.ndarray, month: Month | str, exclude: np.ndarray,
                ) -> tuple[RadarState, DetectionState, np.ndarray]:
    """Radar's part of a chunk's month, once ``optical`` has taken the month's optical
    evidence: radar's state advanced by the month's acquisition ``codes`` (None: radar saw
    nothing), its findings reviewed against the pixels optical imagery ``observed``, the
    optical state with the withdrawn ones unmapped, and the pixels radar adds to the month's
    new digging.

    Radar's findings count until optical imagery withdraws them; they have no dug share
    (optical measures it), so the footprint share does not apply to them. One radar dated to
    this month that this month's optical views saw without evidence waits: the views may
    predate the digging (so no withdrawal yet), but the month's map does not rest on radar
    against optical imagery that looked.
    """
    if codes is not None:
        radar = radar.advance(codes, month, exclude=exclude)
    reviewed = radar.reviewed(optical, observed, month)
    optical = unmapped(optical, reviewed.withdrawn_in(radar))
    doubted = (reviewed.since == month_label(month)) & silent_in(optical, observed)
    return reviewed, optical, radar_only(reviewed, optical, exclude) & ~doubted
