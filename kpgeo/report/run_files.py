"""What a report reads of a finished run, checked before anything is written.

A report never recomputes imagery: it reads ``timeseries.csv``, the volume CSVs
(``exports/volume-YYYY-MM.csv``), each month's ``disturbed.geojson``, the run manifests
(``runs/*.json``) and ``catalog.json`` of the run's output folder. :class:`RunFiles` holds them
and remembers every file it read (:attr:`RunFiles.read_files`), so the report can name the file
behind each number and its SHA-256.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..months import MonthRange
from ..out_folder import LOCK_NAME
from ..products import timeseries
from ..products.catalog import FILE_NAME as CATALOG_NAME
from ..products.checksums import sha256

#: Run manifests, newest last by name (their names are UTC timestamps).
RUNS_FOLDER = "runs"


@dataclass
class RunFiles:
    """A finished run's files, as a report uses them."""

    out: Path
    rows: list[dict[str, str]]
    """``timeseries.csv``, every row."""
    volumes: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    """``(site, month)`` -> its row of ``exports/volume-<month>.csv``."""
    read_files: dict[Path, str] = field(default_factory=dict)
    """Every file read, relative to :attr:`out`, and what was taken from it."""

    # ---- reading ----------------------------------------------------------------------------
    @classmethod
    def open(cls, out: str | Path) -> RunFiles:
        """The run in ``out``.

        Raises
        ------
        InputError
            ``out`` is not the output folder of a finished run.
        """
        out = Path(out)
        fix = "give the --out folder of a finished `kpgeo run` (the one holding timeseries.csv)"
        if not out.is_dir():
            raise InputError(f"--out {str(out)!r} is not a folder; {fix}.")
        series = out / timeseries.FILE_NAME
        if not series.is_file():
            raise InputError(f"--out {str(out)!r} is not a kpgeo run: it has no "
                             f"{timeseries.FILE_NAME}; {fix}.")
        rows = timeseries.read(series)  # refuses another program's CSV
        if not rows:
            raise InputError(f"--out {str(out)!r}: its {timeseries.FILE_NAME} has no month yet; "
                             f"{fix}.")
        files = cls(out, rows)
        files.note(series, "areas, statuses, scenes and coverage by site and month")
        return files

    def note(self, path: Path, what: str) -> None:
        """Record that ``what`` was read from ``path`` (in the run folder, or relative to it)."""
        relative = path
        for base in (self.out, self.out.absolute()):
            try:
                relative = path.relative_to(base)
                break
            except ValueError:
                continue
        known = self.read_files.get(relative)
        if known is None:
            self.read_files[relative] = what
        elif what not in known:
            self.read_files[relative] = f"{known}; {what}"

    # ---- what the run holds -----------------------------------------------------------------
    @property
    def sites(self) -> list[str]:
        """Sites of the time series, in order of first appearance."""
        return list(dict.fromkeys(r["site"] for r in self.rows))

    def months_of(self, site: str) -> list[str]:
        return sorted(r["month"] for r in self.rows if r["site"] == site)

    def row(self, site: str, month: str) -> dict[str, str]:
        return next(r for r in self.rows if r["site"] == site and r["month"] == month)

    def check_request(self, months: MonthRange, site: str | None) -> list[str]:
        """The sites a report of ``months`` (and ``site``) covers.

        Raises
        ------
        InputError
            An unknown site, or months the run has no products of.
        """
        known = self.sites
        if site is not None and site not in known:
            raise InputError(f"--site {site!r} is not a site of the run in {str(self.out)!r}; "
                             f"its sites: {', '.join(known)}.")
        chosen = [site] if site is not None else known
        asked = [str(m) for m in months.months()]
        for name in chosen:
            have = self.months_of(name)
            missing = [m for m in asked if m not in have]
            if missing:
                shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
                raise InputError(
                    f"--months {months}: the run has no products of {name} for {shown} (its "
                    f"months: {have[0]}..{have[-1]}); give months within them, or run "
                    f"`kpgeo run ... --months {months}` first.")
        return chosen

    def read_volumes(self, months: Sequence[str]) -> None:
        """The volume CSVs of ``months`` (each month's one file, every site)."""
        for month in months:
            path = self.out / "exports" / f"volume-{month}.csv"
            if not path.is_file():
                continue
            with open(path, newline="", encoding="utf-8") as f:
                for row in csv.DictReader(f):
                    self.volumes[(row.get("site", ""), row.get("month", ""))] = row
            self.note(path, "gravel volume and carats (P10, P50, P90) by site")

    def areas(self, site: str, month: str) -> dict[str, Any] | None:
        """A site-month's ``disturbed.geojson`` (None if missing or unreadable)."""
        path = self.out / site / month / "disturbed.geojson"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def manifests(self) -> list[tuple[Path, dict[str, Any]]]:
        """Every readable run manifest, oldest first."""
        found = []
        for path in sorted((self.out / RUNS_FOLDER).glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                doc = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(doc, dict):
                found.append((path, doc))
        return found

    def catalog_sites(self) -> dict[str, dict[str, Any]]:
        """Site -> its outline (GeoJSON, WGS84) and country, from ``catalog.json`` (none for
        a run older than the catalog)."""
        path = self.out / CATALOG_NAME
        if not path.is_file():
            return {}
        from ..products.catalog import read_items

        found: dict[str, dict[str, Any]] = {}
        for item in read_items(path):
            collection = item.get_collection()
            if collection is None or collection.id in found:
                continue
            found[collection.id] = {"outline": item.geometry,
                                    "country": collection.extra_fields.get("kpgeo:country", ""),
                                    "title": collection.title or collection.id}
        if found:
            self.note(path, "site outlines, titles and countries (items' geometry)")
        return found

    def digests(self) -> list[tuple[str, str, str]]:
        """``(file, SHA-256, what was read)`` of every file read, in order of name."""
        return [(str(p), sha256(self.out / p), what)
                for p, what in sorted(self.read_files.items())]


def lock_path(out: Path) -> Path | None:
    """The run folder's lock file, if it has one (a run holds it while it writes)."""
    path = out / LOCK_NAME
    return path if path.is_file() else None


def latest(manifests: Sequence[tuple[Path, Mapping[str, Any]]]) -> tuple[Path, Mapping[str, Any]]:
    """The newest manifest of a finished run (status ``ok``), else the newest."""
    ok = [m for m in manifests if m[1].get("status") == "ok"]
    return (ok or list(manifests))[-1]
