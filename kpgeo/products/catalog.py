"""``catalog.json`` (docs/product.md §8): the run's products as a STAC catalog.

A catalog at the output folder's root, a collection per site (``<site>/collection.json``) and an
item per finished site-month (``<site>/<YYYY-MM>/item.json``), whose assets are the month's
``composite.tif``, ``indices.tif``, ``change.tif``, ``disturbed.geojson`` and ``map.html`` with
their roles. Items carry the grid (projection extension), each raster band's data type, nodata,
scale and offset (raster extension), the composite's Sentinel-2 bands (electro-optical
extension), and the month's status, measured month and scene ids as ``kpgeo:`` properties.

The catalog is built from the products on disk after every run, so it lists every finished month
of every site, earlier runs' included; a month computed again keeps its item id
(``<site>-<YYYY-MM>``) and its item is replaced, never duplicated. Links and asset hrefs are
relative (a self-contained catalog): the folder can be copied or served as it is, and QGIS's STAC
browser or pystac open it. Each document is written atomically, items first, so a catalog never
links a document that is not there.

These are products, not scenes: :data:`PRODUCTS_FIELD` marks the catalog, its collections and
items, and ``kpgeo run --source stac`` refuses them as a scene archive
(:func:`kpgeo.sources.stac_static.refuse_products`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
import rasterio
import rasterio.errors
from pystac.extensions.eo import Band, EOExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import RasterBand, RasterExtension

from .. import __version__
from ..months import parse_month
from .export import write_json
from .synthetic_label import EXPLANATION, is_synthetic, labelled

#: Its name in the output folder.
FILE_NAME = "catalog.json"
#: A site's collection, in the site's folder.
COLLECTION_NAME = "collection.json"
#: A site-month's item, in the month's folder.
ITEM_NAME = "item.json"
#: Marks a document as kpgeo's products (its value: the software that wrote it).
PRODUCTS_FIELD = "kpgeo:products"
#: Media type of the rasters: Cloud-Optimized GeoTIFF.
COG_TYPE = str(pystac.MediaType.COG)
#: Licence of the products: the Copernicus Sentinel data terms and the user's own, not SPDX.
LICENSE = "other"

#: Sentinel-2 MSI bands of the composite: name, common name, centre wavelength and full width at
#: half maximum (µm), of Sentinel-2A (ESA's Sentinel-2 spectral response functions).
S2_BANDS = {
    "blue": ("B02", 0.492, 0.066),
    "green": ("B03", 0.560, 0.036),
    "red": ("B04", 0.665, 0.031),
    "nir": ("B08", 0.833, 0.106),
    "swir16": ("B11", 1.614, 0.091),
    "swir22": ("B12", 2.202, 0.175),
}


@dataclass(frozen=True)
class Asset:
    """A product of a site-month as an item asset: file, key, media type, roles, title."""

    file: str
    key: str
    media_type: str
    roles: tuple[str, ...]
    title: str


#: A site-month's products: its four products must all be there for the month to be listed.
ASSETS = (
    Asset("composite.tif", "composite", COG_TYPE, ("data", "reflectance"),
          "Monthly median composite: surface reflectance and valid observations"),
    Asset("indices.tif", "indices", COG_TYPE, ("data",),
          "Spectral indices of the composite (NDVI, MNDWI, BSI, NDTI, NDWI)"),
    Asset("change.tif", "change", COG_TYPE, ("data",),
          "Change score, detection state, digging classes and dug share"),
    Asset("disturbed.geojson", "digging-areas", str(pystac.MediaType.GEOJSON), ("data",),
          "Digging areas (RFC 7946)"),
    Asset("map.html", "map", str(pystac.MediaType.HTML), ("overview",),
          "The month's map for analysts (HTML)"),
)
#: Assets a month needs to be listed (its map may come later, written after the exports).
REQUIRED = tuple(a.file for a in ASSETS if a.key != "map")


@dataclass(frozen=True)
class CatalogSite:
    """A site as the catalog describes it."""

    name: str
    title: str
    outline: Mapping[str, Any]
    """The site's polygon, GeoJSON in WGS84: the geometry of its items."""
    country: str = ""


