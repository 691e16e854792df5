"""What a run tells its user on stderr: log lines in words (docs/product.md §10).

kpgeo says what a user must know (a gap month, a retried read, a skipped scene) as one log line
naming the site, month and cause. A Python warning is written for programmers: shown as Python
shows it, it names a file and line of the code and quotes the source line. So the command line
logs each warning that reaches it as one line, ``warning: <message>`` (where it came from only
with ``-v``), ignores the third-party warnings that say nothing a user could act on
(:func:`quiet_uninformative_warnings`, in the Dask workers too), and keeps rasterio's log of
GDAL's errors for ``-v``. Every line passes :func:`kpgeo.redaction.redact`, and the libraries
that log credentials at debug level stay at WARNING whatever ``-v`` asks (:mod:`kpgeo.redaction`).
"""

from __future__ import annotations

import logging
import sys
import traceback
import warnings
from typing import Any, TextIO

from .redaction import RedactingFormatter, quiet_noisy_loggers, redact

log = logging.getLogger("kpgeo")


def quiet_uninformative_warnings() -> None:
    """Ignore the library warnings that tell a user of kpgeo nothing."""
    from rasterio.errors import NotGeoreferencedWarning

    # GDAL warns of an array or file without georeferencing (odc-stac reprojecting an array it
    # holds in memory); kpgeo places every raster it reads or writes on its site's grid itself,
    # so the warning never means a misplaced product.
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    # numpy warns when a median, mean or extreme has no value to take: a pixel no scene saw is
    # NaN by design (the month's valid_pct counts it; too few seen make a gap), not an error.
    for message in ("All-NaN (slice|axis) encountered", "Mean of empty slice",
                    "Degrees of freedom <= 0"):
        warnings.filterwarnings("ignore", message=message, category=RuntimeWarning)
    _quiet_libtiff()


def _quiet_libtiff() -> None:
    """Unset libtiff's process-wide error handler, which writes straight to the process's
    stderr, past Python and its logging.

    GDAL hears libtiff's errors through a handler of each file it opens, but its own write
    procedure reports a failed write through the process-wide one: on a full disk every tile
    printed ``_tiffWriteProc: No space left on device.``, hundreds of lines before kpgeo's one
    line saying the disk is full (the write itself fails in GDAL, and kpgeo names the file).
    Only the libtiff that rasterio's wheels bundle is known here; another is left alone.
    """
    import ctypes
    import glob
    import importlib.util

    spec = importlib.util.find_spec("rasterio")
    if spec is None or not spec.submodule_search_locations:
        return
    for folder in spec.submodule_search_locations:
        bundled = glob.glob(f"{folder}.libs/libtiff*.so*") + glob.glob(f"{folder}/.dylibs/libtiff*")
        for path in bundled:
            try:
                # Loaded already by GDAL: the same library, not a second copy.
                ctypes.CDLL(path).TIFFSetErrorHandler(None)
            except (OSError, AttributeError):
                pass


def setup_logging(verbose: int, quiet: int) -> None:
    """Log lines on stderr at INFO (``-v`` more, ``-q`` less), warnings as log lines."""
    level = max(logging.DEBUG, logging.INFO + 10 * (quiet - verbose))
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter("%(message)s"))
    quiet_noisy_loggers()
    # A traceback kpgeo did not expect is printed by Python itself: through redact too.
    sys.excepthook = _redacted_excepthook
    # rasterio logs each error GDAL signals at INFO (a corrupt or unreachable scene makes
    # several lines of TIFF internals); kpgeo says in its own line that the read failed and
    # the scene was skipped, and the manifest keeps the error.
    logging.getLogger("rasterio").setLevel(logging.NOTSET if verbose else logging.WARNING)
    quiet_uninformative_warnings()
    # Set anew on every call: pytest replaces it around each test.
    warnings.showwarning = _log_warning


def _redacted_excepthook(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """``warnings.showwarning``: one log line in words; the code's place only at debug level."""
    debug = log.isEnabledFor(logging.DEBUG)
    where = f" ({category.__name__} at {filename}:{lineno})" if debug else ""
    logging.getLogger("py.warnings").warning("warning: %s%s", message, where)
