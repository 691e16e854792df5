"""Composes the stages per site and month.

Per site: the baseline months are composited and reduced to the :class:`~.detection.Baseline`
(``<site>/baseline.tif``, reused by later runs); each month after the baseline is searched,
loaded once, and turned into its composite and its per-scene evidence in one Dask computation;
the detection state advances and the month's products are written (docs/product.md §8). The state of a
month lives in its ``change.tif``, so a monthly run needs only the new month's scenes, the
previous month's ``change.tif`` and ``baseline.tif`` (months after the latest saved state are
computed on the way); rerunning a month gives identical products. Saved files carry a signature
of grid, baseline, source and parameters and are recomputed when it differs.
After all sites: ``timeseries.csv``, ``exports/disturbed-YYYY-MM.geojson`` and the manifest.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import dataclasses
import fcntl
import json
import logging
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import dask
import dask.array as da
import numpy as np
import rasterio
import xarray as xr
from dask.delayed import Delayed
from dask.task_spec import DataNode, List, Task, TaskRef

from . import __version__, timeseries
from .aoi import Site, load_site
from .atomic import PART_SUFFIX
from .blocks import row_blocks
from .change_bands import (
    CHANGE_BANDS,
    CHANGE_DESCRIPTIONS,
    DIGGING_CANDIDATE,
    DIGGING_NEW,
    DIGGING_NONE,
    DIGGING_PREEXISTING,
)
from .cluster import (
    compute,
    dask_context,
    lazy_array,
    release_worker_memory,
    worker_count,
    worker_threads,
)
from .composite import (
    COUNT_BAND,
    MonthQuality,
    MonthStatus,
    composite_of_reads,
    count_of_reads,
    median_of_reads,
    month_quality,
    monthly_composite,
)
from .config import DetectionConfig, PipelineConfig
from .detection import (
    EVIDENCE,
    Baseline,
    DetectionState,
    build_baseline,
    digging_signal,
    month_dug_share,
    month_label,
    observation_evidence,
    remove_small,
)
from .encoding import COUNT, INDEX, REFLECTANCE, read_values
from .errors import ConfigError, KpgeoError, LowCoverageWarning, SourceError
from .export import BackgroundWrites, write_cog, write_feature_collection
from .indices import INDEX_DESCRIPTIONS, INDEX_NAMES, compute_indices
from .manifest import Manifest
from .months import Month, MonthRange
from .polygons import (
    DiggingArea,
    digging_areas,
    dug_ground,
    new_digging_mask,
    preexisting_areas,
    write_geojson,
)
from .sources import READ_ERRORS, REFLECTANCE_BANDS, SceneSource, open_source
from .sources.base import ChunkedSource, ChunkReads
from .volume import write_volume_exports

log = logging.getLogger(__name__)



def resolve_sites(config: PipelineConfig, names: tuple[str, ...] = ()) -> list[Site]:
    """Load the configured sites (applying windows), optionally only those named.

    Raises
    ------
    AOIError, ConfigError
        On a bad site file or an unknown site name.
    """
    sites = []
    for entry in config.sites:
        site = load_site(entry.aoi)
        if entry.window is not None:
            site = site.window(entry.window.lon, entry.window.lat, entry.window.size_km)
        sites.append(site)
    if names:
        known = {s.name: s for s in sites}
        for name in names:
            if name not in known:
                raise ConfigError(
                    f"--site {name!r} is not a site of this pipeline; known sites: "
                    f"{', '.join(sorted(known)) or 'none'}."
                )
        sites = [known[n] for n in names]
    return sites


def detection_months(config: PipelineConfig) -> list[Month]:
    """Months after the baseline up to the last month asked for: the state passes each."""
    assert config.months is not None and config.baseline is not None
    return list(MonthRange(config.baseline.last + 1, config.months.last).months())


@dataclass
class SiteMonth:
    """What one site-month produced."""

    site: str
    month: str
    quality: MonthQuality
    scene_ids: list[str]
    seconds: float
    """Wall time from the month's start until its products are handed to the writer,
    including the wait for the previous month's products; the last month of a site also
    counts the wait for its own (after its progress line). Summed over the months after the
    baseline: their wall time (building the baseline counts in no month)."""
    outputs: list[Path] = field(default_factory=list)
    areas: dict[str, float] = field(default_factory=dict)
    digging_areas: list[DiggingArea] = field(default_factory=list)
    kept: bool = False
    """Done by an earlier run and kept (read back from its ``change.tif``), not computed."""

    def row(self) -> dict[str, Any]:
        return timeseries.row(self.site, self.month, self.quality.status, self.quality.scenes,
                              self.quality.valid_pct, self.areas)


# ---- reading and computing one month ------------------------------------------------------
@dataclass
class MonthData:
    """A month's composite (numpy) and, after the baseline, its per-scene evidence."""

    bands: dict[str, np.ndarray]
    count: np.ndarray
    quality: MonthQuality
    scene_ids: list[str]
    evidence: np.ndarray | None = None
    skipped: int = 0
    """Scenes of the month the source could not read after bounded retries (the month is
    computed again by the next run)."""


def _lazy_evidence(scenes: xr.Dataset, reference: np.ndarray, water_possible: np.ndarray,
                   config: PipelineConfig) -> Any:
    """Per-scene evidence codes ``(time, y, x)``, lazy when the scenes are; ``reference``:
    the season's reference layers (:meth:`~.reference.SeasonalReference.layers`)."""
    names = ("blue", "green", "red", "nir", "swir16")
    params = config.detection
    if scenes.sizes.get("time", 0) == 0:
        return np.zeros((0, *water_possible.shape), dtype="int8")

    def block(blue, green, red, nir, swir16, valid, possible, *layers):  # type: ignore[no-untyped-def]
        bands = dict(zip(names, (blue, green, red, nir, swir16), strict=True))
        return observation_evidence(bands, valid, np.stack(layers), possible, params)

    arrays = [scenes[b].data for b in names]
    valid = scenes["valid"].data
    if not isinstance(arrays[0], da.Array):
        return block(*arrays, valid, water_possible, *reference)
    chunks = arrays[0].chunks
    valid = valid.rechunk(chunks) if isinstance(valid, da.Array) else da.from_array(valid, chunks)
    pairs: list[Any] = []
    for arr in (*arrays, valid):
        pairs += [arr, "tyx"]
    for arr in (water_possible, *reference):
        pairs += [lazy_array(arr, chunks[1:]), "yx"]
    return da.blockwise(block, "tyx", *pairs, dtype="int8")


