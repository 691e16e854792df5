"""C-band backscatter of a synthetic :class:`~kpgeo.synth.world.World`: the mean gamma0 a
Sentinel-1 pass would see, before speckle.

The radar sees the same world as the optical scenes (the same digging, pits, rivers, floods,
fields, burns and roads on the same days) through what C-band responds to: vegetation volume
(VH rises with green cover in the rains), soil moisture (bare and sparse ground brighten as
the soil wets, and more on a day after rain), roughness (fresh spoil is rough: fairly bright in
VV, dark in VH, with a texture of its own), and smooth water (specular: very dark, wherever it
lies, so the wet season's floodplain is as dark as a washing pit). Covers mix in linear power,
as the returns of a pixel's parts add.

Values are gamma0 in dB, ``(VV, VH)``, typical of Sentinel-1 IW over West-African savanna:
grass and sparse savanna about -11/-18.5 dB in the dry season and -8/-12.5 dB at full green cover,
gallery forest -7/-12.5 dB, bare rough ground -9.5/-20 dB, calm water -21/-27 dB or below.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .world import (
    BURN_FADE_DAYS,
    CROP_BY_MONTH,
    PIT_FILL_DAYS,
    SEASON_BY_MONTH,
    World,
    _interp_month_table,
    smooth_noise,
)

DRY_SAVANNA_DB = (-11.0, -18.5)
"""Dry grass and the lateritic soil between its tufts."""
GREEN_SAVANNA_DB = (-8.0, -12.5)
"""Full green grass and shrub cover: volume scattering raises VH most."""
FOREST_DB = (-7.0, -12.5)
TILLED_DB = (-11.5, -19.5)
ROAD_DB = (-12.0, -20.0)
SAND_BAR_DB = (-15.0, -23.0)
"""Dry sand and gravel of a riverbed: smooth at C-band's 5.6 cm, so mostly specular."""
SPOIL_DB = (-9.5, -20.0)
"""Fresh spoil heaps: rough (VV near the grass's), with no vegetation volume (VH far below)."""
WET_GRAVEL_DB = (-9.0, -19.0)
"""Bare wet gravel and mud beside the pits: wetter, a little brighter, still without volume."""
PIT_WATER_DB = (-21.5, -27.5)
"""Calm turbid water of a washing pit, sheltered from the wind."""
RIVER_WATER_DB = (-20.5, -26.5)
"""The river and its flooded floodplain: open water, a little roughened by wind and current."""
#: Soil moisture, 0 (dry season) to 1 (the wettest weeks), by month.
SOIL_MOISTURE_BY_MONTH = np.array([0.05, 0.05, 0.1, 0.3, 0.5, 0.7, 0.85, 1.0, 1.0, 0.8, 0.4,
                                   0.1])
#: What wet soil adds to bare and sparse ground, in dB ``(VV, VH)``: moisture raises the
#: dielectric constant, VV most.
MOISTURE_GAIN_DB = (3.0, 2.0)
#: What a fresh rain (wet soil and leaves on the day) adds, in dB ``(VV, VH)``, at its centre.
RAIN_GAIN_DB = (1.5, 1.0)
#: Chance that a pass comes within a day of rain, by month.
RAIN_CHANCE_BY_MONTH = np.array([0.02, 0.03, 0.08, 0.2, 0.3, 0.4, 0.45, 0.5, 0.5, 0.35, 0.1,
                                 0.02])
#: Spread of the spoil's own texture (static, per pixel), in dB.
SPOIL_TEXTURE_DB = 1.5
#: Share of wet gravel and mud in worked ground in the dry season, and what the rains add.
WET_SHARE = (0.15, 0.45)
#: Share of a partly dug pixel's worked part that is pit water once its pits have filled.
PIT_SHARE = 0.1


def power(db: float | np.ndarray) -> np.ndarray:
    """Linear power of a level in dB."""
    return np.float32(10.0) ** (np.asarray(db, dtype="float32") / np.float32(10.0))


def _pair(db: tuple[float, float]) -> np.ndarray:
    """``(VV, VH)`` in dB as linear power, shaped ``(2, 1)`` to broadcast over pixels."""
    return power(np.array(db, dtype="float32"))[:, None]


@dataclass(frozen=True)
class Orbit:
    """One relative orbit over the site, with what its incidence does to gamma0."""

    state: str
    """``ascending`` or ``descending``."""
    relative_orbit: int
    incidence_deg: float
    """Incidence angle at the site's centre."""
    land_offset_db: float
    """Land is a little brighter at the steeper incidence (gamma0 levels most of it out)."""
    water_offset_db: float
    """Water's specular return falls fast with incidence: brighter at the steeper one."""
    hour_utc: float
    """Time of the pass over the site (dawn descending, dusk ascending)."""


@dataclass(frozen=True)
class Weather:
    """A pass's weather: soil moisture of the season, and a fresh rain's cell (0 to 1)."""

    moisture: float
    rain: np.ndarray | None


