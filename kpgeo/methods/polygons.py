"""Digging areas as polygons with stable ids, and their RFC 7946 GeoJSON form (docs/product.md §8).

A digging area is one 8-connected group of pixels of one status (pre-existing or new) no smaller
than the minimum mapping unit. Its id comes from its *seed pixel*: for new digging the pixel
mapped first (in the earliest month it belonged to a mapped area; ties broken by confirmation
month, row, column), for pre-existing digging the top-left pixel. Confirmed pixels never
unconfirm, so an area only grows, its seed stays in it, and its id stays the same in later
months and in reruns; pixels that join it later, even ones confirmed earlier but too few to be
mapped, never take over the seed; when two mapped areas grow together the older id survives.
The id spells the seed pixel's centre in the site's UTM grid, so it is readable on a map:
``tortiya-n-694215-964305`` is new digging around easting 694215 m, northing 964305 m.

A new area's ``first_detected`` is its earliest pixel's month, so an area that grows keeps its
old date; the month's growth is its own figure, ``new_ha_this_month``: the area of its pixels
that are new digging this month and were not in the latest measured month's (the pixels the
month's ``new_ha`` in ``timeseries.csv`` counts, so that the figures of a month's areas add up
to it; 0 for pre-existing digging). A pre-existing area says instead how well the baseline saw
it: ``baseline_seasons``, the median of its pixels' seasons seen (0-12), and ``certainty``,
``"low"`` below :data:`~.baseline_seasons.SEASONS_MIN` (:mod:`kpgeo.methods.baseline_seasons`);
both are null for new digging. Each feature's ``measured_month`` names the month its areas were
measured in (an earlier one in a gap month, :mod:`kpgeo.products.measured`).

An area's ``evidence`` says what its digging rests on (:mod:`kpgeo.methods.fusion`): ``radar``
when every pixel of it is *radar-only* (dated by Sentinel-1, ``radar_since`` > 0, and not
optically confirmed), ``optical`` when none is, ``optical+radar`` when some are; pre-existing
digging is mapped from the optical baseline, ``optical``. Each piece of an area counts its
radar-only pixels, so that chunks give the whole grid's evidence. Radar detects and confirms
too: a pixel's detection and confirmation months are the earlier of optical imagery's and the
month radar dated it to, so a radar-only area has both, and a pixel optical imagery confirms
after radar keeps its months (and its area its seed).

Areas are counted in pixels of the UTM grid (100 m² each at 10 m), never from reprojected
geometry. GeoJSON is written by hand rather than through GDAL's driver because the product needs
a top-level foreign member (``kpgeo``) and must be byte-identical across reruns.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import rasterio.features
import shapely
import shapely.geometry
from odc.geo.crs import CRS
from odc.geo.geobox import GeoBox
from scipy import ndimage

from .baseline_seasons import certainty, histograms, median_seasons
from .detection import EIGHT, DetectionState, label_month, remove_small

Status = Literal["preexisting", "new"]
Evidence = Literal["optical", "radar", "optical+radar"]
#: Values of a digging area's ``evidence``: none of its pixels radar-only, all, some.
EVIDENCE_OPTICAL: Evidence = "optical"
EVIDENCE_RADAR: Evidence = "radar"
EVIDENCE_BOTH: Evidence = "optical+radar"
#: Decimal places of GeoJSON coordinates (RFC 7946 §11.2: about 0.1 m).
COORDINATE_DECIMALS = 6


@dataclass(frozen=True)
class DiggingArea:
    """One digging area of a site in one month."""

    site: str
    id: str
    status: Status
    first_detected: str | None
    """Month (YYYY-MM) its first pixel was first detected (by optical imagery or radar); None
    for pre-existing digging."""
    confirmed: str | None
    """Month its seed pixel was confirmed (by optical imagery or radar); None for
    pre-existing digging."""
    area_ha: float
    pixels: int
    geometry: shapely.Geometry
    """Polygon or MultiPolygon in the site grid's CRS."""
    new_ha_this_month: float | None = 0.0
    """Area of its pixels new this month (:func:`area_pieces`' ``increment``); 0 for
    pre-existing digging; None where not known."""
    baseline_seasons: int | None = None
    """Pre-existing digging: the median of its pixels' seasons seen by the baseline
    (:mod:`~.baseline_seasons`); None for new digging or where not known."""
    radar_pixels: int = 0
    """Of its pixels, those radar alone dated (:func:`~.fusion.radar_only`: radar-dated, not
    optically confirmed); 0 for pre-existing digging."""

    @property
    def evidence(self) -> Evidence:
        """What the area rests on: ``radar`` (all its pixels radar-only), ``optical`` (none;
        pre-existing digging always), ``optical+radar`` (some)."""
        return area_evidence(self.status, self.pixels, self.radar_pixels)

    def properties(self) -> dict[str, Any]:
        """The feature's properties but its ``measured_month`` (:func:`feature_collection`):
        what the area is and what it rests on, then this month's growth of it, then how sure
        the pre-existing map is of it (kpgeo.methods.baseline_seasons)."""
        return {"site": self.site, "id": self.id, "status": self.status,
                "first_detected": self.first_detected, "confirmed": self.confirmed,
                "evidence": self.evidence,
                "area_ha": self.area_ha, "new_ha_this_month": self.new_ha_this_month,
                "baseline_seasons": self.baseline_seasons,
                "certainty": certainty(self.baseline_seasons)}

    def geojson_geometry(self, crs: Any) -> dict[str, Any]:
        """:func:`rfc7946_geometry` of the area (shared: do not modify it)."""
        return _rfc7946_of_wkb(shapely.to_wkb(self.geometry), str(crs))


