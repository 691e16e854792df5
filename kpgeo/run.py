"""Composes the stages per site and month.

Per site: the baseline months are composited and reduced to the :class:`~.detection.Baseline`
(``<site>/baseline.tif``, reused by later runs); each month after the baseline is searched,
loaded once, and turned into its composite and its per-scene evidence in one Dask computation;
the detection state advances and the month's products are written (docs/product.md §8). The state of a
month lives in its ``change.tif``, so a monthly run needs only the new month's scenes, the
previous month's ``change.tif`` and ``baseline.tif`` (months after the latest saved state are
computed on the way); rerunning a month gives identical products. Saved files carry a signature
of grid, baseline, source and parameters, and each folder a record of its products' sizes and
SHA-256 (:mod:`kpgeo.saved`): they are used only when both match, and recomputed otherwise
(a damaged one reported). A gap month's
``disturbed.geojson`` carries the digging areas as last measured (:mod:`kpgeo.products.measured`).
After all sites: ``timeseries.csv``, ``exports/disturbed-YYYY-MM.geojson``, the pages,
``catalog.json`` and the manifest.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import fcntl
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import rasterio
import rasterio.windows

from . import __version__
from .aoi import Site, load_site
from .compute import baseline_graph
from .compute.cluster import check_workers_see, compute, dask_context
from .compute.kept import forget
from .compute.month_graph import MonthOutcome, Observing, SiteMonths
from .config import PipelineConfig
from .errors import ConfigError, KpgeoError
from .methods.baseline_seasons import BaselineCoverage
from .methods.composite import MEASURED, MonthQuality
from .methods.polygons import (
    AreaPiece,
    DiggingArea,
    feature_collection,
    merge_pieces,
    preexisting_areas,
)
from .months import Month, MonthRange, parse_month
from .out_folder import LOCK_NAME, check_out_folder, write_failed
from .products import timeseries
from .products.atomic import PART_SUFFIX
from .products.encoding import read_values
from .products.export import (
    BackgroundWrites,
    write_feature_collection,
    write_volume_exports,
)
from .products.manifest import Manifest
from .products.measured import carried, read_measured, status_member
from .products.product_tags import SIGNATURE_TAG, quality_from_tags
from .products.synthetic_label import collection_name, source_kind
from .products.tiles import TILES_FOLDER, remove_tiles
from .saved import MONTH_PRODUCTS, SavedMonth, SiteFolder
from .sources import (
    REFLECTANCE_BANDS,
    RadarSource,
    SceneSource,
    open_radar_source,
    open_source,
)
from .sources.synthetic import reads_synthetic

log = logging.getLogger(__name__)



def resolve_sites(config: PipelineConfig, names: tuple[str, ...] = ()) -> list[Site]:
    """Load the configured sites (applying windows), optionally only those named.

    Raises
    ------
    AOIError, ConfigError
        On a bad site file or an unknown site name.
    """
    sites: list[Site] = []
    for entry in config.sites:
        site = load_site(entry.aoi)
        if entry.window is not None:
            site = site.window(entry.window.lon, entry.window.lat, entry.window.size_km)
        # A site's name is its folder and its rows: two of one name would overwrite each
        # other's products and count twice in the exports.
        twin = next((s for s in sites if s.name == site.name), None)
        if twin is not None:
            raise ConfigError(
                f"sites {twin.path!r} and {site.path!r} are both named {site.name!r} (the "
                "folder and export name); list each site once, or give them different "
                "'name' properties."
            )
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

    def row(self, kind: str = "") -> dict[str, Any]:
        """Its ``timeseries.csv`` row; ``kind``: its ``source_kind`` column."""
        return timeseries.row(self.site, self.month, self.quality.status, self.quality.scenes,
                              self.quality.valid_pct, self.areas, kind)

def calendar_month(month: Month | str) -> int:
    """1 (January) to 12 (December)."""
    return int(str(month)[5:7])


def read_composite(path: Path) -> tuple[dict[str, np.ndarray], MonthQuality]:
    """Bands and quality of a written ``composite.tif``."""
    with rasterio.open(path) as src:
        bands = {b: read_values(src, i) for i, b in enumerate(REFLECTANCE_BANDS, start=1)}
        tags = src.tags()
    return bands, quality_from_tags(tags)


#: Months observed ahead of the one being finished, for a site of one chunk
#: (:meth:`SiteRun._observed`).
MONTHS_AHEAD = 2
#: Months handed to the writer thread and not completed yet, at most.
MONTHS_COMPLETING = 2
#: Version of the detection method and of its saved state: a baseline or state saved by
#: another version is recomputed (5: digging areas carry ``new_ha_this_month`` and
#: ``measured_month``, and a gap month the areas as last measured; 6: ``baseline.tif`` keeps
#: the seasons the baseline saw each pixel in, and the site's coverage; 7: ``change.tif``
#: carries radar's state; 8: digging areas carry their ``evidence``).
METHOD_VERSION = 8


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
        # Radar's findings are part of the state (change.tif): another radar, or none,
        # recomputes it.
        "radar": None if config.radar is None else dataclasses.asdict(config.radar),
        # A synthetic archive's scenes depend on its seed and rains, not only its catalog.
        "synthetic": ([config.synthetic.seed, list(config.synthetic.long_rains)]
                      if config.source.kind == "synthetic" else None),
        "mask": {k: list(v) if isinstance(v, tuple) else v
                 for k, v in dataclasses.asdict(config.mask).items()},
        "min_valid_pct": config.composite.min_valid_pct,
    }, sort_keys=True)


def synthetic_run(config: PipelineConfig) -> bool:
    """Whether the run reads synthetic scenes: its products are labelled so
    (:mod:`kpgeo.products.synthetic_label`)."""
    return reads_synthetic(config.source.kind, config.source.catalog)


def _foreign_member(config: PipelineConfig, month: str,
                    sites: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The ``kpgeo`` member of GeoJSON products: whether the month was measured
    (:func:`~.products.measured.status_member`) and provenance, no timestamps (reruns
    match)."""
    return {
        "month": month,
        **status_member(sites),
        "software": f"kpgeo {__version__}",
        "source": {"kind": config.source.kind, "catalog": config.source.catalog,
                   "collection": config.source.collection},
        "synthetic": synthetic_run(config),
        "baseline": str(config.baseline),
        "sites": {name: dict(sites[name]) for name in sorted(sites)},
        "parameters": {"detection": dataclasses.asdict(config.detection),
                       "mask": {k: list(v) if isinstance(v, tuple) else v
                                for k, v in dataclasses.asdict(config.mask).items()},
                       "min_valid_pct": config.composite.min_valid_pct},
    }


