"""The fields of a STAC item that kpgeo reads, read so that no value a catalog may hold ends
in a traceback (docs/product.md §10).

A catalog is input kpgeo does not control: ``scale`` as text, ``nodata`` null, ``raster:bands``
an object, ``eo:cloud_cover`` null, a datetime without a time zone, an id that is a number,
coordinates of 1e308. :func:`parse_item` and :func:`check_item` turn an item's JSON into a
usable :class:`pystac.Item` or raise :class:`ItemProblem` with the reason its scene is skipped
(recorded in the manifest like any skipped scene). What is read leniently, and why:

- a datetime without a time zone is read as UTC (Sentinel-2 catalogs give UTC; the offset is
  only missing);
- ``eo:cloud_cover`` null, or not a number, is unknown: the scene is kept (the prefilter only
  saves reads; SCL masks the clouds anyway); a number written as text is read;
- ``raster:bands`` absent or empty means scale 1, offset 0, nodata 0 (the extension's defaults
  and the old behaviour); present, it must be a list of objects whose scale, offset and nodata
  are numbers (nodata also ``"nan"``, ``"inf"``, ``"-inf"``, as the extension allows). A scale
  or offset as text, null or out of range would silently give wrong reflectances: refused.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pystac
import shapely.geometry
from shapely.geometry.base import BaseGeometry

from ..errors import SourceError

#: Longest scene id kept: ids become dask keys, manifest entries and map labels.
MAX_ID_CHARS = 256
#: A reflectance scale is above 0 and at most 1 (reflectance = DN * scale + offset; Sentinel-2
#: publishes 1e-4, Landsat 2.75e-5); an offset within +-1.
SCALE_RANGE = (0.0, 1.0)
MAX_ABS_OFFSET = 1.0
#: ``nodata`` spelled as text by the raster extension.
NODATA_WORDS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_MONTH_PREFIX = re.compile(r"^\s*(\d{4}-\d{2})")


class ItemProblem(SourceError):
    """Why a STAC item cannot be used: its scene is skipped with this reason."""


@dataclass(frozen=True)
class BandScaling:
    """``reflectance = DN * scale + offset``; ``nodata`` DN marks missing pixels."""

    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = 0


def parse_item(doc: Any, href: str | None = None) -> pystac.Item:
    """An item from its JSON document (read from ``href``, against which its relative asset
    hrefs resolve).

    Raises
    ------
    ItemProblem
        If the document is not a STAC item pystac can read.
    """
    if not isinstance(doc, dict):
        raise ItemProblem(f"its document is a JSON {type(doc).__name__}, not an item")
    if doc.get("type") != "Feature":
        raise ItemProblem(f"its document is a {str(doc.get('type'))[:40]!r}, not an item "
                          "(a Feature)")
    try:
        return pystac.Item.from_dict(doc, href=href, preserve_dict=True, migrate=False)
    except Exception as exc:  # noqa: BLE001 - pystac raises KeyError, TypeError, ValueError, its own, dateutil's, OverflowError... on bad fields
        raise ItemProblem(f"its item cannot be read: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from None


def check_item(item: pystac.Item, bands: Iterable[str], reflectance: Iterable[str]) -> None:
    """Check the fields kpgeo reads of ``item``; its datetime becomes UTC-aware.

    Raises
    ------
    ItemProblem
        Naming the field and its value.
    """
    if not isinstance(item.id, str) or not item.id or len(item.id) > MAX_ID_CHARS:
        raise ItemProblem(f"its id {str(item.id)[:60]!r} is not a text of 1 to "
                          f"{MAX_ID_CHARS} characters")
    item.datetime = utc_datetime(item)
    footprint(item)
    missing = [b for b in bands if b not in item.assets]
    if missing:
        raise ItemProblem(f"no asset {', '.join(map(repr, missing))} "
                          f"(it has {', '.join(sorted(map(str, item.assets)))})")
    reflectance = set(reflectance)
    for band in bands:
        href = item.assets[band].href
        if not isinstance(href, str) or not href.strip():
            raise ItemProblem(f"{band}: its href {href!r} is not a path or URL")
        band_scaling(item, band, reflectance=band in reflectance)


def utc_datetime(item: pystac.Item) -> dt.datetime:
    """The item's datetime in UTC (read as UTC when it has no time zone)."""
    when = item.datetime
    if not isinstance(when, dt.datetime):
        raise ItemProblem(f"it has no datetime (datetime {item.properties.get('datetime')!r})")
    try:
        return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise ItemProblem(f"its datetime {when.isoformat()} is out of range ({exc})") from None


def footprint(item: pystac.Item) -> BaseGeometry:
    """The item's geometry, in lon/lat range and finite."""
    try:
        geom = shapely.geometry.shape(item.geometry)
        bounds = geom.bounds
    except Exception as exc:  # noqa: BLE001 - shapely raises many kinds on a malformed GeoJSON
        raise ItemProblem(f"its geometry cannot be read: {type(exc).__name__}: "
                          f"{str(exc)[:120]}") from None
    w, s, e, n = bounds if len(bounds) == 4 else (math.nan,) * 4
    if geom.is_empty or not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ItemProblem(f"its geometry (bounds {bounds}) is empty or not in longitude and "
                          "latitude")
    return geom