class RadarGround:
    """The radar's static layers of a world: the spoil's texture, drawn from a generator of
    its own so that the optical scenes stay exactly as they are."""

    def __init__(self, world: World, seed: int, stream: int) -> None:
        rng = np.random.default_rng([seed, 20260301, stream])
        self.world = world
        self.texture = power(SPOIL_TEXTURE_DB * smooth_noise(rng, world.shape, 1.5))

    def mean_gamma0(self, day: float, orbit: Orbit, weather: Weather,
                    rows: slice = slice(None)) -> np.ndarray:
        """Mean gamma0 ``(2, y, x)`` (VV, VH; linear power) on ``day`` (days since
        1970-01-01), on ``rows`` of the world grid, before speckle."""
        world = self.world
        r0, r1, _ = rows.indices(world.shape[0])
        season_day = day - world.years.shift(day)
        season = _interp_month_table(SEASON_BY_MONTH, season_day)
        crop = _interp_month_table(CROP_BY_MONTH, season_day)
        soil, rain = _gains(weather, r0, r1, world.shape[1])
        land = power(orbit.land_offset_db)
        cover = (0.12 + 0.63 * season) * world.density[r0:r1]
        for burn in world.burns:  # a burn takes the cover with it, and it grows back
            if burn.day <= day < burn.day + 6 * BURN_FADE_DAYS:
                b0, b1 = max(burn.row, r0), min(burn.row + burn.scar.shape[0], r1)
                if b0 < b1:
                    char = np.float32(np.exp(-(day - burn.day) / BURN_FADE_DAYS))
                    box = cover[b0 - r0:b1 - r0, burn.col:burn.col + burn.scar.shape[1]]
                    box[burn.scar[b0 - burn.row:b1 - burn.row]] *= 1 - char
        cover = cover[None]
        savanna = (cover * _pair(GREEN_SAVANNA_DB)[..., None]
                   + (1 - cover) * _pair(DRY_SAVANNA_DB)[..., None] * soil) * rain * land
        out = savanna.copy()
        forest = world.forest[r0:r1]
        out[:, forest] = _pair(FOREST_DB) * rain[:, forest] * land
        field = world.field[r0:r1]
        if field.any():
            crops = crop * world.field_vigour[r0:r1][field]
            out[:, field] = (crops * _pair(GREEN_SAVANNA_DB) + (1 - crops) * _pair(TILLED_DB)
                             * soil[..., 0]) * rain[:, field] * land
        # Gravel, laterite and sand hold less water than soil: half the moisture's gain.
        gravel = np.sqrt(soil) * rain
        road = world.road[r0:r1]
        if road.any():
            out[:, road] = _pair(ROAD_DB) * gravel[:, road] * land
        self._digging(out, savanna, day, r0, r1, season, gravel, orbit)
        water, bars = world.water(day, slice(r0, r1))
        if bars.any():
            out[:, bars] = _pair(SAND_BAR_DB) * gravel[:, bars] * land
        out[:, water] = _pair(RIVER_WATER_DB) * power(orbit.water_offset_db)
        return out.astype("float32", copy=False)

    def _digging(self, out: np.ndarray, around: np.ndarray, day: float, r0: int, r1: int,
                 season: float, gravel: np.ndarray, orbit: Orbit) -> None:
        """Worked ground, mixed with the grass left between its pits; pits of water; the
        savanna's slow return once a site is abandoned (its pits keep their water)."""
        world = self.world
        dig_day = world.dig_day[r0:r1]
        dug = dig_day <= day
        if not dug.any():
            return
        idx = np.nonzero(dug)
        site_ids = world.dig_site[r0:r1][idx]
        ends = np.array([s.end_day for s in world.sites])[site_ids]
        regrow = np.array([s.regrow_days for s in world.sites])[site_ids]
        since_end = np.clip((day - ends) / regrow, 0.0, 1.0).astype("float32")
        filled = dig_day[idx] + PIT_FILL_DAYS <= day
        water = _pair(PIT_WATER_DB) * power(orbit.water_offset_db)
        land = power(orbit.land_offset_db)
        wet_share = np.float32(WET_SHARE[0] + WET_SHARE[1] * season)
        moist = gravel[:, idx[0], idx[1]]
        spoil = ((1 - wet_share) * _pair(SPOIL_DB) + wet_share * _pair(WET_GRAVEL_DB))
        spoil = spoil * moist * land * self.texture[r0:r1][idx][None]
        if world.ground.partial_digging:
            pits = np.where(filled, np.float32(PIT_SHARE), np.float32(0.0))
            worked = (1 - pits) * spoil + pits * water
        else:
            worked = spoil
        grass = around[:, idx[0], idx[1]]
        ground = (1 - since_end) * worked + since_end * grass
        share = world.dig_share[r0:r1][idx]
        ground = share * ground + (1 - share) * grass
        pit = world.pit[r0:r1][idx] & filled
        out[:, idx[0], idx[1]] = np.where(pit[None], water, ground)


def _gains(weather: Weather, r0: int, r1: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """What wet ground adds, in linear power: the season's soil moisture on bare soil
    ``(2, 1, 1)``, and a fresh rain on all land ``(2, y, x)`` (wet soil and leaves)."""
    soil = power(weather.moisture * np.array(MOISTURE_GAIN_DB, dtype="float32"))[:, None, None]
    if weather.rain is None:
        return soil, np.ones((2, r1 - r0, width), dtype="float32")
    rain = np.array(RAIN_GAIN_DB, dtype="float32")[:, None, None] * weather.rain[r0:r1][None]
    return soil, power(rain)
