"""A month's digging areas as KML 2.2 for Google Earth Pro (``kpgeo export --format kml``,
docs/product.md §8).

Written from the month's RFC 7946 export, the same features, properties and coordinates, as a
document a panel can open and read without kpgeo:

- the document's ``description`` (shown by Google Earth) states the month, software, source,
  baseline, each site's status and every parameter; its ``ExtendedData`` holds each member of
  the export's ``kpgeo`` provenance (objects as JSON) for programs;
- a ``Folder`` per site holds a ``Folder`` per status (``<site>: pre-existing digging``,
  ``<site>: new digging``), which holds one ``Placemark`` per digging area, named by its id,
  its properties in ``ExtendedData`` (typed by the document's ``Schema``);
- each area is styled as on the HTML maps: pre-existing digging in a cold colour (paler where
  the baseline saw it too rarely to be sure, ``certainty`` ``low``), new digging by its
  first-detection month from orange (the first month after the baseline) to reddish purple
  (the export's month);
- an export of synthetic data says so in the document's name and at the head of its
  description (:mod:`kpgeo.products.synthetic_label`).

GDAL's KML drivers write a layer as one flat folder, styled feature by feature from OGR style
strings; nested folders, shared styles and the document's description are simpler to write
directly, so the document is made here with :mod:`xml.etree.ElementTree`, its elements in the
order of the KML 2.2 schema (http://schemas.opengis.net/kml/2.2.0/ogckml22.xsd). GDAL (LIBKML
and KML drivers), and so QGIS, reads each folder as a layer.
"""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..months import MonthRange, parse_month, parse_month_range
from .atomic import atomic_path
from .map_layers import DETECTION_COLOURS, PREEXISTING_COLOUR, detection_colour
from .map_page import coverage_text
from .synthetic_label import EXPLANATION, LABEL, is_synthetic, labelled

KML_NS = "http://www.opengis.net/kml/2.2"
#: The placemarks' fields (``ExtendedData``), with their KML schema types.
FIELDS = (("site", "string"), ("status", "string"), ("first_detected", "string"),
          ("confirmed", "string"), ("evidence", "string"), ("area_ha", "double"),
          ("new_ha_this_month", "double"),
          ("baseline_seasons", "int"), ("certainty", "string"), ("measured_month", "string"))
SCHEMA_ID = "digging"
#: Status folders, in this order, and their names; other statuses follow under their own name.
STATUS_FOLDERS = {"preexisting": "pre-existing digging", "new": "new digging"}
#: The style of pre-existing digging (the new digging's are ``new-YYYY-MM``), and of
#: pre-existing digging of low certainty: its line half as opaque (KML 2.2 has no dashes).
PREEXISTING_STYLE = "preexisting"
LOW_CERTAINTY_STYLE = "preexisting-low"
LOW_CERTAINTY_OPACITY = 0.5
#: Outline width in pixels and fill opacity, as on the HTML maps (kpgeo.products.maps).
LINE_WIDTH = 2
FILL_OPACITY = 0.25