def area_evidence(status: Status, pixels: int, radar_pixels: int) -> Evidence:
    """A digging area's ``evidence`` from its size and radar-only pixels.

    Examples
    --------
    >>> area_evidence("new", 12, 12), area_evidence("new", 12, 0), area_evidence("new", 12, 5)
    ('radar', 'optical', 'optical+radar')
    >>> area_evidence("preexisting", 12, 0)
    'optical'
    """
    if status != "new" or radar_pixels <= 0:
        return EVIDENCE_OPTICAL
    return EVIDENCE_RADAR if radar_pixels >= pixels else EVIDENCE_BOTH


def new_digging_mask(state: DetectionState, preexisting: np.ndarray, min_area_ha: float,
                     pixel_m: float = 10.0, share_min: float = 0.0) -> np.ndarray:
    """Confirmed new-digging pixels outside pre-existing digging whose dug share has reached
    ``share_min``, at the mapping unit."""
    dug = (state.confirmed > 0) & ~preexisting
    if share_min > 0 and state.dug_share is not None:
        dug &= state.dug_share >= share_min
    return remove_small(dug, min_area_ha, pixel_m)


def dug_ground(footprint: np.ndarray, confirmed: np.ndarray, preexisting: np.ndarray,
               near: np.ndarray | None = None) -> np.ndarray:
    """The ground whose dug shares make the dug area: the new-digging ``footprint`` and its
    edge, the confirmed pixels beside it dug less than half (a working shades off into them;
    they hold about a sixth of its dug ground). ``near``: the pixels on or next to the
    footprint, when known beyond the array (a chunk of a grid)."""
    if near is None:
        near = ndimage.binary_dilation(footprint, structure=EIGHT)
    edge = confirmed & ~preexisting & ~footprint & near
    ground: np.ndarray = footprint | edge
    return ground


def digging_areas(site: str, grid: GeoBox, preexisting: np.ndarray | Sequence[DiggingArea],
                  new: np.ndarray, state: DetectionState,
                  increment: np.ndarray | None = None,
                  radar_since: np.ndarray | None = None) -> list[DiggingArea]:
    """The pre-existing and new digging areas of a site, ordered by status then id.

    ``preexisting`` and ``new`` are final pixel masks (already at the mapping unit);
    ``preexisting`` may also be its :func:`preexisting_areas`, which are the same every month
    of a baseline. ``increment``: the pixels new this month (each area's ``new_ha_this_month``;
    None where not given); ``radar_since``: the month radar dated each pixel to
    (``change.tif``'s band: each area's ``evidence`` and radar's months; no radar when not
    given).
    """
    if isinstance(preexisting, np.ndarray):
        preexisting = preexisting_areas(site, grid, preexisting)
    areas = list(preexisting) + _areas(site, grid, new, "new", state, increment=increment,
                                       radar_since=radar_since)
    return sorted(areas, key=lambda a: (a.status != "preexisting", a.id))