# ---- one site --------------------------------------------------------------------------------
@dataclass
class SiteRun:
    """Runs one site through the baseline and the months asked for."""

    source: SceneSource
    site: Site
    config: PipelineConfig
    progress: Callable[[str], None]
    radar: RadarSource | None = None
    """Sentinel-1 read beside the optical scenes (a ``[radar]`` table), or None."""
    results: list[SiteMonth] = field(default_factory=list)
    _from_scratch: bool = False
    """The baseline was (re)built by this run: no saved state after it is reused."""
    _writes: BackgroundWrites = field(default_factory=BackgroundWrites)
    """A month's products are made while the next month computes."""
    _preexisting: list[DiggingArea] | None = None
    """The baseline's pre-existing digging areas."""
    _baseline_status: dict[str, str] = field(default_factory=dict)
    """Status of each baseline month, as this run found it."""
    _measured: tuple[str, str | None, list[dict[str, Any]]] | None = None
    """The latest month whose ``disturbed.geojson`` was written, the month its areas were
    measured in, and its features (what a gap month after it carries)."""
    _coverage: BaselineCoverage | None = None
    """How well the baseline saw the site."""
    _last_done: float = field(default_factory=time.perf_counter)
    """When the latest month was completed (or the run began)."""
    _saved: SiteFolder = field(init=False)
    """What earlier runs left in the site's folder, and what of it may be used."""

    def __post_init__(self) -> None:
        self._saved = SiteFolder(self.folder, self.site.name, signature(self.site, self.config))

    @property
    def folder(self) -> Path:
        return self.config.out_dir / self.site.name

    def _report(self, result: SiteMonth, what: str) -> None:
        q = result.quality
        areas = result.areas
        found = (f", {areas['cumulative_new_ha']:.2f} ha new digging in all"
                 if areas and q.status in MEASURED else "")
        self.progress(f"{self.site.name} {result.month}: {what}{q.status}, {q.scenes} scenes, "
                      f"{q.valid_pct:.1f}% valid{found} ({result.seconds:.1f} s)")

    def run(self) -> list[SiteMonth]:
        try:
            self._run()
            self._writes.wait()
            forget(self.folder.absolute())  # the chunks' scratch of the months computed
        finally:
            self._writes.close()  # no write may outlive the run's lock
        return self.results

    def _run(self) -> None:
        config = self.config
        assert config.baseline is not None and config.months is not None
        requested = set(config.months.months())
        baseline_requested = [m for m in config.baseline.months() if m in requested]
        # --overwrite recomputes the months asked for: the baseline only if they include it.
        current = not (config.overwrite and baseline_requested) and self._baseline_is_current()
        if current and not config.overwrite:
            # Site-months already done are not recomputed (docs/product.md §9). A baseline month
            # that is not done (an interrupted run, skipped scenes) changes the baseline
            # itself: it is rebuilt below, with the products of every baseline month.
            saved_months = {m: self._saved.done(m) for m in baseline_requested}
            if all(saved is not None for saved in saved_months.values()):
                for month, saved in saved_months.items():
                    assert saved is not None
                    self._keep(month, saved)
                baseline_requested = []
            else:
                current = False
        if not current:
            # Baseline months with products from an earlier run get them anew, from this
            # baseline.
            baseline_requested = [m for m in config.baseline.months() if m in requested
                                  or (self.folder / str(m) / "change.tif").is_file()]
            self._run_baseline(baseline_requested)
            # Every saved state was made from the old baseline: detection starts afresh.
            self._from_scratch = True
        self._run_detection(requested)

    def _months(self) -> SiteMonths:
        # An absolute folder: the workers may run in another working directory.
        return SiteMonths(self.source, self.site, self.config, self.folder.absolute(),
                          signature(self.site, self.config), self.radar)

    def _hand_over(self, month: Month | str, complete: Callable[[], None]) -> None:
        """Have the month completed in the background (its COGs made from its tiles, its
        areas gathered) while the next months compute; at most :data:`MONTHS_COMPLETING`
        months wait for it, so that the next one is never held up by the one before."""
        waited = self._writes.wait(pending=MONTHS_COMPLETING - 1)
        log.debug("%s %s: waited %.2f s for the previous month's products", self.site.name,
                  month, waited)
        self._writes.submit(complete)

    def _completed(self, result: SiteMonth, what: str) -> None:
        """Record a month completed: its seconds run from the previous month's completion, so
        that the months' seconds add up to their wall time."""
        now = time.perf_counter()
        result.seconds = now - self._last_done
        self._last_done = now
        self._report(result, what)

    def _warn_gap(self, month: Month, quality: MonthQuality) -> None:
        # One line in words on the log (docs/product.md §10), not a Python warning: that
        # would show the user kpgeo's file and source line.
        if quality.status == "gap":
            log.warning("%s %s: only %.1f%% of the site has a valid observation (%d scenes, "
                        "%g%% needed); the month is a gap: its products show the digging "
                        "areas as last measured.", self.site.name, month, quality.valid_pct,
                        quality.scenes, self.config.composite.min_valid_pct)

    # -- baseline
    def _baseline_path(self) -> Path:
        return self.folder / "baseline.tif"

    def _baseline_is_current(self) -> bool:
        """Whether ``baseline.tif`` is whole and was made for this grid, baseline, source and
        parameters (its record says so, :mod:`kpgeo.saved`)."""
        statuses = self._saved.baseline()
        if statuses is None:
            return False
        self._baseline_status = statuses
        return True

    def _preexisting_areas(self) -> list[DiggingArea]:
        """The baseline's pre-existing digging areas (polygonized once per run), with how
        often the baseline saw them."""
        if self._preexisting is None:
            with rasterio.open(self._baseline_path()) as src:
                names = list(src.descriptions)
                mask = src.read(names.index("preexisting") + 1) > 0.5
                rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
                if rows.size == 0:
                    self._preexisting = []
                    return self._preexisting
                # The seasons of the areas' box only: the box's grid gives the same ids.
                box = (slice(int(rows[0]), int(rows[-1]) + 1),
                       slice(int(cols[0]), int(cols[-1]) + 1))
                seasons = src.read(names.index("baseline_seasons") + 1,
                                 window=rasterio.windows.Window.from_slices(*box))
            self._preexisting = preexisting_areas(self.site.name, self.site.grid[box],
                                                  mask[box], seasons)
        return self._preexisting

    def _baseline_coverage(self) -> BaselineCoverage | None:
        """How well the baseline saw the site, from ``baseline.tif`` (read once per run)."""
        if self._coverage is None:
            with rasterio.open(self._baseline_path()) as src:
                self._coverage = BaselineCoverage.from_tags(src.tags())
        return self._coverage

    def _run_baseline(self, requested: list[Month]) -> None:
        """Composite every baseline month and build the baseline from them, chunk by chunk
        (:mod:`kpgeo.compute.baseline_graph`), then the products of the baseline months
        asked for."""
        config = self.config
        assert config.baseline is not None
        months = list(config.baseline.months())
        # Every product of the baseline's months is written again: no record may vouch for
        # the old ones meanwhile.
        self._saved.computing_baseline()
        self._saved.computing(months)
        graph = self._months()
        done: dict[Month, SiteMonth] = {}
        typicals: dict[Month, float | None] = {}
        self._last_done = time.perf_counter()
        for month, observing in self._observed(graph, months, None):
            quality, scene_ids, _, products, typicals[month] = graph.finish_composite(observing)
            self._warn_gap(month, quality)
            folder = self.folder / str(month)
            done[month] = result = SiteMonth(
                self.site.name, str(month), quality, scene_ids, 0.0,
                [folder / "composite.tif", folder / "indices.tif"])

            def complete(result: SiteMonth = result, products: list[Any] = products) -> None:
                compute(*products, quiet=True)
                self._completed(result, "baseline, ")

            self._hand_over(month, complete)
        self._writes.wait()  # the baseline is built from the written composites
        self._baseline_status = {str(m): done[m].quality.status for m in months}
        valid = [m for m in months if done[m].quality.status == "ok"]
        if not valid:
            raise KpgeoError(
                f"{self.site.name}: no month of the baseline {config.baseline} has enough "
                f"valid observations (min_valid_pct = {config.composite.min_valid_pct}); "
                "choose a longer or drier baseline."
            )
        baseline, pieces, self._coverage = baseline_graph.build(
            graph.layout, self.site.grid, self.site.geometry.to_crs(self.site.crs).geom,
            self.folder.absolute(),
            [((self.folder / str(m) / "composite.tif").absolute(), calendar_month(m),
              typicals[m]) for m in valid],
            config.detection, {SIGNATURE_TAG: signature(self.site, config)}, len(months))
        self._saved.baseline_written(self._baseline_status)
        self._preexisting = merge_pieces(self.site.name, self.site.grid, pieces, "preexisting")
        for month in months:
            if month not in requested:
                self.results.append(done[month])
        for month in requested:
            # Before detection: the month's change products hold the pre-existing digging.
            result = done[month]
            result.areas = graph.baseline_change(month, result.quality, result.quality.scenes,
                                                 baseline)
            result.outputs.append(self.folder / str(month) / "change.tif")
            self._write_areas(result, [])

    # -- after the baseline
    def _run_detection(self, requested: set[Month]) -> None:
        """Advance the state through the months after the baseline up to the last one asked
        for, starting from the latest saved state before the first one asked for."""
        config = self.config
        months = detection_months(config)
        wanted = [i for i, m in enumerate(months) if m in requested]
        if not wanted:
            return
        # The latest saved state before the first month asked for is reused (--overwrite too).
        start, saved_state, last_ok = ((0, None, None) if self._from_scratch
                                       else self._saved.start(months[:wanted[0]]))
        # Once a month is computed, the saved states after it are out of date: every later
        # month up to the last one asked for is computed too.
        todo = months[start:wanted[-1] + 1]
        kept = 0
        for month in todo:
            saved = (None if config.overwrite or self._from_scratch
                     else self._saved.done(month))
            if saved is None:
                break
            self._keep(month, saved)
            saved_state = self._saved.change(month)
            if saved.status in MEASURED:
                last_ok = saved_state
            kept += 1
        todo = todo[kept:]
        if not todo:
            return
        self._saved.computing(todo)
        graph = self._months()
        carries = graph.initial_carries(saved_state and saved_state.absolute(),
                                        last_ok and last_ok.absolute())
        self._last_done = time.perf_counter()
        baseline = self._baseline_path().absolute()
        for month, observing in self._observed(graph, todo, baseline):
            outcome = graph.finish(observing, carries)
            carries = outcome.carries
            self._warn_gap(month, outcome.quality)
            folder = self.folder / str(month)
            result = SiteMonth(self.site.name, str(month), outcome.quality, outcome.scene_ids,
                               0.0, [folder / name for name in MONTH_PRODUCTS[:3]])

            def complete(result: SiteMonth = result, outcome: MonthOutcome = outcome) -> None:
                # The month's areas and polygons, its COGs, its GeoJSON: while the next
                # month computes.
                result.areas, pieces = graph.complete(outcome)
                self._write_areas(result, pieces, now=True)
                self._completed(result, "")

            self._hand_over(month, complete)

    def _observed(self, graph: SiteMonths, months: Sequence[Month], baseline: Path | None,
                  ) -> Iterator[tuple[Month, Observing]]:
        """Each month being observed, the next ones searched and observed while it is
        finished: :data:`MONTHS_AHEAD` for a site of one chunk, whose months alone cannot keep
        the workers busy, one for a larger site, whose chunks do (and each month ahead holds
        the reads of the whole site)."""
        ahead = MONTHS_AHEAD if len(graph.layout.chunks()) == 1 else 1
        pending = collections.deque(graph.observe(m, baseline) for m in months[:ahead])
        for i, month in enumerate(months):
            observing = pending.popleft()
            if i + ahead < len(months):
                pending.append(graph.observe(months[i + ahead], baseline))
            yield month, observing

    def _keep(self, month: Month, saved: SavedMonth) -> None:
        """Keep a month done by an earlier run: its result feeds the shared products (time
        series, exports), which an interrupted run may not have written."""
        self.results.append(SiteMonth(self.site.name, str(month), saved.quality, [], 0.0,
                                      areas=saved.areas, kept=True))
        self.progress(f"{self.site.name} {month}: done already, kept")

    def _write_areas(self, result: SiteMonth, pieces: Sequence[AreaPiece],
                     now: bool = False) -> None:
        """The month's ``disturbed.geojson`` (:meth:`_write_month_areas`), in the writer's
        thread (``now``: already in it), after the months before it."""
        path = self.folder / result.month / "disturbed.geojson"
        if now:
            self._write_month_areas(result, pieces, path)
        else:
            self._writes.submit(self._write_month_areas, result, pieces, path)
        result.outputs.append(path)
        self.results.append(result)

    def _write_month_areas(self, result: SiteMonth, pieces: Sequence[AreaPiece],
                           path: Path) -> None:
        """A measured month's digging areas: the baseline's pre-existing ones and the new ones
        the chunks' pieces make. A gap month's: those of the latest month measured, flagged
        as not re-measured (:mod:`kpgeo.products.measured`)."""
        if result.quality.status in MEASURED:
            new = merge_pieces(self.site.name, self.site.grid, pieces, "new")
            result.digging_areas = sorted([*self._preexisting_areas(), *new],
                                          key=lambda a: (a.status != "preexisting", a.id))
            measured: str | None = result.month
            features = feature_collection(result.digging_areas,
                                          {self.site.name: self.site.crs},
                                          measured_month=measured)["features"]
        else:
            measured, features = self._last_measured(result.month)
            features = carried(features)
        site: dict[str, Any] = {"status": result.quality.status, "measured_month": measured,
                                "scene_ids": result.scene_ids}
        coverage = self._baseline_coverage()
        if coverage is not None:
            site["baseline_coverage"] = coverage.member()
        foreign = _foreign_member(self.config, result.month, {self.site.name: site})
        # The layer's name member, for a synthetic month only (products.synthetic_label).
        name = collection_name(result.month, synthetic_run(self.config))
        write_feature_collection(path, {"type": "FeatureCollection",
                                        **({"name": name} if name else {}),
                                        "kpgeo": foreign, "features": features})
        # The month's products are all written: its record vouches for them (and marks the
        # month done).
        self._saved.month_written(result.month)
        self._measured = (result.month, measured, features)

    def _last_measured(self, month: str) -> tuple[str | None, list[dict[str, Any]]]:
        """The latest month before ``month`` whose digging areas were measured, and its
        features: a baseline month that was no gap (the baseline's pre-existing areas), or the
        month a later month's ``disturbed.geojson`` names; None and none before any."""
        before = parse_month(month) - 1
        if self._measured is not None and self._measured[0] == str(before):
            return self._measured[1], self._measured[2]
        assert self.config.baseline is not None
        first = self.config.baseline.first
        for m in reversed(list(MonthRange(first, before).months()) if before >= first else []):
            if m in self.config.baseline:
                if self._baseline_month_status(m) == "ok":
                    return str(m), feature_collection(
                        self._preexisting_areas(), {self.site.name: self.site.crs},
                        measured_month=str(m))["features"]
                continue
            found = read_measured(self.folder / str(m) / "disturbed.geojson", self.site.name)
            if found is not None:
                return found
        return None, []

    def _baseline_month_status(self, month: Month) -> str:
        """A baseline month's status: as this run found it, or as the baseline's record says
        (:meth:`_baseline_is_current`)."""
        return self._baseline_status.get(str(month), "gap")


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
        # Half-written products of an interrupted run (never renamed into place) go now, and
        # the chunk tiles of months it did not finish.
        for leftover in out_dir.rglob(f".*{PART_SUFFIX}*"):
            leftover.unlink(missing_ok=True)
        for tiles in out_dir.glob(f"*/*/{TILES_FOLDER}"):
            remove_tiles(tiles.parent)
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
        layer_name = collection_name(month, synthetic_run(config))
        doc = {"type": "FeatureCollection", **({"name": layer_name} if layer_name else {}),
               "kpgeo": _foreign_member(config, month, sites), "features": features}
        out.append(write_feature_collection(
            config.out_dir / "exports" / f"disturbed-{month}.geojson", doc))
    return out


