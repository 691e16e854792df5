"""One HTML map per site and month (docs/product.md §8 "Maps"): Folium only, from products on disk.

The page shows the month's true-colour composite and a baseline month's as switchable overlays
(pixels without a clear view hatched), the change score, the digging areas coloured by
first-detection month (pre-existing in a cold colour, dashed where the baseline saw them too
rarely to be sure) over a dark casing, the month's increment (the areas that grew or appeared
this month, ``new_ha_this_month`` > 0) outlined over them as a layer of its own, the site's
outline, popups, a legend (with how well the baseline saw the site), a layer control, a scale
bar, a measuring tool in hectares, and links to the previous and next month and to the index.
A run with radar adds radar's findings as a layer (:func:`~.map_layers.radar_image`: new
digging Sentinel-1 alone dated, and findings a later clear optical view withdrew), shown at
first in a month radar measured, with its legend entries; each area's popup names its
``evidence``.
A gap month's areas are those last measured (:mod:`kpgeo.products.measured`): its title bar
says so and claims no figure of the month. Everything is read from the month's
``composite.tif``, ``change.tif`` and ``disturbed.geojson`` (and the site's outline is given);
nothing is recomputed. A map of synthetic data says so in its title, its title bar, a banner
and a watermark over the whole map (:mod:`kpgeo.products.synthetic_label`).

Offline (the default) every script, style and image is inline (:mod:`kpgeo.products.offline`); the
OpenStreetMap basemap is the one thing that needs a network: an offline page starts with it
switched off, and says so when its tiles fail after it is switched on. Text from files (the site title, the digging areas' properties) never passes
through folium, which would evaluate ``{{ ... }}`` in it as a template:
:mod:`kpgeo.products.map_page` inserts it after rendering, HTML-escaped in markup, JSON-escaped in
scripts, and put into popups with ``textContent``, never as HTML. Months are checked to be
``YYYY-MM`` first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import folium
import folium.plugins
import rasterio
from folium.utilities import JsCode

from ..methods.baseline_seasons import SEASONS_MIN
from ..months import parse_month, parse_month_range
from . import map_page
from . import offline as offline_assets
from .htmlsafe import text, write_html
from .map_layers import (
    CASING_COLOUR,
    CHANGE_SCORE_COLOURS,
    CHANGE_SCORE_RANGE,
    PREEXISTING_COLOUR,
    SITE_OUTLINE_COLOUR,
    MapImage,
    RadarImage,
    change_image,
    css_gradient,
    detection_colour,
    hatch_css,
    image_data_uri,
    radar_css,
    radar_image,
    true_colour_image,
)
from .measured import ALL_MEASURED
from .synthetic_label import EXPLANATION, LABEL, is_synthetic

#: OpenStreetMap's standard tiles (tile usage policy: attribution, no bulk downloads).
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a>'
OSM_MAX_ZOOM = 19
#: Shown when a basemap tile fails to load (docs/product.md §8: tiles are all that needs a network).
TILES_NOTE = "basemap tiles need a network; the imagery layers work offline"
#: Zoom steps of a quarter level, so the site fills the window rather than the next whole level.
ZOOM_SNAP = 0.25
#: More detection months than this in one legend become a colour bar with its two ends.
LEGEND_MAX_MONTHS = 6
#: Products a month's map is drawn from.
_PRODUCTS = ("composite.tif", "change.tif", "disturbed.geojson")
_MONTH_DIR = re.compile(r"^\d{4}-\d{2}$")
#: Class names the page's own script and the tests find the layers by.
CLASS_MONTH, CLASS_BASELINE, CLASS_CHANGE, CLASS_DIGGING, CLASS_INCREMENT, CLASS_RADAR = (
    "kpgeo-month", "kpgeo-baseline", "kpgeo-change", "kpgeo-digging", "kpgeo-increment",
    "kpgeo-radar")
#: The radar layer's name in the layer control.
RADAR_LAYER = "Radar (Sentinel-1) findings"

#: Leaflet style of a digging area; its colour is set per area.
AREA_STYLE = {"weight": 2, "opacity": 0.95, "fillOpacity": 0.25}
#: Leaflet pane of the month's increment: above the digging areas (overlays are at 400), so
#: that re-showing them never hides it; clicks pass through it to the areas' popups.
INCREMENT_PANE = "kpgeo-increment"
#: The month's increment: a dark dashed line over the area's own coloured outline, so that it
#: reads as two-tone on bright gravel and dark savanna alike and as no detection colour.
INCREMENT_STYLE = {"color": "#111111", "weight": 3, "opacity": 0.95, "dashArray": "5 5",
                   "fill": False, "interactive": False, "pane": INCREMENT_PANE}
#: Style of a digging area under the mouse.
HIGHLIGHT_STYLE = {"weight": 4, "fillOpacity": 0.45}
#: Dashes of a pre-existing area the baseline saw too rarely to be sure of (``certainty``
#: ``low``).
LOW_CERTAINTY_DASHES = "5 4"
#: The dark casing under every outline: wider than the outline, so a dark edge shows on
#: each side of it on bright bare ground.
CASING_STYLE = {"color": CASING_COLOUR, "weight": 5, "opacity": 0.85, "fill": False}
#: The site's outline, over its own casing.
OUTLINE_STYLE = {"color": SITE_OUTLINE_COLOUR, "weight": 2, "opacity": 1.0, "fill": False,
                 "dashArray": "8 6"}
OUTLINE_CASING_STYLE = {**CASING_STYLE, "weight": 4}
#: Leaflet panes of the outlines, inside the overlay pane and above its images: the casings,
#: then the coloured outlines on top (the page's end script makes them).
PANE_CASING, PANE_AREAS = "kpgeoCasing", "kpgeoAreas"


def write_site_month_map(out_dir: str | Path, site_name: str, site_title: str, month: str,
                         months: Sequence[str], baseline_month: str, offline: bool = True,
                         outline: Mapping[str, Any] | None = None) -> Path:
    """Write ``<out_dir>/<site_name>/<month>/map.html`` from the month's products.

    Parameters
    ----------
    out_dir
        The run's output folder.
    site_name
        The site's slug (its folder name).
    site_title
        Human title, plain text from the site file; escaped everywhere it is shown.
    month
        ``YYYY-MM`` of the map.
    months
        Every month that has (or will have) a map of this site, in order: the previous and
        next links follow it.
    baseline_month
        ``YYYY-MM`` of the baseline composite shown for comparison (see
        :func:`pick_baseline_month`); left out, with a note, if it has no composite.
    offline
        Inline every script, style and image (the default), and start with the basemap
        switched off; otherwise link them from CDNs and show the basemap.
    outline
        The site's outline, a GeoJSON geometry in WGS84 longitude/latitude, drawn over the
        imagery; none drawn when not given.

    Returns
    -------
    Path
        The map page.

    Raises
    ------
    FileNotFoundError
        If the month's composite, change or digging-area products are missing.

    Examples
    --------
    >>> write_site_month_map("outputs/demo", "tortiya", "Tortiya", "2024-03",
    ...                      ["2024-01", "2024-02", "2024-03"], "2023-03")  # doctest: +SKIP
    PosixPath('outputs/demo/tortiya/2024-03/map.html')
    """
    month, baseline_month = str(parse_month(month)), str(parse_month(baseline_month))
    months = [str(parse_month(m, what="months")) for m in months]
    folder = Path(out_dir) / site_name / month
    composite, change = folder / "composite.tif", folder / "change.tif"
    disturbed = folder / "disturbed.geojson"
    for path in (composite, change, disturbed):
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; run `kpgeo run` for {site_name} "
                                    f"{month} before writing its map.")
    areas = json.loads(disturbed.read_text(encoding="utf-8"))
    features = list(areas.get("features", []))
    status = _status(composite)
    measured, measured_month = _measurement(areas, month, status)
    baseline = Path(out_dir) / site_name / baseline_month / "composite.tif"
    detection = _detection_months(areas, months)
    synthetic = is_synthetic(areas)
    image = true_colour_image(composite)
    radar = radar_image(change)
    m, tiles = _base_map(image, show_tiles=not offline)
    images = _add_overlays(m, month, image, baseline_month,
                           baseline if baseline.is_file() else None, change, radar,
                           show_radar=status.get("status") == "radar")
    digging = _digging_layer()
    digging.add_to(m)
    increment = _increment_layer()
    increment.add_to(m)
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    measure = folium.plugins.MeasureControl(
        position="topleft", primary_length_unit="meters", secondary_length_unit="kilometers",
        primary_area_unit="hectares", secondary_area_unit="sqmeters")
    measure.add_to(m)
    page = map_page.assemble(
        _render(m, measure, offline),
        head_html=map_page.head(site_title, month,
                                offline_assets.default_icon_script() if offline else "",
                                synthetic=LABEL if synthetic else ""),
        body_html=_body(site_title, month, months, baseline_month, baseline.is_file(),
                        status, features, detection, measured, measured_month, synthetic,
                        _coverage(areas, site_name), outline is not None, radar),
        end_html=map_page.end_script(
            {"title": site_title, "month": month, "bounds": image.bounds,
             "highlight": HIGHLIGHT_STYLE, "areas": _styled(features, detection),
             "increments": _increments(features), "increment_pane": INCREMENT_PANE,
             "outline": outline, "casing": CASING_STYLE, "outlineStyle": OUTLINE_STYLE,
             "outlineCasing": OUTLINE_CASING_STYLE,
             "panes": {"casing": PANE_CASING, "areas": PANE_AREAS}},
            map_name=m.get_name(), digging_name=digging.get_name(),
            increment_name=increment.get_name(), tiles_name=tiles.get_name()),
        images=images)
    if offline:
        page = offline_assets.check_offline(page)
    return write_html(folder / "map.html", page)


def _render(m: folium.Map, measure: folium.plugins.MeasureControl, offline: bool) -> str:
    """folium's HTML of the map; offline, with Leaflet and leaflet-measure inline.

    The packaged files are set on these *instances* only (folium's class lists stay as they
    are for every other map in the process).
    """
    _number_elements(m)
    if not offline:
        return str(m.get_root().render())
    m.default_js, m.default_css = offline_assets.leaflet_assets()
    measure.default_js, measure.default_css = offline_assets.measure_assets()
    uris = [url for _, url in (*m.default_js, *m.default_css, *measure.default_js,
                               *measure.default_css)]
    return offline_assets.inline_assets(m.get_root().render(), uris)


def _number_elements(m: folium.Map) -> None:
    """Name the page's elements in order instead of at random (branca's default), so that
    writing a map twice from the same products gives the same bytes (docs/product.md §10: reruns)."""
    stack: list[Any] = [m.get_root()]
    number = 0
    while stack:
        element = stack.pop(0)
        element._id = f"{number:x}"
        number += 1
        stack.extend(element._children.values())


def write_site_maps(out_dir: str | Path, site_name: str, site_title: str,
                    baseline: Sequence[str], months: Sequence[str] | None = None,
                    offline: bool = True, outline: Mapping[str, Any] | None = None,
                    ) -> list[Path]:
    """Write the maps of a site's months, and refresh their neighbours' links.

    Parameters
    ----------
    out_dir, site_name, site_title, offline, outline
        As for :func:`write_site_month_map`.
    baseline
        The baseline months (``YYYY-MM``), for :func:`pick_baseline_month`.
    months
        Months computed by this run; all months with products when None. Months with
        products but no map yet (an interrupted run) are written too, and the months just
        before and after each, so that their previous/next links reach the new maps (a map
        written last month had no "next" link yet).

    Returns
    -------
    list of Path
        The pages written, in month order.

    Examples
    --------
    >>> write_site_maps("outputs/demo", "tortiya", "Tortiya",
    ...                 [f"2023-{m:02d}" for m in range(1, 13)])  # doctest: +SKIP
    """
    return [write_site_month_map(out_dir, site_name, site_title, month, available,
                                 baseline_month, offline=offline, outline=outline)
            for month, available, baseline_month in maps_to_write(out_dir, site_name,
                                                                   baseline, months)]


def maps_to_write(out_dir: str | Path, site_name: str, baseline: Sequence[str],
                  months: Sequence[str] | None = None,
                  ) -> list[tuple[str, list[str], str]]:
    """The maps :func:`write_site_maps` writes, as the ``month``, ``months`` and
    ``baseline_month`` arguments of :func:`write_site_month_map` (each independent of the
    others: the run writes them in parallel)."""
    available = product_months(out_dir, site_name)
    folder = Path(out_dir) / site_name
    wanted = set(available if months is None else months)
    wanted |= {m for m in available if not (folder / m / "map.html").is_file()}
    neighbours = {available[j] for i, m in enumerate(available) if m in wanted
                  for j in (i - 1, i + 1) if 0 <= j < len(available)}
    return [(month, available, pick_baseline_month(out_dir, site_name, month, baseline))
            for month in available if month in wanted | neighbours]


def product_months(out_dir: str | Path, site_name: str) -> list[str]:
    """Months of a site, in order, whose composite, change and digging-area products exist:
    the months a map can be drawn for."""
    folder = Path(out_dir) / site_name
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if _MONTH_DIR.match(p.name)
                  and all((p / f).is_file() for f in _PRODUCTS))


def pick_baseline_month(out_dir: str | Path, site_name: str, month: str,
                        baseline: Sequence[str]) -> str:
    """The baseline month to compare ``month`` with: the same calendar month if the baseline
    has it and it is not a gap (same season, so greenness is comparable), else the nearest
    baseline month that is not a gap, else the baseline's last month.

    Examples
    --------
    >>> pick_baseline_month("outputs/demo", "tortiya", "2024-03",
    ...                     ["2023-01", "2023-02", "2023-03"])  # doctest: +SKIP
    '2023-03'
    """
    ok = [b for b in baseline if _status(Path(out_dir) / site_name / b / "composite.tif")
          .get("status") == "ok"]
    if not ok:
        return baseline[-1]
    same = [b for b in ok if b[5:7] == month[5:7]]
    if same:
        return same[-1]
    target = int(month[:4]) * 12 + int(month[5:7])
    return min(ok, key=lambda b: (abs(int(b[:4]) * 12 + int(b[5:7]) - target), b))


# ---- layers ----------------------------------------------------------------------------------
def _base_map(image: MapImage, show_tiles: bool = True) -> tuple[folium.Map, folium.TileLayer]:
    """A map centred on the site with the OpenStreetMap basemap as a switchable layer, shown
    at first when ``show_tiles`` (the page's end script fits it to the site)."""
    (south, west), (north, east) = image.bounds
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=14, tiles=None,
                   control_scale=True, max_zoom=OSM_MAX_ZOOM, zoom_snap=ZOOM_SNAP)
    tiles = folium.TileLayer(OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap basemap "
                             "(needs a network)", overlay=True, max_zoom=OSM_MAX_ZOOM,
                             show=show_tiles)
    tiles.add_to(m)
    return m, tiles


