"""Static maps of the report: a site-month's true-colour composite with its digging areas.

Drawn with matplotlib on the site's UTM grid from the month's ``composite.tif`` (read through
rasterio at no more than :data:`MAP_MAX_PX` a side) and ``disturbed.geojson`` (reprojected with
geopandas), with the site's outline, a scale bar (matplotlib-scalebar), a north arrow pointing to
true north (the grid's meridian convergence, from pyproj) and a legend. Nothing is fetched.

Colours are those of the maps for analysts (Okabe-Ito, colour-blind safe): pre-existing digging
sky blue, new digging before the report's period orange, new digging within it reddish purple,
each outline over a dark casing.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely.geometry
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from pyproj import Transformer

from ..products.encoding import decode

#: Size of a map, inches, and its resolution.
MAP_SIZE_IN = (3.4, 3.6)
MAP_DPI = 150
#: Pixels a side read of the composite at most (a full site is read from its overviews).
MAP_MAX_PX = 1200
#: Reflectance percentiles stretched to black and white.
STRETCH_PCT = (2.0, 98.0)
#: Outline colours: pre-existing, new before the period, new within it; casing; site outline.
PREEXISTING = "#56B4E9"
NEW_BEFORE = "#E69F00"
NEW_WITHIN = "#CC79A7"
CASING = "#111111"
SITE_OUTLINE = "#ffffff"
#: Bands of the composite drawn as red, green, blue (1-based: red, green, blue).
RGB_BANDS = (3, 2, 1)


def _rgb(path: Path) -> tuple[np.ndarray, tuple[float, float, float, float], Any]:
    """The composite's true colour (0-1, NaN where not observed), its extent and CRS."""
    with rasterio.open(path) as src:
        factor = max(1, math.ceil(max(src.shape) / MAP_MAX_PX))
        shape = (math.ceil(src.height / factor), math.ceil(src.width / factor))
        # Nearest: a nodata pixel must not be averaged into its neighbours' colour.
        bands = [decode(src.read(b, out_shape=shape), src.scales[b - 1], src.offsets[b - 1],
                        src.nodata) for b in RGB_BANDS]
        bounds, crs = src.bounds, src.crs
    rgb = np.dstack(bands).astype("float32")
    seen = np.isfinite(rgb).all(axis=2)
    if seen.any():
        low, high = np.nanpercentile(rgb[seen], STRETCH_PCT)
        rgb = np.clip((rgb - low) / max(high - low, 1e-6), 0, 1)
    rgba = np.dstack([np.nan_to_num(rgb, nan=0.85), np.where(seen, 1.0, 0.0)])
    return rgba, (bounds.left, bounds.right, bounds.bottom, bounds.top), crs


def _north_angle(crs: Any, extent: tuple[float, float, float, float]) -> float:
    """Degrees from grid north to true north at the map's centre (clockwise positive)."""
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    to_grid = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    x, y = (extent[0] + extent[1]) / 2, (extent[2] + extent[3]) / 2
    lon, lat = to_lonlat.transform(x, y)
    north_x, north_y = to_grid.transform(lon, lat + 0.01)
    return math.degrees(math.atan2(north_x - x, north_y - y))


def site_map(composite: Path, areas: Mapping[str, Any] | None,
             outline: Mapping[str, Any] | None, title: str, period_start: str,
             caption_month: str) -> str:
    """A PNG map as a ``data:`` URI.

    Parameters
    ----------
    composite
        The month's ``composite.tif``.
    areas
        The month's ``disturbed.geojson`` (its digging areas), or None.
    outline
        The site's polygon (GeoJSON, WGS84), or None to draw the grid's extent.
    title
        Title above the map (plain text).
    period_start
        First month of the report: new digging first detected from it on is "within".
    caption_month
        The month whose products are drawn, named under the map.
    """
    import geopandas
    from matplotlib_scalebar.scalebar import ScaleBar

    rgba, extent, crs = _rgb(composite)
    figure = Figure(figsize=MAP_SIZE_IN, dpi=MAP_DPI)
    axes = figure.add_axes((0.02, 0.12, 0.96, 0.8))
    axes.imshow(rgba, extent=extent, interpolation="nearest")
    counts = {"preexisting": 0, "before": 0, "within": 0}
    features = list((areas or {}).get("features") or [])
    if features:
        frame = geopandas.GeoDataFrame.from_features(features, crs="EPSG:4326").to_crs(crs)
        for status, first, geometry in zip(frame["status"], frame["first_detected"],
                                           frame.geometry, strict=True):
            kind = ("preexisting" if status == "preexisting"
                    else "within" if str(first or "") >= period_start else "before")
            counts[kind] += 1
            colour = {"preexisting": PREEXISTING, "before": NEW_BEFORE, "within": NEW_WITHIN}
            for polygon in getattr(geometry, "geoms", [geometry]):
                xs, ys = polygon.exterior.xy
                axes.plot(xs, ys, color=CASING, linewidth=2.2, solid_joinstyle="round")
                axes.plot(xs, ys, color=colour[kind], linewidth=1.1, solid_joinstyle="round")
    if outline is not None:
        site = geopandas.GeoSeries([shapely.geometry.shape(outline)],
                                   crs="EPSG:4326").to_crs(crs)
        for polygon in getattr(site.iloc[0], "geoms", [site.iloc[0]]):
            xs, ys = polygon.exterior.xy
            axes.plot(xs, ys, color=CASING, linewidth=2.4)
            axes.plot(xs, ys, color=SITE_OUTLINE, linewidth=1.2, linestyle=(0, (4, 2)))
    axes.set_xlim(extent[0], extent[1])
    axes.set_ylim(extent[2], extent[3])
    axes.set_xticks([])
    axes.set_yticks([])
    axes.add_artist(ScaleBar(1, "m", location="lower left", box_alpha=0.75, font_properties={
        "size": 6}, length_fraction=0.3))
    angle = math.radians(_north_angle(crs, extent))
    tip = (0.92 + 0.06 * math.sin(angle), 0.80 + 0.1 * math.cos(angle))
    axes.annotate("N", xy=tip, xytext=(0.92, 0.80), xycoords="axes fraction",
                  textcoords="axes fraction", ha="center", va="center", fontsize=7,
                  fontweight="bold", color="#111111",
                  bbox={"boxstyle": "circle,pad=0.15", "fc": "white", "ec": "none",
                        "alpha": 0.8},
                  arrowprops={"arrowstyle": "-|>", "color": "#111111", "linewidth": 1.2})
    axes.set_title(title, fontsize=8, loc="left")
    handles = [Line2D([], [], color=c, linewidth=2, label=f"{label} ({counts[k]})")
               for k, c, label in (("preexisting", PREEXISTING, "pre-existing"),
                                   ("before", NEW_BEFORE, "new, before the period"),
                                   ("within", NEW_WITHIN, "new, within the period"))]
    handles.append(Line2D([], [], color="#555555", linewidth=1.2, linestyle=(0, (4, 2)),
                          label="site outline" if outline is not None else "grid extent"))
    figure.legend(handles=handles, loc="lower center", ncols=2, fontsize=5.5, frameon=False,
                  bbox_to_anchor=(0.5, 0.0))
    figure.text(0.02, 0.095, f"{caption_month}; {crs.to_string()}", fontsize=5, color="#555555")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
