"""Answers about the whole site from its chunks: connected groups of pixels that chunk edges
cut, and medians over every pixel of the site, each exactly as the whole grid would give them.

- **Groups** (:func:`components`, :func:`merge_components`): each chunk labels its mask and
  reports the labels along its four edges; labels that touch across an edge (or, for
  8-connected groups, a corner) are one group, the connected components of the graph of such
  pairs (scipy). A group's size is the sum of its labels', and it touches the grid's border
  where any of its labels does.
- **Medians** (:class:`SiteMedian`): each chunk counts its values in fixed bins; the bins
  holding the middle ranks are found from the sums, the chunks send only their values in
  those bins, and the median is taken from them as numpy takes it.

Nothing here reads files or knows Dask: the run gathers these small summaries between tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
from scipy import ndimage

#: 8-connectivity (diagonal neighbours belong to one group) and 4-connectivity.
EIGHT = np.ones((3, 3), dtype=bool)
FOUR = ndimage.generate_binary_structure(2, 1)
SIDES = ("top", "bottom", "left", "right")


@dataclass(frozen=True)
class Components:
    """A chunk's labelled groups, as the run needs them to merge them across chunk edges."""

    sizes: np.ndarray
    """Pixels of each label (index 0: none)."""
    edges: dict[str, np.ndarray]
    """Labels along the chunk's ``top``, ``bottom``, ``left`` and ``right`` edges."""
    border: np.ndarray
    """By label, whether it touches the site grid's outer border."""


def edges_of(array: np.ndarray) -> dict[str, np.ndarray]:
    """The four edges of a ``(y, x)`` array, copied."""
    return {"top": array[0].copy(), "bottom": array[-1].copy(), "left": array[:, 0].copy(),
            "right": array[:, -1].copy()}


def components(mask: np.ndarray, structure: np.ndarray, on_border: Sequence[str] = (),
               ) -> tuple[np.ndarray, Components]:
    """Labels of ``mask``'s groups within a chunk and their :class:`Components`;
    ``on_border``: the chunk's sides that lie on the site grid's border."""
    labels, count = ndimage.label(mask, structure=structure)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    edges = edges_of(labels)
    border = np.zeros(count + 1, dtype=bool)
    for side in on_border:
        border[edges[side]] = True
    border[0] = False
    return labels, Components(sizes, edges, border)


