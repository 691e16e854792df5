"""Atomic file writes: a file appears whole under its name or not at all.

Every product, page and cache entry is written to a temporary file beside its target and
renamed onto it (``os.replace`` is atomic within a file system), so a killed run or a full disk
never leaves a half-written file under a product's name. The temporary names start with a dot
and carry :data:`PART_SUFFIX`, so a later run can find and remove what a killed one left.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: Marks the temporary files of :func:`atomic_path`.
PART_SUFFIX = ".kpgeo-part"
#: The process umask, read once (reading it means setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds
    (and remove it when it fails).

    ``keep_suffix``: the temporary name ends in ``path``'s extension and does not exist yet,
    for writers that judge a file by its extension or refuse to write over one (GDAL's vector
    drivers).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = PART_SUFFIX + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    if keep_suffix:
        os.unlink(tmp)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); products are for sharing: honour the umask.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
