"""The synthetic savanna world: static landscape and its dynamics over time, on one grid.

The world knows, for any day, the true surface reflectance of every pixel; scenes (``scenes.py``)
add the atmosphere, clouds and the sensor. Everything is drawn from one seeded generator, so a
world is a pure function of (grid, months, seed).

Phenomena: savanna seasonality (dry Nov–Mar, monsoon peak in August), gallery forest along
rivers, rivers and seasonal floodplain water, dry-season fields (bare from November to May, green
in the rains), savanna burns (dark, fading within weeks), and digging sites that start, grow,
fill with turbid water, are abandoned and slowly regrow; some started before the archive
(pre-existing digging). The hardships of real ground (:mod:`.ground`: partly dug pixels,
riverbeds with dry-season bars, roads, years that differ; misregistration and long rains are the
scenes' part) are drawn from a generator of their own, so that :meth:`Ground.simple` worlds are
the worlds of the first simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from odc.geo.geobox import GeoBox
from scipy import ndimage

from ..months import MonthRange
from . import spectra
from .ground import Ground, Years

PIXEL_M = 10.0
#: Mid-month vegetation vigour of the savanna, 0 (dry season) to 1 (monsoon peak, Aug–Sep).
SEASON_BY_MONTH = np.array([0.05, 0.0, 0.05, 0.15, 0.35, 0.55, 0.75, 0.95, 1.0, 0.75, 0.4, 0.15])
#: Crop cover of dry-season fields: bare from November to April, green in the rains.
CROP_BY_MONTH = np.array([0.0, 0.0, 0.0, 0.0, 0.1, 0.4, 0.8, 0.9, 0.85, 0.4, 0.0, 0.0])
#: Floodplain water extent relative to its maximum (rivers overflow Aug–Oct).
FLOOD_BY_MONTH = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.8, 1.0, 0.6, 0.2, 0.0])
#: Natural river turbidity in the rains (0 clear, 1 as turbid as a washing pit).
RIVER_TURBIDITY_BY_MONTH = np.array([0.1, 0.1, 0.1, 0.1, 0.2, 0.3, 0.5, 0.6, 0.6, 0.4, 0.2, 0.1])
#: Digging sites per km² of world (artisanal clusters along drainages).
DIG_SITES_PER_KM2 = 0.35
#: Share of digging sites that started before the archive (pre-existing digging).
PREEXISTING_SHARE = 0.35
#: Days for a freshly dug pit to fill with turbid water.
PIT_FILL_DAYS = 20
#: Days over which an abandoned site's vegetation returns (slow regrowth).
REGROW_DAYS = (540, 900)
#: Days over which a burn scar's char fades.
BURN_FADE_DAYS = 25.0
#: Burn blobs per km² per dry season.
BURNS_PER_KM2 = 0.25
#: Dry-season fields per km².
FIELDS_PER_KM2 = 1.5
#: Dug share of a working's core: drawn per site in this range (partly dug pixels).
CORE_SHARE = (0.55, 0.92)
#: Priority (relative distance from a working's centre) where its dug share begins to fall off,
#: and where it reaches zero: the working's edge is pixels dug less than half.
SHARE_FALLOFF = (0.85, 1.2)
#: Share of weeds on the worked part of a partly dug pixel.
WORKED_WEEDS = 0.1
#: Half-width of a riverbed from the river's centre line, in metres (varies along the river).
RIVERBED_M = (15.0, 50.0)
#: The low-water river: half-width in metres (always water).
LOW_WATER_M = 10.0
#: How far past its bed a river floods at its highest, in metres (times the year's reach).
FLOODPLAIN_M = 40.0
#: Laterite tracks across the world, and their width in pixels.
ROADS = 2
ROAD_WIDTH_PX = (1.2, 2.2)


def _days(value: np.datetime64) -> float:
    return float(np.datetime64(value, "D").astype("int64"))


def _interp_month_table(table: np.ndarray, day: float) -> float:
    """Value of a mid-month table on a given day (days since 1970-01-01), cyclic."""
    date = np.datetime64(int(day), "D")
    month_start = date.astype("datetime64[M]")
    month_index = int(month_start.astype("int64") % 12)
    month_len = float(((month_start + 1).astype("datetime64[D]") - month_start.astype("datetime64[D]")).astype("int64"))
    frac = (day - _days(month_start)) / month_len  # 0..1 within the month; mid-month = 0.5
    position = month_index + frac - 0.5
    lo = int(np.floor(position)) % 12
    w = position - np.floor(position)
    return float((1 - w) * table[lo] + w * table[(lo + 1) % 12])


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], scale_px: float) -> np.ndarray:
    """Smooth zero-mean, unit-variance noise with features of about ``scale_px`` pixels."""
    step = max(1, int(scale_px))
    coarse = rng.standard_normal((shape[0] // step + 3, shape[1] // step + 3)).astype("float32")
    fine = ndimage.zoom(coarse, step, order=1)[: shape[0], : shape[1]]
    fine -= fine.mean()
    sd = fine.std()
    return fine / sd if sd > 0 else fine


@dataclass
class DiggingSite:
    """One artisanal digging cluster."""

    start_day: float
    grow_days: float
    end_day: float
    regrow_days: float


@dataclass
class Burn:
    """A savanna fire: its day and its scar, stored as a small box to keep memory low."""

    day: float
    row: int
    col: int
    scar: np.ndarray

    def full_mask(self, shape: tuple[int, int]) -> np.ndarray:
        mask = np.zeros(shape, dtype=bool)
        mask[self.row:self.row + self.scar.shape[0], self.col:self.col + self.scar.shape[1]] = self.scar
        return mask


@dataclass
class World:
    """Static layers of the synthetic world and the rules that animate them."""

    grid: GeoBox
    months: MonthRange
    river_dist_m: np.ndarray
    channel: np.ndarray
    forest: np.ndarray
    density: np.ndarray
    dry_share: np.ndarray
    field: np.ndarray
    field_vigour: np.ndarray
    burns: list[Burn]
    dig_day: np.ndarray
    dig_site: np.ndarray
    pit: np.ndarray
    sites: list[DiggingSite]
    gravel_tint: np.ndarray
    ground: Ground
    years: Years
    dig_share: np.ndarray
    """Share of each pixel that its working digs (1 for whole pixels; 0 = never dug)."""
    bed_m: np.ndarray | None
    """Half-width of the riverbed nearest each pixel, in metres (None: no riverbeds)."""
    road: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.channel.shape  # type: ignore[return-value]

    # ---- truth --------------------------------------------------------------------------
    def dug_by(self, day: float) -> np.ndarray:
        """Pixels dug (at least half of each) on or before ``day``."""
        return (self.dig_day <= day) & (self.dig_share >= 0.5)

    @property
    def riverbed(self) -> np.ndarray:
        """Pixels of the riverbeds outside the low-water river: bars in the dry season."""
        if self.bed_m is None:
            return np.zeros(self.shape, dtype=bool)
        return (self.river_dist_m <= self.bed_m) & ~self.channel

    def active_by(self, day: float) -> np.ndarray:
        """Dug pixels whose site is still worked on ``day``."""
        ends = np.array([s.end_day for s in self.sites] + [-np.inf])
        return self.dug_by(day) & (ends[self.dig_site] > day)

    def pit_water_by(self, day: float) -> np.ndarray:
        """Pits holding water on ``day``."""
        return self.pit & (self.dig_day + PIT_FILL_DAYS <= day)

    # ---- reflectance --------------------------------------------------------------------
    def surface(self, day: float, rows: slice = slice(None)) -> np.ndarray:
        """True surface reflectance ``(band, y, x)`` on ``day`` (days since 1970-01-01).

        ``rows`` limits the work to a strip of rows, so scenes render strip by strip in
        cache-sized pieces whatever the size of the world.
        """
        r0, r1, _ = rows.indices(self.shape[0])
        season_day = day - self.years.shift(day)  # a year of early or late rains
        season = _interp_month_table(SEASON_BY_MONTH, season_day)
        crop = _interp_month_table(CROP_BY_MONTH, season_day)
        flood = _interp_month_table(FLOOD_BY_MONTH, season_day)
        river_turbidity = _interp_month_table(RIVER_TURBIDITY_BY_MONTH, season_day)
        dry_share = self.dry_share[r0:r1][None]
        background = (dry_share * spectra.DRY_GRASS[:, None, None]
                      + (1 - dry_share) * spectra.SAVANNA_SOIL[:, None, None])
        cover = ((0.12 + 0.63 * season) * self.density[r0:r1])[None]
        savanna = cover * spectra.GREEN_VEGETATION[:, None, None] + (1 - cover) * background
        out = savanna.copy()
        forest_cover = np.float32(0.80 + 0.15 * season)
        forest = forest_cover * spectra.FOREST + (1 - forest_cover) * spectra.DRY_GRASS
        out[:, self.forest[r0:r1]] = forest[:, None]
        field = self.field[r0:r1]
        if field.any():
            crop_cover = crop * self.field_vigour[r0:r1][field]
            out[:, field] = (crop_cover * spectra.GREEN_VEGETATION[:, None]
                             + (1 - crop_cover) * spectra.TILLED_SOIL[:, None])
        for burn in self.burns:
            if not burn.day <= day < burn.day + 6 * BURN_FADE_DAYS:
                continue
            b0, b1 = max(burn.row, r0), min(burn.row + burn.scar.shape[0], r1)
            if b0 >= b1:
                continue
            char = np.float32(np.exp(-(day - burn.day) / BURN_FADE_DAYS))
            scar = burn.scar[b0 - burn.row:b1 - burn.row]
            cols = slice(burn.col, burn.col + burn.scar.shape[1])
            box = out[:, b0 - r0:b1 - r0, cols]
            box[:, scar] = char * spectra.CHAR[:, None] + (1 - char) * box[:, scar]
        road = self.road[r0:r1]
        if road.any():
            out[:, road] = spectra.ROAD[:, None]
        self._digging(out, savanna, day, r0, r1, season)
        river = spectra.CLEAR_WATER + river_turbidity * (
            spectra.TURBID_WATER - spectra.CLEAR_WATER
        )
        level = self._water_level_m(day, r0, r1, flood)
        bars = self._bars(level, r0, r1)
        if bars.any():
            tint = self.gravel_tint[r0:r1][bars]
            out[:, bars] = spectra.SAND_BAR[:, None] * tint[None]
        out[:, self._open_water(level, day, r0, r1)] = river[:, None]
        return out.astype("float32", copy=False)

    def water(self, day: float, rows: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """Open water (the river and its flooded floodplain; dug ground holds its own pits)
        and the dry sand and gravel bars of the riverbeds on ``day``, on ``rows``: what the
        optical scenes show, for the radar to show the same."""
        r0, r1, _ = rows.indices(self.shape[0])
        flood = _interp_month_table(FLOOD_BY_MONTH, day - self.years.shift(day))
        level = self._water_level_m(day, r0, r1, flood)
        return self._open_water(level, day, r0, r1), self._bars(level, r0, r1)

    def _water_level_m(self, day: float, r0: int, r1: int,
                       flood: float) -> np.ndarray | np.float32:
        """How far from a river's centre line its water reaches, in metres."""
        if self.bed_m is None:
            return np.float32(12.0 + 60.0 * flood)
        # The rising river fills its bed first (June-July), then spreads over the
        # floodplain at the height of the rains, further in some years than others.
        bed = self.bed_m[r0:r1]
        fill = np.float32(min(1.0, 2.5 * flood))
        beyond = np.float32(max(0.0, flood - 0.4) / 0.6 * FLOODPLAIN_M
                            * self.years.reach(day))
        return LOW_WATER_M + fill * (bed - LOW_WATER_M) + beyond

    def _bars(self, level: np.ndarray | np.float32, r0: int, r1: int) -> np.ndarray:
        if self.bed_m is None:
            return np.zeros((r1 - r0, self.shape[1]), dtype=bool)
        distance = self.river_dist_m[r0:r1]
        return (distance <= self.bed_m[r0:r1]) & (distance >= level)

    def _open_water(self, level: np.ndarray | np.float32, day: float, r0: int,
                    r1: int) -> np.ndarray:
        distance = self.river_dist_m[r0:r1]
        return self.channel[r0:r1] | ((distance < level) & ~(self.dig_day[r0:r1] <= day))

    def _digging(self, out: np.ndarray, savanna: np.ndarray, day: float, r0: int,
                 r1: int, season: float) -> None:
        dig_day = self.dig_day[r0:r1]
        dug = dig_day <= day
        if not dug.any():
            return
        idx = np.nonzero(dug)
        site_ids = self.dig_site[r0:r1][idx]
        ends = np.array([s.end_day for s in self.sites])[site_ids]
        regrow = np.array([s.regrow_days for s in self.sites])[site_ids]
        since_end = np.clip((day - ends) / regrow, 0.0, 1.0).astype("float32")
        tint = self.gravel_tint[r0:r1][idx]
        # Abandoned pits keep their water but the sediment settles over about half a year.
        settle = np.clip((day - ends) / 180.0, 0.0, 1.0).astype("float32")
        water = (1 - settle) * spectra.TURBID_WATER[:, None] + settle * spectra.CLEAR_WATER[:, None]
        filled = dig_day[idx] + PIT_FILL_DAYS <= day
        if self.ground.partial_digging:
            worked = _worked_ground(tint, season, filled, water)
        else:
            worked = spectra.DUG_GRAVEL[:, None] * tint[None]
        around = savanna[:, idx[0], idx[1]]
        ground = (1 - since_end) * worked + since_end * around
        share = self.dig_share[r0:r1][idx]
        ground = share * ground + (1 - share) * around  # the grass left between pits
        pit = self.pit[r0:r1][idx] & filled
        out[:, idx[0], idx[1]] = np.where(pit[None], water, ground)


