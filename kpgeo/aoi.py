"""Sites (AOIs): a GeoJSON polygon in, one UTM grid at 10 m out (docs/product.md §5, §7).

Every check here runs before anything is written, so a bad site file costs the user one clear
line and nothing else (docs/product.md §10).
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import shapely
import shapely.geometry
from odc.geo import geom as odc_geom
from odc.geo.crs import CRS
from odc.geo.geobox import GeoBox

from .errors import AOIError

#: Grid resolution of every site: Sentinel-2's finest bands.
RESOLUTION_M = 10.0
#: Larger sites are not mining areas but regions: split them into several site files.
MAX_SITE_AREA_KM2 = 5000.0
#: Smaller than a hundred pixels, a site cannot hold a digging area worth mapping.
MIN_SITE_AREA_KM2 = 0.01
#: The largest site grid: the 5,000 km² square (7051 x 7051 px), whose month runs within a
#: small machine's memory (benchmarks/RESULTS.md). A polygon's area alone does not bound the
#: grid: two small parts far apart (or a thin diagonal corridor) span a huge one.
MAX_SITE_GRID_PX = 50_000_000
#: Site names become folder and file names: longer ones are refused.
MAX_SITE_NAME_CHARS = 64
#: Folders of kpgeo's own in an output folder, beside each site's: a site of one of these
#: names would put its months among the run records (``runs/``), the exports or the reports.
RESERVED_SITE_NAMES = ("exports", "reports", "runs")
#: Latitudes with a UTM zone (EPSG's UTM north zones reach 84° N, the south zones 80° S);
#: each site's grid is on one.
UTM_LATITUDES = (-80.0, 84.0)
#: GeoJSON ``crs`` names that still mean WGS84 longitude/latitude.
_WGS84_CRS_NAMES = {
    "urn:ogc:def:crs:OGC:1.3:CRS84",
    "urn:ogc:def:crs:OGC::CRS84",
    "urn:ogc:def:crs:EPSG::4326",
    "EPSG:4326",
}
_POLYGONAL = {"Polygon", "MultiPolygon"}
_GEOMETRY_TYPES = _POLYGONAL | {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "GeometryCollection",
}
_SLUG_RE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Site:
    """A monitored site: its polygon in WGS84 and the one grid all its products share."""

    name: str
    """Slug used in folder names and exports, e.g. ``tortiya``."""
    title: str
    """Human title, e.g. ``Tortiya``; plain text, escaped wherever it reaches HTML."""
    geometry: odc_geom.Geometry
    """The site polygon in EPSG:4326."""
    source: str = ""
    """Why this extent (the ``source`` property of the file)."""
    country: str = ""
    """ISO 3166-1 alpha-3 code, e.g. ``CIV``."""
    path: str = ""
    """File the site was read from, if any."""
    properties: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """All properties of the file, kept for provenance."""

    @functools.cached_property
    def crs(self) -> CRS:
        """UTM zone (WGS84) of the site's centroid (cached: odc-geo takes ~0.15 s to find it)."""
        return utm_crs_of(self.geometry)

    @property
    def epsg(self) -> int:
        """EPSG code of :attr:`crs`."""
        epsg = self.crs.epsg
        assert epsg is not None
        return epsg

    @functools.cached_property
    def grid(self) -> GeoBox:
        """The site grid: its UTM zone, 10 m pixels, edges snapped to whole pixels (computed
        once per site)."""
        return GeoBox.from_geopolygon(self.geometry.to_crs(self.crs), resolution=RESOLUTION_M)

    @property
    def area_km2(self) -> float:
        """Area of the polygon in km², measured on the site's UTM grid."""
        return float(self.geometry.to_crs(self.crs).area) / 1e6

    def pixel_mask(self) -> np.ndarray:
        """Boolean ``(y, x)`` array of the grid pixels whose centres lie in the polygon."""
        return self._pixel_mask.copy()

    @functools.cached_property
    def _pixel_mask(self) -> np.ndarray:
        from rasterio.features import geometry_mask

        grid = self.grid
        return ~geometry_mask(
            [self.geometry.to_crs(self.crs).geom],
            out_shape=grid.shape.yx,
            transform=grid.affine,
        )

    def window(self, centre_lon: float, centre_lat: float, size_km: float) -> Site:
        """The part of the site within a square of ``size_km`` around a point.

        The square is drawn on the site's UTM grid, so a demo window keeps the grid of its site.

        Raises
        ------
        AOIError
            If the square does not overlap the site.
        """
        centre = odc_geom.point(centre_lon, centre_lat, "EPSG:4326").to_crs(self.crs)
        half = size_km * 1000 / 2
        x, y = centre.coords[0]
        square = odc_geom.box(x - half, y - half, x + half, y + half, self.crs)
        clipped = square & self.geometry.to_crs(self.crs)
        if clipped.is_empty:
            raise AOIError(
                f"window of {size_km} km at lon {centre_lon}, lat {centre_lat} lies outside "
                f"site {self.name!r}; move its centre inside the site."
            )
        return replace(self, geometry=clipped.to_crs("EPSG:4326"))