def write_kml(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Write the FeatureCollection ``doc`` (an RFC 7946 export with its ``kpgeo`` member) as a
    KML document to ``path``, atomically."""
    tree = ET.ElementTree(kml_document(doc))
    ET.indent(tree, space=" ")
    path = Path(path)
    with atomic_path(path, keep_suffix=True) as tmp:
        tree.write(tmp, encoding="UTF-8", xml_declaration=True)
    return path


def kml_document(doc: Mapping[str, Any]) -> ET.Element:
    """The ``<kml>`` element of the export ``doc``."""
    meta = dict(doc.get("kpgeo") or {})
    month = str(meta.get("month", ""))
    features = list(doc.get("features") or [])
    detection = _detection_months(meta, features)

    kml = ET.Element("kml", xmlns=KML_NS)  # every element in KML's namespace, unprefixed
    document = _sub(kml, "Document")
    synthetic = is_synthetic(doc)
    _sub(document, "name", labelled(f"kpgeo digging areas {month}".strip(), synthetic))
    _sub(document, "open", "1")
    _sub(document, "description", _description(meta, detection, synthetic))
    _style(document, PREEXISTING_STYLE, PREEXISTING_COLOUR)
    if any(_props(f).get("certainty") == "low" for f in features):
        _style(document, LOW_CERTAINTY_STYLE, PREEXISTING_COLOUR, LOW_CERTAINTY_OPACITY)
    for m in sorted({_first_detected(f) for f in features if _status(f) == "new"} - {""}):
        _style(document, f"new-{m}", detection_colour(m, detection))
    if any(_status(f) == "new" and not _first_detected(f) for f in features):
        _style(document, "new", DETECTION_COLOURS[-1])
    extended = _sub(document, "ExtendedData")
    for key, value in meta.items():
        data = _sub(extended, "Data", name=str(key))
        _sub(data, "value", value if isinstance(value, str)
             else json.dumps(value, ensure_ascii=False, sort_keys=True))
    schema = _sub(document, "Schema", name=SCHEMA_ID, id=SCHEMA_ID)
    for name, kind in FIELDS:
        _sub(schema, "SimpleField", name=name, type=kind)

    sites = dict(meta.get("sites") or {})
    names = list(sites) + sorted({str(_props(f).get("site", "")) for f in features} - set(sites))
    for site in names:
        mine = [f for f in features if str(_props(f).get("site", "")) == site]
        folder = _sub(document, "Folder")
        _sub(folder, "name", site)
        _sub(folder, "open", "1")
        _sub(folder, "description", _site_description(sites.get(site) or {}, mine))
        statuses = list(STATUS_FOLDERS) + sorted({_status(f) for f in mine} - set(STATUS_FOLDERS))
        for status in statuses:
            areas = [f for f in mine if _status(f) == status]
            if not areas:
                continue
            inner = _sub(folder, "Folder")  # named with its site: GIS layers are named so
            _sub(inner, "name", f"{site}: {STATUS_FOLDERS.get(status, status)}")
            for feature in areas:
                _placemark(inner, feature)
    return kml


def _placemark(folder: ET.Element, feature: Mapping[str, Any]) -> None:
    props = _props(feature)
    placemark = _sub(folder, "Placemark")
    _sub(placemark, "name", str(props.get("id") or feature.get("id") or ""))
    _sub(placemark, "styleUrl", f"#{_style_id(feature)}")
    extended = _sub(placemark, "ExtendedData")
    data = _sub(extended, "SchemaData", schemaUrl=f"#{SCHEMA_ID}")
    for name, _ in FIELDS:
        value = props.get(name)
        if value is not None and value != "":
            _sub(data, "SimpleData", repr(value) if isinstance(value, float) else str(value),
                 name=name)
    _geometry(placemark, feature.get("geometry") or {})


def _geometry(parent: ET.Element, geometry: Mapping[str, Any]) -> None:
    kind = geometry.get("type")
    if kind == "Polygon":
        _polygon(parent, geometry["coordinates"])
    elif kind == "MultiPolygon":
        multi = _sub(parent, "MultiGeometry")
        for rings in geometry["coordinates"]:
            _polygon(multi, rings)
    else:
        raise ValueError(f"digging areas are polygons, not {kind!r}")


def _polygon(parent: ET.Element, rings: Sequence[Sequence[Sequence[float]]]) -> None:
    polygon = _sub(parent, "Polygon")
    _sub(polygon, "tessellate", "1")  # drawn on the ground, following the terrain
    for i, ring in enumerate(rings):
        boundary = _sub(polygon, "outerBoundaryIs" if i == 0 else "innerBoundaryIs")
        linear = _sub(boundary, "LinearRing")
        _sub(linear, "coordinates", " ".join(f"{x!r},{y!r}" for x, y, *_ in ring))


def _style(document: ET.Element, style_id: str, colour: str, opacity: float = 1.0) -> None:
    style = _sub(document, "Style", id=style_id)
    line = _sub(style, "LineStyle")
    _sub(line, "color", kml_colour(colour, opacity))
    _sub(line, "width", str(LINE_WIDTH))
    poly = _sub(style, "PolyStyle")
    _sub(poly, "color", kml_colour(colour, FILL_OPACITY))


def kml_colour(colour: str, opacity: float = 1.0) -> str:
    """KML's ``aabbggrr`` of a ``#rrggbb`` colour.

    Examples
    --------
    >>> kml_colour("#33ccff"), kml_colour("#ff0000", 0.25)
    ('ffffcc33', '400000ff')
    """
    r, g, b = colour[1:3], colour[3:5], colour[5:7]
    return f"{round(opacity * 255):02x}{b}{g}{r}".lower()


def _style_id(feature: Mapping[str, Any]) -> str:
    if _status(feature) != "new":
        low = _props(feature).get("certainty") == "low"
        return LOW_CERTAINTY_STYLE if low else PREEXISTING_STYLE
    month = _first_detected(feature)
    return f"new-{month}" if month else "new"


def _detection_months(meta: Mapping[str, Any], features: Sequence[Mapping[str, Any]]) -> list[str]:
    """The months after the baseline up to the export's month (and any first-detection month
    outside them): the colour ramp of new digging, its ends orange and reddish purple."""
    months = {_first_detected(f) for f in features} - {""}
    try:
        first = parse_month_range(str(meta["baseline"])).last + 1
        last = parse_month(str(meta["month"]))
        if first <= last:
            months |= set(MonthRange(first, last).labels())
    except (KeyError, TypeError, ValueError):
        pass
    return sorted(months)


def _description(meta: Mapping[str, Any], detection: Sequence[str],
                 synthetic: bool = False) -> str:
    """The document's description: HTML, which Google Earth shows in the document's balloon;
    a synthetic export's begins with the label."""
    sites = meta.get("sites") or {}
    rows = [("month", meta.get("month", "")), ("status", meta.get("status", "")),
            ("measured month", meta.get("measured_month") or ""),
            ("software", meta.get("software", "")),
            *((f"source {k}", v) for k, v in _flat(meta.get("source") or {})),
            ("baseline", meta.get("baseline", "")),
            *((f"site {name}", _site_status(s)) for name, s in sites.items()),
            *((f"site {name} baseline", coverage_text(s["baseline_coverage"]))
              for name, s in sites.items()
              if isinstance(s, Mapping) and isinstance(s.get("baseline_coverage"), Mapping))]
    parameters = list(_flat(meta.get("parameters") or {}))
    ramp = (f"from orange ({detection[0]}) to reddish purple ({detection[-1]})"
            if len(detection) > 1 else "orange")
    intro = (f"<p>Artisanal digging areas mapped by kpgeo from Sentinel-2, month "
             f"{_text(meta.get('month', ''))}. Folders: site, then status. Pre-existing digging "
             f"(dug by the end of the baseline) in sky blue, paler where the baseline saw it in "
             f"too few seasons to be sure (certainty low); new digging coloured by the month "
             f"it was first detected, {_text(ramp)}. Each area's new_ha_this_month is its "
             f"digging new this month; its evidence says what it rests on: optical "
             f"(Sentinel-2), radar (Sentinel-1 alone, in months clouds hid: to be confirmed or "
             f"withdrawn by a later clear optical view) or optical+radar.</p>")
    parts = [
        *([f"<p><b>{LABEL}</b>: {_text(EXPLANATION)}.</p>"] if synthetic else []),
        intro,
        *([f"<p><b>{_text(_not_measured(meta))}</b></p>"] if _not_measured(meta) else []),
        _table(rows),
        "<p>Parameters</p>",
        _table(parameters),
    ]
    return "\n".join(parts)