def preexisting_areas(site: str, grid: GeoBox, preexisting: np.ndarray,
                      seasons: np.ndarray | None = None) -> list[DiggingArea]:
    """The pre-existing digging areas of a site's final pre-existing mask; ``seasons``: the
    seasons the baseline saw each pixel in (``baseline_seasons``), for each area's
    certainty."""
    return _areas(site, grid, preexisting, "preexisting", None, seasons=seasons)


def _areas(site: str, grid: GeoBox, mask: np.ndarray, status: Status,
           state: DetectionState | None, increment: np.ndarray | None = None,
           seasons: np.ndarray | None = None, radar_since: np.ndarray | None = None,
           ) -> list[DiggingArea]:
    occupied_rows, occupied_cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if occupied_rows.size == 0:
        return []
    # Only the box around the areas is labelled and polygonized: digging covers a sliver of a
    # site, and polygonizing the whole grid was most of the time a month's polygons took.
    r0, c0 = int(occupied_rows[0]), int(occupied_cols[0])
    box = (slice(r0, int(occupied_rows[-1]) + 1), slice(c0, int(occupied_cols[-1]) + 1))
    labels, _ = ndimage.label(mask[box], structure=EIGHT)
    boxed = None if state is None else DetectionState(
        state.first_detected[box], state.confirmed[box], state.mapped_since[box])  # type: ignore[index]
    return merge_pieces(site, grid, area_pieces(labels, grid, box[0], box[1], boxed,
                                                None if increment is None else increment[box],
                                                None if seasons is None else seasons[box],
                                                None if radar_since is None
                                                else radar_since[box]),
                        status)


@dataclass(frozen=True)
class AreaPiece:
    """The part of one digging area within a chunk of the grid (:func:`area_pieces`)."""

    label: int
    """The area's number, the same in every chunk it reaches."""
    pixels: int
    seed: tuple[int, int, int, int]
    """The piece's candidate seed: (first mapped, first confirmed, row, column) in the grid,
    unmapped pixels last; the smallest over the pieces is the area's. A radar-dated pixel's
    confirmation month is the earlier of optical imagery's and radar's."""
    first_detected: int
    """Earliest ``first_detected`` of its pixels (YYYYMM; the int32 maximum where none)."""
    confirmed_at_seed: int
    shapes: tuple[shapely.Geometry, ...]
    increment_pixels: int | None = None
    """Its pixels new this month (None: not known)."""
    seasons: tuple[int, ...] = ()
    """Pre-existing digging: how many of its pixels the baseline saw in 0, 1, ... 12
    seasons (:func:`~.baseline_seasons.histograms`); empty when not known."""
    radar_pixels: int = 0
    """Its radar-only pixels (:attr:`DiggingArea.radar_pixels`)."""


