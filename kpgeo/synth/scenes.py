"""Synthetic Sentinel-2 L2A scenes of a :class:`~kpgeo.synth.world.World`.

A scene is the world's surface on the acquisition day seen through the atmosphere: harmattan
haze in the dry season, clouds (more in the rains; almost nothing clear in the months of long
rains the world's :class:`~.ground.Ground` names) whose thin edges Sen2Cor's SCL misses, cloud
shadows, occasional cirrus, sensor noise, a swath edge without data on some passes, and an
offset of up to about half a pixel from the true grid (misregistration between scenes).
Bands come as Earth Search Collection-1 digital numbers: ``DN = (reflectance + 0.1) / 0.0001``,
0 = no data; ``blue green red nir`` at 10 m, ``swir16 swir22 scl`` at 20 m.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..months import MonthRange
from . import spectra
from .world import World, _interp_month_table, smooth_noise

#: Sentinel-2 L2A digital numbers: reflectance = DN * SCALE + OFFSET (processing baseline ≥ 04.00).
SCALE = 0.0001
OFFSET = -0.1
NODATA = 0
#: Two satellites on one relative orbit revisit every 5 days at the equator.
REVISIT_DAYS = 5
#: A day Sentinel-2A passed; the 5-day schedule is counted from it.
SCHEDULE_EPOCH = np.datetime64("2015-07-04", "D")
#: Mean cloud fraction of a scene by month (dry Nov–Mar, rains Jun–Sep).
CLOUD_BY_MONTH = np.array([0.05, 0.05, 0.10, 0.22, 0.35, 0.50, 0.62, 0.70, 0.62, 0.40, 0.15, 0.06])
#: Harmattan dust strength by month (December to February).
HARMATTAN_BY_MONTH = np.array([1.0, 0.7, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.8])
#: Chance that a pass clips the site with its swath edge.
SWATH_EDGE_CHANCE = 0.12
#: Chance of a cirrus veil in a scene.
CIRRUS_CHANCE = 0.1
#: Cloud opacity from which SCL flags medium and high probability cloud.
SCL_CLOUD_MEDIUM = 0.30
SCL_CLOUD_HIGH = 0.60
#: Shadow strength from which SCL flags cloud shadow.
SCL_SHADOW = 0.35
#: Rows rendered at a time (even, so 20 m blocks never straddle two strips).
STRIP_ROWS = 256
#: Width of a cloud's edge from clear to opaque, in standard deviations of the cloud field.
CLOUD_EDGE_SD = 0.25
#: Mean cloud fraction of a scene in a month of long rains (almost no clear view).
LONG_RAINS_CLOUD = 0.985


@dataclass(frozen=True)
class Acquisition:
    """One pass over the site."""

    day: np.datetime64
    platform: str
    index: int
    """Pass number since :data:`SCHEDULE_EPOCH`; drives which tile grid the scene comes on."""


def schedule(months: MonthRange) -> list[Acquisition]:
    """All passes in ``months``: every 5 days, Sentinel-2A and -2B alternating."""
    first = np.datetime64(months.first, "D")
    stop = np.datetime64(months.last + 1, "D")
    k0 = int(np.ceil((first - SCHEDULE_EPOCH).astype(int) / REVISIT_DAYS))
    out = []
    k = k0
    while (day := SCHEDULE_EPOCH + k * REVISIT_DAYS) < stop:
        out.append(Acquisition(day, "sentinel-2a" if k % 2 == 0 else "sentinel-2b", k))
        k += 1
    return out


@dataclass
class SceneArrays:
    """Digital numbers of one scene on the world grid, and what the scene holds."""

    bands10: dict[str, np.ndarray]
    bands20: dict[str, np.ndarray]
    scl: np.ndarray
    cloud_pct: float
    nodata_pct: float
    shift_px: tuple[float, float] = (0.0, 0.0)
    """Offset of the scene from the true grid (rows, columns), in pixels: its misregistration."""


def render(world: World, acquisition: Acquisition, seed: int,
           cloudiness: float = 1.0, stream: int = 0) -> SceneArrays:
    """Render one acquisition of ``world`` as Collection-1 digital numbers.

    ``cloudiness`` scales the month's mean cloud cover (capped at 95 %); ``stream`` separates
    the weather of sites that share a seed.
    """
    day_number = int(acquisition.day.astype("int64"))
    rng = np.random.default_rng([seed, day_number, 2, stream])
    month_index = int(acquisition.day.astype("datetime64[M]").astype(int) % 12)
    height, width = world.shape

    harmattan = _interp_month_table(HARMATTAN_BY_MONTH, float(day_number))
    haze = (harmattan * rng.uniform(0.2, 1.0)) * spectra.HAZE[:, None, None]
    mean_cloud = float(min(CLOUD_BY_MONTH[month_index] * cloudiness, 0.95))
    month = acquisition.day.astype("datetime64[M]")
    if any(str(m) == str(month) for m in world.ground.long_rain_months()):
        mean_cloud = LONG_RAINS_CLOUD
    shift = _misregistration(np.random.default_rng([seed, day_number, 5, stream]),
                             world.ground.misregistration_px)
    cover = float(rng.beta(2 * mean_cloud / (1 - mean_cloud) + 0.05, 2.0))
    opacity = np.zeros((height, width), dtype="float32")
    if cover > 0.005:
        field = smooth_noise(rng, (height, width), rng.uniform(40, 120))
        threshold = np.quantile(field[::4, ::4], 1 - cover)
        opacity = np.clip((field - threshold) / CLOUD_EDGE_SD, 0, 1).astype("float32")
    offset = (-int(rng.uniform(15, 50)), -int(rng.uniform(30, 90)))
    shadow = np.roll(opacity, offset, axis=(0, 1)) * (1 - opacity)
    cirrus = np.zeros_like(opacity)
    if rng.random() < CIRRUS_CHANCE * (0.5 + mean_cloud):
        cirrus = (0.15 * np.clip(smooth_noise(rng, (height, width), 150) - 0.5, 0, 1)).astype(
            "float32"
        )
    veil = np.clip(opacity + cirrus, 0, 1)
    nodata = np.zeros((height, width), dtype=bool)
    if rng.random() < SWATH_EDGE_CHANCE:
        cols = np.arange(width)[None, :]
        rows = np.arange(height)[:, None]
        edge = rng.uniform(0.3, 0.9) * width + 0.1 * (rows - height / 2)
        nodata = (cols > edge) if rng.random() < 0.5 else (cols < width - edge)
    nodata20 = _block_max(nodata)

    dn10 = np.empty((4, height, width), dtype="uint16")
    dn20 = np.empty((2, height // 2, width // 2), dtype="uint16")
    scl = np.empty((height // 2, width // 2), dtype="uint8")
    for r0 in range(0, height, STRIP_ROWS):
        r1 = min(height, r0 + STRIP_ROWS)
        rows, half = slice(r0, r1), slice(r0 // 2, r1 // 2)
        refl = _surface(world, float(day_number), r0, r1, shift) + haze
        v = veil[rows][None]
        refl = (1 - v) * refl + v * spectra.CLOUD[:, None, None]
        refl *= (1 - 0.65 * shadow[rows])[None]
        refl += spectra.NOISE_SD[:, None, None] * rng.standard_normal(refl.shape, dtype="float32")
        strip = np.clip(np.round((refl[:4] - OFFSET) / SCALE), 1, 65535).astype("uint16")
        strip[:, nodata[rows]] = NODATA
        dn10[:, rows] = strip
        strip20 = np.clip(np.round((_block_mean(refl[4:]) - OFFSET) / SCALE), 1, 65535)
        strip20 = strip20.astype("uint16")
        strip20[:, nodata20[half]] = NODATA
        dn20[:, half] = strip20
        scl[half] = _scene_classification(refl, opacity[rows], shadow[rows], cirrus[rows],
                                          nodata20[half])
    valid20 = ~nodata20
    flagged = np.isin(scl, (3, 8, 9, 10)) & valid20
    return SceneArrays(
        bands10={b: dn10[i] for i, b in enumerate(spectra.BANDS[:4])},
        bands20={b: dn20[i] for i, b in enumerate(spectra.BANDS[4:])},
        scl=scl,
        cloud_pct=float(100 * flagged.sum() / max(valid20.sum(), 1)),
        nodata_pct=float(100 * nodata20.mean()),
        shift_px=shift,
    )


def _misregistration(rng: np.random.Generator, largest_px: float) -> tuple[float, float]:
    """A scene's offset (rows, columns) in pixels, uniform over the disc of ``largest_px``."""
    if largest_px <= 0:
        return (0.0, 0.0)
    radius = largest_px * np.sqrt(rng.uniform())
    angle = rng.uniform(0, 2 * np.pi)
    return (float(radius * np.sin(angle)), float(radius * np.cos(angle)))


