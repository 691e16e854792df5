"""A chunk's intermediate result kept on disk between two steps of a month.

A month after the baseline cannot finish any chunk before the run has seen every chunk's
summary (groups cut by chunk edges are decided for the whole site), and the next month starts
from each chunk's state. Held in the workers' memory, those results grow with the site: a
5,000 km² site's chunks held more than 6 GiB between the steps. So each chunk's task writes what
the next step needs as a file under the site's output folder (which every worker sees, as it
sees the product tiles) and hands on only its path; the next step reads it back. The files are
scratch: removed once the step after the next has run, and all of them when the site's months
are done or a new run starts.

A site of one chunk keeps nothing on disk: its results are one chunk's, held by the worker
that computes it whatever the site, and writing them would only cost time.
"""

from __future__ import annotations

import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The site's folder of kept chunk results.
KEPT_FOLDER = ".chunks"


@dataclass(frozen=True)
class Kept:
    """The path of a result :func:`keep` wrote."""

    path: Path

    def load(self) -> Any:
        with open(self.path, "rb") as f:
            return pickle.load(f)


def keep(value: Any, site_folder: Path | None, month: str, kind: str, rows: slice,
         cols: slice) -> Any:
    """Write ``value`` (numpy arrays in dataclasses, pickled) for the chunk ``rows``, ``cols``
    of ``month``; its :class:`Kept` handle. ``value`` itself when ``site_folder`` is None (a
    site of one chunk)."""
    if site_folder is None:
        return value
    folder = site_folder / KEPT_FOLDER / month
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{rows.start}-{cols.start}.pickle"
    with open(path, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    return Kept(path)


def loaded(value: Any) -> Any:
    """``value``, read back when it is :class:`Kept`."""
    return value.load() if isinstance(value, Kept) else value


def forget(site_folder: Path, month: str | None = None) -> None:
    """Remove the kept results of ``month`` (of every month: None)."""
    folder = site_folder / KEPT_FOLDER
    shutil.rmtree(folder if month is None else folder / month, ignore_errors=True)
