"""The bands of a month's ``change.tif``: what the pipeline writes and the maps and
benchmarks read, kept apart so that readers need not import the pipeline."""

from __future__ import annotations

#: Bands of ``change.tif``: the month's change score and evidence, the detection state
#: carried to the next month (first detected, confirmed, mapped since, dug share), the class,
#: and radar's state (:mod:`kpgeo.methods.fusion`; zero where radar never looked).
CHANGE_BANDS = ("change_score", "evidence_scenes", "first_detected", "confirmed", "mapped_since",
                "digging", "dug_share", "radar_streak", "radar_first", "radar_since")
CHANGE_DESCRIPTIONS = (
    ("change score: the pixel's least-green land NDVI in this season of the baseline minus "
    "this month's NDVI (vegetation loss > 0)"),
    "scene observations of this month with digging evidence",
    "first detection month of new digging (YYYYMM), 0 = none",
    "confirmation month of new digging (YYYYMM), 0 = none",
    "first month the pixel was in a mapped new-digging area (YYYYMM), 0 = none",
    "digging: 0 none, 1 pre-existing, 2 new (confirmed, at the mapping unit), 3 candidate",
    "dug share (0-1) of detected pixels: the largest monthly estimate since first detected",
    "radar: Sentinel-1 acquisitions in a row with evidence of new digging",
    "radar: month of the current run's first evidence (YYYYMM), 0 = none",
    ("radar: month radar dated new digging to (YYYYMM), 0 = none, negative = withdrawn by a "
     "later clear optical view without evidence"),
)
#: Values of the ``digging`` band.
DIGGING_NONE, DIGGING_PREEXISTING, DIGGING_NEW, DIGGING_CANDIDATE = 0, 1, 2, 3
