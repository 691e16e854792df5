"""Raster products as map images, and the colours of digging areas (for :mod:`kpgeo.products.maps`).

Leaflet draws an image overlay by stretching it linearly between two latitude/longitude corners
in Web Mercator. The products lie on the site's UTM grid, so each is reprojected to EPSG:3857
first; the image corners are then exact. In true colour, pixels of the grid that no clear
observation saw (cloud-masked all month) are hatched grey (:data:`NO_VIEW_HATCH`, with a legend
entry), never left black or transparent, where they would pass for dark ground or the basemap;
outside the grid the image is transparent. Other overlays are transparent where they have no
data.

Colours (colour-blind safe, and never shared between what they encode): the change score is a
sequential viridis ramp, the digging areas categorical Okabe-Ito colours, sky blue for
pre-existing and orange to reddish purple, by first-detection month, for new digging (no
viridis stop is orange, red or pink); radar's findings (:func:`radar_image`) Okabe-Ito blue,
solid where radar alone dated new digging and striped where a later clear optical view
withdrew it. Every outline is drawn over a dark casing
(:data:`CASING_COLOUR`), so it stays visible on bright bare ground and on white clouds.
"""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import shapely.geometry
from rasterio.features import geometry_mask
from rasterio.transform import from_bounds
from rasterio.warp import (
    Resampling,
    calculate_default_transform,
    reproject,
    transform,
    transform_geom,
)

from ..methods.change_bands import CHANGE_BANDS, DIGGING_NEW
from .encoding import decode

WEB_MERCATOR = "EPSG:3857"
#: zlib level of overlay PNGs. With the "Sub" filter, level 1 makes a true-colour image as
#: small as level 6 without a filter, in a fraction of the time.
PNG_ZLEVEL = 1
#: PNG filter type "Sub": each byte is stored as the difference to the pixel on its left.
_PNG_FILTER_SUB = 1
#: Longest side of an overlay image. A 6 km demo window is 600 px at 10 m and stays native;
#: a full 35 km site is drawn coarser, so three overlays keep a page near 10 MB.
MAX_IMAGE_PX = 2048
#: Surface reflectance drawn as white in true colour: savanna, bare gravel and pits all fall
#: below it, so a fixed stretch keeps months comparable (no per-month contrast).
REFLECTANCE_WHITE = 0.3
#: Gamma of the true-colour stretch: lifts the dark vegetation and water a little.
TRUE_COLOUR_GAMMA = 1.3
#: Change score (NDVI drop below the baseline's least-green state) drawn transparent below the
#: first value and saturated at the second: bare digging scores about 0.1 to 0.7, while
#: unchanged land stays near or below 0.
CHANGE_SCORE_RANGE = (0.05, 0.6)
#: Colour stops of the change score, weak to strong: viridis (perceptually uniform, readable
#: with every common colour-vision deficiency), apart from the digging areas' colours.
CHANGE_SCORE_COLOURS = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
#: Opacity (0-255) of the weakest and the strongest change score drawn.
CHANGE_SCORE_ALPHA = (120, 230)
#: Outline of pre-existing digging: Okabe-Ito sky blue, cold, so it never reads as a
#: detection month.
PREEXISTING_COLOUR = "#56b4e9"
#: Stops for new digging by first-detection month, earliest to latest: Okabe-Ito orange,
#: vermillion and reddish purple (warm, against the pre-existing blue for every colour vision).
DETECTION_COLOURS = ("#e69f00", "#d55e00", "#cc79a7")
#: Dark casing drawn under every outline (digging areas, site outline).
CASING_COLOUR = "#1a1a1a"
#: Outline of the site: white dashes on the casing.
SITE_OUTLINE_COLOUR = "#ffffff"
#: Hatching of true-colour pixels that no clear observation saw: two greys in diagonal
#: stripes :data:`NO_VIEW_STRIPE_PX` wide (no ground looks striped).
NO_VIEW_HATCH = ("#4d4d4d", "#a6a6a6")
NO_VIEW_STRIPE_PX = 3
#: Radar's findings: Okabe-Ito blue, darker than the pre-existing sky blue and apart from
#: viridis's blues. Radar-only new digging solid; a finding a later clear optical view
#: withdrew in stripes of it, :data:`NO_VIEW_STRIPE_PX` wide, with clear gaps.
RADAR_COLOUR = "#0072b2"
#: Opacity (0-255) of radar-only new digging and of a withdrawn finding's stripes.
RADAR_ALPHA, RADAR_WITHDRAWN_ALPHA = 210, 170


