"""Proof that saved products are whole and lie where they were written (docs/product.md §10).

A rerun keeps the site-months an earlier run finished and builds on their saved state
(docs/product.md §9). A file damaged or misplaced since (truncated, bit-flipped, zeroed,
another month's copied over it) would be trusted: wrong figures with exit 0, or a traceback on
every rerun. So each folder whose products a later run reuses gets a record,
:data:`RECORD_NAME`, written atomically after its products: what they are (site, month, a
digest of the signature of what made them) and each product's size and SHA-256. A saved
product is used only when its folder's record vouches for it; anything else is recomputed.

Why a record per folder rather than the run manifest, which lists SHA-256 too: the manifest is
written once, at the end of a run, so the months a killed run finished would have no proof
(and be computed again), and a later run would have to search every manifest for the latest
word on each file. A record is written the moment its folder is done, so its presence marks
the folder finished, and it moves with the folder: a month folder copied under another month's
name still names its own month.

Cost: a rerun hashes every product it keeps, once (the file is read in full). SHA-256 runs at
about 1 GB/s here, so a month of a small window is a few milliseconds; README ("Resuming")
gives the measured cost for a full-size site.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .export import write_json

#: The record of a folder's products.
RECORD_NAME = "checksums.json"
#: What a record says it is (a JSON file of that name written by someone else is not one).
RECORD_KIND = "kpgeo products"
_BLOCK = 1 << 20


def sha256(path: Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def signature_digest(signature: str) -> str:
    """A short stand-in for a signature (a JSON document of the grid and parameters)."""
    return hashlib.sha256(signature.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Problem:
    """Why a folder's products cannot be used."""

    path: Path
    """The file at fault: a product, or the record."""
    why: str
    damaged: bool
    """Damaged or misplaced (reported as such); else merely not finished or made otherwise
    (an interrupted run, other settings), which is no fault."""

    def __str__(self) -> str:
        return f"{self.path} {self.why}"


@dataclass(frozen=True)
class Record:
    """What a folder's products are, and their sizes and digests."""

    site: str
    month: str | None
    """The site-month, or None for a site's own products (``baseline.tif``)."""
    signature: str
    """:func:`signature_digest` of what made them."""
    files: Mapping[str, Mapping[str, Any]]
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Anything the writer wants to find again with the products (read back only when they
    are whole)."""


def write_record(folder: Path, site: str, month: str | None, signature: str,
                 names: Sequence[str], extra: Mapping[str, Any] | None = None) -> Path:
    """Hash ``names`` in ``folder`` and write its record (atomically, after them: the folder
    counts as finished only once its record is there)."""
    files = {name: {"bytes": (folder / name).stat().st_size, "sha256": sha256(folder / name)}
             for name in names}
    return write_json(folder / RECORD_NAME, {
        "kind": RECORD_KIND, "site": site, "month": month,
        "signature": signature_digest(signature), "files": files, **(extra or {})})


def forget_record(folder: Path) -> None:
    """Remove a folder's record before its products are written again: a run interrupted
    among them leaves the folder unfinished, not seemingly damaged."""
    (folder / RECORD_NAME).unlink(missing_ok=True)


def check(folder: Path, site: str, month: str | None, signature: str,
          names: Sequence[str]) -> Record | Problem:
    """The folder's record if it vouches for ``names`` (present, the sizes and SHA-256
    written, made for ``site``, ``month`` and ``signature``); else the first problem found."""
    record_path = folder / RECORD_NAME
    present = [name for name in names if (folder / name).is_file()]
    if not record_path.is_file():
        missing = next((n for n in names if n not in present), RECORD_NAME)
        return Problem(folder / missing, "is missing (not finished by an earlier run)",
                       damaged=False)
    record = _read(record_path)
    if isinstance(record, Problem):
        return record
    if record.site != site:
        return Problem(record_path, f"is site {record.site!r}'s, not {site!r}'s", damaged=True)
    if record.month != month:
        return Problem(record_path, f"is of {record.month or 'the baseline'}, not "
                                    f"{month or 'the baseline'}", damaged=True)
    if record.signature != signature_digest(signature):
        return Problem(record_path, "was made with another grid, baseline, source or "
                                    "parameters", damaged=False)
    for name in names:
        path = folder / name
        written = record.files.get(name)
        if not isinstance(written, Mapping):
            return Problem(record_path, f"lists no {name}", damaged=True)
        if name not in present:
            return Problem(path, "is missing", damaged=True)
        size = path.stat().st_size
        if size != written.get("bytes"):
            return Problem(path, f"has {size:,} bytes where {_number(written.get('bytes'))} "
                                 "were written (truncated or replaced)", damaged=True)
        if sha256(path) != written.get("sha256"):
            return Problem(path, "is not the file written (its SHA-256 differs: damaged or "
                                 "replaced)", damaged=True)
    return record


def _number(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else repr(value)


def _read(path: Path) -> Record | Problem:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Problem(path, f"cannot be read ({exc})", damaged=True)
    if (not isinstance(doc, dict) or doc.get("kind") != RECORD_KIND
            or not isinstance(doc.get("files"), dict)):
        return Problem(path, "is not a kpgeo record of products", damaged=True)
    extra = {k: v for k, v in doc.items()
             if k not in ("kind", "site", "month", "signature", "files")}
    return Record(str(doc.get("site")), None if doc.get("month") is None else str(doc["month"]),
                  str(doc.get("signature")), doc["files"], extra)
