"""Synthetic Sentinel-1 RTC scenes of a :class:`~kpgeo.synth.world.World`.

A pass is the world's mean gamma0 (:mod:`.backscatter`) on its day and orbit, averaged over
20 m cells (Sentinel-1 IW's resolution; RTC products are posted at 10 m but resolve no finer),
times speckle: multiplicative, each cell's intensity gamma-distributed with mean 1 and
:data:`LOOKS` equivalent looks (GRD high resolution has 4.4), VV and VH independent.

Passes: one ascending and one descending relative orbit cover the site, each every 12 days
with one satellite and every 6 days while two fly (Sentinel-1A throughout, 1B until its
failure in December 2021, 1C from 2025). Weather comes per pass: the season's soil moisture,
and on some passes a fresh rain's cell that wets part of the site.

Everything is drawn from generators of its own (seeded by the day, the orbit and the site),
never from the optical scenes' or the world's, so writing radar changes no optical scene.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..months import MonthRange
from .backscatter import RAIN_CHANCE_BY_MONTH, SOIL_MOISTURE_BY_MONTH, Orbit, RadarGround, Weather
from .world import _interp_month_table, smooth_noise

#: Equivalent number of looks of Sentinel-1 IW GRD high resolution.
LOOKS = 4.4
#: Days between two passes of one satellite on one relative orbit.
REPEAT_DAYS = 12
#: The site's relative orbits. Incidences are the near-swath of one and the far of the other;
#: hours are the local dawn and dusk passes of a sun-synchronous 06:00/18:00 orbit.
ORBITS = (
    Orbit("ascending", 147, 39.0, 0.0, 0.0, 18.35),
    Orbit("descending", 95, 34.0, 0.4, 1.5, 6.2),
)
#: A day Sentinel-1A passed on each orbit; 1B and 1C fly half a repeat from 1A.
ORBIT_EPOCH = {"ascending": np.datetime64("2023-01-03", "D"),
               "descending": np.datetime64("2023-01-09", "D")}
#: Days Sentinel-1B acquired (launched 2016, failed 23 December 2021).
S1B_DAYS = (np.datetime64("2016-09-26", "D"), np.datetime64("2021-12-23", "D"))
#: First day of Sentinel-1C's routine acquisitions (launched December 2024).
S1C_FROM = np.datetime64("2025-05-20", "D")
#: Rows rendered at a time (even, so 20 m cells never straddle two strips).
STRIP_ROWS = 256
#: Size of a rain cell, in pixels of 10 m.
RAIN_CELL_PX = 150


@dataclass(frozen=True)
class RadarPass:
    """One Sentinel-1 pass over the site."""

    day: np.datetime64
    platform: str
    orbit: Orbit
    cycle: int
    """Repeats of the orbit since :data:`ORBIT_EPOCH` (negative before it)."""


def radar_schedule(months: MonthRange) -> list[RadarPass]:
    """Every pass in ``months``, oldest first (on one day, the dawn pass first)."""
    first = np.datetime64(months.first, "D")
    stop = np.datetime64(months.last + 1, "D")
    out = []
    for orbit in ORBITS:
        epoch = ORBIT_EPOCH[orbit.state]
        k = int(np.floor((first - epoch).astype(int) / REPEAT_DAYS))
        while (day := epoch + k * REPEAT_DAYS) < stop:
            if day >= first:
                out.append(RadarPass(day, "sentinel-1a", orbit, k))
            twin = day + REPEAT_DAYS // 2
            if first <= twin < stop:
                if S1B_DAYS[0] <= twin <= S1B_DAYS[1]:
                    out.append(RadarPass(twin, "sentinel-1b", orbit, k))
                elif twin >= S1C_FROM:
                    out.append(RadarPass(twin, "sentinel-1c", orbit, k))
            k += 1
    return sorted(out, key=lambda p: (p.day, p.orbit.hour_utc))


@dataclass
class RadarScene:
    """Gamma0 of one pass (VV, VH; float32 linear power) on the world's 20 m grid."""

    vv: np.ndarray
    vh: np.ndarray
    rain: bool
    """The pass came just after rain over part of the site."""


def weather(acq: RadarPass, rng: np.random.Generator, shape: tuple[int, int]) -> Weather:
    """The season's soil moisture on the pass's day and, by the month's chance, a rain cell."""
    day = float(acq.day.astype("int64"))
    month_index = int(acq.day.astype("datetime64[M]").astype(int) % 12)
    moisture = _interp_month_table(SOIL_MOISTURE_BY_MONTH, day)
    if rng.random() >= RAIN_CHANCE_BY_MONTH[month_index]:
        return Weather(moisture, None)
    cell = smooth_noise(rng, shape, RAIN_CELL_PX)
    return Weather(moisture, np.clip(cell + rng.uniform(-0.5, 1.0), 0.0, 1.0).astype("float32"))


def render_radar(ground: RadarGround, acq: RadarPass, seed: int, stream: int = 0,
                 speckle: bool = True) -> RadarScene:
    """Render one pass: mean gamma0 in 20 m cells times speckle (``speckle=False``: the mean
    alone, the same weather drawn)."""
    world = ground.world
    day_number = int(acq.day.astype("int64"))
    rng = np.random.default_rng([seed, day_number, 11, stream, acq.orbit.relative_orbit])
    height, width = world.shape
    sky = weather(acq, rng, (height, width))
    out = np.empty((2, height // 2, width // 2), dtype="float32")
    for r0 in range(0, height, STRIP_ROWS):
        r1 = min(height, r0 + STRIP_ROWS)
        mean = ground.mean_gamma0(float(day_number), acq.orbit, sky, slice(r0, r1))
        cells = _block_mean(mean)
        if speckle:
            cells *= rng.gamma(LOOKS, 1.0 / LOOKS, size=cells.shape).astype("float32")
        out[:, r0 // 2:r1 // 2] = cells
    return RadarScene(out[0], out[1], sky.rain is not None)


def _block_mean(a: np.ndarray) -> np.ndarray:
    """Mean of 2 x 2 blocks (10 m to 20 m) in linear power: a resolution cell's return is the
    sum of its parts'."""
    return (a[..., ::2, ::2] + a[..., 1::2, ::2] + a[..., ::2, 1::2] + a[..., 1::2, 1::2]) * 0.25
