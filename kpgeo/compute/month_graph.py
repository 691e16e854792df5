"""A site-month as Dask tasks per chunk, on whichever scheduler the run made active.

Per chunk of the site grid (:mod:`kpgeo.methods.chunkwise` has the numpy of each step):

- ``observe``: one task reads every overpass of the chunk (the reads run inside it, so no read
  crosses between workers) and makes the composite and the evidence;
- ``advance`` and ``summarize``: the state advances; the run gathers each chunk's summary (a
  few kB), merges the groups cut by chunk edges and decides the month's quality;
- ``finish``: the new digging, the state carried to the next month, the area sums and polygon
  pieces, and the chunk's tiles of the month's products (:mod:`kpgeo.products.tiles`).

What a chunk's ``advance`` hands to its ``finish``, and what its ``finish`` carries to the next
month, is written under the site's folder for a site of several chunks
(:mod:`kpgeo.compute.kept`), so that the workers hold
only the chunks they are computing, whatever the site's size; only summaries, sums and polygon
pieces come back to the run. A site of one chunk has its next months searched and observed
while this one finishes (:meth:`SiteMonths.observe` before :meth:`SiteMonths.finish`), so that
its workers do not wait for the run between months; a larger site's chunks keep them busy.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import operator
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pystac
import rasterio
import rasterio.windows
from dask.delayed import Delayed
from dask.task_spec import DataNode, List, Task, TaskRef
from odc.geo.geobox import GeoBox

from ..aoi import Site
from ..config import PipelineConfig
from ..errors import SourceError
from ..methods.blocks import chunk_slices
from ..methods.change_bands import CHANGE_BANDS, CHANGE_DESCRIPTIONS, DIGGING_NEW
from ..methods.chunkwise import (
    AREA_NAMES,
    Advanced,
    Carry,
    ChunkBaseline,
    Layout,
    Observed,
    Ring,
    Summary,
    advance,
    finish,
    merge_labels,
    observe,
    ring_of,
    summarize,
)
from ..methods.composite import COUNT_BAND, MEASURED, MonthQuality, MonthStatus
from ..methods.detection import DetectionState, min_area_px
from ..methods.fusion import RadarState
from ..methods.indices import INDEX_DESCRIPTIONS, INDEX_NAMES, compute_indices
from ..methods.polygons import AreaPiece
from ..methods.radar import month_codes, season_months
from ..methods.site_parts import SiteMedian, values_in_bins
from ..months import Month, MonthRange
from ..products.encoding import COUNT, INDEX, REFLECTANCE, read_values
from ..products.export import (
    OVERVIEW_MIN_PX,
    block_px,
    cog_options,
    colour_interpretation,
    write_cog,
)
from ..products.product_tags import AREAS_TAG, SIGNATURE_TAG, grid_tags
from ..products.tiles import assemble_cog, overview_factors, write_tile
from ..sources import READ_ERRORS, REFLECTANCE_BANDS, SceneSource
from ..sources.base import (
    ChunkedSource,
    ChunkReads,
    RadarSource,
    chunk_reads_of_dataset,
    utc,
)
from .baseline_graph import clear_counts
from .chunk_baseline import inside_pixels, read_chunk_baseline
from .cluster import compute, on_cluster
from .kept import Kept, forget, keep, loaded

log = logging.getLogger(__name__)


@dataclass
class Observing:
    """A month whose chunks are being observed (:meth:`SiteMonths.observe`)."""

    month: Month
    items: list[pystac.Item]
    observed: list[Delayed]
    """Per chunk, its :class:`~.chunkwise.Observed` and (after the baseline)
    :class:`~.chunkwise.ChunkBaseline` (persisted on a cluster)."""
    baseline: Path | None
    """``baseline.tif``, after the baseline."""


@dataclass
class MonthOutcome:
    """A site-month once its chunks are finishing (:meth:`SiteMonths.finish`)."""

    month: Month
    quality: MonthQuality
    scene_ids: list[str]
    skipped: int
    carries: list[Delayed]
    """Per chunk, the :class:`~.chunkwise.Carry` for the next month (:class:`~.kept.Kept` on disk)."""
    finished: list[Delayed]
    """Per chunk, its :class:`ChunkMonth` (persisted): :meth:`SiteMonths.complete` gathers
    their sums and pieces."""
    writer: ProductWriter


@dataclass
class SiteMonths:
    """Computes months of one site chunk by chunk."""

    source: SceneSource
    site: Site
    config: PipelineConfig
    folder: Path
    """The site's output folder."""
    signature: str
    radar: RadarSource | None = None
    """Sentinel-1 passes read beside the optical scenes after the baseline
    (:mod:`kpgeo.methods.fusion`), or None."""
    layout: Layout = dataclasses.field(init=False)
    _radar_baseline: list[pystac.Item] | None = dataclasses.field(default=None, init=False)

    def __post_init__(self) -> None:
        size = self.config.composite.chunk_px
        height, width = self.site.grid.shape.yx
        self.layout = Layout(tuple(chunk_slices(height, size)),
                             tuple(chunk_slices(width, size)))

    # -- reading and observing
    def observe(self, month: Month, baseline: Path | None,
                items: list[pystac.Item] | None = None) -> Observing:
        """Search ``month`` (unless ``items`` are given) and start observing its chunks;
        after the baseline (``baseline``: its ``baseline.tif``), with the evidence of new
        digging against the month's :class:`~.chunkwise.ChunkBaseline`, which each chunk's
        task reads from it."""
        if items is None:
            items = self.source.search(self.site, MonthRange.single(month))
        reads = self._reads(items)
        params = self.config.detection
        season = int(str(month)[5:7])
        outline = self._outline()
        radar = self._radar_reads(month) if baseline is not None else None
        observed = [_observe_task(parts, (rows, cols), None if baseline is None else
                                  (baseline, self.site.grid, rows, cols, season, outline),
                                  params, None if radar is None else radar[i])
                    for i, (rows, cols, parts) in enumerate(reads.chunks)]
        # A site of one chunk on a cluster starts computing now (persisted: the result stays
        # on its worker), months ahead; a larger site's chunks are observed when the month is
        # finished, each just before it advances, so that no worker holds a month's reads of
        # the whole site. Dask's local schedulers compute them then too, where a failed read
        # is retried.
        if on_cluster() and len(self.layout.chunks()) == 1:
            observed = list(dask.persist(*observed))
        return Observing(month, items, observed, baseline)

    def _radar_reads(self, month: Month) -> list[RadarChunk] | None:
        """Per chunk, the month's radar passes and those of the baseline in its season
        (:func:`~kpgeo.methods.radar.month_codes`); None without radar, or when either has
        none (radar then sees nothing this month)."""
        if self.radar is None or self.config.baseline is None:
            return None
        if self._radar_baseline is None:
            self._radar_baseline = self.radar.search(self.site, self.config.baseline)
        calendar = int(str(month)[5:7])
        season = season_months(calendar)
        base_items = [i for i in self._radar_baseline
                      if utc(i).month in season]
        # Radar judges a month only against a baseline that saw its own calendar month: its
        # neighbours alone (a baseline of June to September, judging October) let the turn
        # of the season look like change (radar, unlike optical imagery, always sees: a
        # baseline without the month is one too short, not a cloudy one).
        if not any(utc(i).month == calendar for i in base_items):
            return None
        items = self.radar.search(self.site, MonthRange.single(month))
        if not items:
            return None
        now, base = (self.radar.read_chunks(items, self.site),
                     self.radar.read_chunks(base_items, self.site))
        base_months = [int(str(t)[5:7]) for t in base.times.astype("datetime64[M]")]
        return [RadarChunk(parts, now.orbit_states, base_parts, base.orbit_states,
                           base_months, calendar, crop)
                for (_, _, crop, parts), (_, _, _, base_parts)
                in zip(now.chunks, base.chunks, strict=True)]

    def _reads(self, items: list[pystac.Item]) -> ChunkReads:
        if isinstance(self.source, ChunkedSource):
            reads = self.source.read_chunks(items, self.site)
        else:
            reads = chunk_reads_of_dataset(self.source.load(items, self.site),
                                           self.layout.chunks())
        if [(r, c) for r, c, _ in reads.chunks] != self.layout.chunks():
            raise AssertionError("the source's chunks are not the run's")
        return reads

    def _summaries(self, observing: Observing, step: Callable[[Observing], list[Delayed]],
                   summary: Callable[[Any], Any],
                   ) -> tuple[Observing, list[Delayed], list[Any]]:
        """Persist ``step`` of the observed chunks and gather ``summary`` of each result (the
        small part the run needs); when a read
        fails, the source screens the month's scenes one by one and the month is observed
        again without those it skipped (docs/product.md §10), at most
        ``source.read_attempts`` times."""
        failures = 0
        while True:
            try:
                results = list(dask.persist(*step(observing)))
                summaries = list(compute(*[_delayed(summary)(r) for r in results]))
                return observing, results, summaries
            except READ_ERRORS as exc:
                failures += 1
                screen = getattr(self.source, "screen", None)
                if screen is None or failures > self.config.source.read_attempts:
                    raise SourceError(
                        f"{self.site.name} {observing.month}: reading the scenes failed "
                        f"{failures} times, last: {exc}") from exc
                log.warning("%s %s: a read failed (%s); reading each scene alone",
                            self.site.name, observing.month, exc)
                observing = self.observe(observing.month, observing.baseline,
                                         screen(observing.items, self.site))

    def _used(self, observing: Observing) -> tuple[list[str], int]:
        """The ids of the scenes used, and how many failed to read (recorded by the source
        as skipped: the month is then computed again by the next run)."""
        records = [s for s in getattr(self.source, "skipped", [])
                   if s.get("site") == self.site.name and s.get("month") == str(observing.month)]
        skipped = {s.get("scene_id") for s in records}
        # A scene the catalog lists without an asset (no attempt made) stays incomplete, and
        # would make the month run forever.
        unread = sum(1 for s in records if s.get("attempts", 1) > 0)
        return [i.id for i in observing.items if i.id not in skipped], unread

    def _writer(self, observing: Observing) -> ProductWriter:
        """How the month's products are written, once its scenes are known."""
        scene_ids, unread = self._used(observing)
        return self._month_writer(observing.month, len(scene_ids), unread)

    def _month_writer(self, month: Month, scenes: int, unread: int) -> ProductWriter:
        return ProductWriter(self.folder / str(month), self.site.name, str(month),
                             self.site.grid, tuple(self.layout.chunks()), scenes, unread,
                             self.config.composite.min_valid_pct, self.signature)

    @property
    def _kept_in(self) -> Path | None:
        """Where chunks keep what their next step needs (:mod:`kpgeo.compute.kept`): the
        site's folder, or None for a site of one chunk (held by its worker)."""
        return self.folder if len(self.layout.chunks()) > 1 else None

    def _outline(self) -> Any:
        """The site's polygon in the grid's CRS (shapely): each chunk finds its pixels in it."""
        return self.site.geometry.to_crs(self.site.crs).geom

    # -- a baseline month: composite and indices
    def finish_composite(self, observing: Observing,
                         ) -> tuple[MonthQuality, list[str], int, list[Delayed], float | None]:
        """A baseline month's quality, scene ids, unread scenes, products (composite and
        indices COGs, made when computed) and the site's typical land NDVI (None without
        clear land): :mod:`kpgeo.compute.baseline_graph`."""
        outline = self._outline()
        params = self.config.detection

        def step(observing: Observing) -> list[Delayed]:
            writer = self._writer(observing)
            return [_delayed(_composite_tiles)(o, writer, rows, cols, outline, params)
                    for o, (rows, cols) in zip(observing.observed, self.layout.chunks(),
                                               strict=True)]

        observing, results, summaries = self._summaries(observing, step,
                                                        operator.itemgetter(slice(0, 3)))
        median = SiteMedian(sum(s[2] for s in summaries))
        parts = compute(*[_delayed(_clear_values_of)(r, median.bins) for r in results],
                        quiet=True) if median.bins else ()
        typical = median.median(parts)
        scene_ids, unread = self._used(observing)
        writer = self._writer(observing)
        quality = writer.quality(sum(s[0] for s in summaries), sum(s[1] for s in summaries))
        return (quality, scene_ids, unread, writer.assemble(quality),
                None if typical is None else float(typical))

    def baseline_change(self, month: Month, quality: MonthQuality, scenes: int,
                        baseline: Path) -> dict[str, float]:
        """A baseline month's ``change.tif`` (nothing detected yet: the pre-existing digging)
        from its ``composite.tif`` and the site's ``baseline.tif``; its areas."""
        writer = self._month_writer(month, scenes, 0)
        outline = self._outline()
        pixel_ha = abs(self.site.grid.resolution.x) ** 2 / 1e4
        sums = compute(*[_delayed(_baseline_change)(writer, rows, cols, quality, baseline,
                                                    outline, self.config.detection, pixel_ha)
                         for rows, cols in self.layout.chunks()], quiet=True)
        areas = {name: sum(s[name] for s in sums) for name in AREA_NAMES}
        compute(*writer.assemble(quality, areas, products=()), quiet=True)
        return areas

    # -- a month after the baseline
    def initial_carries(self, saved: Path | None, last_ok: Path | None) -> list[Delayed]:
        """Per chunk, the state before the first month computed: from a saved ``change.tif``
        and the latest valid month's (read by the workers), or empty."""
        forget(self.folder)  # what an interrupted run kept
        return list(dask.persist(*[_delayed(_read_carry)(saved, last_ok, rows, cols,
                                                         self._kept_in)
                                   for rows, cols in self.layout.chunks()]))

    def finish(self, observing: Observing, carries: list[Delayed]) -> MonthOutcome:
        """Advance the state through an observed month and make its products."""
        assert observing.baseline is not None
        month = str(observing.month)
        params = self.config.detection
        chunks = self.layout.chunks()

        def step(observing: Observing) -> list[Delayed]:
            writer = self._writer(observing)
            return [_delayed(_advanced)(o, carries[i], month, params, writer, rows, cols,
                                        self._kept_in)
                    for i, (o, (rows, cols)) in enumerate(zip(observing.observed, chunks,
                                                              strict=True))]

        began = time.perf_counter()
        observing, advanced, summaries = self._summaries(observing, step,
                                                         operator.itemgetter(1))
        observing.observed = []  # advanced: the workers may let the chunks' reads go
        observed_s = time.perf_counter() - began
        scene_ids, unread = self._used(observing)
        writer = self._writer(observing)
        quality = writer.quality(sum(s.valid for s in summaries),
                                 sum(s.inside for s in summaries),
                                 sum(s.radar_seen for s in summaries))
        pixel_m = abs(self.site.grid.resolution.x)
        keep, numbers = merge_labels(self.layout, summaries,
                                     min_area_px(params.min_area_ha, pixel_m))
        # The neighbours' new digging (their kept groups, inside the site) along their edges.
        new_edges = [{side: keep[i][labels] & s.inside_edges[side]
                      for side, labels in s.edges.items()} for i, s in enumerate(summaries)]
        previous_edges = [s.previous_new_edges for s in summaries]
        finished = dask.persist(*[
            _delayed(_finished)(advanced[i], carries[i], month,
                                quality.status in MEASURED, keep[i], numbers[i],
                                {"new": ring_of(self.layout, i, new_edges),
                                 "previous_new": ring_of(self.layout, i, previous_edges)},
                                params, pixel_m**2 / 1e4, writer, rows, cols, self._kept_in)
            for i, (rows, cols) in enumerate(chunks)])
        carries = [_delayed(operator.attrgetter("carry"))(f) for f in finished]
        log.debug("%s %s: observed and advanced in %.2f s", self.site.name, month, observed_s)
        return MonthOutcome(observing.month, quality, scene_ids, unread,
                            list(dask.persist(*carries)), list(finished), writer)

    def complete(self, outcome: MonthOutcome) -> tuple[dict[str, float], list[AreaPiece]]:
        """Gather a finishing month's area sums and polygon pieces, then make its COGs."""
        gathered = compute(*[_delayed(_sums_and_pieces)(f) for f in outcome.finished],
                           quiet=True)
        # Its chunks are finished: what they were handed (their advance, the month before's
        # carry) is no longer needed; its own carry is, by the next month.
        forget(self.folder, f"{outcome.month}-advanced")
        forget(self.folder, f"{outcome.month - 1}-carry")
        forget(self.folder, "initial-carry")
        sums = {name: sum(g[0][name] for g in gathered) for name in AREA_NAMES}
        pieces = [p for g in gathered for p in g[1]]
        compute(*outcome.writer.assemble(outcome.quality, sums), quiet=True)
        return sums, pieces

