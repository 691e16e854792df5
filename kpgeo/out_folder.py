"""The output folder: whether a run may write it, and what to say when writing it fails.

Checked before anything is written (docs/product.md §10), so that a bad ``--out`` is one line
and exit code 2: a path under a file, a folder that cannot be written, a folder holding files
kpgeo did not write, a ``timeseries.csv`` that is not kpgeo's.

Files kpgeo did not write: kpgeo writes ``index.html``, ``timeseries.csv``, ``exports/``,
``runs/`` and a folder per site into ``--out``, over any file of those names. Rather than keep
a list of every file it ever wrote (which a run killed between a write and the list's update
would get wrong, and which would make every product's write two writes), a run writes only
into a new or empty folder, or one a kpgeo run has written before: one holding
:data:`LOCK_NAME`, which a run creates first. A folder with anything else (a user's
``index.html``) needs ``--overwrite``, which says to write into it anyway. Names starting
with a dot (``.git``, ``.DS_Store``) do not count: kpgeo writes no such name but its own.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import InputError, KpgeoError
from .products import timeseries

#: Lock file of an output folder while a run writes it; its presence marks a kpgeo output.
LOCK_NAME = ".kpgeo.lock"
#: Files named in a refusal, at most.
_SHOWN = 3


def check_writable(out: Path) -> None:
    """Refuse an ``--out`` that is a file, lies under one, or cannot be written.

    Raises
    ------
    InputError
        Naming the path and why.
    """
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {str(out)!r} is a file; give a folder.")
    # The nearest path that exists: out itself, or the folder it would be made in (os.path's
    # exists, not Path's: it says False rather than raising on a folder that cannot be
    # searched).
    existing = next((p for p in (out, *out.parents) if os.path.exists(p)), Path(out.anchor))
    if not existing.is_dir():
        raise InputError(f"--out {str(out)!r} lies under {str(existing)!r}, which is a file, "
                         "not a folder; give a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        why = ("is on a read-only file system" if _read_only(existing)
               else "is not writable by this user")
        where = "" if existing == out else f" ({str(existing)!r}, where it would be made)"
        raise InputError(f"--out {str(out)!r}{where} {why}; give a folder you can write to.")


def check_out_folder(out: Path, *, overwrite: bool) -> None:
    """Refuse an output folder a run cannot or must not write, before anything is written:
    :func:`check_writable`, then a folder holding files kpgeo did not write (unless
    ``overwrite``), and a ``timeseries.csv`` that is not kpgeo's (its rows cannot be merged).

    Raises
    ------
    InputError
        Naming the folder or file, why and the fix.
    """
    check_writable(out)
    if not out.is_dir():
        return
    if not overwrite and not (out / LOCK_NAME).exists():
        foreign = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
        if foreign:
            shown = ", ".join(foreign[:_SHOWN]) + (", ..." if len(foreign) > _SHOWN else "")
            raise InputError(
                f"--out {str(out)!r} holds files kpgeo did not write ({shown}); give a new or "
                "empty folder, or add --overwrite to write into it anyway (kpgeo's files "
                "replace any of the same name)."
            )
    timeseries.read(out / timeseries.FILE_NAME)


def write_failed(exc: OSError, out: Path) -> KpgeoError:
    """The one line a run that failed writing its outputs ends with (exit code 1)."""
    where = exc.filename or out
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return KpgeoError(
            f"the disk is full: no space left to write {str(where)!r}; free some space and run "
            "again (the products written so far are whole, and the run resumes after them)."
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return KpgeoError(f"cannot write {str(where)!r} ({exc.strerror}); give an --out you "
                          "can write to and run again.")
    return KpgeoError(f"the run failed on {str(where)!r}: {exc.strerror or exc}.")


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False
