"""Atomic file writes: a file appears whole under its name or not at all.

Every product, page and cache entry is written to a temporary file beside its target and
renamed onto it (``os.replace`` is atomic within a file system), so a killed run or a full disk
never leaves a half-written file under a product's name. A writer that may fail without saying
so (GDAL, as the disk fills while it closes a file) passes a ``check`` of the file, made before
the rename. A write that fails on a full disk raises ``OSError(ENOSPC)`` whatever the writer
raised (GDAL's errors name a failed scanline, not the disk), so that the run can say so. The
temporary names start with a dot and carry :data:`PART_SUFFIX`, so a later run can find and
remove what a killed one left.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: Marks the temporary files of :func:`atomic_path`.
PART_SUFFIX = ".kpgeo-part"
#: Free space under which a failed write is taken for a full disk, in bytes: more than any one
#: write kpgeo makes (GDAL writes a block, a few MB at most, at a time).
FULL_DISK_BYTES = 64 << 20
#: The process umask, read once (reading it means setting it).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path, keep_suffix: bool = False,
                check: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds
    and ``check`` (if given) accepts the file (and remove it otherwise).

    ``keep_suffix``: the temporary name ends in ``path``'s extension and does not exist yet,
    for writers that judge a file by its extension or refuse to write over one (GDAL's vector
    drivers).

    Raises
    ------
    OSError
        ENOSPC when the write failed and the disk is full, whatever the writer raised.
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
        if check is not None:
            check(Path(tmp))
        # mkstemp makes the file private (0600); products are for sharing: honour the umask.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except Exception as exc:
        if getattr(exc, "errno", None) != errno.ENOSPC and disk_full(path.parent):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from exc
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def disk_full(folder: Path) -> bool:
    """Whether the file system of ``folder`` has less than :data:`FULL_DISK_BYTES` free."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < FULL_DISK_BYTES


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