class LoadStopped(Exception):
    """A month loading ahead was stopped between chunks: the run no longer wants it."""


class MonthGate:
    """Held while a month computes a chunk (:func:`load_month`): months share ``slots``
    (how many compute at once), take them in month order (this one waits until the month
    before it has begun, or has ended without computing: :meth:`begin`), and none begins
    once ``stop`` is set.
    """

    def __init__(self, slots: threading.Semaphore, stop: threading.Event,
                 after: MonthGate | None = None) -> None:
        self._slots = slots
        self._stop = stop
        self._after = after
        self._begun = threading.Event()

    def begin(self) -> None:
        """Let the next month take its turn (also called when this month ends, however)."""
        self._begun.set()

    def __enter__(self) -> Self:
        while self._after is not None and not self._after._begun.wait(STOP_POLL_S):
            if self._stop.is_set():
                raise LoadStopped
        self._after = None  # its turn has come; the months before need not be kept
        self._slots.acquire()
        self.begin()
        if self._stop.is_set():
            self._slots.release()
            raise LoadStopped
        return self

    def __exit__(self, *exc: object) -> None:
        self._slots.release()


#: How often a month waiting for its turn checks whether the run still wants it.
STOP_POLL_S = 0.1


def load_month(source: SceneSource, site: Site, month: Month, config: PipelineConfig,
               baseline: Baseline | None = None, stop: threading.Event | None = None,
               pin: bool = False, gate: MonthGate | None = None) -> MonthData:
    """Search and load a month once; its composite and (given a baseline) its evidence.
    Once ``stop`` is set, the next chunk raises :class:`LoadStopped`; ``pin`` computes each
    chunk on one worker of a cluster (:func:`~.cluster.compute`); ``gate``, when given, is
    held while a chunk computes (the search and the task graph are made outside it).

    When a read fails, the source screens the month's scenes one by one and the month is
    computed again without those it skipped (docs/product.md §10); a month left with no usable scene is a
    gap (its quality says so; :meth:`SiteRun._loaded` warns). The rounds are bounded by
    ``source.read_attempts``.
    """
    items = source.search(site, MonthRange.single(month))
    possible = reference = None
    if baseline is not None:
        possible = baseline.new_water_possible(calendar_month(month),
                                               config.detection.water_buffer_m,
                                               abs(site.grid.resolution.x))
        reference = baseline.reference(calendar_month(month)).layers()
    failures = 0
    while True:
        try:
            bands, count, evidence = _compute_month(source, items, site, config, reference,
                                                    possible, stop, pin, gate)
            break
        except READ_ERRORS as exc:
            failures += 1
            screen = getattr(source, "screen", None)
            if screen is None or failures > config.source.read_attempts:
                raise SourceError(
                    f"{site.name} {month}: reading the scenes failed {failures} times, last: "
                    f"{exc}"
                ) from exc
            log.warning("%s %s: a read failed (%s); reading each scene alone", site.name,
                        month, exc)
            items = screen(items, site)
    # Scenes the source had to skip (recorded with their reason) were not used.
    records = [s for s in getattr(source, "skipped", [])
               if s.get("site") == site.name and s.get("month") == str(month)]
    skipped = {s.get("scene_id") for s in records}
    items = [i for i in items if i.id not in skipped]
    # Scenes that failed to read make the month worth another run; a scene the catalog lists
    # without an asset (no attempt made) stays incomplete, and would make it run forever.
    unread = sum(1 for s in records if s.get("attempts", 1) > 0)
    quality = month_quality(count, site.pixel_mask(), len(items), config.composite.min_valid_pct)
    return MonthData(bands, count, quality, [i.id for i in items], evidence, unread)


