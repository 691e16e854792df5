"""Months and month ranges, written ``YYYY-MM`` everywhere (docs/product.md §8).

A month is a ``numpy.datetime64`` of unit ``M``: it orders, adds and subtracts as months, and
prints as ``YYYY-MM``. These helpers parse and validate what users type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .errors import MonthError

#: Sentinel-2A began acquiring in late June 2015; no month before this has any scene.
FIRST_SENTINEL2_MONTH = np.datetime64("2015-07", "M")

_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")

Month = np.datetime64


def parse_month(text: str, *, what: str = "month") -> Month:
    """Parse ``YYYY-MM`` into a month.

    Parameters
    ----------
    text
        The month as typed, e.g. ``"2024-03"``.
    what
        How to call the value in an error message (the option name).

    Raises
    ------
    MonthError
        If the text is not a real month in ``YYYY-MM`` form.

    Examples
    --------
    >>> str(parse_month("2024-03"))
    '2024-03'
    """
    match = _MONTH_RE.match(text.strip())
    if not match:
        raise MonthError(
            f"{what} {text!r} is not a month: write it as YYYY-MM, for example 2024-03."
        )
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12:
        raise MonthError(
            f"{what} {text!r} has month {month:02d}; months run from 01 to 12, "
            "for example 2024-03."
        )
    if year < 1900:
        raise MonthError(f"{what} {text!r} has year {year}; give a year such as 2024.")
    return np.datetime64(f"{year:04d}-{month:02d}", "M")


@dataclass(frozen=True)
class MonthRange:
    """An inclusive range of months ``first..last``."""

    first: Month
    """First month of the range."""
    last: Month
    """Last month of the range, inclusive."""

    def __post_init__(self) -> None:
        assert self.first <= self.last, "MonthRange built unordered; use parse_month_range"

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.months())

    def __len__(self) -> int:
        return int((self.last - self.first).astype(int)) + 1

    def __contains__(self, month: object) -> bool:
        return bool(self.first <= np.datetime64(month, "M") <= self.last)  # type: ignore[call-overload]

    def months(self) -> list[Month]:
        """All months of the range in order."""
        return list(np.arange(self.first, self.last + 1, dtype="datetime64[M]"))

    def labels(self) -> list[str]:
        """All months of the range as ``YYYY-MM`` strings."""
        return [str(m) for m in self.months()]

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"

    @classmethod
    def single(cls, month: Month) -> MonthRange:
        """A range holding one month."""
        return cls(month, month)


def parse_month_range(text: str, *, what: str = "month range") -> MonthRange:
    """Parse ``YYYY-MM..YYYY-MM`` (or a single ``YYYY-MM``) into a :class:`MonthRange`.

    Raises
    ------
    MonthError
        If either end is not a month, or the range runs backwards.

    Examples
    --------
    >>> len(parse_month_range("2024-01..2024-12"))
    12
    """
    parts = text.strip().split("..")
    if len(parts) == 1:
        month = parse_month(parts[0], what=what)
        return MonthRange.single(month)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise MonthError(
            f"{what} {text!r} is not a range: write FIRST..LAST, for example 2024-01..2024-12."
        )
    first = parse_month(parts[0], what=what)
    last = parse_month(parts[1], what=what)
    if last < first:
        raise MonthError(
            f"{what} {text!r} runs backwards ({first} is after {last}); "
            f"write it as {last}..{first}."
        )
    return MonthRange(first, last)


def check_observable(months: MonthRange, *, what: str, today: np.datetime64 | None = None) -> None:
    """Refuse months no Sentinel-2 scene can exist for (before launch or in the future).

    Raises
    ------
    MonthError
        If the range starts before 2015-07 or ends after the current month.
    """
    if months.first < FIRST_SENTINEL2_MONTH:
        raise MonthError(
            f"{what} {months} starts before Sentinel-2 data exist; "
            f"start at {FIRST_SENTINEL2_MONTH} or later."
        )
    current = np.datetime64(today if today is not None else "today", "M")
    if months.last > current:
        raise MonthError(
            f"{what} {months} ends after the current month {current}; "
            f"end at {current} or earlier."
        )


def month_bounds_iso(month: Month) -> tuple[str, str]:
    """First and last instant of a month as ISO 8601 UTC strings, for STAC ``datetime``."""
    start = np.datetime64(month, "D")
    end = np.datetime64(month + 1, "D")
    return f"{start}T00:00:00Z", f"{end - np.timedelta64(1, 'D')}T23:59:59Z"
