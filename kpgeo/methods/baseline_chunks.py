"""The baseline, one chunk of the site at a time: the numpy steps the Dask workers run
(:mod:`kpgeo.compute.baseline_graph` makes them tasks and moves their results).

A chunk is computed over a window grown by a margin (its *halo*, within the site grid) and
cropped back, wherever a step looks at the pixels around: the seasonal references'
misregistration allowance (one pixel), the distance to the baseline's water
(``water_buffer_m``) and the opening and closing of the pre-existing map
(:func:`~.detection.close_workings_reach`). The steps whose answer no margin bounds (the size
of a pond or of a pre-existing area, whether a hole is enclosed) are decided for the whole
site from the chunks' summaries (:mod:`kpgeo.methods.site_parts`). Each step gives the pixels the
whole grid gives (``tests/test_baseline_chunks.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import DetectionConfig
from .detection import (
    STORED_BANDS,
    Baseline,
    baseline_states,
    clear_land,
    close_workings,
    close_workings_reach,
    preexisting_candidates,
    water_index,
)
from .indices import ndvi

#: ``baseline.tif``'s bands that the first pass writes (all but the pre-existing map, which
#: the site's groups decide last).
FIRST_PASS_SKIPS = "preexisting"


@dataclass(frozen=True)
class Window:
    """A chunk grown by a halo, within the grid: the rows and columns read, and where the
    chunk lies in them."""

    rows: slice
    cols: slice
    crop: tuple[slice, slice]

    @classmethod
    def around(cls, shape: tuple[int, int], rows: slice, cols: slice, halo: int) -> Window:
        r0, r1 = max(rows.start - halo, 0), min(rows.stop + halo, shape[0])
        c0, c1 = max(cols.start - halo, 0), min(cols.stop + halo, shape[1])
        return cls(slice(r0, r1), slice(c0, c1),
                   (slice(rows.start - r0, rows.stop - r0),
                    slice(cols.start - c0, cols.stop - c0)))


def sides_on_border(shape: tuple[int, int], rows: slice, cols: slice) -> tuple[str, ...]:
    """The sides of a chunk that lie on the grid's outer border."""
    return tuple(side for side, on in (("top", rows.start == 0), ("bottom", rows.stop == shape[0]),
                                       ("left", cols.start == 0), ("right", cols.stop == shape[1]))
                 if on)


def state_halo(params: DetectionConfig, pixel_m: float) -> int:
    """The halo of :func:`chunk_states`: the seasonal references' neighbours and the distance
    to water (a pixel farther than the buffer from every pixel of the window is farther from
    any beyond it too)."""
    return max(1, math.ceil(params.water_buffer_m / pixel_m) + 1)


def closing_halo(params: DetectionConfig, pixel_m: float) -> int:
    """The halo of :func:`closed_workings`."""
    return close_workings_reach(params, pixel_m) + 1


def clear_ndvi(bands: Mapping[str, np.ndarray], params: DetectionConfig) -> np.ndarray:
    """NDVI of the clear land of a composite (its part of the site's typical land: the median
    the whole-grid baseline takes, :func:`~.detection.baseline_states`)."""
    vi = ndvi(bands)
    values: np.ndarray = vi[clear_land(bands, vi, water_index(bands), params)]
    return values


@dataclass
class Candidates:
    """A chunk's pre-existing digging before the steps that look around it: worked ground
    (not riverbed), ground dug within the baseline, water at its end."""

    dug: np.ndarray
    changed: np.ndarray
    water: np.ndarray

    def packed(self) -> np.ndarray:
        """As one uint8 band of bits (1: dug, 2: changed, 4: water)."""
        return (self.dug.astype("uint8") | (self.changed.astype("uint8") << 1)
                | (self.water.astype("uint8") << 2))

    @classmethod
    def unpacked(cls, bits: np.ndarray) -> Candidates:
        return cls((bits & 1) > 0, (bits & 2) > 0, (bits & 4) > 0)


def chunk_states(composites: Iterable[Mapping[str, np.ndarray]], months: Sequence[int],
                 typicals: Sequence[float | None], params: DetectionConfig, pixel_m: float,
                 crop: tuple[slice, slice]) -> tuple[list[str], Iterator[np.ndarray], Candidates]:
    """A chunk's stored baseline (:meth:`~.detection.Baseline.stored`) but its pre-existing
    map, and its :class:`Candidates`, from the composites of the valid baseline months over
    its :func:`state_halo` window (``crop``: the chunk in it) and the site's typical land NDVI
    of each month. The stored bands come one at a time (names and an iterator)."""
    state, monthly = baseline_states(composites, params, months, typicals)
    baseline = Baseline(**state, preexisting=np.zeros(state["worked"].shape, bool),
                        monthly=monthly)
    names, layers = baseline.stored(params.water_buffer_m, pixel_m)
    candidates = Candidates(*(a[crop] for a in preexisting_candidates(
        state["worked"], state["water_end"], state["water_months"], state["land_months"])))
    skip = STORED_BANDS.index(FIRST_PASS_SKIPS)

    def cropped() -> Iterator[np.ndarray]:
        for i, layer in enumerate(layers):
            if i != skip:
                yield layer[crop]

    return [n for n in names if n != FIRST_PASS_SKIPS], cropped(), candidates


def closed_workings(window_bits: np.ndarray, crop: tuple[slice, slice],
                    params: DetectionConfig, pixel_m: float) -> np.ndarray:
    """:func:`~.detection.close_workings` of a chunk, from the packed :class:`Candidates`
    (small ponds already dug) over its :func:`closing_halo` window."""
    candidates = Candidates.unpacked(window_bits)
    closed = close_workings(candidates.dug, candidates.changed, candidates.water, params,
                            pixel_m)
    result: np.ndarray = closed[crop]
    return result
