"""The allowed range of every number of a pipeline file.

A number out of range does not fail loudly further on: ``ndvi_drop = nan`` maps nothing,
``chunk_px = -5`` composites uninitialised memory, ``read_attempts = 1e9`` retries for ever. So
every number is checked before anything runs (:func:`check_limits`, from
:func:`kpgeo.config.validate`): finite, and within the range :data:`LIMITS` gives for its key,
which the refusal names. A test walks every numeric field of the configuration and fails on
one without a range here.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """A closed range (open at ``low`` when ``above``), of whole numbers when ``whole``."""

    low: float
    high: float
    above: bool = False
    """``low`` itself is not allowed (a timeout of 0 s)."""
    whole: bool = False
    unit: str = ""

    def allows(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.whole and value != int(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def describe(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        unit = f" {self.unit}" if self.unit else ""
        if self.above:
            return f"{kind} above {_number(self.low)} and at most {_number(self.high)}{unit}"
        return f"{kind} from {_number(self.low)} to {_number(self.high)}{unit}"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() and abs(value) >= 10_000 else f"{value:g}"


_SHARE = Limit(0, 1, above=True)
_NDVI_CHANGE = Limit(0, 2)
_INDEX = Limit(-1, 1)
_REFLECTANCE = Limit(0, 1)
_SEED = Limit(0, 2**32 - 1, whole=True)

#: Every number of a pipeline file, by its key (list items as ``[]``; each site's window under
#: ``sites[].window``; a volume assumption's low and high under its name).
LIMITS: dict[str, Limit] = {
    # source
    "source.max_scene_cloud_pct": Limit(0, 100, unit="%"),
    "source.read_attempts": Limit(1, 20, whole=True),
    "source.http_timeout_s": Limit(0, 3600, above=True, unit="s"),
    "source.http_retries": Limit(0, 20, whole=True),
    "source.sh_tile_px": Limit(16, 2500, whole=True, unit="px"),
    "source.sh_max_attempts": Limit(1, 20, whole=True),
    "source.sh_backoff_s": Limit(0, 600, unit="s"),
    "source.sh_max_wait_s": Limit(0, 3600, unit="s"),
    "source.sh_request_budget_s": Limit(0, 86_400, above=True, unit="s"),
    "source.sh_timeout_s": Limit(0, 3600, above=True, unit="s"),
    "source.sh_threads": Limit(1, 64, whole=True),
    "synthetic.seed": _SEED,
    # sites
    "sites[].window.lon": Limit(-180, 180, unit="degrees"),
    "sites[].window.lat": Limit(-90, 90, unit="degrees"),
    "sites[].window.size_km": Limit(0, 100, above=True, unit="km"),
    # masking and compositing
    "mask.invalid_scl[]": Limit(0, 11, whole=True),
    "mask.cloud_scl[]": Limit(0, 11, whole=True),
    "mask.cloud_buffer_m": Limit(0, 1000, unit="m"),
    "composite.min_valid_pct": Limit(0, 100, unit="%"),
    # Below 64 px a chunk is mostly overhead; above 4096 px one chunk's month outgrows a
    # worker's share of a small machine.
    "composite.chunk_px": Limit(64, 4096, whole=True, unit="px"),
    # detection
    "detection.ndvi_drop": Limit(0, 2, above=True),
    "detection.wet_ndvi_drop": _NDVI_CHANGE,
    "detection.wet_mndwi_rise": _NDVI_CHANGE,
    "detection.dark_red_margin": _REFLECTANCE,
    "detection.worked_ndvi": _INDEX,
    "detection.footprint_share_min": _SHARE,
    "detection.preexisting_share_min": _SHARE,
    "detection.preexisting_share_min_unseen": _SHARE,
    "detection.preexisting_undug_share_max": _SHARE,
    "detection.green_season_contrast": Limit(0, 2, above=True),
    "detection.preexisting_greening_min": Limit(0, 10, above=True),
    "detection.preexisting_min_months": Limit(1, 120, whole=True, unit="months"),
    "detection.water_index_min": _INDEX,
    "detection.turbid_ndti_min": _INDEX,
    "detection.water_buffer_m": Limit(0, 10_000, unit="m"),
    "detection.haze_blue_red_max": Limit(0, 10, above=True),
    "detection.haze_blue_min": _REFLECTANCE,
    "detection.pit_ndti_min": _INDEX,
    "detection.active_share_min": _SHARE,
    "detection.bare_ndvi_max": _INDEX,
    "detection.bright_red_min": _REFLECTANCE,
    "detection.pond_max_ha": Limit(0, 10_000, unit="ha"),
    "detection.cluster_gap_m": Limit(0, 1000, unit="m"),
    "detection.min_area_ha": Limit(0, 10_000, unit="ha"),
    # volume
    "volume.seed": _SEED,
    "volume.draws": Limit(100, 10_000_000, whole=True),
    "volume.gravel_fraction": Limit(0, 1),
    "volume.gravel_thickness_m": Limit(0, 100, unit="m"),
    "volume.grade_ct_per_m3": Limit(0, 10_000, unit="ct/m³"),
    "volume.recovery": Limit(0, 1),
    # the run
    "workers": Limit(0, 256, whole=True),
}

_INDEXES = re.compile(r"\[\d+\]")


def numbers(config: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every number of a configuration (dataclasses, tuples of them, numbers), by its key as
    the refusal names it (``mask.invalid_scl[2]``); a ranged assumption's ``(low, high)``
    under the assumption's key."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        yield from _numbers_of(value, prefix + f.name)


def _numbers_of(value: Any, key: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield key, value
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            yield from _numbers_of(item, f"{key}[{i}]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = {f.name for f in dataclasses.fields(value)}
        if names >= {"low", "high"}:
            yield key, (value.low, value.high)
        elif names != {"first", "last"}:  # a month range is checked as months
            yield from numbers(value, key + ".")


def limit_of(key: str) -> Limit | None:
    """The range of a number's key (``mask.invalid_scl[2]`` is ``mask.invalid_scl[]``'s)."""
    return LIMITS.get(_INDEXES.sub("[]", key))


def check_limits(config: Any) -> None:
    """Refuse the first number of ``config`` that is not finite or out of its range.

    Raises
    ------
    ConfigError
        Naming the key, the value and the range allowed.
    """
    for key, value in numbers(config):
        values = value if isinstance(value, tuple) else (value,)
        limit = limit_of(key)
        shown = f"[{value[0]!r}, {value[1]!r}]" if isinstance(value, tuple) else repr(value)
        name = f"--workers {shown}" if key == "workers" else f"{key} = {shown}"
        if limit is None:
            if not all(math.isfinite(v) for v in values):
                raise ConfigError(f"{name} is not a finite number; give a number.")
        elif not all(limit.allows(v) for v in values):
            what = " for both ends of the range" if isinstance(value, tuple) else ""
            raise ConfigError(f"{name} is out of range; give {limit.describe()}{what}.")