@dataclass(frozen=True)
class ProductWriter:
    """How a site-month's raster products are written: each chunk's part as a tile, made into
    COGs once the month's figures are known (:meth:`assemble`); a site of one chunk has its
    COGs written by the chunk's task straight away (the tiles would only be copied)."""

    folder: Path
    site: str
    month: str
    grid: GeoBox
    chunks: tuple[tuple[slice, slice], ...]
    scenes: int
    unread: int
    min_valid_pct: float
    signature: str

    @property
    def whole(self) -> bool:
        return len(self.chunks) == 1

    @property
    def factors(self) -> list[int]:
        """Overview levels each chunk makes its part of (GDAL's, for a large raster)."""
        shape = self.grid.shape.yx
        if max(shape) <= OVERVIEW_MIN_PX:
            return []
        rows = self.chunks[0][0]
        return overview_factors(shape, block_px(*shape), rows.stop - rows.start)

    def quality(self, valid: int, inside: int, radar_seen: int = 0) -> MonthQuality:
        """The month's quality from its valid and site pixels: ``ok`` when optical imagery
        saw enough of the site, else ``radar`` when radar saw as much (``radar_seen``
        pixels: :mod:`kpgeo.methods.fusion`), else ``gap``."""
        pct = 100.0 * valid / inside if inside else 0.0
        radar_pct = 100.0 * radar_seen / inside if inside else 0.0
        status: MonthStatus = ("ok" if self.scenes > 0 and pct >= self.min_valid_pct
                               else "radar" if radar_seen and radar_pct >= self.min_valid_pct
                               else "gap")
        return MonthQuality(status, self.scenes, round(pct, 2))

    def write(self, product: str, rows: slice, cols: slice, bands: Sequence[np.ndarray],
              quality: MonthQuality | None = None, areas: Mapping[str, float] | None = None,
              ) -> None:
        """A chunk's part of ``product``: its tile, or the COG itself for a site of one chunk
        (``quality`` and, for the change, ``areas`` then give its tags)."""
        spec = PRODUCTS[product]
        if not self.whole:
            write_tile(self.folder, product, self.grid, rows, cols, bands, spec["encoding"],
                       factors=self.factors, nodata=spec["nodata"],
                       average=spec["cog"].get("resampling", "average") == "average")
            return
        assert quality is not None
        write_cog(self.folder / f"{product}.tif", bands, self.grid,
                  descriptions=spec["descriptions"], nodata=spec["nodata"],
                  encoding=spec["encoding"], tags=self._tags(product, quality, areas),
                  colours=spec.get("colours", ()), **spec["cog"])

    def assemble(self, quality: MonthQuality, areas: Mapping[str, float] | None = None,
                 products: Sequence[str] = ("composite", "indices")) -> list[Delayed]:
        """Tasks making the month's COGs from the tiles: ``products`` and (``areas`` given)
        the change, side by side (the month's record, written after them all, is what marks it
        done: :mod:`kpgeo.saved`). None for a site of one chunk."""
        if self.whole:
            return []
        tasks = [_delayed(self._assemble)(name, quality, None) for name in products]
        if areas is not None:
            tasks.append(_delayed(self._assemble)("change", quality, dict(areas)))
        return tasks

    def _assemble(self, product: str, quality: MonthQuality,
                  areas: Mapping[str, float] | None) -> Path:
        spec = PRODUCTS[product]
        dtype = spec["encoding"][0].dtype if spec["encoding"] else "float32"
        return assemble_cog(self.folder, product, self.grid, self.chunks,
                            descriptions=spec["descriptions"], dtype=dtype,
                            nodata=spec["nodata"], encoding=spec["encoding"],
                            cog_options=cog_options(self.grid.shape.yx, np.dtype(dtype),
                                                    **spec["cog"]),
                            tags=self._tags(product, quality, areas), factors=self.factors,
                            colours=spec.get("colours", ()))

    def _tags(self, product: str, quality: MonthQuality,
              areas: Mapping[str, float] | None) -> dict[str, Any]:
        tags = grid_tags(self.site, self.month, quality)
        if product == "composite":
            return {**tags, "skipped_scenes": self.unread,
                    "units": "surface reflectance (bands 1-6: DN * scale + offset, as in "
                             "Sentinel-2 L2A), valid observations (band 7)"}
        if product == "indices":
            return {**tags, "indices": ",".join(INDEX_NAMES)}
        assert areas is not None
        return {**tags, SIGNATURE_TAG: self.signature,
                AREAS_TAG: json.dumps(dict(areas), sort_keys=True)}