def _worked_ground(tint: np.ndarray, season: float, filled: np.ndarray,
                   water: np.ndarray) -> np.ndarray:
    """Reflectance ``(band, n)`` of the dug part of partly dug pixels: dry spoil, wet spoil
    (more of it in the rains), once the pits have filled turbid water in them, and weeds."""
    variation = (tint - 1.0) / 0.06  # the tint's smooth noise, about -2.5..2.5
    wet = np.clip(0.1 + 0.2 * season + 0.06 * variation, 0.0, 0.6)
    pits = np.where(filled, np.clip(0.1 + 0.03 * variation, 0.0, 0.25), 0.0)
    dry = (1 - wet) * (1 - pits)
    spoil = (dry * spectra.DUG_GRAVEL[:, None] + wet * (1 - pits) * spectra.WET_SPOIL[:, None]
             + pits * water)
    # Weeds take hold on spoil between the pits, green in the rains and dry after them.
    weeds = season * spectra.GREEN_VEGETATION + (1 - season) * spectra.DRY_GRASS
    return ((1 - WORKED_WEEDS) * spoil + WORKED_WEEDS * weeds[:, None]).astype("float32")


def build_world(grid: GeoBox, months: MonthRange, seed: int, stream: int = 0,
                ground: Ground | None = None) -> World:
    """Draw a world on ``grid`` whose digging unfolds over ``months``.

    ``stream`` separates worlds of one seed (the archive passes a number derived from the
    site's name, so two sites of one seed differ). ``ground``: which hardships of real ground
    the world has (default: all, :class:`~.ground.Ground`).
    """
    ground = Ground() if ground is None else ground
    rng = np.random.default_rng([seed, 20240611, stream])
    # The hardships draw from a generator of their own: the rest of a world stays as it was.
    hard = np.random.default_rng([seed, 20261204, stream])
    height, width = grid.shape.yx
    shape = (height, width)
    area_km2 = height * width * PIXEL_M**2 / 1e6
    start_day = _days(months.first)
    end_day = _days(months.last + 1)
    years = Years.draw(hard, int(str(months.first)[:4]), int(str(months.last)[:4]),
                       ground.varying_years)

    river_lines, channel_px = _rivers(rng, shape)
    river_dist_m = (ndimage.distance_transform_edt(~channel_px) * PIXEL_M).astype("float32")
    channel = river_dist_m <= LOW_WATER_M
    bed_m = None
    if ground.riverbed:
        low, high = RIVERBED_M
        bed_m = np.clip((low + high) / 2 + (high - low) / 4 * smooth_noise(hard, shape, 40),
                        low, high).astype("float32")
    road = _roads(hard, shape) if ground.roads else np.zeros(shape, dtype=bool)
    forest_edge = 70.0 + 40.0 * smooth_noise(rng, shape, 12)
    if bed_m is None:
        forest = (river_dist_m < forest_edge) & ~channel
    else:  # gallery forest on the banks, beyond the bed
        forest = (river_dist_m < forest_edge + bed_m) & (river_dist_m > bed_m)
    density = np.clip(0.85 + 0.12 * smooth_noise(rng, shape, 25), 0.6, 1.0)
    dry_share = np.clip(0.7 + 0.15 * smooth_noise(rng, shape, 30), 0.3, 1.0)

    banks_m = np.float32(15.0) if bed_m is None else bed_m + 5.0
    dig_day, dig_site, dig_share, pit, sites = _digging(
        rng, hard if ground.partial_digging else None, shape, river_lines,
        (river_dist_m > banks_m) & ~road, area_km2, start_day, end_day)
    dug_any = np.isfinite(dig_day)
    forest &= ~dug_any & ~road
    field, field_vigour = _fields(rng, shape, river_dist_m, dig_day, area_km2)
    field &= ~road
    near_river = river_dist_m < (40.0 if bed_m is None else bed_m + 30.0)
    burns = _burns(rng, shape, area_km2, start_day, end_day,
                   blocked=field | forest | channel | near_river | road |
                   ndimage.binary_dilation(dug_any, iterations=5))
    gravel_tint = np.clip(1.0 + 0.06 * smooth_noise(rng, shape, 4), 0.85, 1.15)
    return World(
        grid=grid, months=months, river_dist_m=river_dist_m, channel=channel, forest=forest,
        density=density.astype("float32"), dry_share=dry_share.astype("float32"), field=field,
        field_vigour=field_vigour, burns=burns, dig_day=dig_day, dig_site=dig_site, pit=pit,
        sites=sites, gravel_tint=gravel_tint.astype("float32"), ground=ground, years=years,
        dig_share=dig_share, bed_m=bed_m, road=road,
    )