@dataclass(frozen=True)
class MapImage:
    """An RGBA image in Web Mercator and its corners as ``[[south, west], [north, east]]``."""

    rgba: np.ndarray
    bounds: list[list[float]]


def read_web_mercator(path: str | Path, bands: Sequence[int],
                      max_px: int = MAX_IMAGE_PX) -> tuple[np.ndarray, list[list[float]]]:
    """Bands of a raster reprojected to Web Mercator (nearest neighbour, NaN = no data).

    Parameters
    ----------
    path
        A product on the site's UTM grid (``composite.tif``, ``change.tif``).
    bands
        1-based band numbers.
    max_px
        Longest side of the result in pixels; coarser than native only when exceeded.

    Returns
    -------
    array, bounds
        ``(band, y, x)`` float32 and the corners ``[[south, west], [north, east]]``.

    Examples
    --------
    >>> rgb, bounds = read_web_mercator("composite.tif", [3, 2, 1])  # doctest: +SKIP
    """
    with rasterio.open(path, **_coarsest_enough(path, max_px)) as src:
        affine, width, height = calculate_default_transform(
            src.crs, WEB_MERCATOR, src.width, src.height, *src.bounds)
        scale = max(width, height) / max_px
        if scale > 1:
            right, bottom = affine @ (width, height)
            width, height = max(1, round(width / scale)), max(1, round(height / scale))
            affine = from_bounds(affine.c, bottom, right, affine.f, width, height)
        out = np.full((len(bands), height, width), np.nan, dtype="float32")
        for i, band in enumerate(bands):
            # Stored integers are scaled afterwards (nearest keeps them whole); their nodata
            # becomes NaN here.
            reproject(source=rasterio.band(src, band), destination=out[i],
                      src_nodata=np.nan if src.nodata is None else src.nodata,
                      dst_nodata=np.nan, dst_transform=affine,
                      dst_crs=WEB_MERCATOR, resampling=Resampling.nearest)
            decode(out[i], src.scales[band - 1], src.offsets[band - 1], None, in_place=True)
    right, bottom = affine @ (width, height)
    lons, lats = transform(WEB_MERCATOR, "EPSG:4326", [affine.c, right], [bottom, affine.f])
    return out, [[lats[0], lons[0]], [lats[1], lons[1]]]


def _coarsest_enough(path: str | Path, max_px: int) -> dict[str, int]:
    """``rasterio.open``'s arguments for the coarsest overview of ``path`` still at least
    ``max_px`` on its longest side (none: the full resolution): a large site's map is drawn
    from its COG's overviews, as a GIS would, rather than from every pixel."""
    with rasterio.open(path) as src:
        longest, factors = max(src.width, src.height), src.overviews(1)
    levels = [i for i, factor in enumerate(factors) if longest / factor >= max_px]
    return {"overview_level": levels[-1]} if levels else {}


def true_colour_image(composite: str | Path) -> MapImage:
    """The true-colour overlay of a ``composite.tif`` (bands found by their descriptions),
    its grid's pixels without a clear view hatched."""
    with rasterio.open(composite) as src:
        numbers = [src.descriptions.index(name) + 1 for name in ("red", "green", "blue")]
    (red, green, blue), bounds = read_web_mercator(composite, numbers)
    return MapImage(true_colour(red, green, blue, grid_footprint(composite, red.shape, bounds)),
                    bounds)


def grid_footprint(path: str | Path, shape: tuple[int, ...],
                   bounds: list[list[float]]) -> np.ndarray:
    """Which pixels of a Web Mercator image of ``shape`` and ``bounds`` (as
    :func:`read_web_mercator` gives them) lie on the raster's grid: those whose centres do,
    as nearest-neighbour resampling picks them."""
    with rasterio.open(path) as src:
        box = shapely.geometry.box(*src.bounds)
        # Densified: a UTM grid's straight edges curve a little in Web Mercator.
        edge = shapely.segmentize(box, max(box.length / 400, 1.0))
        footprint = transform_geom(src.crs, WEB_MERCATOR, shapely.geometry.mapping(edge))
    (south, west), (north, east) = bounds
    xs, ys = transform("EPSG:4326", WEB_MERCATOR, [west, east], [south, north])
    affine = from_bounds(xs[0], ys[0], xs[1], ys[1], shape[-1], shape[-2])
    inside: np.ndarray = geometry_mask([footprint], out_shape=tuple(shape[-2:]),
                                       transform=affine, invert=True)
    return inside


def change_image(change: str | Path) -> MapImage:
    """The change-score overlay of a ``change.tif``."""
    (score,), bounds = read_web_mercator(change, [CHANGE_BANDS.index("change_score") + 1])
    return MapImage(change_colour(score), bounds)