def area_pieces(labels: np.ndarray, grid: GeoBox, rows: slice, cols: slice,
                state: DetectionState | None,
                increment: np.ndarray | None = None,
                seasons: np.ndarray | None = None,
                radar_since: np.ndarray | None = None) -> list[AreaPiece]:
    """The pieces of the areas ``labels`` (area numbers, 0 outside) of the window ``rows``,
    ``cols`` of ``grid``; ``state``: the window's detection state (None for pre-existing
    digging); ``increment``: the window's pixels new this month, whose count each piece
    keeps (new digging); ``seasons``: the window's seasons seen by the baseline (pre-existing
    digging); ``radar_since``: the month radar dated each pixel of the window to (> 0; new
    digging; no radar when not given): each piece counts its radar-only pixels (radar-dated,
    not optically confirmed), and a radar-dated pixel's detection and confirmation months are
    the earlier of optical imagery's and radar's. Pieces of one area from several chunks make
    it whole in :func:`merge_pieces`."""
    ys, xs = np.nonzero(labels)
    if ys.size == 0:
        return []
    lab = labels[ys, xs]
    zeros = np.zeros_like(lab)
    confirmed = state.confirmed[ys, xs] if state is not None else zeros
    dated = radar_since[ys, xs] if radar_since is not None else zeros
    radar_only = (dated > 0) & (confirmed == 0)
    # Radar confirms as optical imagery does: a pixel's confirmation is the earlier of the
    # two, which a later optical confirmation leaves as it was (the seed stays).
    confirmed = _earlier(confirmed, dated)
    since = state.mapped_since[ys, xs] if state is not None else zeros  # type: ignore[index]
    # Unmapped pixels (0) sort after mapped ones: a group joining an area never lends its seed.
    since = np.where(since > 0, since, np.iinfo("int32").max)
    rows_g, cols_g = ys + rows.start, xs + cols.start
    # The seed of each piece: by label, then first mapped, first confirmed, row, column.
    order = np.lexsort((cols_g, rows_g, confirmed, since, lab))
    first_of_label = order[np.r_[0, np.nonzero(np.diff(lab[order]))[0] + 1]]
    numbers = lab[first_of_label]
    piece_of = np.searchsorted(numbers, lab)  # each pixel's piece
    sizes = np.bincount(piece_of, minlength=numbers.size)
    increment_sizes = (None if increment is None else
                   np.bincount(piece_of, weights=increment[ys, xs], minlength=numbers.size))
    radar_sizes = np.bincount(piece_of, weights=radar_only, minlength=numbers.size)
    never = np.iinfo("int32").max
    if state is not None:
        detected = _earlier(state.first_detected[ys, xs], dated)
        detected = np.where(detected > 0, detected, never)
        first_detected = np.full(numbers.size, never, dtype="int64")
        np.minimum.at(first_detected, piece_of, detected)
    seen = (np.zeros((numbers.size, 0), "int64") if seasons is None
            else histograms(piece_of, seasons[ys, xs], numbers.size))
    affine = grid[rows, cols].affine
    shapes: dict[int, list[shapely.Geometry]] = {}
    for geom, value in rasterio.features.shapes(labels.astype("int32"), mask=labels > 0,
                                                connectivity=8, transform=affine):
        shapes.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    return [AreaPiece(int(number), int(sizes[i]),
                      (int(since[index]), int(confirmed[index]), int(rows_g[index]),
                       int(cols_g[index])),
                      int(first_detected[i]) if state is not None else never,
                      int(confirmed[index]), tuple(shapes[int(number)]),
                      None if increment_sizes is None else int(increment_sizes[i]),
                      tuple(int(c) for c in seen[i]), int(radar_sizes[i]))
            for i, (number, index) in enumerate(zip(numbers, first_of_label, strict=True))]


def _earlier(months: np.ndarray, radar_months: np.ndarray) -> np.ndarray:
    """Per pixel, the earlier of ``months`` and ``radar_months`` (YYYYMM; 0 or less: none)."""
    radar = radar_months > 0
    earlier: np.ndarray = np.where(radar & ((months <= 0) | (radar_months < months)),
                                   radar_months, months)
    return earlier