#: The month's raster products: band descriptions, encodings, nodata, COG settings and, for the
#: composite, the bands' colour interpretation (its red, green and blue bands are marked so, so
#: that QGIS shows it in true colour by default).
PRODUCTS: dict[str, dict[str, Any]] = {
    "composite": {"descriptions": [*REFLECTANCE_BANDS, COUNT_BAND],
                  "encoding": [REFLECTANCE] * len(REFLECTANCE_BANDS) + [COUNT], "nodata": 0,
                  "cog": {},
                  "colours": colour_interpretation([*REFLECTANCE_BANDS, COUNT_BAND])},
    "indices": {"descriptions": [INDEX_DESCRIPTIONS[n] for n in INDEX_NAMES],
                "encoding": [INDEX] * len(INDEX_NAMES), "nodata": INDEX.nodata, "cog": {}},
    "change": {"descriptions": list(CHANGE_DESCRIPTIONS), "encoding": [], "nodata": None,
               "cog": {"resampling": "nearest", "predictor": False}},
}


def _delayed(function: Callable[..., Any]) -> Any:
    """``dask.delayed`` without hashing the arguments for the key (chunks of arrays)."""
    return dask.delayed(function, pure=False)


@dataclass(frozen=True)
class RadarChunk:
    """A chunk's radar in a month: its passes and the baseline's passes of the month's
    season (lazy reads of the chunk grown by the method's margin, ``crop`` the chunk), with
    their orbit directions, and the baseline passes' calendar months."""

    passes: list[Delayed]
    orbits: list[str]
    baseline: list[Delayed]
    baseline_orbits: list[str]
    baseline_months: list[int]
    calendar_month: int
    crop: tuple[slice, slice]


