"""A month after the baseline, one chunk of the site at a time: the numpy steps the Dask
workers run, and the small summaries the run gathers between them.

Per chunk, in order (:mod:`kpgeo.compute.month_graph` makes them tasks):

1. :func:`observe`: the chunk's reads become its composite and each overpass's evidence.
2. :func:`advance`: the detection state advances through the evidence and takes the month's dug
   shares; the pixels that would be new digging before the mapping unit is applied are
   labelled (8-connected, within the chunk).
3. :func:`summarize`: what the run needs from the chunk to decide for the whole site: the
   labels' sizes, the labels on the chunk's edges, its valid pixels.
4. The run merges labels that touch across chunk edges (:func:`merge_labels`): a group is kept
   when the whole of it reaches the mapping unit, wherever the chunk edges cut it.
5. :func:`finish`: the month's new digging, the state recorded, the time-series areas (sums
   over the chunk), the pieces of the digging areas' polygons (with their radar-only pixels,
   each area's ``evidence``) and the chunk's product tiles.

Every step gives the same pixels as the whole grid would: the mapping unit and the dug
ground's one-pixel edge see across chunk edges (the labels merged, a ring of the neighbours'
new digging), and nothing else looks beyond a pixel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from odc.geo.geobox import GeoBox
from scipy import ndimage

from ..config import DetectionConfig
from .blocks import row_blocks
from .composite import REFLECTANCE_BANDS, composite_of_reads
from .detection import (
    EIGHT,
    EVIDENCE,
    UNOBSERVED,
    DetectionState,
    digging_signal,
    month_dug_share,
    observation_evidence,
)
from .fusion import RadarState, radar_month
from .indices import compute_indices
from .polygons import AreaPiece, area_pieces, dug_ground
from .reference import SeasonalReference
from .site_parts import Components, by_label, edges_of, merge_components

#: Time-series areas summed over the chunks (pixels or dug shares; times a pixel's area).
AREA_NAMES = ("preexisting_ha", "new_ha", "cumulative_new_ha", "active_ha", "water_ha",
              "new_dug_ha", "cumulative_new_dug_ha")


@dataclass(frozen=True)
class ChunkBaseline:
    """What a chunk needs from the baseline in a month (slices of the site's arrays)."""

    reference: np.ndarray
    """The season's reference layers (:meth:`~.reference.SeasonalReference.layers`)."""
    possible: np.ndarray
    """Where new water may be a pit (:meth:`~.detection.Baseline.new_water_possible`)."""
    land_ndvi_min: np.ndarray
    preexisting: np.ndarray
    exclude: np.ndarray
    """Not eligible for new digging: dug by the baseline's end, or outside the site."""
    inside: np.ndarray


@dataclass(frozen=True)
class Carry:
    """What a chunk carries from one month to the next."""

    state: DetectionState
    last_ok_new: np.ndarray
    """New digging of the latest month that was not a gap (its ``new_ha`` difference)."""
    radar: RadarState | None = None
    """Radar's findings (:mod:`~.fusion`); None: radar never looked."""


@dataclass
class Observed:
    """A chunk's composite ``(band, y, x)``, valid count and evidence ``(time, y, x)``."""

    medians: np.ndarray
    count: np.ndarray
    evidence: np.ndarray | None
    radar: np.ndarray | None = None
    """Radar evidence codes ``(acquisition, y, x)`` of the month, oldest first
    (:mod:`kpgeo.methods.radar`); None without radar."""


@dataclass
class Advanced:
    """A chunk after :func:`advance`: what :func:`finish` needs (the composite itself is
    written by then; only its NDVI and what it says of digging areas are kept)."""

    hits: np.ndarray
    """Observations with evidence of new digging, per pixel."""
    state: DetectionState
    labels: np.ndarray
    """Groups (8-connected, numbered from 1 within the chunk) of the pixels that are new
    digging if their whole group reaches the mapping unit."""
    count_labels: int
    ndvi: np.ndarray
    """The composite's NDVI (the change score)."""
    fresh: np.ndarray
    water: np.ndarray
    """Worked ground and open water in the composite (:func:`~.detection.digging_signal`)."""
    valid: np.ndarray
    """Pixels with a valid observation."""
    radar: RadarState | None = None
    radar_seen: np.ndarray | None = None
    """Pixels radar observed this month (None without radar)."""

    @classmethod
    def before_detection(cls, bands: Mapping[str, np.ndarray], params: DetectionConfig,
                         ) -> Advanced:
        """A baseline month's composite: nothing detected yet (an empty state)."""
        shape = bands["red"].shape
        indices = compute_indices(bands)
        fresh, water = digging_signal(bands, params, indices)
        return cls(np.zeros(shape, "float32"), DetectionState.empty(shape),
                   np.zeros(shape, "int32"), 0, indices["ndvi"], fresh, water,
                   np.isfinite(bands["red"]))


@dataclass(frozen=True)
class Summary:
    """What the run gathers of a chunk before deciding which groups are new digging."""

    sizes: np.ndarray
    """Pixels of each group, by label (index 0: none)."""
    edges: dict[str, np.ndarray]
    """Labels along the chunk's ``top``, ``bottom``, ``left`` and ``right`` edges."""
    previous_new_edges: dict[str, np.ndarray]
    """The latest valid month's new digging along the same edges."""
    inside_edges: dict[str, np.ndarray]
    valid: int
    """Pixels of the site with a valid observation."""
    inside: int
    radar_seen: int = 0
    """Pixels of the site radar observed this month."""


@dataclass
class Finished:
    """A chunk's month: the carry to the next, its area sums and polygon pieces."""

    carry: Carry
    sums: dict[str, float]
    pieces: list[AreaPiece] = field(default_factory=list)
    layers: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """The ``change`` product's bands of the chunk."""


def observe(reads: Sequence[np.ndarray], baseline: ChunkBaseline | None,
            params: DetectionConfig) -> Observed:
    """The composite, count and (given the baseline) evidence of a chunk's reads."""
    medians, count = composite_of_reads(reads)
    if baseline is None:
        return Observed(medians, count, None)
    return Observed(medians, count,
                    np.stack([_overpass_evidence(read, baseline, params) for read in reads])
                    if reads else np.zeros((0, *count.shape), "int8"))


def _overpass_evidence(read: np.ndarray, baseline: ChunkBaseline,
                       params: DetectionConfig) -> np.ndarray:
    """Evidence codes ``(y, x)`` of one overpass's read, a block of rows at a time
    (:mod:`kpgeo.methods.blocks`)."""
    codes = np.empty(read.shape[1:], dtype="int8")
    for rows in row_blocks(read.shape[-2], read.shape[-1]):
        bands = dict(zip(REFLECTANCE_BANDS, read[:, rows], strict=True))
        codes[rows] = observation_evidence(bands, np.isfinite(read[0, rows]),
                                           baseline.reference[:, rows],
                                           baseline.possible[rows], params)
    return codes


def advance(observed: Observed, carry: Carry, baseline: ChunkBaseline, month: str,
            params: DetectionConfig) -> tuple[Advanced, dict[str, np.ndarray]]:
    """The state after the month's observations and dug shares; the groups that may be new
    digging (``footprint_share_min`` reached, confirmed, not pre-existing); and the
    composite's indices."""
    assert observed.evidence is not None
    bands = dict(zip(REFLECTANCE_BANDS, observed.medians, strict=True))
    state = carry.state.advance(observed.evidence, month, exclude=baseline.exclude)
    floor = SeasonalReference.from_layers(baseline.reference).ndvi_floor
    share_now = month_dug_share(bands, floor, params)
    state = state.measured(share_now)
    dug = (state.confirmed > 0) & ~baseline.preexisting
    if params.footprint_share_min > 0:
        dug &= state.dug_share >= params.footprint_share_min  # type: ignore[operator]
    radar, radar_seen = carry.radar, None
    if radar is not None or observed.radar is not None:
        if observed.radar is not None:
            radar_seen = np.any(observed.radar != UNOBSERVED, axis=0)
        radar, state, found = radar_month(radar or RadarState.empty(observed.count.shape),
                                          state, observed.radar, observed.count > 0, month,
                                          baseline.exclude)
        dug |= found
    labels, count = ndimage.label(dug, structure=EIGHT)
    hits = (np.zeros(observed.count.shape, "float32") if len(observed.evidence) == 0
            else np.sum(observed.evidence == EVIDENCE, axis=0, dtype="float32"))
    indices = compute_indices(bands)
    fresh, water = digging_signal(bands, params, indices, share_now)
    return Advanced(hits, state, labels, count, indices["ndvi"], fresh, water,
                    observed.count > 0, radar, radar_seen), indices


def summarize(advanced: Advanced, carry: Carry, baseline: ChunkBaseline) -> Summary:
    """:class:`Summary` of a chunk."""
    sizes = np.bincount(advanced.labels.ravel(), minlength=advanced.count_labels + 1)
    inside = baseline.inside
    return Summary(sizes, edges_of(advanced.labels), edges_of(carry.last_ok_new), edges_of(inside),
                   int(np.count_nonzero(advanced.valid & inside)),
                   int(np.count_nonzero(inside)),
                   0 if advanced.radar_seen is None
                   else int(np.count_nonzero(advanced.radar_seen & inside)))


def finish(advanced: Advanced, carry: Carry, baseline: ChunkBaseline, month: str, ok: bool,
           keep: np.ndarray, numbers: np.ndarray, rings: Mapping[str, Ring],
           params: DetectionConfig, pixel_ha: float,
           window: tuple[GeoBox, slice, slice]) -> Finished:
    """The chunk's month once the run has decided which groups are new digging.

    ``keep`` and ``numbers``: by the chunk's labels, whether the group is new digging and its
    number across the site; ``rings``: the new digging (``new``) and the latest valid month's
    (``previous_new``) of the pixels around the chunk (:func:`ring_of`); ``window``: the site
    grid and the chunk's rows and columns in it (its pieces of the digging areas).
    """
    new = keep[advanced.labels] & baseline.inside
    state = advanced.state.mapped(new, month)
    previous_new = carry.last_ok_new
    fresh, water = advanced.fresh, advanced.water
    pre = baseline.preexisting
    confirmed = state.confirmed > 0
    label = np.int32(int(month.replace("-", "")))
    ground = dug_ground(new, confirmed, pre, near=_near(rings["new"], new))
    previous_ground = dug_ground(previous_new, confirmed & (state.confirmed < label), pre,
                                 near=_near(rings["previous_new"], previous_new))
    dug = state.dug_share
    assert dug is not None
    digging = pre | new
    # The month's increment: its new_ha, and each digging area's new_ha_this_month.
    increment = new & ~previous_new
    sums = {
        "preexisting_ha": float(np.count_nonzero(pre)),
        "new_ha": float(np.count_nonzero(increment)),
        "cumulative_new_ha": float(np.count_nonzero(new)),
        "active_ha": float(np.count_nonzero(digging & fresh)),
        "water_ha": float(np.count_nonzero(digging & water)),
        "new_dug_ha": float(np.nansum(dug[ground & ~previous_ground], dtype="float64")),
        "cumulative_new_dug_ha": float(np.nansum(dug[ground], dtype="float64")),
    }
    sums = {k: v * pixel_ha for k, v in sums.items()}
    pieces = area_pieces(np.where(new, numbers[advanced.labels], 0), *window, state,
                         increment=increment,
                         radar_since=None if advanced.radar is None else advanced.radar.since)
    return Finished(Carry(state, new if ok else previous_new, advanced.radar), sums, pieces,
                    layers={"change": change_layers(advanced.ndvi, advanced.hits, state, new,
                                                    baseline, advanced.radar)})


def _near(ring: Ring, footprint: np.ndarray) -> np.ndarray:
    """Pixels of the chunk on or next to ``footprint``, its neighbours' (``ring``) included."""
    return ndimage.binary_dilation(ring.around(footprint), structure=EIGHT)[1:-1, 1:-1]


def change_layers(month_ndvi: np.ndarray, hits: np.ndarray, state: DetectionState,
                  new: np.ndarray, baseline: ChunkBaseline,
                  radar: RadarState | None = None) -> list[np.ndarray]:
    """The bands of ``change.tif`` (:data:`~.change_bands.CHANGE_BANDS`), float32."""
    from .change_bands import DIGGING_CANDIDATE, DIGGING_NEW, DIGGING_NONE, DIGGING_PREEXISTING

    floor = SeasonalReference.from_layers(baseline.reference).ndvi_floor
    with np.errstate(invalid="ignore"):
        # Against the same season where the baseline saw the pixel then, else its driest state.
        score = np.where(np.isfinite(floor), floor, baseline.land_ndvi_min) - month_ndvi
    digging = np.full(score.shape, DIGGING_NONE, dtype="float32")
    # copyto, not digging[mask] = ...: boolean indexing is several times slower
    for where, value in ((state.candidate, DIGGING_CANDIDATE), (new, DIGGING_NEW),
                         (baseline.preexisting, DIGGING_PREEXISTING)):
        np.copyto(digging, np.float32(value), where=where)
    assert state.mapped_since is not None and state.dug_share is not None
    radar = radar or RadarState.empty(score.shape)
    return [score.astype("float32", copy=False), hits.astype("float32", copy=False),
            state.first_detected.astype("float32"), state.confirmed.astype("float32"),
            state.mapped_since.astype("float32"), digging, state.dug_share.astype("float32"),
            radar.streak.astype("float32"), radar.first.astype("float32"),
            radar.since.astype("float32")]


# ---- deciding for the whole site, from the chunks' summaries --------------------------------
@dataclass(frozen=True)
class Layout:
    """The chunks of a site grid: row and column slices, row-major."""

    rows: tuple[slice, ...]
    cols: tuple[slice, ...]

    def chunks(self) -> list[tuple[slice, slice]]:
        return [(r, c) for r in self.rows for c in self.cols]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)