def write_pages(config: PipelineConfig, sites: list[Site], results: list[SiteMonth],
                all_sites: list[Site], progress: Callable[[str], None],
                manifest: Path | None = None) -> list[Path]:
    """The month maps of the site-months written (and their neighbours' links), then
    ``index.html`` over every site of the pipeline, linking this run's ``manifest`` (written
    after it) with those of earlier runs."""
    from .products.index_page import write_index
    from .products.maps import maps_to_write, write_site_month_map

    assert config.baseline is not None
    baseline = [str(m) for m in config.baseline.months()]
    maps = []
    for site in sites:
        # Months computed now, plus neighbours (their links) and any month missing its map.
        months = sorted({r.month for r in results if r.site == site.name and r.areas})
        # Each map is a task of the run's scheduler: the workers are idle once the months
        # are done, and a map (reprojected images, a page) is independent of the others.
        maps += [dask.delayed(write_site_month_map, pure=False)(
                     config.out_dir, site.name, site.title, month, available, baseline_month,
                     offline=config.offline, outline=site.geometry.json)
                 for month, available, baseline_month in maps_to_write(
                     config.out_dir, site.name, baseline, months)]
    pages: list[Path] = list(compute(*maps, quiet=True))
    # The catalog is written just after the pages (write_run_catalog): the index links it.
    index = write_index(config.out_dir, [(s.name, s.title) for s in all_sites],
                        offline=config.offline, manifest=manifest, catalog=True)
    progress(f"{len(pages)} maps; index: {index}")
    return [*pages, index]