def write_catalog(out_dir: str | Path, sites: Sequence[CatalogSite], *,
                  name: str = "kpgeo", description: str = "") -> list[Path]:
    """Write ``catalog.json`` and its collections and items for every finished site-month.

    Parameters
    ----------
    out_dir
        The run's output folder.
    sites
        Every site of the pipeline, in display order; a site without a finished month gets no
        collection.
    name
        The pipeline's name (the catalog's id).
    description
        The pipeline's description (the catalog's).

    Returns
    -------
    list of Path
        The documents written, the catalog last.

    Examples
    --------
    >>> write_catalog("outputs/demo", [CatalogSite("tortiya", "Tortiya", outline)])
    ... # doctest: +SKIP
    [..., PosixPath('outputs/demo/catalog.json')]
    """
    out = Path(out_dir).absolute()
    catalog = pystac.Catalog(id=f"kpgeo-{name}", description="", href=str(out / FILE_NAME),
                             catalog_type=pystac.CatalogType.SELF_CONTAINED)
    synthetic = False
    for site in sites:
        items = [item for month in _months(out / site.name)
                 if (item := _item(out, site, month)) is not None]
        if not items:
            continue
        synthetic |= any(item.properties.get("kpgeo:synthetic") for item in items)
        collection = _collection(out, site, items)
        catalog.add_child(collection)
        for item in items:
            collection.add_item(item)
            item.set_self_href(str(out / site.name / item.properties["kpgeo:month"]
                                   / ITEM_NAME))
            item.make_asset_hrefs_relative()
        collection.set_self_href(str(out / site.name / COLLECTION_NAME))
        collection.make_asset_hrefs_relative()
    catalog.title = labelled(f"kpgeo products: {name}", synthetic)
    catalog.description = labelled(
        description or "Digging areas, composites and indices by site and month", synthetic) \
        + (f" ({EXPLANATION})" if synthetic else "")
    catalog.extra_fields[PRODUCTS_FIELD] = f"kpgeo {__version__}"
    written = []
    # Items, then collections, then the catalog: no document links one not yet written.
    for child in catalog.get_children():
        for item in child.get_items():
            written.append(_write(item))
        written.append(_write(child))
    written.append(_write(catalog))
    # As the caller named the folder (a relative --out stays relative).
    return [Path(out_dir) / p.relative_to(out) for p in written]


def read_items(path: str | Path) -> list[pystac.Item]:
    """Every item of a kpgeo ``catalog.json`` (none if there is no file), for readers of a
    finished run's products."""
    path = Path(path)
    if not path.is_file():
        return []
    return list(pystac.Catalog.from_file(str(path)).get_items(recursive=True))


def _write(obj: pystac.STACObject) -> Path:
    href = obj.get_self_href()
    assert href is not None
    doc = obj.to_dict(include_self_link=False, transform_hrefs=True)
    return write_json(Path(href), doc)


def _months(folder: Path) -> list[str]:
    """The site's month folders holding the month's products, in order."""
    if not folder.is_dir():
        return []
    found = []
    for child in sorted(folder.iterdir()):
        try:
            month = str(parse_month(child.name))
        except ValueError:
            continue
        if month == child.name and all((child / f).is_file() for f in REQUIRED):
            found.append(month)
    return found


def _item(out: Path, site: CatalogSite, month: str) -> pystac.Item | None:
    folder = out / site.name / month
    try:
        areas = json.loads((folder / "disturbed.geojson").read_text(encoding="utf-8"))
        member = areas.get("kpgeo") or {}
        entry = (member.get("sites") or {}).get(site.name) or {}
        with rasterio.open(folder / "composite.tif") as src:
            tags = src.tags()
            crs, shape, transform, bounds = src.crs, src.shape, src.transform, src.bounds
    except (OSError, ValueError, AttributeError, rasterio.errors.RasterioError):
        return None  # an unreadable month is left out; the next run recomputes it
    start, end = month_span(month)
    synthetic = is_synthetic(areas)
    status = str(entry.get("status") or tags.get("status") or "")
    item = pystac.Item(
        id=f"{site.name}-{month}", geometry=dict(site.outline),
        bbox=list(_bbox(site.outline)), datetime=None,
        start_datetime=start, end_datetime=end,
        properties={
            "title": labelled(f"{site.title} {month}", synthetic),
            "kpgeo:month": month,
            "kpgeo:status": status,
            "kpgeo:measured_month": entry.get("measured_month"),
            "kpgeo:scenes": int(tags.get("scenes") or 0),
            "kpgeo:valid_pct": float(tags.get("valid_pct") or 0.0),
            "kpgeo:scene_ids": list(entry.get("scene_ids") or []),
            "kpgeo:synthetic": synthetic,
            "kpgeo:baseline": str(member.get("baseline", "")),
            PRODUCTS_FIELD: str(member.get("software") or f"kpgeo {__version__}"),
        },
    )
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = crs.to_string() if crs.to_epsg() is None else f"EPSG:{crs.to_epsg()}"
    proj.shape = list(shape)
    proj.transform = list(transform)[:6]
    proj.bbox = [bounds.left, bounds.bottom, bounds.right, bounds.top]
    RasterExtension.add_to(item)
    EOExtension.add_to(item)
    for spec in ASSETS:
        path = folder / spec.file
        if not path.is_file():
            continue
        asset = pystac.Asset(href=str(path), media_type=spec.media_type,
                             roles=list(spec.roles), title=spec.title)
        item.add_asset(spec.key, asset)
        if spec.media_type == COG_TYPE:
            _describe_raster(item.assets[spec.key], path)
    return item