def _surface(world: World, day: float, r0: int, r1: int,
             shift: tuple[float, float]) -> np.ndarray:
    """The world's surface on rows ``r0:r1``, offset by ``shift`` pixels (bilinear, as a
    resampled scene is): rendered a row wider on each side so that the strips join."""
    if shift == (0.0, 0.0):
        return world.surface(day, slice(r0, r1))
    e0, e1 = max(0, r0 - 1), min(world.shape[0], r1 + 1)
    wide = world.surface(day, slice(e0, e1))
    moved = ndimage.shift(wide, (0.0, *shift), order=1, mode="nearest")
    return moved[:, r0 - e0:r1 - e0]


def _block_mean(a: np.ndarray) -> np.ndarray:
    """Mean of 2 x 2 blocks (10 m to 20 m); four strided adds beat ``reshape().mean()``."""
    return (a[..., ::2, ::2] + a[..., 1::2, ::2] + a[..., ::2, 1::2] + a[..., 1::2, 1::2]) * 0.25


def _block_max(a: np.ndarray) -> np.ndarray:
    """Maximum of 2 x 2 blocks."""
    return np.maximum(np.maximum(a[::2, ::2], a[1::2, ::2]), np.maximum(a[::2, 1::2], a[1::2, 1::2]))


def _scene_classification(refl: np.ndarray, opacity: np.ndarray, shadow: np.ndarray,
                          cirrus: np.ndarray, nodata20: np.ndarray) -> np.ndarray:
    """An SCL band at 20 m in the manner of Sen2Cor: thick clouds and shadows flagged, thin
    edges and haze not."""
    blue, green, red, nir, swir16 = (_block_mean(refl[i]) for i in range(5))
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (nir - red) / (nir + red)
        mndwi = (green - swir16) / (green + swir16)
    scl = np.full(ndvi.shape, 5, dtype="uint8")
    scl[ndvi > 0.45] = 4
    scl[(blue + green + red) / 3 < 0.06] = 2
    scl[(mndwi > 0.2) & (nir < 0.12)] = 6
    scl[_block_max(shadow) > SCL_SHADOW] = 3
    scl[_block_max(cirrus) > 0.06] = 10
    alpha = _block_max(opacity)
    scl[alpha > SCL_CLOUD_MEDIUM] = 8
    scl[alpha > SCL_CLOUD_HIGH] = 9
    scl[nodata20] = 0
    return scl