def write_run_catalog(config: PipelineConfig, sites: list[Site]) -> list[Path]:
    """``catalog.json``: every finished site-month of the pipeline's sites as STAC, written
    after the maps (each item lists its month's map)."""
    from .products.catalog import CatalogSite, write_catalog

    return write_catalog(config.out_dir,
                         [CatalogSite(s.name, s.title, s.geometry.json, s.country)
                          for s in sites],
                         name=config.name, description=config.description)


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
    out_dir = config.out_dir
    check_out_folder(out_dir, overwrite=config.overwrite)  # before anything is written
    source = open_source(config)
    radar = open_radar_source(config, source)
    try:
        return _run_sites(config, sites, all_sites, source, progress, progress_bar, radar)
    except KpgeoError:
        raise
    except OSError as exc:  # a full disk, a folder made read-only meanwhile: one line, exit 1
        raise write_failed(exc, out_dir) from exc


def _run_sites(config: PipelineConfig, sites: list[Site], all_sites: list[Site],
               source: SceneSource, progress: Callable[[str], None],
               progress_bar: bool, radar: RadarSource | None = None) -> list[SiteMonth]:
    """:func:`run` once the output folder and the source are checked."""
    out_dir = config.out_dir
    all_names = [s.name for s in all_sites]
    manifest = Manifest(config=config.to_dict())
    results: list[SiteMonth] = []  # computed by this run
    covered: list[SiteMonth] = []  # computed or kept
    with output_lock(out_dir):
        status = "failed"
        try:
            with dask_context(config.scheduler, config.workers,
                              progress=progress_bar) as where:
                check_workers_see(out_dir, out_dir / LOCK_NAME)
                progress(f"computing on the {where}")
                for site in sites:
                    site_results = SiteRun(source, site, config, progress, radar).run()
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
                # Every month written is indexed, also those computed on the way to the ones
                # asked, and those kept: a run killed before this point never wrote their rows.
                # Still on the run's scheduler: the maps are its tasks (write_pages).
                written = sorted({r.month for r in covered if r.areas})
                kind = source_kind(config.source.kind, synthetic_run(config))
                series = timeseries.merge(out_dir / "timeseries.csv",
                                          [r.row(kind) for r in covered if r.areas])
                manifest.outputs.append(series)
                exports = write_exports(config, all_names, written)
                exports += write_volume_exports(out_dir, timeseries.read(series), written,
                                                config.volume)
                manifest.outputs.extend(exports)
                progress(f"timeseries: {series}; {len(exports)} monthly exports")
                manifest.outputs.extend(write_pages(config, sites, results, all_sites,
                                                    progress, manifest.path(out_dir)))
                manifest.outputs.extend(write_run_catalog(config, all_sites))
            status = "ok"
        finally:
            manifest.skipped_scenes.extend(getattr(source, "skipped", []))
            manifest.retries.extend(getattr(source, "retries", []))
            if results or status == "ok":
                try:
                    path = manifest.write(out_dir, status=status)
                except OSError as exc:
                    if status == "ok":
                        raise
                    # The run is failing already (a full disk, most likely): its own error
                    # is the one to tell.
                    log.warning("the run's manifest could not be written either: %s", exc)
                else:
                    progress(f"manifest: {path}")
    return results