def _roads(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Laterite tracks: gently winding lines across the world, one or two pixels wide."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width].astype("float32")
    road = np.zeros(shape, dtype=bool)
    for _ in range(ROADS):
        theta = rng.uniform(0, np.pi)
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        along = (yy - cy) * np.cos(theta) + (xx - cx) * np.sin(theta)
        across = -(yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)
        across += rng.uniform(5, 25) * np.sin(2 * np.pi * along / rng.uniform(150, 400)
                                              + rng.uniform(0, 6.3))
        road |= np.abs(across) < rng.uniform(*ROAD_WIDTH_PX) / 2
    return road

def _rivers(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[list[np.ndarray], np.ndarray]:
    """A meandering main river across the world and one tributary; centre lines in pixels."""
    height, width = shape
    size = max(height, width)
    lines = []
    angle = rng.uniform(0, np.pi)
    centre = np.array([height / 2, width / 2]) + rng.uniform(-0.15, 0.15, 2) * [height, width]
    for k in range(2):
        s = np.arange(-size, size, 0.5)
        offset = (
            rng.uniform(0.02, 0.05) * size * np.sin(2 * np.pi * s / rng.uniform(0.3, 0.6) / size
                                                    + rng.uniform(0, 6.3))
            + rng.uniform(3, 8) * np.sin(2 * np.pi * s / rng.uniform(40, 90))
        )
        direction = np.array([np.sin(angle), np.cos(angle)])
        normal = np.array([-direction[1], direction[0]])
        pts = centre[None] + s[:, None] * direction[None] + offset[:, None] * normal[None]
        if k == 1:  # the tributary starts on the main river and runs off one way only
            pts = pts[len(s) // 2:]
        inside = (pts[:, 0] >= 0) & (pts[:, 0] < height) & (pts[:, 1] >= 0) & (pts[:, 1] < width)
        lines.append(pts[inside])
        anchor = lines[0][len(lines[0]) // 3] if len(lines[0]) else centre
        centre = anchor
        angle = angle + rng.choice([-1, 1]) * rng.uniform(0.6, 1.2)
    channel = np.zeros(shape, dtype=bool)
    for pts in lines:
        rows = np.clip(pts[:, 0].astype(int), 0, height - 1)
        cols = np.clip(pts[:, 1].astype(int), 0, width - 1)
        channel[rows, cols] = True
    return lines, channel


def _digging(rng: np.random.Generator, partial: np.random.Generator | None,
             shape: tuple[int, int], river_lines: list[np.ndarray], diggable: np.ndarray,
             area_km2: float, start_day: float, end_day: float,
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[DiggingSite]]:
    """Digging sites near the rivers: each pixel's dig day, site, dug share and pit.

    ``partial`` (the hardships' generator) gives workings partly dug pixels: a core share per
    site, varying from pixel to pixel and falling off to zero past the working's edge. Without
    it every dug pixel is dug whole.
    """
    height, width = shape
    dig_day = np.full(shape, np.inf, dtype="float32")
    dig_site = np.full(shape, -1, dtype="int32")
    dig_share = np.zeros(shape, dtype="float32")
    sites: list[DiggingSite] = []
    points = np.concatenate([p for p in river_lines if len(p)]) if river_lines else np.zeros((0, 2))
    n_sites = max(6, round(DIG_SITES_PER_KM2 * area_km2))
    span = end_day - start_day
    wobble = smooth_noise(rng, shape, 6)
    pits = smooth_noise(rng, shape, 3) > 0.55
    share_noise = smooth_noise(partial, shape, 2) if partial is not None else None
    reach = SHARE_FALLOFF[1] if partial is not None else 1.0
    for _ in range(n_sites):
        anchor = points[rng.integers(len(points))] if len(points) else rng.uniform(0, 1, 2) * shape
        offset_px = rng.uniform(3, 20) * rng.choice([-1, 1], size=2)
        cy, cx = anchor + offset_px
        radius_px = rng.uniform(5, 20)
        if rng.random() < PREEXISTING_SHARE:
            start = start_day - rng.uniform(30, 1000)
        else:
            start = start_day + rng.uniform(0, max(span - 45, 1))
        grow = rng.uniform(60, 300)
        end = start + grow + rng.uniform(90, 540)
        site = DiggingSite(start, grow, end, rng.uniform(*REGROW_DAYS))
        core = partial.uniform(*CORE_SHARE) if partial is not None else 1.0
        r0, r1 = int(max(0, cy - 2 * radius_px)), int(min(height, cy + 2 * radius_px + 1))
        c0, c1 = int(max(0, cx - 2 * radius_px)), int(min(width, cx + 2 * radius_px + 1))
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        priority = np.hypot(yy - cy, xx - cx) / radius_px * (1 + 0.3 * wobble[r0:r1, c0:c1])
        day = (start + np.clip(priority, 0, None) * grow).astype("float32")
        take = (priority < reach) & diggable[r0:r1, c0:c1] & (day < dig_day[r0:r1, c0:c1])
        if not take.any():
            continue
        if share_noise is None:
            share = np.ones(priority.shape, dtype="float32")
        else:
            falloff = np.clip((SHARE_FALLOFF[1] - priority)
                              / (SHARE_FALLOFF[1] - SHARE_FALLOFF[0]), 0.0, 1.0)
            share = (np.clip(core + 0.08 * share_noise[r0:r1, c0:c1], 0.4, 0.97)
                     * falloff).astype("float32")
            take &= share > 0.02
        dig_day[r0:r1, c0:c1][take] = day[take]
        dig_site[r0:r1, c0:c1][take] = len(sites)
        dig_share[r0:r1, c0:c1][take] = share[take]
        sites.append(site)
    # Whole-pixel pits (ponds) where the working is dense.
    pit = pits & np.isfinite(dig_day) & (dig_share >= (0.8 if partial is not None else 0.5))
    dig_share[pit] = 1.0
    return dig_day, dig_site, dig_share, pit, sites

def _fields(rng: np.random.Generator, shape: tuple[int, int], river_dist_m: np.ndarray,
            dig_day: np.ndarray, area_km2: float) -> tuple[np.ndarray, np.ndarray]:
    height, width = shape
    field = np.zeros(shape, dtype=bool)
    vigour = np.ones(shape, dtype="float32")
    blocked = (river_dist_m < 150) | ndimage.binary_dilation(np.isfinite(dig_day), iterations=6)
    for _ in range(round(FIELDS_PER_KM2 * area_km2)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        half_a, half_b = rng.uniform(4, 12), rng.uniform(3, 9)
        theta = rng.uniform(0, np.pi)
        r0, r1 = int(max(0, cy - 13)), int(min(height, cy + 14))
        c0, c1 = int(max(0, cx - 13)), int(min(width, cx + 14))
        if r0 >= r1 or c0 >= c1:
            continue
        yy, xx = np.mgrid[r0:r1, c0:c1]
        u = (yy - cy) * np.cos(theta) + (xx - cx) * np.sin(theta)
        v = -(yy - cy) * np.sin(theta) + (xx - cx) * np.cos(theta)
        rect = (np.abs(u) < half_a) & (np.abs(v) < half_b) & ~blocked[r0:r1, c0:c1]
        field[r0:r1, c0:c1] |= rect
        vigour[r0:r1, c0:c1][rect] = rng.uniform(0.75, 1.0)
    return field, vigour


def _burns(rng: np.random.Generator, shape: tuple[int, int], area_km2: float, start_day: float,
           end_day: float, blocked: np.ndarray) -> list[Burn]:
    """Burn blobs in every dry season (December to March) the archive touches."""
    height, width = shape
    burns = []
    first_year = int(str(np.datetime64(int(start_day), "D"))[:4]) - 1
    last_year = int(str(np.datetime64(int(end_day), "D"))[:4])
    for year in range(first_year, last_year + 1):
        season_start = _days(np.datetime64(f"{year}-12-01"))
        for _ in range(max(1, round(BURNS_PER_KM2 * area_km2))):
            day = season_start + rng.uniform(0, 120)
            if not (start_day - 6 * BURN_FADE_DAYS <= day < end_day):
                continue
            cy, cx = rng.uniform(0, height), rng.uniform(0, width)
            radius = rng.uniform(10, 40)
            r0, r1 = int(max(0, cy - 2 * radius)), int(min(height, cy + 2 * radius + 1))
            c0, c1 = int(max(0, cx - 2 * radius)), int(min(width, cx + 2 * radius + 1))
            if r0 >= r1 or c0 >= c1:
                continue
            yy, xx = np.mgrid[r0:r1, c0:c1]
            wobble = smooth_noise(rng, (r1 - r0, c1 - c0), 5)
            blob = (np.hypot(yy - cy, xx - cx) / radius * (1 + 0.3 * wobble) < 1)
            blob &= ~blocked[r0:r1, c0:c1]
            if blob.any():
                burns.append(Burn(day, r0, c0, blob))
    return burns