def _compute_month(source: SceneSource, items: list[Any], site: Site, config: PipelineConfig,
                   reference: np.ndarray | None, possible: np.ndarray | None,
                   stop: threading.Event | None = None, pin: bool = False,
                   gate: MonthGate | None = None,
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """A month's composite bands, valid-observation count and (given a baseline) evidence
    codes; chunk by chunk where the source reads by chunk (every scene is read once either
    way)."""
    if items and isinstance(source, ChunkedSource):
        return _compute_by_chunk(source.read_chunks(items, site), site, config, reference,
                                 possible, stop, pin, gate)
    scenes = source.load(items, site)
    composite = monthly_composite(scenes)
    evidence = None
    if reference is not None:
        assert possible is not None
        evidence = _lazy_evidence(scenes, reference, possible, config)
    with gate or contextlib.nullcontext():
        composite, evidence = compute(composite, evidence)
    release_worker_memory()
    return ({b: composite[b].values for b in REFLECTANCE_BANDS}, composite[COUNT_BAND].values,
            None if evidence is None else np.asarray(evidence))


def _compute_by_chunk(reads: ChunkReads, site: Site, config: PipelineConfig,
                      reference: np.ndarray | None, possible: np.ndarray | None,
                      stop: threading.Event | None = None, pin: bool = False,
                      gate: MonthGate | None = None,
                      ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """:func:`_compute_month` a chunk at a time: the workers then hold one chunk's scenes
    whatever order the scheduler picks, so their memory is bounded by the chunk size, not the
    site's. Plain tasks on the reads (the medians and count, the evidence of each overpass)
    cost the scheduler little: xarray's and dask.array's graph took 0.15 s a month to build."""
    shape = site.grid.shape.yx
    # A site of one chunk takes the chunk's arrays as they come (copying them cost 10 ms a
    # 601 px month); a larger one has them pasted into arrays of the site.
    whole = [(slice(0, shape[0]), slice(0, shape[1]))] == [
        (slice(*ys.indices(shape[0])[:2]), slice(*xs.indices(shape[1])[:2]))
        for ys, xs, _ in reads.chunks]
    if not whole:
        bands = {b: np.empty(shape, dtype="float32") for b in REFLECTANCE_BANDS}
        count = np.empty(shape, dtype="int16")
    codes = (None if reference is None or whole
             else np.empty((len(reads.times), *shape), dtype="int8"))
    # A task per band where the reads stay in one place (the local schedulers, or a month
    # pinned to a worker); unpinned on a cluster, the bands' tasks could each land on another
    # worker, which would then fetch every read of the chunk: one composite task there. A
    # month pinned to a worker of one thread gains nothing from tasks that could run side by
    # side: one task does the whole chunk, its reads included (the scheduler and the
    # client's messages for twenty tasks a month took a tenth of the demo year's CPU time).
    threads = worker_threads()
    fused = pin and bool(threads) and max(threads) == 1
    by_band = not fused and (pin or not threads)
    for ys, xs, parts in reads.chunks:
        if stop is not None and stop.is_set():
            raise LoadStopped
        detection = None
        if reference is not None:
            assert possible is not None
            detection = (reference[:, ys, xs], possible[ys, xs], config.detection)
        tasks = _chunk_tasks(parts, detection, by_band, fused)
        # One flat list of tasks: the progress bar's path computes collections, not lists.
        with gate or contextlib.nullcontext():
            computed = compute(*tasks, pin=pin)
        # The chunk's medians, count and evidence (time, y, x), whatever the tasks were.
        if fused:
            (medians, chunk_count, chunk_codes), = computed
        else:
            if by_band:
                n_bands = len(REFLECTANCE_BANDS)
                medians, chunk_count = computed[:n_bands], computed[n_bands]
                evidence = list(computed[n_bands + 1:])
            else:
                (medians, chunk_count), *evidence = computed
            chunk_codes = None if detection is None else np.stack(evidence)
        if whole:
            bands = dict(zip(REFLECTANCE_BANDS, medians, strict=True))
            count, codes = chunk_count, chunk_codes
            continue
        count[ys, xs] = chunk_count
        for band, values in zip(REFLECTANCE_BANDS, medians, strict=True):
            bands[band][ys, xs] = values
        if codes is not None:
            codes[:, ys, xs] = chunk_codes
    if len(reads.chunks) > 1:
        # The workers keep what their tasks freed for the next month's arrays, which then
        # need no new pages; a site of several chunks has them hold a chunk's worth, which
        # they give back (at full size, it is the difference between 3.6 and 3.2 GiB).
        release_worker_memory()
    return bands, count, codes


def _overpass_evidence(read: np.ndarray, reference: np.ndarray, possible: np.ndarray,
                       params: DetectionConfig) -> np.ndarray:
    """Evidence codes ``(y, x)`` of one overpass's read (see :class:`ChunkReads`), a block of
    rows at a time (:mod:`kpgeo.blocks`: twice as fast)."""
    codes = np.empty(read.shape[1:], dtype="int8")
    for rows in row_blocks(read.shape[-2], read.shape[-1]):
        bands = dict(zip(REFLECTANCE_BANDS, read[:, rows], strict=True))
        codes[rows] = observation_evidence(bands, np.isfinite(read[0, rows]),
                                           reference[:, rows], possible[rows], params)
    return codes


def _chunk_products(reads: Sequence[np.ndarray], *detection: Any,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The composite, valid count and (given the inputs of :func:`_overpass_evidence`) the
    evidence ``(time, y, x)`` of a chunk's reads, in one task."""
    medians, count = composite_of_reads(reads)
    if not detection:
        return medians, count, None
    return medians, count, np.stack([_overpass_evidence(read, *detection) for read in reads])


def _chunk_tasks(parts: list[Delayed],
                 detection: tuple[np.ndarray, np.ndarray, DetectionConfig] | None,
                 by_band: bool = True, fused: bool = False) -> list[Delayed]:
    """A chunk's tasks on its reads: the median of each band and the valid count (``by_band``)
    or one composite task of both, then, given the season's reference layers, where new
    water may be and the parameters, the evidence of each overpass; ``fused``: one task of all
    of it, the reads within it (:func:`_chunk_products`).

    One graph of dask's task specification, its tasks named from what they are made of (the
    reads' keys name their files, grid and settings). Made by ``dask.delayed`` calls, it took
    25 ms a month in the loading thread, holding the GIL: dask optimises every collection
    passed to a call and tokenizes every argument.
    """
    graph: dict[str, Any] = {}
    chunk = dask.base.tokenize([part.key for part in parts])
    if fused:
        # The reads' tasks nested in this one run within it (dask's task specification).
        key = f"chunk-products-{dask.base.tokenize(chunk, detection)}"
        graph[key] = Task(key, _chunk_products, List(*(part.dask[part.key] for part in parts)),
                          *(detection or ()))
        return [Delayed(key, graph)]
    for part in parts:
        graph.update(part.dask)
    reads = List(*(TaskRef(part.key) for part in parts))
    if by_band:
        keys = [f"median-of-reads-{chunk}-{i}" for i in range(len(REFLECTANCE_BANDS))]
        for i, key in enumerate(keys):
            graph[key] = Task(key, median_of_reads, reads, i)
        keys.append(f"count-of-reads-{chunk}")
        graph[keys[-1]] = Task(keys[-1], count_of_reads, reads)
    else:
        keys = [f"composite-of-reads-{chunk}"]
        graph[keys[0]] = Task(keys[0], composite_of_reads, reads)
    if detection is not None:
        inputs = [f"evidence-input-{dask.base.tokenize(value)}" for value in detection]
        for key, value in zip(inputs, detection, strict=True):
            graph[key] = DataNode(key, value)
        name = dask.base.tokenize(chunk, inputs)
        for t, part in enumerate(parts):
            keys.append(f"overpass-evidence-{name}-{t}")
            graph[keys[-1]] = Task(keys[-1], _overpass_evidence, TaskRef(part.key),
                                   *(TaskRef(key) for key in inputs))
    return [Delayed(key, graph) for key in keys]


def calendar_month(month: Month) -> int:
    """1 (January) to 12 (December)."""
    return int(str(month)[5:7])


def read_composite(path: Path) -> tuple[dict[str, np.ndarray], MonthQuality]:
    """Bands and quality of a written ``composite.tif``."""
    with rasterio.open(path) as src:
        bands = {b: read_values(src, i) for i, b in enumerate(REFLECTANCE_BANDS, start=1)}
        tags = src.tags()
    return bands, quality_from_tags(tags)


def quality_from_tags(tags: Mapping[str, str]) -> MonthQuality:
    """The :class:`MonthQuality` a product's tags record (see :func:`_grid_tags`)."""
    status: MonthStatus = "ok" if tags.get("status") == "ok" else "gap"
    return MonthQuality(status, int(tags.get("scenes", 0)), float(tags.get("valid_pct", 0.0)))


# ---- writing one month -----------------------------------------------------------------------
def _grid_tags(site: Site, month: Month, quality: MonthQuality) -> dict[str, Any]:
    return {"site": site.name, "month": str(month), "status": quality.status,
            "scenes": quality.scenes, "valid_pct": quality.valid_pct}


def write_composite(folder: Path, site: Site, month: Month, data: MonthData) -> Path:
    # Reflectance as Sentinel-2 L2A stores it; the count's 0 (no valid observation) is also
    # the nodata of every band.
    return write_cog(
        folder / "composite.tif", [*(data.bands[b] for b in REFLECTANCE_BANDS), data.count],
        site.grid, descriptions=[*REFLECTANCE_BANDS, COUNT_BAND],
        encoding=[REFLECTANCE] * len(REFLECTANCE_BANDS) + [COUNT],
        tags={**_grid_tags(site, month, data.quality), "skipped_scenes": data.skipped,
              "units": "surface reflectance (bands 1-6: DN * scale + offset, as in Sentinel-2 "
                       "L2A), valid observations (band 7)"},
    )


def write_indices(folder: Path, site: Site, month: Month, values: Mapping[str, np.ndarray],
                  quality: MonthQuality) -> Path:
    return write_cog(
        folder / "indices.tif", [values[n] for n in INDEX_NAMES], site.grid,
        descriptions=[INDEX_DESCRIPTIONS[n] for n in INDEX_NAMES],
        encoding=[INDEX] * len(INDEX_NAMES),
        tags={**_grid_tags(site, month, quality), "indices": ",".join(INDEX_NAMES)},
    )


def write_change(folder: Path, site: Site, month: Month, month_ndvi: np.ndarray,
                 quality: MonthQuality, baseline: Baseline, state: DetectionState,
                 new: np.ndarray, evidence: np.ndarray | None, config: PipelineConfig,
                 areas: Mapping[str, float]) -> Path:
    floor = baseline.reference(calendar_month(month)).ndvi_floor
    with np.errstate(invalid="ignore"):
        # Against the same season where the baseline saw the pixel then, else its driest state.
        score = np.where(np.isfinite(floor), floor, baseline.land_ndvi_min) - month_ndvi
    hits = (np.zeros(score.shape, "float32") if evidence is None or len(evidence) == 0
            else np.sum(evidence == EVIDENCE, axis=0, dtype="float32"))
    digging = np.full(score.shape, DIGGING_NONE, dtype="float32")
    # copyto, not digging[mask] = ...: boolean indexing is several times slower
    for where, value in ((state.candidate, DIGGING_CANDIDATE), (new, DIGGING_NEW),
                         (baseline.preexisting, DIGGING_PREEXISTING)):
        np.copyto(digging, np.float32(value), where=where)
    assert state.mapped_since is not None and state.dug_share is not None
    layers = [score.astype("float32", copy=False), hits, state.first_detected.astype("float32"),
              state.confirmed.astype("float32"), state.mapped_since.astype("float32"), digging,
              state.dug_share.astype("float32")]
    return write_cog(
        folder / "change.tif", layers, site.grid, descriptions=CHANGE_DESCRIPTIONS, nodata=None,
        resampling="nearest", predictor=False,
        tags={**_grid_tags(site, month, quality), SIGNATURE_TAG: signature(site, config),
              AREAS_TAG: json.dumps(dict(areas), sort_keys=True)},
    )


#: Months loaded ahead of the one the pipeline works on, for a site of one chunk: two keep
#: the workers busy while it waits for a month's writes (with one, they idled for part of
#: every month). A larger site loads one ahead: its months take long enough, and each holds
#: hundreds of MB (a full-size Tortiya month's composite and evidence: 0.35 GB).
LOAD_AHEAD = 2
#: Lock file of an output folder while a run writes it.
LOCK_NAME = ".kpgeo.lock"
#: What a finished site-month folder holds.
MONTH_PRODUCTS = ("composite.tif", "indices.tif", "change.tif", "disturbed.geojson")
#: Version of the detection method and of its saved state: a baseline or state saved by
#: another version is recomputed.
METHOD_VERSION = 3
#: Tag of ``baseline.tif`` and ``change.tif`` that records what made them.
SIGNATURE_TAG = "kpgeo_signature"
#: Tag of ``change.tif`` with the month's time-series areas (a kept month's row comes from it).
AREAS_TAG = "kpgeo_areas"


def signature(site: Site, config: PipelineConfig) -> str:
    """What a saved baseline or state depends on: grid, baseline, source and parameters.

    A saved file whose signature differs (another window, threshold, mask or catalog) is
    recomputed rather than reused.
    """
    grid = site.grid
    return json.dumps({
        "method": METHOD_VERSION,
        "crs": str(grid.crs), "transform": list(grid.affine)[:6], "shape": list(grid.shape.yx),
        "baseline": str(config.baseline),
        "source": [config.source.kind, config.source.catalog, config.source.collection,
                   config.source.sh_base_url, config.source.sh_use_clm],
        "detection": dataclasses.asdict(config.detection),
        "mask": {k: list(v) if isinstance(v, tuple) else v
                 for k, v in dataclasses.asdict(config.mask).items()},
        "min_valid_pct": config.composite.min_valid_pct,
    }, sort_keys=True)


@dataclass(frozen=True)
class SavedMonth:
    """What a month's ``change.tif`` holds for the next month."""

    state: DetectionState
    quality: MonthQuality
    new: np.ndarray
    """Mapped new digging of that month."""
    areas: dict[str, float]
    """Its time-series areas."""

    @property
    def status(self) -> str:
        return self.quality.status


def read_saved_month(path: Path, expected_signature: str) -> SavedMonth | None:
    """The state in a month's ``change.tif``; None if missing or made otherwise."""
    if not path.is_file():
        return None
    with rasterio.open(path) as src:
        tags = src.tags()
        if tags.get(SIGNATURE_TAG) != expected_signature or AREAS_TAG not in tags:
            return None
        bands = {name: src.read(i + 1) for i, name in enumerate(CHANGE_BANDS)}
    state = DetectionState(bands["first_detected"].astype("int32"),
                           bands["confirmed"].astype("int32"),
                           bands["mapped_since"].astype("int32"),
                           bands["dug_share"].astype("float32"))
    return SavedMonth(state, quality_from_tags(tags), bands["digging"] == DIGGING_NEW,
                      json.loads(tags[AREAS_TAG]))


def _foreign_member(config: PipelineConfig, month: str,
                    sites: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``kpgeo`` member of GeoJSON products: provenance, no timestamps (reruns match)."""
    return {
        "month": month,
        "software": f"kpgeo {__version__}",
        "source": {"kind": config.source.kind, "catalog": config.source.catalog,
                   "collection": config.source.collection},
        "baseline": str(config.baseline),
        "sites": {name: dict(sites[name]) for name in sorted(sites)},
        "parameters": {"detection": dataclasses.asdict(config.detection),
                       "mask": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in dataclasses.asdict(config.mask).items()},
                       "min_valid_pct": config.composite.min_valid_pct},
    }


def _areas_ha(site: Site, preexisting: np.ndarray, new: np.ndarray, previous_new: np.ndarray,
              bands: Mapping[str, np.ndarray], indices: Mapping[str, np.ndarray],
              config: PipelineConfig, share_now: np.ndarray | None = None,
              state: DetectionState | None = None,
              month: Month | None = None) -> dict[str, float]:
    """The month's time-series areas; ``share_now``: this month's dug share of each pixel
    (active ground); ``state`` and ``month``: the detection state after the month (its dug
    shares and confirmations give the dug-share areas)."""
    pixel_ha = abs(site.grid.resolution.x) ** 2 / 1e4
    fresh, water = digging_signal(bands, config.detection, indices, share_now)
    digging = preexisting | new
    if state is None or state.dug_share is None or month is None:
        dug = np.zeros(new.shape, "float32")
        ground = previous_ground = new
    else:
        dug = state.dug_share
        confirmed = state.confirmed > 0
        ground = dug_ground(new, confirmed, preexisting)
        before = confirmed & (state.confirmed < month_label(month))
        previous_ground = dug_ground(previous_new, before, preexisting)
    return {
        "preexisting_ha": float(preexisting.sum()) * pixel_ha,
        "new_ha": float((new & ~previous_new).sum()) * pixel_ha,
        "cumulative_new_ha": float(new.sum()) * pixel_ha,
        "active_ha": float((digging & fresh).sum()) * pixel_ha,
        "water_ha": float((digging & water).sum()) * pixel_ha,
        "new_dug_ha": float(np.nansum(dug[ground & ~previous_ground])) * pixel_ha,
        "cumulative_new_dug_ha": float(np.nansum(dug[ground])) * pixel_ha,
    }


# ---- one site --------------------------------------------------------------------------------
@dataclass
class SiteRun:
    """Runs one site through the baseline and the months asked for."""

    source: SceneSource
    site: Site
    config: PipelineConfig
    progress: Callable[[str], None]
    results: list[SiteMonth] = field(default_factory=list)
    _from_scratch: bool = False
    """The baseline was (re)built by this run: no saved state after it is reused."""
    _writes: BackgroundWrites = field(default_factory=BackgroundWrites)
    """A month's products are written while the next month computes."""
    _preexisting: tuple[np.ndarray, list[DiggingArea]] | None = None
    """The baseline's pre-existing mask and its digging areas."""

    @property
    def folder(self) -> Path:
        return self.config.out_dir / self.site.name

    def _report(self, result: SiteMonth, what: str) -> None:
        q = result.quality
        areas = result.areas
        found = (f", {areas['cumulative_new_ha']:.2f} ha new digging in all"
                 if areas and q.status == "ok" else "")
        self.progress(f"{self.site.name} {result.month}: {what}{q.status}, {q.scenes} scenes, "
                      f"{q.valid_pct:.1f}% valid{found} ({result.seconds:.1f} s)")

    def run(self) -> list[SiteMonth]:
        try:
            self._run()
            waited = self._writes.wait()
        finally:
            self._writes.close()  # no write may outlive the run's lock
        computed = [r for r in self.results if not r.kept]
        if computed:  # the last month's products are part of its time
            computed[-1].seconds += waited
        return self.results

    def _run(self) -> None:
        config = self.config
        assert config.baseline is not None and config.months is not None
        requested = set(config.months.months())
        baseline_requested = [m for m in config.baseline.months() if m in requested]
        # --overwrite recomputes the months asked for: the baseline only if they include it.
        baseline = (None if config.overwrite and baseline_requested
                    else self._read_baseline())
        if baseline is not None and not config.overwrite:
            # Site-months already done are not recomputed (docs/product.md §9). A baseline month that is
            # not done (an interrupted run, skipped scenes) changes the baseline itself: it is
            # rebuilt below, with the products of every baseline month.
            saved_months = {m: self._saved_if_done(m) for m in baseline_requested}
            if all(saved is not None for saved in saved_months.values()):
                for month, saved in saved_months.items():
                    assert saved is not None
                    self._keep(month, saved)
                baseline_requested = []
            else:
                baseline = None
        if baseline is None:
            # Baseline months with products from an earlier run get them anew, from this baseline.
            baseline_requested = [m for m in config.baseline.months() if m in requested
                                  or (self.folder / str(m) / "change.tif").is_file()]
            baseline = self._run_baseline(baseline_requested)
            # Every saved state was made from the old baseline: detection starts afresh.
            self._from_scratch = True
        self._run_detection(baseline, requested)

    # -- baseline
    def _baseline_path(self) -> Path:
        return self.folder / "baseline.tif"

    def _read_baseline(self) -> Baseline | None:
        """``baseline.tif`` if it was made for this grid, baseline, source and parameters."""
        path = self._baseline_path()
        if not path.is_file():
            return None
        with rasterio.open(path) as src:
            if src.tags().get(SIGNATURE_TAG) != signature(self.site, self.config):
                return None
            return Baseline.from_stack(src.read(), src.descriptions)

    def _run_baseline(self, requested: list[Month]) -> Baseline:
        """Composite every baseline month and build the baseline from them, then the
        products of the baseline months asked for."""
        config = self.config
        assert config.baseline is not None
        months = list(config.baseline.months())
        done: dict[Month, SiteMonth] = {}
        started = time.perf_counter()
        for month, data in self._loaded(months, None):
            outputs = self._write_month(month, data, compute_indices(data.bands))
            done[month] = SiteMonth(self.site.name, str(month), data.quality, data.scene_ids,
                                    time.perf_counter() - started, outputs)
            started = time.perf_counter()
            self._report(done[month], "baseline, ")
        self._writes.wait()  # the baseline is built from the written composites
        valid = [m for m in months if done[m].quality.status == "ok"]
        if not valid:
            raise KpgeoError(
                f"{self.site.name}: no month of the baseline {config.baseline} has enough "
                f"valid observations (min_valid_pct = {config.composite.min_valid_pct}); "
                "choose a longer or drier baseline."
            )
        composites = (read_composite(self.folder / str(m) / "composite.tif")[0]
                      for m in valid)
        baseline = build_baseline(composites, config.detection,
                                  abs(self.site.grid.resolution.x),
                                  months=[calendar_month(m) for m in valid])
        # Clip to the site, then apply the mapping unit to what is left inside.
        inside = self.site.pixel_mask()
        preexisting = remove_small(baseline.preexisting & inside,
                                   config.detection.min_area_ha,
                                   abs(self.site.grid.resolution.x))
        baseline = dataclasses.replace(baseline, preexisting=preexisting)
        layers, names = baseline.stack()
        write_cog(self._baseline_path(), layers, self.site.grid, descriptions=names,
                  tags={SIGNATURE_TAG: signature(self.site, config)})
        for month in months:
            if month not in requested:
                self.results.append(done[month])
        empty = DetectionState.empty(self.site.grid.shape.yx)
        none = np.zeros(self.site.grid.shape.yx, dtype=bool)
        for month in requested:
            result = done[month]
            bands, _ = read_composite(self.folder / str(month) / "composite.tif")
            self._finish_month(result, month, bands, compute_indices(bands), baseline, empty,
                               none, none, None)
        return baseline

    # -- after the baseline
    def _run_detection(self, baseline: Baseline, requested: set[Month]) -> None:
        """Advance the state through the months after the baseline up to the last one asked
        for, starting from the latest saved state before the first one asked for."""
        config = self.config
        months = detection_months(config)
        wanted = [i for i, m in enumerate(months) if m in requested]
        if not wanted:
            return
        pixel_m = abs(self.site.grid.resolution.x)
        inside = self.site.pixel_mask()
        exclude = baseline.dug_at_end | ~inside
        shape = self.site.grid.shape.yx
        expected = signature(self.site, config)
        state = DetectionState.empty(shape)
        last_ok_new = np.zeros(shape, dtype=bool)  # areas of the new_ha difference
        start = 0
        # The latest saved state before the first month asked for is reused (--overwrite too).
        for i in range(wanted[0] - 1, -1, -1):
            if self._from_scratch:
                break
            saved = read_saved_month(self.folder / str(months[i]) / "change.tif", expected)
            if saved is not None:
                state, start = saved.state, i + 1
                last_ok_new = self._last_ok_new(months[:i + 1], expected)
                break
        # Once a month is computed, the saved states after it are out of date: every later
        # month up to the last one asked for is computed too.
        todo = months[start:wanted[-1] + 1]
        kept = 0
        for month in todo:
            saved = (None if config.overwrite or self._from_scratch
                     else self._saved_if_done(month))
            if saved is None:
                break
            self._keep(month, saved)
            state = saved.state
            if saved.status == "ok":
                last_ok_new = saved.new
            kept += 1
        started = time.perf_counter()
        for month, data in self._loaded(todo[kept:], baseline):
            assert data.evidence is not None
            state = state.advance(data.evidence, month, exclude=exclude)
            # The dug share of this month's composite against each pixel's own vegetation state.
            share_now = month_dug_share(data.bands, baseline, calendar_month(month),
                                        config.detection)
            state = state.measured(share_now)
            new = new_digging_mask(state, baseline.preexisting, config.detection.min_area_ha,
                                   pixel_m, config.detection.footprint_share_min) & inside
            state = state.mapped(new, month)
            # The month's indices, computed once: for its indices.tif, the change score and
            # the areas' signal alike.
            indices = compute_indices(data.bands)
            outputs = self._write_month(month, data, indices)
            result = SiteMonth(self.site.name, str(month), data.quality, data.scene_ids,
                               0.0, outputs)
            self._finish_month(result, month, data.bands, indices, baseline, state, new,
                               last_ok_new, data.evidence, share_now)
            if data.quality.status == "ok":
                last_ok_new = new
            # From the end of the previous month's work: the months' seconds add up to their
            # wall time, though each month loads while the one before it finishes.
            result.seconds = time.perf_counter() - started
            started = time.perf_counter()
            self._report(result, "")

    def _loaded(self, months: Sequence[Month], baseline: Baseline | None,
                ) -> Iterator[tuple[Month, MonthData]]:
        """:func:`load_month` of each month in turn, loaded ahead in a background thread
        while the caller works on earlier ones (state, polygons, products; waiting for their
        writes), so that the Dask workers are not left idle meanwhile. Up to
        :data:`LOAD_AHEAD` months are loaded or loading beyond the one the caller holds
        (one for a site larger than a chunk).

        On a cluster, months of a one-chunk site compute two at a time, each on a worker of
        its own (``pin``): a month's reads all feed its composite, and spread over two worker
        processes, about half of them crossed from one to the other. On the local schedulers
        one month computes at a time (a second beside it added more CPU time than it saved),
        while the next one is searched and its task graph made: done between two months'
        computes, that left the workers idle for a tenth of the time.
        """
        last_gate: MonthGate | None = None

        def load(month: Month) -> Future[MonthData]:
            nonlocal last_gate
            gate = last_gate = MonthGate(slots, stop, after=last_gate)

            def run() -> MonthData:
                try:
                    return load_month(self.source, self.site, month, self.config, baseline,
                                      stop, together > 1, gate)
                finally:
                    gate.begin()  # a month that failed or had nothing to compute

            # In a copy of this context: the progress bar's setting is a context variable.
            return pool.submit(contextvars.copy_context().run, run)

        stop = threading.Event()
        one_chunk = max(self.site.grid.shape.yx) <= self.config.composite.chunk_px
        ahead = LOAD_AHEAD if one_chunk else 1
        together = max(1, min(worker_count(), ahead)) if one_chunk else 1
        slots = threading.Semaphore(together)  # months computing at once
        with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="kpgeo-load") as pool:
            pending = collections.deque(load(m) for m in months[:ahead])
            try:
                for i, month in enumerate(months):
                    data = pending.popleft().result()
                    if i + ahead < len(months):
                        pending.append(load(months[i + ahead]))
                    quality = data.quality
                    if quality.status == "gap":  # warned here, in the run's thread
                        warnings.warn(
                            f"{self.site.name} {month}: only {quality.valid_pct:.1f}% of the "
                            f"site has a valid observation ({quality.scenes} scenes); the "
                            "month is a gap.", LowCoverageWarning, stacklevel=2)
                    yield month, data
            finally:
                # A run failing here starts no other month, and those loading stop at their
                # next chunk or turn to compute (the pool's exit waits for them).
                stop.set()
                for future in pending:
                    future.cancel()


    def _write_month(self, month: Month, data: MonthData,
                     indices: Mapping[str, np.ndarray]) -> list[Path]:
        """Hand a month's composite and indices to the writer, once the previous month's
        products are written (at most one month in flight)."""
        self._writes.wait()
        folder = self.folder / str(month)
        self._writes.submit(write_composite, folder, self.site, month, data)
        self._writes.submit(write_indices, folder, self.site, month, indices, data.quality)
        return [folder / "composite.tif", folder / "indices.tif"]

    def _keep(self, month: Month, saved: SavedMonth) -> None:
        """Keep a month done by an earlier run: its result feeds the shared products (time
        series, exports), which an interrupted run may not have written."""
        self.results.append(SiteMonth(self.site.name, str(month), saved.quality, [], 0.0,
                                      areas=saved.areas, kept=True))
        self.progress(f"{self.site.name} {month}: done already, kept")

    def _saved_if_done(self, month: Month) -> SavedMonth | None:
        """The saved state of a site-month whose every product is there and whose state was
        made as this run would make it; None if it must be computed."""
        folder = self.folder / str(month)
        if not all((folder / name).is_file() for name in MONTH_PRODUCTS):
            return None
        with rasterio.open(folder / "composite.tif") as src:
            if int(src.tags().get("skipped_scenes", 0)):
                return None  # retried on the next run (cached responses make that cheap)
        return read_saved_month(folder / "change.tif", signature(self.site, self.config))

    def _last_ok_new(self, months: list[Month], expected: str) -> np.ndarray:
        """Mapped new digging of the latest saved month that was not a gap: a gap month's new
        digging is counted in the next valid month's ``new_ha``."""
        for month in reversed(months):
            saved = read_saved_month(self.folder / str(month) / "change.tif", expected)
            if saved is not None and saved.status == "ok":
                return saved.new
        return np.zeros(self.site.grid.shape.yx, dtype=bool)

    def _finish_month(self, result: SiteMonth, month: Month, bands: Mapping[str, np.ndarray],
                      indices: Mapping[str, np.ndarray], baseline: Baseline,
                      state: DetectionState, new: np.ndarray, previous_new: np.ndarray,
                      evidence: np.ndarray | None, share_now: np.ndarray | None = None) -> None:
        """change.tif, disturbed.geojson and the time-series areas of one site-month."""
        config = self.config
        folder = self.folder / str(month)
        result.areas = _areas_ha(self.site, baseline.preexisting, new, previous_new, bands,
                                 indices, config, share_now, state, month)
        self._writes.submit(write_change, folder, self.site, month, indices["ndvi"],
                            result.quality,
                            baseline, state, new, evidence, config, result.areas)
        result.outputs.append(folder / "change.tif")
        if self._preexisting is None or self._preexisting[0] is not baseline.preexisting:
            # The same every month of a baseline: polygonized (and turned into GeoJSON) once.
            self._preexisting = (baseline.preexisting, preexisting_areas(
                self.site.name, self.site.grid, baseline.preexisting))
        result.digging_areas = digging_areas(self.site.name, self.site.grid,
                                             self._preexisting[1], new, state)
        foreign = _foreign_member(config, str(month), {self.site.name: {
            "status": result.quality.status, "scene_ids": result.scene_ids}})
        path = folder / "disturbed.geojson"
        self._writes.submit(write_geojson, path, result.digging_areas,
                            {self.site.name: self.site.crs}, foreign)
        result.outputs.append(path)
        self.results.append(result)


# ---- the run ---------------------------------------------------------------------------------
@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Keep two runs out of one output folder (docs/product.md §10); the lock ends with the process."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / LOCK_NAME, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KpgeoError(
                f"another kpgeo run is writing {out_dir}; wait for it to finish or give "
                "another --out."
            ) from None
        # Half-written products of an interrupted run (never renamed into place) go now.
        for leftover in out_dir.rglob(f".*{PART_SUFFIX}*"):
            leftover.unlink(missing_ok=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_exports(config: PipelineConfig, site_names: list[str], months: list[str]) -> list[Path]:
    """``exports/disturbed-YYYY-MM.geojson``: every site's digging areas of each month.

    Built from the per-site ``disturbed.geojson`` files, so sites run separately still end up
    in one file per month.
    """
    out = []
    for month in months:
        features: list[dict[str, Any]] = []
        sites: dict[str, Any] = {}
        for name in site_names:
            path = config.out_dir / name / month / "disturbed.geojson"
            if not path.is_file():
                continue
            doc = json.loads(path.read_text(encoding="utf-8"))
            features += doc["features"]
            sites.update(doc["kpgeo"]["sites"])
        if not sites:
            continue
        doc = {"type": "FeatureCollection", "kpgeo": _foreign_member(config, month, sites),
               "features": features}
        out.append(write_feature_collection(
            config.out_dir / "exports" / f"disturbed-{month}.geojson", doc))
    return out


def write_pages(config: PipelineConfig, sites: list[Site], results: list[SiteMonth],
                all_sites: list[Site], progress: Callable[[str], None]) -> list[Path]:
    """The month maps of the site-months written (and their neighbours' links), then
    ``index.html`` over every site of the pipeline."""
    from .index_page import write_index
    from .maps import write_site_maps

    assert config.baseline is not None
    baseline = [str(m) for m in config.baseline.months()]
    pages: list[Path] = []
    for site in sites:
        # Months computed now, plus neighbours (their links) and any month missing its map.
        months = sorted({r.month for r in results if r.site == site.name and r.areas})
        pages += write_site_maps(config.out_dir, site.name, site.title, baseline, months,
                                 offline=config.offline)
    index = write_index(config.out_dir, [(s.name, s.title) for s in all_sites],
                        offline=config.offline)
    progress(f"{len(pages)} maps; index: {index}")
    return [*pages, index]


def run(config: PipelineConfig, *, site_names: tuple[str, ...] = (),
        progress: Callable[[str], None] = log.info,
        progress_bar: bool = False) -> list[SiteMonth]:
    """Run the pipeline for every site and month asked for, then write the shared products.

    ``progress`` receives a line per site-month; ``progress_bar`` draws the Dask progress of
    each month's computation on stderr (a terminal's; one bar per chunk of a month where the
    site has several).

    Returns
    -------
    list of SiteMonth
        One entry per site-month computed, in processing order.
    """
    sites = resolve_sites(config, site_names)
    all_sites = resolve_sites(config) if site_names else sites
    all_names = [s.name for s in all_sites]
    out_dir = config.out_dir
    source = open_source(config)
    manifest = Manifest(config=config.to_dict())
    results: list[SiteMonth] = []  # computed by this run
    covered: list[SiteMonth] = []  # computed or kept
    with output_lock(out_dir):
        status = "failed"
        try:
            with dask_context(config.scheduler, config.workers,
                              progress=progress_bar) as where:
                progress(f"computing on the {where}")
                for site in sites:
                    site_results = SiteRun(source, site, config, progress).run()
                    covered += site_results
                    computed = [r for r in site_results if not r.kept]
                    results += computed
                    for r in computed:
                        manifest.outputs.extend(r.outputs)
                        manifest.site_months.append({
                            "site": r.site, "month": r.month, "status": r.quality.status,
                            "scenes": r.quality.scenes, "valid_pct": r.quality.valid_pct,
                            "scene_ids": r.scene_ids, "seconds": round(r.seconds, 2),
                        })
            # Every month written is indexed, also those computed on the way to the ones asked,
            # and those kept: a run killed before this point never wrote their rows.
            written = sorted({r.month for r in covered if r.areas})
            series = timeseries.merge(out_dir / "timeseries.csv",
                                      [r.row() for r in covered if r.areas])
            manifest.outputs.append(series)
            exports = write_exports(config, all_names, written)
            exports += write_volume_exports(out_dir, timeseries.read(series), written,
                                            config.volume)
            manifest.outputs.extend(exports)
            progress(f"timeseries: {series}; {len(exports)} monthly exports")
            manifest.outputs.extend(write_pages(config, sites, results, all_sites, progress))
            status = "ok"
        finally:
            manifest.skipped_scenes.extend(getattr(source, "skipped", []))
            manifest.retries.extend(getattr(source, "retries", []))
            if results or status == "ok":
                path = manifest.write(out_dir, status=status)
                progress(f"manifest: {path}")
    return results