def _add_overlays(m: folium.Map, month: str, month_image: MapImage, baseline_month: str,
                  baseline: Path | None, change: Path, radar: RadarImage | None = None,
                  show_radar: bool = False) -> dict[str, str]:
    """True colour of the month (shown), of the baseline month and the change score (hidden),
    and radar's findings when there are any (shown when ``show_radar``).

    folium gets a placeholder URL for each image; the returned placeholder -> image data URI
    pairs go into the page after rendering (:func:`kpgeo.products.map_page.assemble`).
    """
    layers = [(f"True colour {month}", month_image, CLASS_MONTH, True)]
    if baseline is not None:
        layers.append((f"Baseline true colour {baseline_month}", true_colour_image(baseline),
                       CLASS_BASELINE, False))
    layers.append(("Change score (vegetation loss)", change_image(change), CLASS_CHANGE, False))
    if radar is not None:
        layers.append((RADAR_LAYER, radar, CLASS_RADAR, show_radar))
    images = {}
    for name, image, class_name, show in layers:
        placeholder = f"data:,{class_name}"
        folium.raster_layers.ImageOverlay(placeholder, image.bounds, name=text(name), show=show,
                                          className=class_name).add_to(m)
        images[placeholder] = image_data_uri(image.rgba)
    return images


def _detection_months(areas: Mapping[str, Any], months: Sequence[str]) -> list[str]:
    """Months after the baseline (recorded in the GeoJSON's ``kpgeo`` member) among
    ``months``, plus any first-detection month of the areas: the colour ramp's months."""
    found = {(f.get("properties") or {}).get("first_detected") for f in areas.get("features", [])}
    candidates = set(months) | {str(m) for m in found if m}
    try:
        last = str(parse_month_range(str(areas["kpgeo"]["baseline"])).last)
    except (KeyError, TypeError, ValueError):  # a hand-made file: colour over all months
        last = ""
    return sorted(m for m in candidates if m > last)