def utm_crs_of(geometry: odc_geom.Geometry) -> CRS:
    """UTM zone (north or south) of a geometry's centroid, as odc-geo picks it."""
    return CRS.utm(geometry.centroid)


def slugify(text: str) -> str:
    """Lower-case ASCII slug: ``"Bobi Séguéla"`` -> ``"bobi-s-gu-la"``; accents become dashes."""
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _SLUG_RE.sub("-", ascii_text.lower()).strip("-")


def load_site(path: str | Path) -> Site:
    """Read and validate a site file.

    The file is an RFC 7946 GeoJSON FeatureCollection, Feature or bare geometry holding
    Polygon or MultiPolygon geometry in WGS84 longitude/latitude. Several polygon features
    are merged into one site. The name is the ``name`` property, else the file name.

    Parameters
    ----------
    path
        Path of the GeoJSON file.

    Returns
    -------
    Site

    Raises
    ------
    AOIError
        With a one-line message naming the problem, the value and the fix.

    Examples
    --------
    >>> site = load_site("aoi/tortiya.geojson")  # doctest: +SKIP
    >>> site.epsg
    32630
    """
    path = Path(path)
    if not path.exists():
        raise AOIError(
            f"site file {str(path)!r} does not exist; give the path of a GeoJSON polygon, "
            "for example aoi/tortiya.geojson."
        )
    if path.is_dir():
        raise AOIError(f"site file {str(path)!r} is a folder; give the path of a GeoJSON file.")
    try:
        # utf-8-sig also reads the byte-order mark Windows editors put first.
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise AOIError(
            f"site file {str(path)!r} is not text (not UTF-8); save it as GeoJSON text."
        ) from None
    except json.JSONDecodeError as exc:
        raise AOIError(
            f"site file {str(path)!r} is not JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}); save it as GeoJSON, e.g. from QGIS or geojson.io."
        ) from None
    geometries, properties = _polygon_geometries(doc, path)
    _check_crs_member(doc, path)
    shapes = [_to_shape(g, path) for g in geometries]
    polygon = shapely.union_all(shapes) if len(shapes) > 1 else shapes[0]
    geometry = odc_geom.Geometry(polygon, "EPSG:4326")
    name = str(properties.get("name") or "").strip()
    slug = slugify(name or path.stem.removesuffix(".geo"))
    if not slug:
        raise AOIError(
            f"site file {str(path)!r} gives no usable name; set a 'name' property such as "
            "\"tortiya\"."
        )
    if len(slug) > MAX_SITE_NAME_CHARS:
        raise AOIError(
            f"site file {str(path)!r} is named {slug[:20]!r}... ({len(slug):,} characters); "
            f"set a 'name' property of at most {MAX_SITE_NAME_CHARS} characters such as "
            "\"tortiya\"."
        )
    if slug in RESERVED_SITE_NAMES:
        raise AOIError(
            f"site file {str(path)!r} is named {slug!r}, the name of kpgeo's own {slug}/ folder "
            "in the output folder; set another 'name' property, such as \"tortiya\"."
        )
    _check_antimeridian(polygon, path)
    _check_utm_latitudes(polygon, path)
    site = Site(
        name=slug,
        title=str(properties.get("title") or name or path.stem),
        geometry=geometry,
        source=str(properties.get("source") or ""),
        country=str(properties.get("country") or ""),
        path=str(path),
        properties=dict(properties),
    )
    _check_area(site, path)
    return site