def _site_description(site: Mapping[str, Any], areas: Sequence[Mapping[str, Any]]) -> str:
    counts = []
    for status, label in STATUS_FOLDERS.items():
        mine = [f for f in areas if _status(f) == status]
        hectares = sum(float(_props(f).get("area_ha") or 0.0) for f in mine)
        counts.append(f"{label}: {len(mine)} areas, {hectares:.2f} ha")
    return f"{_site_status(site)}; " + "; ".join(counts)


def _site_status(site: Mapping[str, Any]) -> str:
    status = str(site.get("status", "")) or "unknown"
    scenes = site.get("scene_ids")
    text = status + (f", {len(scenes)} scenes" if isinstance(scenes, list) else "")
    if status == "radar":
        text += ", measured by Sentinel-1 radar alone (clouds)"
    elif status != "ok" and "measured_month" in site:
        measured = site["measured_month"]
        text += (f", not measured this month: the areas as measured in {measured}" if measured
                 else ", not measured this month nor before")
    return text


def _not_measured(meta: Mapping[str, Any]) -> str:
    """What the document says of a month whose areas were not all measured in it (a gap,
    :mod:`kpgeo.products.measured`); empty for a measured month."""
    status = meta.get("status")
    if status in (None, "ok"):
        return ""
    which = "No site was" if status == "gap" else "Not every site was"
    return (f"{which} measured this month (too little clear view): a site not measured shows "
            "its areas as last measured (the month below, and each area's measured_month), "
            "with no new_ha_this_month.")


def _flat(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """``(dotted key, text)`` of every leaf of nested mappings; lists joined by commas."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _flat(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list | tuple):
        yield prefix, ", ".join(str(v) for v in value)
    else:
        yield prefix, "" if value is None else str(value)


def _table(rows: Sequence[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><td>{_text(k)}</td><td>{_text(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _text(value: Any) -> str:
    return html.escape(str(value))


def _props(feature: Mapping[str, Any]) -> Mapping[str, Any]:
    return feature.get("properties") or {}


def _status(feature: Mapping[str, Any]) -> str:
    return str(_props(feature).get("status") or "")


def _first_detected(feature: Mapping[str, Any]) -> str:
    return str(_props(feature).get("first_detected") or "")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element