def _digging_layer() -> folium.GeoJson:
    """An empty GeoJSON layer for the digging areas; the page's end script adds them with
    their styles (the data never passes through folium's templates, see kpgeo.products.map_page)."""
    return folium.GeoJson({"type": "FeatureCollection", "features": []}, name="Digging areas",
                          className=CLASS_DIGGING, style=JsCode("kpgeoStyle"),
                          on_each_feature=JsCode("kpgeoBindArea"), pane=PANE_AREAS)


def _increment_layer() -> folium.GeoJson:
    """An empty GeoJSON layer for the month's increment (filled like :func:`_digging_layer`)."""
    return folium.GeoJson({"type": "FeatureCollection", "features": []},
                          name="New this month (dashed outline)", className=CLASS_INCREMENT,
                          style=JsCode("kpgeoStyle"))


def _increments(features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The areas with digging new this month (``new_ha_this_month`` > 0; none in a month not
    measured), styled as the increment."""
    grown = [{**f, "style": dict(INCREMENT_STYLE)} for f in features
             if (_increment_ha(f) or 0) > 0]
    return {"type": "FeatureCollection", "features": grown}


def _increment_ha(feature: Mapping[str, Any]) -> float | None:
    value = (feature.get("properties") or {}).get("new_ha_this_month")
    return float(value) if isinstance(value, int | float) else None


def _measurement(areas: Mapping[str, Any], month: str,
                 status: Mapping[str, str]) -> tuple[bool, str | None]:
    """Whether the month's digging areas were measured this month, and the month they were
    measured in, from the ``kpgeo`` member (a file without it: the composite's status)."""
    meta = areas.get("kpgeo") or {}
    state = str(meta.get("status", status.get("status", "unknown")))
    measured_month = meta.get("measured_month", month if state == ALL_MEASURED else None)
    return state == ALL_MEASURED, None if measured_month is None else str(measured_month)


def _styled(features: Sequence[Mapping[str, Any]],
            detection: Sequence[str]) -> dict[str, Any]:
    """The digging areas as a FeatureCollection whose features carry a Leaflet ``style``:
    outline and fill by first-detection month, pre-existing ones in their own colour."""
    out = []
    for feature in features:
        properties = feature.get("properties") or {}
        colour = _area_colour(properties, detection)
        style: dict[str, Any] = {**AREA_STYLE, "color": colour, "fillColor": colour}
        if properties.get("certainty") == "low":
            style["dashArray"] = LOW_CERTAINTY_DASHES
        out.append({**feature, "style": style})
    return {"type": "FeatureCollection", "features": out}


def _area_colour(properties: Mapping[str, Any], detection: Sequence[str]) -> str:
    if properties.get("status") != "new":
        return PREEXISTING_COLOUR
    return detection_colour(str(properties.get("first_detected") or ""), detection)


# ---- page parts ------------------------------------------------------------------------------
def _status(composite: Path) -> dict[str, str]:
    """The month's status tags (``status``, ``scenes``, ``valid_pct``) of a composite."""
    if not composite.is_file():
        return {}
    with rasterio.open(composite) as src:
        return dict(src.tags())


def _coverage(areas: Mapping[str, Any], site_name: str) -> dict[str, Any] | None:
    """The site's ``baseline_coverage`` in the GeoJSON's ``kpgeo`` member, if recorded."""
    try:
        coverage = areas["kpgeo"]["sites"][site_name]["baseline_coverage"]
        baseline = str(areas["kpgeo"]["baseline"])
    except (KeyError, TypeError):
        return None
    return {**coverage, "baseline": baseline} if isinstance(coverage, Mapping) else None


def _body(site_title: str, month: str, months: Sequence[str], baseline_month: str,
          has_baseline: bool, status: Mapping[str, str], features: Sequence[Mapping[str, Any]],
          detection: Sequence[str], measured: bool, measured_month: str | None,
          synthetic: bool = False, coverage: Mapping[str, Any] | None = None,
          has_outline: bool = False, radar: RadarImage | None = None) -> str:
    ordered = sorted(set(months) | {month})
    i = ordered.index(month)
    state, status_text = map_page.status_text(status)
    present = sorted({str((f.get("properties") or {})["first_detected"]) for f in features
                      if (f.get("properties") or {}).get("status") == "new"
                      and (f.get("properties") or {}).get("first_detected")})
    legend = [(m, detection_colour(m, detection)) for m in present]
    return map_page.body(
        prev=ordered[i - 1] if i > 0 else None,
        next=ordered[i + 1] if i + 1 < len(ordered) else None,
        title=site_title, month=month, status=state, status_text=status_text,
        summary=map_page.summary_text(features, measured, measured_month),
        preexisting=PREEXISTING_COLOUR, legend=legend, measured=measured,
        measured_month=measured_month,
        increment_ha=sum(_increment_ha(f) or 0.0 for f in features),
        increment_areas=sum(1 for f in features if (_increment_ha(f) or 0) > 0),
        gradient=css_gradient([c for _, c in legend]) if len(legend) > LEGEND_MAX_MONTHS else "",
        change_gradient=css_gradient(CHANGE_SCORE_COLOURS), change_low=CHANGE_SCORE_RANGE[0],
        change_high=CHANGE_SCORE_RANGE[1], has_baseline=has_baseline,
        baseline_month=baseline_month, tiles_note=TILES_NOTE,
        synthetic=LABEL if synthetic else "", explanation=EXPLANATION,
        coverage=map_page.coverage_text(coverage) if coverage else "",
        low_certainty=any((f.get("properties") or {}).get("certainty") == "low"
                          for f in features),
        not_seen=map_page.seasons_text(int((coverage or {}).get("seasons_min", SEASONS_MIN)),
                                       "not seen"),
        dashes=LOW_CERTAINTY_DASHES,
        casing=CASING_COLOUR, outline=SITE_OUTLINE_COLOUR if has_outline else "",
        hatch=hatch_css(), radar=radar_css() if radar is not None else "",
        radar_withdrawn=radar_css(withdrawn=True) if radar is not None and radar.withdrawn
        else "", radar_layer=RADAR_LAYER, evidence=map_page.evidence_text(features))