def _observe_task(parts: list[Delayed], window: tuple[slice, slice],
                  baseline: tuple[Any, ...] | None, params: Any,
                  radar: RadarChunk | None = None) -> Delayed:
    """``observe`` of a chunk's reads as one task, which also reads the chunk's baseline
    (``baseline``: the arguments of :func:`~.chunk_baseline.read_chunk_baseline`) and makes
    its radar codes (``radar``); reads of one task each run within it (the stac and
    synthetic sources'), others as its dependencies. Everything a chunk's month needs then
    starts on one worker."""
    key = f"observe-{uuid.uuid4().hex}"
    graph: dict[str, Any] = {}

    def within(parts: list[Delayed]) -> List:
        if all(len(part.dask) == 1 for part in parts):
            return List(*(part.dask[part.key] for part in parts))
        for part in parts:
            graph.update(part.dask)
        return List(*(TaskRef(part.key) for part in parts))

    shape = (window[0].stop - window[0].start, window[1].stop - window[1].start)
    radar_args: Any = DataNode(None, None)
    if radar is not None:
        radar_args = List(within(radar.passes), DataNode(None, radar.orbits),
                          within(radar.baseline),
                          DataNode(None, (radar.baseline_orbits, radar.baseline_months,
                                          radar.calendar_month, radar.crop)))
    graph[key] = Task(key, _observed, within(parts), shape, DataNode(None, baseline), params,
                      radar_args)
    return Delayed(key, graph)


