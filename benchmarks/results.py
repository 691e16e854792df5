"""What the benchmarks share: the machine line and replacing one section of RESULTS.md."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """``x86_64, 2 cores, Python 3.11.7, Linux 6.1``: where the figures were measured."""
    return (f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def replace_section(path: Path, name: str, section: str) -> None:
    """Replace the ``<!-- name:start -->`` .. ``<!-- name:end -->`` section of ``path`` with
    ``section`` (which carries the markers), or append it; the rest of the file stays."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->\n"
    if start in text and end in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")