def merge_pieces(site: str, grid: GeoBox, pieces: Sequence[AreaPiece],
                 status: Status) -> list[DiggingArea]:
    """The digging areas the ``pieces`` of every chunk make, one per label, in label order."""
    by_label: dict[int, list[AreaPiece]] = {}
    for piece in pieces:
        by_label.setdefault(piece.label, []).append(piece)
    pixel_m = abs(grid.resolution.x)
    prefix = "p" if status == "preexisting" else "n"
    out = []
    for label in sorted(by_label):
        parts = by_label[label]
        seeded = min(parts, key=lambda p: p.seed)
        _, _, row, col = seeded.seed
        x, y = grid.affine @ (col + 0.5, row + 0.5)
        pixels = sum(p.pixels for p in parts)
        geometry = shapely.make_valid(shapely.union_all([g for p in parts for g in p.shapes]))
        new = status == "new"
        increments = [p.increment_pixels for p in parts]
        # Rounded as area_ha is: a month's areas add up to its new_ha within 0.0001 ha each.
        new_ha_this_month = (0.0 if not new else None if None in increments else
                             round(sum(i or 0 for i in increments) * pixel_m**2 / 1e4, 4))
        seen = [np.asarray(p.seasons, "int64") for p in parts if p.seasons]
        out.append(DiggingArea(
            site=site,
            id=f"{site}-{prefix}-{math.floor(x)}-{math.floor(y)}",
            status=status,
            first_detected=label_month(min(p.first_detected for p in parts)) if new else None,
            confirmed=label_month(seeded.confirmed_at_seed) if new else None,
            area_ha=round(float(pixels) * pixel_m**2 / 1e4, 4),
            pixels=pixels,
            geometry=geometry,
            new_ha_this_month=new_ha_this_month,
            baseline_seasons=median_seasons(np.sum(seen, axis=0)) if seen and not new else None,
            radar_pixels=sum(p.radar_pixels for p in parts) if new else 0,
        ))
    return out


def rfc7946_geometry(geometry: shapely.Geometry, crs: Any) -> dict[str, Any]:
    """``geometry`` (in ``crs``) as an RFC 7946 GeoJSON geometry.

    WGS84 longitude/latitude, counter-clockwise exterior rings and clockwise holes (§3.1.6),
    coordinates rounded to 6 decimals (§11.2).
    """
    # Every coordinate of the geometry in one call of the transformer (odc-geo's ``to_crs``
    # goes through shapely's deprecated ``ops.transform``, ring by ring through lists).
    to_wgs84 = CRS(crs).transformer_to_crs("EPSG:4326")
    wgs84 = shapely.transform(geometry,
                              lambda xy: np.column_stack(to_wgs84(xy[:, 0], xy[:, 1])))
    wgs84 = shapely.set_precision(wgs84, 10.0 ** -COORDINATE_DECIMALS)
    wgs84 = shapely.make_valid(wgs84)
    polygons = [g for g in getattr(wgs84, "geoms", [wgs84]) if g.geom_type == "Polygon"
                and not g.is_empty]
    oriented = [shapely.geometry.polygon.orient(p, sign=1.0) for p in polygons]
    if len(oriented) == 1:
        doc = shapely.geometry.mapping(oriented[0])
    else:
        doc = shapely.geometry.mapping(shapely.MultiPolygon(oriented))
    return {"type": doc["type"], "coordinates": _round(doc["coordinates"])}


@functools.lru_cache(maxsize=1024)
def _rfc7946_of_wkb(wkb: bytes, crs: str) -> dict[str, Any]:
    """:func:`rfc7946_geometry` by the geometry's WKB: pre-existing digging, and new digging
    that did not grow, keep their geometry from month to month, and convert once."""
    return rfc7946_geometry(shapely.from_wkb(wkb), crs)


def _round(coords: Any) -> Any:
    if isinstance(coords[0], (int, float)):
        return [round(float(c), COORDINATE_DECIMALS) for c in coords]
    return [_round(c) for c in coords]


def feature_collection(areas: Sequence[DiggingArea], crs_of: Mapping[str, Any],
                       foreign: Mapping[str, Any] | None = None,
                       name: str | None = None,
                       measured_month: str | None = None) -> dict[str, Any]:
    """An RFC 7946 FeatureCollection of ``areas``; ``crs_of`` maps site name → grid CRS.

    ``foreign`` becomes the top-level foreign member ``kpgeo`` (RFC 7946 §6.1); ``name``, when
    given, the ``name`` member that GDAL and QGIS take for the layer's name;
    ``measured_month``, each feature's ``measured_month`` (its last property): the month whose
    observations the areas were measured from.
    """
    doc: dict[str, Any] = {"type": "FeatureCollection"}
    if name is not None:
        doc["name"] = name
    if foreign is not None:
        doc["kpgeo"] = dict(foreign)
    doc["features"] = [
        {"type": "Feature", "id": a.id,
         "properties": {**a.properties(), "measured_month": measured_month},
         "geometry": a.geojson_geometry(crs_of[a.site])}
        for a in areas
    ]
    return doc