def _observed(reads: Sequence[np.ndarray], shape: tuple[int, int],
              baseline_args: tuple[Any, ...] | None, params: Any,
              radar_args: Sequence[Any] | None = None,
              ) -> tuple[Observed, ChunkBaseline | None]:
    baseline = None if baseline_args is None else read_chunk_baseline(*baseline_args)
    codes = None
    if radar_args is not None:
        passes, orbits, base, (base_orbits, base_months, calendar, crop) = radar_args
        codes = month_codes(passes, orbits, base, base_orbits, base_months, calendar, crop,
                            None if baseline is None else baseline.possible)
    if not reads:  # no scene this month: nothing observed
        empty = np.full((len(REFLECTANCE_BANDS), *shape), np.nan, dtype="float32")
        evidence = None if baseline is None else np.zeros((0, *shape), "int8")
        return Observed(empty, np.zeros(shape, "int16"), evidence, codes), baseline
    observed = observe(reads, baseline, params)
    observed.radar = codes
    return observed, baseline


def _composite_tiles(observing: tuple[Observed, None], writer: ProductWriter, rows: slice,
                     cols: slice, outline: Any, params: Any,
                     ) -> tuple[int, int, np.ndarray, np.ndarray]:
    """A baseline month's chunk: its composite and indices; its valid and site pixels, and
    its clear land's NDVI values and their bin counts (the site's typical land)."""
    observed = observing[0]
    inside = inside_pixels(outline, writer.grid, rows, cols)
    valid = int(np.count_nonzero((observed.count > 0) & inside))
    quality = writer.quality(valid, int(np.count_nonzero(inside)))
    bands = dict(zip(REFLECTANCE_BANDS, observed.medians, strict=True))
    _write_composite(writer, rows, cols, observed, compute_indices(bands), quality)
    values, counts = clear_counts(observed.medians, params)
    return valid, int(np.count_nonzero(inside)), counts, values


