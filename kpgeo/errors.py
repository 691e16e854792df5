"""Error classes.

Every error a user can cause by what they type or the files they give is an :class:`InputError`
(exit code 2 on the command line, docs/product.md §4); everything that goes wrong during a run that the
user could not have prevented is a :class:`KpgeoError` with exit code 1. Each subclass also
inherits the closest builtin, so callers may catch ``ValueError`` or ``OSError`` as they would
for any library (the rasterio ``errors.py`` pattern).
"""

from __future__ import annotations


class KpgeoError(Exception):
    """Base of all kpgeo errors."""

    exit_code: int = 1


class InputError(KpgeoError, ValueError):
    """Bad input: a file, option or value the user can fix."""

    exit_code = 2


class AOIError(InputError):
    """A site (AOI) file that kpgeo cannot use."""


class MonthError(InputError):
    """A month or month range that is malformed or out of bounds."""


class ConfigError(InputError):
    """A pipeline file or option combination that is invalid."""


class CredentialsError(InputError):
    """Credentials a source needs are missing."""


class SourceError(KpgeoError, OSError):
    """A scene source (catalog, API, asset) failed."""