def _describe_raster(asset: pystac.Asset, path: Path) -> None:
    """``raster:bands`` (data type, nodata, scale, offset) of a COG, and ``eo:bands`` where
    its bands are Sentinel-2's."""
    with rasterio.open(path) as src:
        bands = [RasterBand.create(data_type=src.dtypes[i], nodata=_nodata(src.nodata),
                                   scale=src.scales[i], offset=src.offsets[i],
                                   spatial_resolution=abs(src.transform.a))
                 for i in range(src.count)]
        names = [str(d or f"band {i + 1}") for i, d in enumerate(src.descriptions)]
    RasterExtension.ext(asset).bands = bands
    if any(n in S2_BANDS for n in names):
        EOExtension.ext(asset).bands = [
            Band.create(name=S2_BANDS[n][0], common_name=n, center_wavelength=S2_BANDS[n][1],
                        full_width_half_max=S2_BANDS[n][2], description=n)
            if n in S2_BANDS else Band.create(name=n, description=n)
            for n in names]


def month_span(month: str) -> tuple[dt.datetime, dt.datetime]:
    """The first and last second of ``month`` (``YYYY-MM``), UTC."""
    year, number = int(month[:4]), int(month[5:7])
    start = dt.datetime(year, number, 1, tzinfo=dt.UTC)
    after = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=dt.UTC)
    return start, after - dt.timedelta(seconds=1)


def _nodata(value: float | None) -> Any:
    """Nodata as the raster extension writes it: NaN as the text ``"nan"``."""
    if value is None:
        return None
    return "nan" if math.isnan(value) else value


def _bbox(geometry: Mapping[str, Any]) -> tuple[float, float, float, float]:
    import shapely.geometry

    return tuple(shapely.geometry.shape(geometry).bounds)  # type: ignore[return-value]


def _collection(out: Path, site: CatalogSite, items: Sequence[pystac.Item]) -> pystac.Collection:
    synthetic = any(item.properties.get("kpgeo:synthetic") for item in items)
    months = [item.properties["kpgeo:month"] for item in items]
    first, last = items[0].common_metadata.start_datetime, items[-1].common_metadata.end_datetime
    boxes = [item.bbox for item in items if item.bbox]
    box = [min(b[0] for b in boxes), min(b[1] for b in boxes),
           max(b[2] for b in boxes), max(b[3] for b in boxes)]
    producer = (pystac.Provider("kpgeo synth (simulated Sentinel-2 scenes)", roles=[pystac.ProviderRole.PRODUCER])
                if synthetic else
                pystac.Provider("European Space Agency, Copernicus Sentinel-2",
                                roles=[pystac.ProviderRole.PRODUCER,
                                       pystac.ProviderRole.LICENSOR]))
    collection = pystac.Collection(
        id=site.name,
        title=labelled(site.title, synthetic),
        description=labelled(
            f"Digging areas, monthly composites and indices of {site.title}, {months[0]} to "
            f"{months[-1]}, made by kpgeo from Sentinel-2 imagery", synthetic)
        + (f" ({EXPLANATION})" if synthetic else ""),
        extent=pystac.Extent(pystac.SpatialExtent([box]),
                             pystac.TemporalExtent([[first, last]])),
        license=LICENSE,
        providers=[producer,
                   pystac.Provider(f"kpgeo {__version__}",
                                   roles=[pystac.ProviderRole.PROCESSOR])],
        keywords=["artisanal mining", "diamonds", "Kimberley Process", "Sentinel-2"],
        summaries=pystac.Summaries({"kpgeo:status": sorted({str(i.properties["kpgeo:status"])
                                                            for i in items})}),
    )
    collection.extra_fields[PRODUCTS_FIELD] = f"kpgeo {__version__}"
    if site.country:
        collection.extra_fields["kpgeo:country"] = site.country
    if (out / "timeseries.csv").is_file():
        collection.add_asset("timeseries", pystac.Asset(
            href=str(out / "timeseries.csv"), media_type="text/csv", roles=["metadata"],
            title="Digging areas by site and month (every site of the run)"))
    return collection
