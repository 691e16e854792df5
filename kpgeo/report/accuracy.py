"""The accuracy figures a report quotes: the headline tables of ``benchmarks/RESULTS.md``.

``benchmarks/accuracy.py`` scores kpgeo on synthetic archives with known truth and writes, per
family of archives, a table of ``| metric | kpgeo | plain method |`` under a heading
``### The ... family``. A report quotes kpgeo's column of each, with the file's name and SHA-256.
The file belongs to the source tree, not to a run: it is looked for in the working directory's
``benchmarks/`` and then beside the installed package's source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: Where the benchmark results live, relative to a source tree.
RESULTS = Path("benchmarks") / "RESULTS.md"
#: Metrics a report quotes, as the tables name them.
QUOTED = (
    "F1 of new digging", "precision", "recall", "footprint area error % (cumulative new)",
    "dug-share area error % (cumulative new)", "pre-existing map on truly dug ground %",
    "false positives on fields % of area", "false positives on burns % of area",
    "false positives on roads % of area", "dug sites found %",
    "median delay per dug site, months",
)
_FAMILY = re.compile(r"^###\s+(The .+ family)\s*$")
_ROW = re.compile(r"^\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$")


@dataclass(frozen=True)
class Accuracy:
    """kpgeo's scores on each family of synthetic archives."""

    path: Path
    families: dict[str, dict[str, str]]
    """Family heading -> metric -> kpgeo's score, as written."""
    command: str
    """The line saying how and where the figures were made."""


def find_results(start: Path | None = None) -> Path | None:
    """``benchmarks/RESULTS.md`` of the working directory, else of the package's source tree."""
    for root in (start or Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / RESULTS).is_file():
            return root / RESULTS
    return None


def read_accuracy(path: Path) -> Accuracy:
    """kpgeo's column of each family's headline table in ``path``."""
    families: dict[str, dict[str, str]] = {}
    family = None
    command = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("Command:") and not command:
            command = line.strip()
        heading = _FAMILY.match(line)
        if heading:
            family = heading.group(1)
            families[family] = {}
            continue
        if line.startswith("#"):
            family = None
        row = _ROW.match(line)
        if family is not None and row and row.group(1) in QUOTED:
            families[family].setdefault(row.group(1), row.group(2))
    return Accuracy(path, {k: v for k, v in families.items() if v}, command)