def _clear_values_of(result: tuple[int, int, np.ndarray, np.ndarray],
                     bins: Sequence[int]) -> np.ndarray:
    return values_in_bins(result[3], bins)


def _write_composite(writer: ProductWriter, rows: slice, cols: slice, observed: Observed,
                     indices: Mapping[str, np.ndarray], quality: MonthQuality) -> None:
    writer.write("composite", rows, cols, [*observed.medians, observed.count], quality)
    writer.write("indices", rows, cols, [indices[n] for n in INDEX_NAMES], quality)


def _advanced(observing: tuple[Observed, ChunkBaseline], carry: Carry | Kept, month: str,
              params: Any, writer: ProductWriter, rows: slice, cols: slice,
              site_folder: Path | None) -> tuple[Kept | Any, Summary]:
    """Advance a chunk and write its composite and indices (the composite itself is not
    kept); what its :func:`_finished` needs, kept on disk, and its summary."""
    observed, baseline = observing
    before: Carry = loaded(carry)
    advanced, indices = advance(observed, before, baseline, month, params)
    summary = summarize(advanced, before, baseline)
    _write_composite(writer, rows, cols, observed, indices,
                     writer.quality(summary.valid, summary.inside, summary.radar_seen))
    return keep((advanced, summary, baseline), site_folder, f"{month}-advanced", "chunk",
                rows, cols), summary