def merge_components(rows: int, cols: int, parts: Sequence[Components], eight: bool,
                     ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Join the labels of ``parts`` (the chunks of a ``rows`` x ``cols`` layout, row-major)
    that touch across chunk edges (and corners, ``eight``).

    Returns per chunk the group of each of its labels (label 0: -1), and by group its size, whether it
    touches the grid's border and its number (from 1, in the order of its first label)."""
    offsets = np.cumsum([0] + [len(p.sizes) for p in parts])
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    shifts = (-1, 0, 1) if eight else (0,)
    for r in range(rows):
        for c in range(cols):
            i = r * cols + c
            here = parts[i].edges
            if c + 1 < cols:  # the right edge against the next chunk's left edge
                j = i + 1
                pairs += _touching(here["right"], parts[j].edges["left"], offsets[i],
                                   offsets[j], shifts)
            if r + 1 < rows:  # the bottom edge against the top edge of the chunk below
                j = i + cols
                pairs += _touching(here["bottom"], parts[j].edges["top"], offsets[i],
                                   offsets[j], shifts)
            if not eight:
                continue
            for dc, corner, other in ((1, -1, 0), (-1, 0, -1)):  # the corners below
                if r + 1 < rows and 0 <= c + dc < cols:
                    j = (r + 1) * cols + c + dc
                    a = here["bottom"][corner]
                    b = parts[j].edges["top"][other]
                    if a and b:
                        pairs.append((np.array([offsets[i] + a]), np.array([offsets[j] + b])))
    total = int(offsets[-1])
    if pairs:
        a = np.concatenate([p[0] for p in pairs])
        b = np.concatenate([p[1] for p in pairs])
    else:
        a = b = np.zeros(0, dtype="int64")
    graph = scipy.sparse.coo_matrix((np.ones(a.size, bool), (a, b)), shape=(total, total))
    n_groups, group = scipy.sparse.csgraph.connected_components(graph, directed=False)
    sizes = np.concatenate([p.sizes for p in parts]).astype("int64")
    background = np.concatenate([np.arange(len(p.sizes)) == 0 for p in parts])
    sizes[background] = 0
    group_size = np.bincount(group, weights=sizes, minlength=n_groups).astype("int64")
    border = np.concatenate([p.border for p in parts])
    group_border = np.bincount(group, weights=border, minlength=n_groups) > 0
    # Groups numbered from 1 in the order of their first label (backgrounds last, unused).
    first = np.full(n_groups, total, dtype="int64")
    np.minimum.at(first, group[~background], np.flatnonzero(~background))
    number = np.empty(n_groups, dtype="int64")
    number[np.argsort(first, kind="stable")] = np.arange(1, n_groups + 1)
    group = np.where(background, -1, group)
    return ([group[offsets[i]:offsets[i + 1]] for i in range(len(parts))], group_size,
            group_border, number)


def by_label(groups: np.ndarray, per_group: np.ndarray, fill: object = 0) -> np.ndarray:
    """``per_group`` taken by each label of a chunk (``groups`` from
    :func:`merge_components`); ``fill`` for label 0."""
    values = per_group[np.maximum(groups, 0)]
    values[groups < 0] = fill
    return values


def _touching(here: np.ndarray, there: np.ndarray, offset_here: int, offset_there: int,
              shifts: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Label pairs of two facing edges that touch (at the same position, or ``shifts`` along)."""
    out = []
    n = here.size
    for shift in shifts:  # pixel i here touches pixel i + shift there
        a = here[max(0, -shift):n - max(0, shift)]
        b = there[max(0, shift):n - max(0, -shift)]
        both = (a > 0) & (b > 0)
        if both.any():
            out.append((a[both].astype("int64") + offset_here,
                        b[both].astype("int64") + offset_there))
    return out


# ---- medians --------------------------------------------------------------------------------
#: Bins of :class:`SiteMedian` over -1..1 (NDVI), plus one below and one above.
MEDIAN_BINS = 8192


def median_bin(values: np.ndarray) -> np.ndarray:
    """The bin of each value (finite float32): 0 below -1, ``MEDIAN_BINS + 1`` from 1 up."""
    position = np.floor((values.astype("float64") + 1.0) * (MEDIAN_BINS / 2.0))
    return np.clip(position, -1, MEDIAN_BINS).astype("int64") + 1


def bin_counts(values: np.ndarray) -> np.ndarray:
    """Values per bin (a chunk's part of :class:`SiteMedian`)."""
    return np.bincount(median_bin(values), minlength=MEDIAN_BINS + 2)


def values_in_bins(values: np.ndarray, bins: Sequence[int]) -> np.ndarray:
    """A chunk's values in ``bins``, sorted."""
    return np.sort(values[np.isin(median_bin(values), list(bins))])


@dataclass(frozen=True)
class SiteMedian:
    """The median of values spread over chunks, from their :func:`bin_counts`."""

    counts: np.ndarray
    """The sum of the chunks' bin counts."""

    @property
    def ranks(self) -> tuple[int, int]:
        """The ranks (from 0, in sorted order) whose values make the median."""
        n = int(self.counts.sum())
        return (n - 1) // 2, n // 2

    @property
    def bins(self) -> tuple[int, ...]:
        """The bins holding the middle ranks: what each chunk sends (:func:`values_in_bins`);
        none when there are no values."""
        if not self.counts.sum():
            return ()
        cumulative = np.cumsum(self.counts)
        return tuple(sorted({int(np.searchsorted(cumulative, rank, side="right"))
                             for rank in self.ranks}))

    def median(self, parts: Sequence[np.ndarray]) -> np.float32 | None:
        """The median, as ``np.nanmedian`` of all the values in float32, from each chunk's
        :func:`values_in_bins` of :attr:`bins`; None without values."""
        bins = self.bins
        if not bins:
            return None
        values = np.sort(np.concatenate([np.asarray(p, "float32") for p in parts]))
        before = int(self.counts[:bins[0]].sum())
        low, high = (values[rank - before] for rank in self.ranks)
        if low == high:
            return np.float32(low)
        return np.float32(np.median(np.array([low, high], dtype="float32")))
