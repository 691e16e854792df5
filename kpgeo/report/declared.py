"""Declared production (``kpgeo report --declared FILE.csv``): carats by site or country and
period, to set the estimated range against.

The file is CSV in UTF-8 with the header ``scope,period,carats``, one declaration a line::

    scope,period,carats
    CIV,2024-01..2024-12,30000
    bobi-seguela,2024-01..2024-06,4200

``scope`` is a site of the run, or a country code (ISO 3166-1 alpha-3, as the site files'
``country``) standing for every site of the run in that country: the ratio then compares the
monitored sites' estimate with the whole country's declaration. ``period`` is ``YYYY-MM``,
``YYYY-MM..YYYY-MM`` or a year ``YYYY``, within the report's months; ``carats`` a positive
number.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..months import MonthRange, parse_month_range

#: The header a declared-production file starts with.
COLUMNS = ("scope", "period", "carats")
#: A year standing for its twelve months.
_YEAR = re.compile(r"^\d{4}$")
#: Lines a declared-production file may hold at most (it is typed by hand).
MAX_LINES = 10_000


@dataclass(frozen=True)
class Declaration:
    """One line of a declared-production file."""

    line: int
    scope: str
    sites: tuple[str, ...]
    """The run's sites it covers."""
    months: MonthRange
    carats: float


def read_declared(path: str | Path, *, sites: Sequence[str],
                  countries: Mapping[str, str], period: MonthRange) -> list[Declaration]:
    """The declarations of ``path``, checked against the run and the report's period.

    Parameters
    ----------
    path
        The CSV file.
    sites
        The sites the report covers.
    countries
        Site -> its country code (from the run's catalog; empty when unknown).
    period
        The report's months.

    Raises
    ------
    InputError
        One line naming the file, the line, the value and the fix.
    """
    path = Path(path)
    form = "scope,period,carats (e.g. CIV,2024-01..2024-12,30000)"
    if not path.is_file():
        raise InputError(f"--declared {str(path)!r} does not exist; give a CSV file of "
                         f"declared production with the header {form}.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(csv.reader(f))
    except UnicodeDecodeError:
        raise InputError(f"--declared {str(path)!r} is not UTF-8 text; give a CSV file with the "
                         f"header {form}.") from None
    except csv.Error as exc:
        raise InputError(f"--declared {str(path)!r} is not CSV ({exc}); give a CSV file with "
                         f"the header {form}.") from None
    if not lines or [c.strip().lower() for c in lines[0]] != list(COLUMNS):
        first = ",".join(lines[0])[:60] if lines else ""
        raise InputError(f"--declared {str(path)!r}: its first line {first!r} is not the header "
                         f"{','.join(COLUMNS)}; give a CSV file of the form {form}.")
    if len(lines) > MAX_LINES:
        raise InputError(f"--declared {str(path)!r} has {len(lines):,} lines, over "
                         f"{MAX_LINES:,}; give one declaration a line per site or country and "
                         "period.")
    found = []
    for number, fields in enumerate(lines[1:], start=2):
        if not any(f.strip() for f in fields):
            continue
        where = f"--declared {str(path)!r} line {number}"
        if len(fields) != len(COLUMNS):
            raise InputError(f"{where} has {len(fields)} fields, not 3; write {form}.")
        scope, period_text, carats_text = (f.strip() for f in fields)
        found.append(Declaration(number, scope,
                                 _scope_sites(where, scope, sites, countries),
                                 _period(where, period_text, period),
                                 _carats(where, carats_text)))
    if not found:
        raise InputError(f"--declared {str(path)!r} has no declaration under its header; add a "
                         f"line such as {form.split('(e.g. ')[1][:-1]}.")
    return found


def _scope_sites(where: str, scope: str, sites: Sequence[str],
                 countries: Mapping[str, str]) -> tuple[str, ...]:
    if scope in sites:
        return (scope,)
    inside = tuple(s for s in sites if countries.get(s, "").upper() == scope.upper() and scope)
    if inside:
        return inside
    known = sorted({c for c in countries.values() if c})
    raise InputError(f"{where}: scope {scope!r} is neither a site of the report ("
                     f"{', '.join(sites)}) nor the country of one"
                     f"{' (' + ', '.join(known) + ')' if known else ''}; give one of them.")


def _period(where: str, text: str, period: MonthRange) -> MonthRange:
    what = f"{where}: period"
    months = (parse_month_range(f"{text}-01..{text}-12", what=what) if _YEAR.match(text)
              else parse_month_range(text, what=what))
    if months.first < period.first or months.last > period.last:
        raise InputError(f"{what} {text!r} is not within the report's months {period}; give "
                         "declarations for periods within them, or a report of a longer "
                         "period.")
    return months


def _carats(where: str, text: str) -> float:
    try:
        value = float(text.replace(",", "").replace("_", ""))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{where}: carats {text!r} is not a positive number; give the declared "
                         "carats as a number, e.g. 30000.")
    return value
