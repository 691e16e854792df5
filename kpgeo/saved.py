"""What earlier runs left in a site's folder, and whether this run may build on it.

A rerun keeps the site-months already done and starts from the latest saved state
(docs/product.md §9). Each is used only when the record of its folder
(:mod:`kpgeo.products.checksums`) vouches for it: every product there, of the size and SHA-256
written, of this site and month, made as this run would make it. A damaged or misplaced one
(truncated, bit-flipped, zeroed, another month's copied over it) is reported in one log line
naming the file and why, and computed again, never used (docs/product.md §10). Products
without a record were not finished (an interrupted run) or were made otherwise (other
settings): computed again with a line of information, as no fault.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rasterio

from .methods.composite import MEASURED, MonthQuality
from .months import Month
from .products import checksums
from .products.product_tags import AREAS_TAG, SIGNATURE_TAG, quality_from_tags

log = logging.getLogger(__name__)

#: What a finished site-month folder holds.
MONTH_PRODUCTS = ("composite.tif", "indices.tif", "change.tif", "disturbed.geojson")
#: What a site's own folder holds that later runs reuse.
BASELINE_PRODUCTS = ("baseline.tif",)
#: The record's entry of a baseline's months and their statuses (``ok``, ``gap``).
BASELINE_MONTHS = "baseline_months"


@dataclass(frozen=True)
class SavedMonth:
    """What a month's ``change.tif`` says of it (its state is read chunk by chunk by the
    workers, :meth:`~.compute.month_graph.SiteMonths.initial_carries`)."""

    quality: MonthQuality
    areas: dict[str, float]
    """Its time-series areas."""
    skipped: int = 0
    """Scenes that failed to read (the month is computed again by the next run)."""

    @property
    def status(self) -> str:
        return self.quality.status


def read_saved_month(path: Path, expected_signature: str) -> SavedMonth | None:
    """What a month's ``change.tif`` records; None if missing or made otherwise. Trusts the
    file: :meth:`SiteFolder.month` checks it first."""
    if not path.is_file():
        return None
    with rasterio.open(path) as src:
        tags = src.tags()
    if tags.get(SIGNATURE_TAG) != expected_signature or AREAS_TAG not in tags:
        return None
    return SavedMonth(quality_from_tags(tags), json.loads(tags[AREAS_TAG]))


@dataclass
class SiteFolder:
    """A site's output folder as earlier runs left it: which saved products may be used."""

    folder: Path
    site: str
    signature: str
    """What this run's products depend on (:func:`kpgeo.run.signature`)."""
    _months: dict[str, SavedMonth | None] = field(default_factory=dict)
    """Months checked so far (each is hashed once a run)."""

    def change(self, month: Month | str) -> Path:
        return self.folder / str(month) / "change.tif"

    # -- the baseline
    def baseline(self) -> dict[str, str] | None:
        """The statuses of the baseline's months if ``baseline.tif`` may be used; None if it
        must be built (reported when damaged)."""
        found = checksums.check(self.folder, self.site, None, self.signature, BASELINE_PRODUCTS)
        if isinstance(found, checksums.Problem):
            self._report(found, f"{self.site}: ", "building the baseline and every month "
                                                   "after it again",
                         self._any(self.folder, BASELINE_PRODUCTS))
            return None
        months = found.extra.get(BASELINE_MONTHS)
        if not isinstance(months, dict):
            self._report(checksums.Problem(self.folder / checksums.RECORD_NAME,
                                           "lists no baseline months", damaged=True),
                         f"{self.site}: ", "building the baseline again", True)
            return None
        return {str(m): str(s) for m, s in months.items()}

    def baseline_written(self, statuses: dict[str, str]) -> None:
        """Record ``baseline.tif``, just built, with its months' statuses."""
        checksums.write_record(self.folder, self.site, None, self.signature, BASELINE_PRODUCTS,
                               {BASELINE_MONTHS: statuses})

    # -- the months
    def month(self, month: Month | str) -> SavedMonth | None:
        """A site-month's saved state if its record vouches for every product of the month
        (reported when damaged or misplaced); None if it must be computed."""
        key = str(month)
        if key not in self._months:
            self._months[key] = self._check_month(key)
        return self._months[key]

    def done(self, month: Month | str) -> SavedMonth | None:
        """A site-month done by an earlier run and kept: vouched for, and no scene failed to
        read (those are retried; cached responses make that cheap)."""
        saved = self.month(month)
        return saved if saved is not None and not saved.skipped else None

    def start(self, before: Sequence[Month]) -> tuple[int, Path | None, Path | None]:
        """Where to start computing, given the months ``before`` the first one asked for: the
        index of the first month to compute, the latest saved state to start from, and the
        ``change.tif`` of the latest month measured (no gap) up to it (a gap month's new
        digging is counted in the next measured month's ``new_ha``); both vouched for, None
        for none (start from empty)."""
        for i in range(len(before) - 1, -1, -1):
            if self.month(before[i]) is None:
                continue
            for j in range(i, -1, -1):
                saved = self.month(before[j])
                if saved is None:
                    break  # a month in between must be computed: start before it
                if saved.status in MEASURED:
                    return i + 1, self.change(before[i]), self.change(before[j])
            else:
                return i + 1, self.change(before[i]), None
        return 0, None, None

    def computing(self, months: Sequence[Month | str]) -> None:
        """Months about to be computed: their records go first (a run interrupted among
        their products leaves them unfinished, not seemingly damaged)."""
        for month in months:
            checksums.forget_record(self.folder / str(month))
            self._months.pop(str(month), None)

    def computing_baseline(self) -> None:
        checksums.forget_record(self.folder)

    def month_written(self, month: Month | str) -> None:
        """Record a site-month's products, all written."""
        checksums.write_record(self.folder / str(month), self.site, str(month), self.signature,
                               MONTH_PRODUCTS)

    def _check_month(self, month: str) -> SavedMonth | None:
        folder = self.folder / month
        found = checksums.check(folder, self.site, month, self.signature, MONTH_PRODUCTS)
        if isinstance(found, checksums.Problem):
            self._report(found, f"{self.site} {month}: ", "computing the month again",
                         self._any(folder, MONTH_PRODUCTS))
            return None
        # Whole, and this site-month's: what its files say can be read.
        saved = read_saved_month(folder / "change.tif", self.signature)
        with rasterio.open(folder / "composite.tif") as src:
            skipped = _count(src.tags().get("skipped_scenes"))
        if saved is None:  # the record vouches for a change.tif made otherwise: not by kpgeo
            self._report(checksums.Problem(folder / "change.tif", "has another signature "
                                           "than its record", damaged=True),
                         f"{self.site} {month}: ", "computing the month again", True)
            return None
        return SavedMonth(saved.quality, saved.areas, skipped)

    @staticmethod
    def _report(problem: checksums.Problem, where: str, then: str, found: bool) -> None:
        """One line on a saved product that cannot be used: a warning when it is damaged or
        misplaced, information when products were left unfinished or made otherwise (none
        for a folder without products: a first run)."""
        level = (logging.WARNING if problem.damaged else logging.INFO if found
                 else logging.DEBUG)
        log.log(level, "%s%s; %s.", where, problem, then)

    @staticmethod
    def _any(folder: Path, names: Sequence[str]) -> bool:
        return any((folder / name).is_file() for name in names)


def _count(text: Any) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0