def _finished(advanced: tuple[Kept | Any, Summary], carry: Carry | Kept, month: str,
              ok: bool, kept: np.ndarray, numbers: np.ndarray, rings: Mapping[str, Ring],
              params: Any, pixel_ha: float, writer: ProductWriter, rows: slice,
              cols: slice, site_folder: Path | None) -> ChunkMonth:
    chunk, summary, baseline = loaded(advanced[0])
    done = finish(chunk, loaded(carry), baseline, month, ok, kept, numbers, rings, params,
                  pixel_ha, (writer.grid, rows, cols))
    writer.write("change", rows, cols, done.layers["change"],
                 writer.quality(summary.valid, summary.inside, summary.radar_seen), done.sums)
    # The next month reads the carry back: the run holds handles to it, not the arrays.
    return ChunkMonth(keep(done.carry, site_folder, f"{month}-carry", "chunk", rows, cols),
                      done.sums, done.pieces)


@dataclass
class ChunkMonth:
    """What a chunk's finished month leaves (:class:`~.chunkwise.Finished`, its change tile
    written): the carry to the next month (on disk for a site of several chunks), the area
    sums and the polygon pieces."""

    carry: Kept | Carry
    sums: dict[str, float]
    pieces: list[AreaPiece]


def _sums_and_pieces(finished: ChunkMonth) -> tuple[dict[str, float], list[AreaPiece]]:
    return finished.sums, finished.pieces