def _polygon_geometries(doc: Any, path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The polygon geometries of a GeoJSON document and the properties of its first feature."""
    where = repr(str(path))
    if not isinstance(doc, dict) or "type" not in doc:
        raise AOIError(
            f"site file {where} is JSON but not GeoJSON (no 'type' member); "
            "give a FeatureCollection with one Polygon feature."
        )
    kind = doc["type"]
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise AOIError(f"site file {where} has no 'features' list; add one Polygon feature.")
        if not features:
            raise AOIError(
                f"site file {where} is an empty FeatureCollection; add one Polygon feature."
            )
    elif kind == "Feature":
        features = [doc]
    elif kind in _GEOMETRY_TYPES:
        features = [{"type": "Feature", "geometry": doc, "properties": {}}]
    else:
        raise AOIError(
            f"site file {where} has GeoJSON type {kind!r}, which is not GeoJSON; "
            "give a FeatureCollection with one Polygon feature."
        )
    geometries = []
    for index, feature in enumerate(features):
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(geometry, dict) or "type" not in geometry:
            raise AOIError(
                f"site file {where}: feature {index} has no geometry; give it a Polygon."
            )
        if geometry["type"] not in _POLYGONAL:
            raise AOIError(
                f"site file {where}: feature {index} is a {geometry['type']}, not a polygon; "
                "a site must be a Polygon or MultiPolygon outlining the area to watch."
            )
        geometries.append(geometry)
    first = features[0] if isinstance(features[0], dict) else {}
    properties = first.get("properties") or {}
    return geometries, properties if isinstance(properties, dict) else {}


def _check_crs_member(doc: dict[str, Any], path: Path) -> None:
    crs = doc.get("crs")
    if crs is None:
        return
    name = (crs.get("properties") or {}).get("name") if isinstance(crs, dict) else None
    if name not in _WGS84_CRS_NAMES:
        # A crs without a name (a link, a bare string) is shown whole, so the line names it.
        shown = name if isinstance(name, str) else crs
        raise AOIError(
            f"site file {str(path)!r} declares crs {shown!r}; kpgeo reads WGS84 longitude/latitude "
            "(RFC 7946): reproject it, e.g. ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson."
        )


def _to_shape(geometry: dict[str, Any], path: Path) -> shapely.Geometry:
    """A validated shapely polygon from a GeoJSON geometry dict."""
    where = repr(str(path))
    polygons = (
        [geometry.get("coordinates")]
        if geometry["type"] == "Polygon"
        else list(geometry.get("coordinates") or [])
    )
    if not polygons or any(not p for p in polygons):
        raise AOIError(f"site file {where} has a polygon with no coordinates; draw the outline.")
    for rings in polygons:
        for ring in rings:
            _check_ring(ring, where)
    try:
        # Heights ([lon, lat, z], allowed by RFC 7946 and written by some GIS) are dropped.
        shape = shapely.force_2d(shapely.geometry.shape(geometry))
    except (ValueError, TypeError, IndexError) as exc:
        raise AOIError(f"site file {where} has malformed coordinates ({exc}).") from None
    if not shape.is_empty and not shape.is_valid:
        reason = shapely.is_valid_reason(shape)
        raise AOIError(
            f"site file {where} has an invalid polygon ({reason}); redraw the outline so it "
            "does not cross itself (QGIS: Vector > Geometry Tools > Fix Geometries)."
        )
    if shape.is_empty or shape.area == 0:
        raise AOIError(f"site file {where} has a polygon with no area; draw the outline.")
    return shape


def _check_ring(ring: Any, where: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise AOIError(
            f"site file {where} has a ring of {len(ring) if isinstance(ring, list) else 0} "
            "positions; a polygon ring needs at least 4 (the first repeated at the end)."
        )
    for position in ring:
        if (
            not isinstance(position, list)
            or len(position) < 2
            # JSON's true and false are Python bools, which are ints: not coordinates.
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) for v in position[:2])
        ):
            raise AOIError(
                f"site file {where} has position {position!r}; positions are [longitude, "
                "latitude] numbers."
            )
        lon, lat = position[0], position[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            hint = (
                " It looks like [latitude, longitude]; GeoJSON wants [longitude, latitude]."
                if -90 <= lon <= 90 and -180 <= lat <= 180
                else ""
            )
            raise AOIError(
                f"site file {where} has position [{lon}, {lat}] out of range: longitude must "
                f"be within -180..180 and latitude within -90..90.{hint}"
            )
    if ring[0][:2] != ring[-1][:2]:
        raise AOIError(
            f"site file {where} has an unclosed ring (starts at {ring[0][:2]}, ends at "
            f"{ring[-1][:2]}); repeat the first position at the end."
        )


def _check_antimeridian(polygon: shapely.Geometry, path: Path) -> None:
    """A site across ±180° (its parts at both ends of the longitudes) has no UTM zone: its
    centroid falls half a world away."""
    west, _, east, _ = polygon.bounds
    if east - west > 180:
        raise AOIError(
            f"site file {str(path)!r} spans longitudes {west:g} to {east:g}: it crosses the "
            "antimeridian (±180°) or joins places half a world apart; split it into one site "
            "file per side."
        )


def _check_utm_latitudes(polygon: shapely.Geometry, path: Path) -> None:
    """A site beyond UTM's latitudes has no zone to put its grid on (odc-geo found no
    candidate and the command ended in a traceback); Sentinel-2 does not image it either."""
    _, south, _, north = polygon.bounds
    low, high = UTM_LATITUDES
    if south < low or north > high:
        raise AOIError(
            f"site file {str(path)!r} reaches latitude {south if south < low else north:g}, "
            f"beyond the UTM zones ({-low:g}° S to {high:g}° N) a site's grid is drawn on; "
            "Sentinel-2 does not image it either: give a site between those latitudes."
        )


def _check_area(site: Site, path: Path) -> None:
    area = site.area_km2
    if area > MAX_SITE_AREA_KM2:
        raise AOIError(
            f"site file {str(path)!r} covers {area:,.0f} km², more than the "
            f"{MAX_SITE_AREA_KM2:,.0f} km² a site may have; split it into smaller site files "
            "(or check that the coordinates are longitude/latitude)."
        )
    if area < MIN_SITE_AREA_KM2:
        raise AOIError(
            f"site file {str(path)!r} covers {area:.4f} km², less than "
            f"{MIN_SITE_AREA_KM2} km² (100 pixels); draw a larger outline."
        )
    width, height = site.grid.shape.x, site.grid.shape.y
    if width * height > MAX_SITE_GRID_PX:
        raise AOIError(
            f"site file {str(path)!r} needs a grid of {width:,} x {height:,} px "
            f"({width * height / 1e6:,.0f} Mpx), more than the {MAX_SITE_GRID_PX / 1e6:,.0f} Mpx "
            "(a 70 km square) one site may have: its parts lie far apart or it is very long; "
            "split it into one site file per area."
        )


def describe_site(site: Site) -> str:
    """The lines ``kpgeo aoi check`` prints."""
    grid = site.grid
    return "\n".join(
        [
            f"name: {site.name}",
            f"title: {site.title}",
            f"area: {site.area_km2:.1f} km²",
            f"crs: EPSG:{site.epsg} (UTM zone {str(site.epsg)[-2:]}"
            f"{'N' if site.epsg < 32700 else 'S'})",
            f"grid: {grid.shape.x} x {grid.shape.y} px at {RESOLUTION_M:g} m "
            f"({grid.shape.x * grid.shape.y / 1e6:.1f} Mpx)",
        ]
    )