@dataclass(frozen=True)
class RadarImage(MapImage):
    """The radar overlay (:func:`radar_image`), and whether it shows withdrawn findings."""

    withdrawn: bool


def radar_image(change: str | Path) -> RadarImage | None:
    """The radar overlay of a ``change.tif``: new digging radar alone dated (radar-dated,
    not optically confirmed, mapped as new digging) and the findings a later clear optical view
    withdrew (:mod:`kpgeo.methods.fusion`); None when the file has no radar bands (an older
    product) or radar found neither there (a run without radar)."""
    with rasterio.open(change) as src:
        if src.count < len(CHANGE_BANDS):
            return None
    (since, confirmed, digging), bounds = read_web_mercator(
        change, [CHANGE_BANDS.index(name) + 1 for name in ("radar_since", "confirmed",
                                                            "digging")])
    only, withdrawn = radar_findings(since, confirmed, digging)
    if not (only.any() or withdrawn.any()):
        return None
    return RadarImage(radar_colour(only, withdrawn), bounds, bool(withdrawn.any()))


def radar_findings(since: np.ndarray, confirmed: np.ndarray,
                   digging: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From ``change.tif``'s ``radar_since``, ``confirmed`` and ``digging`` bands (NaN: no
    data), the new digging radar alone dated (the pixels each area's ``evidence`` counts) and
    the findings withdrawn (``radar_since`` < 0)."""
    with np.errstate(invalid="ignore"):
        only = (since > 0) & (confirmed == 0) & (digging == DIGGING_NEW)
        withdrawn = since < 0
    return only, withdrawn


def radar_colour(only: np.ndarray, withdrawn: np.ndarray) -> np.ndarray:
    """RGBA ``uint8`` of radar's findings (:func:`radar_findings`): :data:`RADAR_COLOUR`
    where radar alone dated new digging, in stripes where a finding was withdrawn,
    transparent elsewhere."""
    diagonal = np.arange(only.shape[0])[:, None] + np.arange(only.shape[1])[None, :]
    stripe = (diagonal // NO_VIEW_STRIPE_PX) % 2 == 0
    out = np.zeros((*only.shape, 4), dtype="uint8")
    out[..., :3] = _hex_rgb(RADAR_COLOUR)
    out[..., 3] = np.where(only, RADAR_ALPHA,
                           np.where(withdrawn & stripe, RADAR_WITHDRAWN_ALPHA, 0))
    return out


def radar_css(withdrawn: bool = False) -> str:
    """A CSS background like :func:`radar_colour`'s (for the legend): solid, or striped for
    withdrawn findings."""
    r, g, b = _hex_rgb(RADAR_COLOUR)
    if not withdrawn:
        return f"rgba({r}, {g}, {b}, {RADAR_ALPHA / 255:.2f})"
    colour = f"rgba({r}, {g}, {b}, {RADAR_WITHDRAWN_ALPHA / 255:.2f})"
    return f"repeating-linear-gradient(135deg, {colour} 0 3px, transparent 3px 6px)"


def true_colour(red: np.ndarray, green: np.ndarray, blue: np.ndarray,
                footprint: np.ndarray | None = None) -> np.ndarray:
    """RGBA ``uint8`` of reflectance bands: 0 to :data:`REFLECTANCE_WHITE` stretched with
    :data:`TRUE_COLOUR_GAMMA`; where any band has no data, hatched (:data:`NO_VIEW_HATCH`)
    within ``footprint`` (the raster's grid, :func:`grid_footprint`), transparent outside."""
    rgb = np.stack([red, green, blue], axis=-1)
    valid = np.isfinite(rgb).all(axis=-1)
    with np.errstate(invalid="ignore"):
        scaled = np.clip(np.nan_to_num(rgb) / REFLECTANCE_WHITE, 0.0, 1.0) ** (1 / TRUE_COLOUR_GAMMA)
    out = np.zeros((*red.shape, 4), dtype="uint8")
    out[..., :3] = np.round(scaled * 255).astype("uint8")
    out[..., 3] = np.where(valid, 255, 0)
    if footprint is not None:
        unseen = footprint & ~valid
        diagonal = np.arange(red.shape[0])[:, None] + np.arange(red.shape[1])[None, :]
        stripe = (diagonal // NO_VIEW_STRIPE_PX) % 2
        hatch = np.array([_hex_rgb(c) for c in NO_VIEW_HATCH], dtype="uint8")[stripe]
        out[..., :3] = np.where(unseen[..., None], hatch, out[..., :3])
        out[..., 3] = np.where(unseen, 255, out[..., 3])
    return out


def hatch_css(colours: Sequence[str] = NO_VIEW_HATCH) -> str:
    """A CSS background like the hatching of :func:`true_colour` (for the legend)."""
    a, b = colours
    # 135deg: stripes rising to the right, as the image's (row + column) stripes do.
    return f"repeating-linear-gradient(135deg, {a} 0 3px, {b} 3px 6px)"


def _hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def ramp(colours: Sequence[str], t: np.ndarray | float) -> np.ndarray:
    """Colours interpolated linearly along ``colours`` at ``t`` in 0..1, as ``(..., 3)`` floats."""
    stops = np.array([_hex_rgb(c) for c in colours], dtype="float64")
    position = np.clip(np.asarray(t, dtype="float64"), 0.0, 1.0) * (len(colours) - 1)
    return np.stack([np.interp(position, np.arange(len(colours)), stops[:, k])
                     for k in range(3)], axis=-1)


def change_colour(score: np.ndarray) -> np.ndarray:
    """RGBA ``uint8`` of a change score: :data:`CHANGE_SCORE_COLOURS` over
    :data:`CHANGE_SCORE_RANGE`; transparent below it and where there is no data."""
    low, high = CHANGE_SCORE_RANGE
    with np.errstate(invalid="ignore"):
        t = (np.nan_to_num(score, nan=low - 1.0) - low) / (high - low)
        shown = np.isfinite(score) & (score >= low)
    out = np.zeros((*score.shape, 4), dtype="uint8")
    out[..., :3] = np.round(ramp(CHANGE_SCORE_COLOURS, t)).astype("uint8")
    alpha = CHANGE_SCORE_ALPHA[0] + np.clip(t, 0, 1) * (CHANGE_SCORE_ALPHA[1] - CHANGE_SCORE_ALPHA[0])
    out[..., 3] = np.where(shown, np.round(alpha), 0).astype("uint8")
    return out


def png_data_uri(rgba: np.ndarray, zlevel: int = PNG_ZLEVEL) -> str:
    """An RGBA ``uint8`` image ``(y, x, 4)`` as a PNG ``data:`` URI."""
    height, width, bands = rgba.shape
    assert bands == 4 and rgba.dtype == np.uint8, (rgba.shape, rgba.dtype)
    flat = rgba.reshape(height, width * 4)
    filtered = flat.copy()
    filtered[:, 4:] = flat[:, 4:] - flat[:, :-4]  # uint8 arithmetic wraps, as PNG wants
    rows = np.concatenate([np.full((height, 1), _PNG_FILTER_SUB, "uint8"), filtered], axis=1)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    png = (b"\x89PNG\r\n\x1a\n"
           + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows.tobytes(), zlevel)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


#: Overlays with more pixels than this are WebP, not PNG: a full 35 km site's true-colour PNG
#: at :data:`MAX_IMAGE_PX` was 11.7 MB of base64, and a page holds three overlays.
WEBP_ABOVE_PX = 1024 * 1024
#: WebP quality of large overlays (lossy colour, lossless alpha): a picture to look at, the
#: values themselves are in the COGs.
WEBP_QUALITY = 80


def image_data_uri(rgba: np.ndarray) -> str:
    """An RGBA ``uint8`` overlay ``(y, x, 4)`` as a ``data:`` URI: PNG (exact) up to
    :data:`WEBP_ABOVE_PX` pixels, lossy WebP with its transparency kept above, so that a
    large site's page stays a few MB (every browser Leaflet supports shows WebP)."""
    if rgba.shape[0] * rgba.shape[1] <= WEBP_ABOVE_PX:
        return png_data_uri(rgba)
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="WEBP", quality=WEBP_QUALITY,
                                             method=2, exact=False)
    return "data:image/webp;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def css_gradient(colours: Sequence[str]) -> str:
    """A CSS ``linear-gradient`` through ``colours`` (for legends)."""
    return f"linear-gradient(to right, {', '.join(colours)})"


def detection_colour(month: str, detection_months: Sequence[str]) -> str:
    """The outline colour of new digging first detected in ``month``.

    ``detection_months`` is every month after the baseline of the run, in order, so a month
    keeps its colour on every month's map. A month outside it takes the nearest end.
    """
    if len(detection_months) <= 1 or month not in detection_months:
        t = 0.0 if not detection_months or month <= detection_months[0] else 1.0
    else:
        t = detection_months.index(month) / (len(detection_months) - 1)
    r, g, b = (round(float(v)) for v in ramp(DETECTION_COLOURS, t))
    return f"#{r:02x}{g:02x}{b:02x}"