def band_scaling(item: pystac.Item, band: str, *, reflectance: bool = True) -> BandScaling:
    """Scale, offset and nodata of one asset, from ``raster:bands`` (defaults 1, 0, 0).

    Raises
    ------
    ItemProblem
        If the asset is missing or its ``raster:bands`` hold something else than numbers.
    """
    asset = item.assets.get(band)
    if asset is None:
        raise ItemProblem(f"scene {item.id} has no asset {band!r}; it has "
                          f"{sorted(map(str, item.assets))}.")
    bands = asset.extra_fields.get("raster:bands")
    if bands is None or bands == []:
        return BandScaling()
    if not isinstance(bands, list) or not isinstance(bands[0], dict):
        raise ItemProblem(f"{band}: raster:bands is {_shown(bands)}, not a list of objects")
    first = bands[0]
    scale = _number(first, "scale", 1.0, band)
    offset = _number(first, "offset", 0.0, band)
    if reflectance and not (SCALE_RANGE[0] < scale <= SCALE_RANGE[1]
                            and abs(offset) <= MAX_ABS_OFFSET):
        raise ItemProblem(f"{band}: raster:bands scale {scale:g} and offset {offset:g} do not "
                          f"make reflectance (scale in ({SCALE_RANGE[0]:g}, "
                          f"{SCALE_RANGE[1]:g}], offset within +-{MAX_ABS_OFFSET:g})")
    nodata = first.get("nodata", 0)
    if isinstance(nodata, str) and nodata.strip().lower() in NODATA_WORDS:
        return BandScaling(scale, offset, NODATA_WORDS[nodata.strip().lower()])
    if not _is_number(nodata):
        raise ItemProblem(f"{band}: raster:bands nodata is {_shown(nodata)}, not a number")
    try:
        return BandScaling(scale, offset, float(nodata))
    except OverflowError:
        raise ItemProblem(f"{band}: raster:bands nodata {str(nodata)[:40]} is out of "
                          "range") from None


def cloud_cover(item: pystac.Item) -> float | None:
    """``eo:cloud_cover`` in percent, or None when unknown (absent, null, not a number)."""
    value = item.properties.get("eo:cloud_cover")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        cover = float(value)
    except OverflowError:
        return None
    return cover if math.isfinite(cover) else None


def asset_grid(item: pystac.Item, band: str,
               ) -> tuple[tuple[int, int], tuple[float, ...]] | None:
    """``proj:shape`` (rows, columns) and the first six numbers of ``proj:transform`` of one
    asset, or None when either is missing or not of numbers: a grid not given is not checked
    (the footprint still is). The asset's own only: an item's grid stands for its assets in
    the projection extension, but a catalog giving its 10 m grid there while its SCL is 20 m
    would lose every scene."""
    asset = item.assets.get(band)
    fields = asset.extra_fields if asset is not None else {}
    shape = fields.get("proj:shape")
    transform = fields.get("proj:transform")
    if not (isinstance(shape, list) and len(shape) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        return None
    if not (isinstance(transform, list) and len(transform) in (6, 9) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in transform)):
        return None
    return (shape[0], shape[1]), tuple(float(v) for v in transform[:6])


def item_epsg(item: pystac.Item) -> int | None:
    """The EPSG code of ``proj:epsg`` or ``proj:code`` (``"EPSG:32630"``), or None."""
    code = item.properties.get("proj:epsg") or item.properties.get("proj:code")
    if isinstance(code, str) and code.upper().startswith("EPSG:"):
        code = code.split(":", 1)[1]
    if isinstance(code, bool) or not isinstance(code, (int, str)):
        return None
    try:
        return int(code)
    except (ValueError, OverflowError):
        return None


def raw_month(doc: Any) -> str | None:
    """``YYYY-MM`` of an unreadable item's datetime text, if it starts so."""
    props = doc.get("properties") if isinstance(doc, dict) else None
    when = props.get("datetime") if isinstance(props, dict) else None
    match = _MONTH_PREFIX.match(when) if isinstance(when, str) else None
    return match.group(1) if match else None


def raw_id(doc: Any, fallback: str) -> str:
    """An unreadable item's id for the manifest: its ``id`` if a text, else ``fallback``."""
    ident = doc.get("id") if isinstance(doc, dict) else None
    return ident[:MAX_ID_CHARS] if isinstance(ident, str) and ident else fallback


def _number(values: dict[str, Any], key: str, default: float, band: str) -> float:
    value = values.get(key, default)
    if not _is_number(value):
        raise ItemProblem(f"{band}: raster:bands {key} is {_shown(value)}, not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ItemProblem(f"{band}: raster:bands {key} {str(value)[:40]} is not finite")
    return number


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    """A value for a message: its JSON kind, and the value when short."""
    kinds = {str: "text", dict: "an object", list: "a list", bool: "a boolean",
             type(None): "null"}
    kind = kinds.get(type(value), type(value).__name__)
    if value is None:
        return "null"
    text = repr(value)
    return f"{kind} {text}" if len(text) <= 40 else kind