def merge_labels(layout: Layout, summaries: Sequence[Summary], min_px: int,
                 ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per chunk, whether each of its labels is kept (its group across every chunk has at
    least ``min_px`` pixels) and the group's number across the site (from 1).

    Groups are 8-connected: labels touching across a chunk's edge or corner are one group
    (:func:`~.site_parts.merge_components`).
    """
    parts = [Components(s.sizes, s.edges, np.zeros(len(s.sizes), bool)) for s in summaries]
    groups, sizes, _, numbers = merge_components(*layout.shape, parts, eight=True)
    keep = [by_label(g, sizes >= max(min_px, 1), False) for g in groups]
    return keep, [by_label(g, numbers) for g in groups]


@dataclass(frozen=True)
class Ring:
    """The pixels around a chunk (False beyond the site grid): rows above and below it
    (corners included, ``x + 2``) and columns left and right of it (``y``)."""

    top: np.ndarray
    bottom: np.ndarray
    left: np.ndarray
    right: np.ndarray

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Ring:
        height, width = shape
        return cls(np.zeros(width + 2, bool), np.zeros(width + 2, bool),
                   np.zeros(height, bool), np.zeros(height, bool))

    def around(self, array: np.ndarray) -> np.ndarray:
        """``array`` ``(y, x)`` padded with the ring: ``(y + 2, x + 2)``."""
        padded = np.zeros((array.shape[0] + 2, array.shape[1] + 2), dtype=array.dtype)
        padded[1:-1, 1:-1] = array
        padded[0], padded[-1] = self.top, self.bottom
        padded[1:-1, 0], padded[1:-1, -1] = self.left, self.right
        return padded


def ring_of(layout: Layout, index: int, edges: Sequence[Mapping[str, np.ndarray]]) -> Ring:
    """The chunk ``index``'s :class:`Ring`, from its neighbours' facing ``edges``."""
    n_rows, n_cols = layout.shape
    r, c = divmod(index, n_cols)
    height = layout.rows[r].stop - layout.rows[r].start
    width = layout.cols[c].stop - layout.cols[c].start
    ring = Ring.empty((height, width))

    def at(rr: int, cc: int) -> Mapping[str, np.ndarray] | None:
        return edges[rr * n_cols + cc] if 0 <= rr < n_rows and 0 <= cc < n_cols else None

    if (above := at(r - 1, c)) is not None:
        ring.top[1:-1] = above["bottom"]
    if (below := at(r + 1, c)) is not None:
        ring.bottom[1:-1] = below["top"]
    if (left := at(r, c - 1)) is not None:
        ring.left[:] = left["right"]
    if (right := at(r, c + 1)) is not None:
        ring.right[:] = right["left"]
    for rr, cc, line, x, edge, pos in ((r - 1, c - 1, ring.top, 0, "bottom", -1),
                                       (r - 1, c + 1, ring.top, -1, "bottom", 0),
                                       (r + 1, c - 1, ring.bottom, 0, "top", -1),
                                       (r + 1, c + 1, ring.bottom, -1, "top", 0)):
        if (corner := at(rr, cc)) is not None:
            line[x] = corner[edge][pos]
    return ring