def _read_carry(saved: Path | None, last_ok: Path | None, rows: slice,
                cols: slice, site_folder: Path | None) -> Kept | Carry:
    """A chunk's :class:`~.chunkwise.Carry` from saved ``change.tif`` files (windows of
    them), or empty."""
    shape = (rows.stop - rows.start, cols.stop - cols.start)
    window = rasterio.windows.Window(cols.start, rows.start, shape[1], shape[0])
    radar = None
    if saved is None:
        state = DetectionState.empty(shape)
    else:
        with rasterio.open(saved) as src:
            bands = {name: src.read(i + 1, window=window)
                     for i, name in enumerate(CHANGE_BANDS)}
        state = DetectionState(bands["first_detected"].astype("int32"),
                               bands["confirmed"].astype("int32"),
                               bands["mapped_since"].astype("int32"),
                               bands["dug_share"].astype("float32"))
        # Radar's state where radar has looked (else none: the month runs as optical alone).
        if any(bands[b].any() for b in ("radar_streak", "radar_first", "radar_since")):
            radar = RadarState(bands["radar_streak"].astype("int16"),
                               bands["radar_first"].astype("int32"),
                               bands["radar_since"].astype("int32"))
    last_ok_new = np.zeros(shape, dtype=bool)
    if last_ok is not None:
        with rasterio.open(last_ok) as src:
            digging = src.read(CHANGE_BANDS.index("digging") + 1, window=window)
        last_ok_new = digging == DIGGING_NEW
    return keep(Carry(state, last_ok_new, radar), site_folder, "initial-carry", "chunk", rows,
                cols)


def _baseline_change(writer: ProductWriter, rows: slice, cols: slice, quality: MonthQuality,
                     baseline: Path, outline: Any, params: Any,
                     pixel_ha: float) -> dict[str, float]:
    """A baseline month's chunk of ``change.tif`` (an empty state); its area sums."""
    window = rasterio.windows.Window.from_slices(rows, cols)
    with rasterio.open(writer.folder / "composite.tif") as src:
        bands = {b: read_values(src, i, window)
                 for i, b in enumerate(REFLECTANCE_BANDS, start=1)}
    chunk = read_chunk_baseline(baseline, writer.grid, rows, cols, int(writer.month[5:7]),
                                outline)
    shape = chunk.inside.shape
    ring = Ring.empty(shape)
    done = finish(Advanced.before_detection(bands, params),
                  Carry(DetectionState.empty(shape), np.zeros(shape, bool)), chunk,
                  writer.month, True, np.zeros(1, bool), np.zeros(1, "int64"),
                  {"new": ring, "previous_new": ring}, params, pixel_ha,
                  (writer.grid, rows, cols))
    writer.write("change", rows, cols, done.layers["change"], quality, done.sums)
    return done.sums


__all__ = ["MonthOutcome", "Observing", "SiteMonths"]
