"""``kpgeo synth``: write a synthetic world as a static STAC collection of COGs, plus its truth.

The collection has the form of Earth Search's ``sentinel-2-c1-l2a``: one item per scene with
assets ``blue green red nir`` (10 m) and ``swir16 swir22 scl`` (20 m), ``raster:bands`` with
scale 0.0001 and offset −0.1, nodata 0, and ``proj:`` fields, so kpgeo reads it through exactly the
code path of the real service. Near a UTM zone boundary every third pass comes on the
neighbouring zone's grid, as the overlapping MGRS tiles of real Sentinel-2 do.

The truth lies in ``truth/`` on the site grid: each dug pixel's first month (a pixel is dug
when at least half of it is), the share of each pixel dug, the pre-existing digging, fields,
burns, riverbeds, roads, the river's flood water outside its channel, and the true area
series. Each scene's misregistration is in its
item's ``kpgeo:shift_px``.

With ``radar``, a Sentinel-1 RTC collection of the same world lies beside it in
``sentinel-1-rtc/`` (:mod:`.radar_archive`); the optical files are the same with or without it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio.warp
from affine import Affine
from odc.geo.crs import CRS
from odc.geo.geobox import GeoBox

from .. import __version__
from ..aoi import Site
from ..errors import InputError
from ..months import MonthRange
from ..products.export import write_cog
from .ground import Ground
from .radar_archive import RADAR_COLLECTION, RADAR_VERSION, write_radar
from .scenes import NODATA, OFFSET, SCALE, Acquisition, SceneArrays, render, schedule
from .truth import write_truth
from .world import build_world

#: Sites closer than this to a UTM zone boundary also get scenes on the neighbour's grid.
NEIGHBOUR_ZONE_KM = 150.0
#: Every n-th pass of such a site comes on the neighbouring zone's grid.
NEIGHBOUR_EVERY = 3
#: Marker of an archive written by kpgeo (and of its parameters) in collection.json.
SYNTH_KEY = "kpgeo:synth"
#: Sentinel-2 band metadata of the Collection-1 assets: (asset, band id, centre µm, FWHM µm, m).
ASSET_BANDS = (
    ("blue", "B02", 0.490, 0.098, 10),
    ("green", "B03", 0.560, 0.045, 10),
    ("red", "B04", 0.665, 0.038, 10),
    ("nir", "B08", 0.842, 0.145, 10),
    ("swir16", "B11", 1.610, 0.143, 20),
    ("swir22", "B12", 2.190, 0.242, 20),
)
_STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
]


@dataclass(frozen=True)
class SynthResult:
    """What ``kpgeo synth`` wrote."""

    collection: Path
    """The STAC ``collection.json``."""
    scenes: int
    """Number of scenes (items)."""
    truth: Path
    """Folder of truth rasters and the true area series."""
    cached: bool
    """True when a matching archive was already there and nothing was written."""
    radar: Path | None = None
    """The Sentinel-1 RTC ``collection.json``, when the archive has one."""
    radar_scenes: int = 0
    """Number of radar scenes (items)."""


#: Version of the generator and its truth; an archive of another version is rebuilt, not reused.
SYNTH_VERSION = 7


def site_stream(site: Site) -> int:
    """A number from the site's name that makes sites of one seed different worlds."""
    return zlib.crc32(site.name.encode("utf-8"))


def synth_parameters(site: Site, months: MonthRange, seed: int,
                     cloudiness: float = 1.0, ground: Ground | None = None) -> dict[str, Any]:
    """The parameters that fully determine an archive (stored in collection.json)."""
    return {
        "ground": (ground or Ground()).to_dict(),
        "site": site.name,
        "geometry_sha1": hashlib.sha1(site.geometry.wkt.encode()).hexdigest(),
        "months": str(months),
        "seed": int(seed),
        "cloudiness": float(cloudiness),
        "synth_version": SYNTH_VERSION,
        "generator": f"kpgeo {__version__}",
    }


def write_archive(site: Site, months: MonthRange, out: str | Path, *, seed: int = 7,
                  cloudiness: float = 1.0, ground: Ground | None = None, workers: int = 2,
                  replace_stale: bool = False, radar: bool = False) -> SynthResult:
    """Write the synthetic archive of ``site`` over ``months`` to the folder ``out``.

    An existing archive with the same parameters is reused (the build is deterministic); a
    folder holding anything else is refused, so nothing is overwritten.

    ``cloudiness`` multiplies the mean cloud cover of every month (1 = the climate of the
    sites; 2 = an unusually cloudy year). ``ground``: the hardships of real ground (default:
    all of them, :class:`~.ground.Ground`; ``Ground.simple()`` for the clean world).
    ``replace_stale`` lets a cache replace a kpgeo archive
    made with other parameters or an older generator. ``radar`` adds the Sentinel-1 RTC
    collection (:mod:`.radar_archive`), also to an archive already there without it; off by
    default, as most uses (tests among them) read only the optical scenes.

    Raises
    ------
    InputError
        If ``out`` exists and is not an archive with the same parameters.
    """
    out = Path(out)
    ground = Ground() if ground is None else ground
    params = synth_parameters(site, months, seed, cloudiness, ground)
    existing = _existing_parameters(out)
    if existing == params:
        cached = True
        if radar and _radar_parameters(out) != _radar_marker(params):
            _add_radar(out, site, months, seed, ground, params, workers)
            cached = False
        return _result(out, _count_items(out), cached)
    if existing is not None and replace_stale:
        shutil.rmtree(out)  # a cache of an older generator or other parameters
    elif out.exists() and (existing is not None or any(out.iterdir())):
        raise InputError(
            f"--out {str(out)!r} already holds "
            f"{'another synthetic archive' if existing else 'other files'}; "
            "give a new or empty folder."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    # No dots in the name: pystac takes a dotted last component for a file name.
    tmp = Path(tempfile.mkdtemp(prefix="kpgeo-synth-tmp-", dir=out.parent)).resolve()
    try:
        world_grid = _world_grid(site.grid)
        stream = site_stream(site)
        world = build_world(world_grid, months, seed, stream, ground)
        acquisitions = schedule(months)
        neighbour = _neighbour_crs(site)
        collection = _collection(site, months, params)

        def one(acq: Acquisition) -> pystac.Item:
            scene = render(world, acq, seed, cloudiness, stream)
            on_neighbour = neighbour is not None and acq.index % NEIGHBOUR_EVERY == 1
            return _write_scene(tmp, scene, acq, world_grid,
                                neighbour if on_neighbour else None)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            items = list(pool.map(one, acquisitions))
        for item in items:
            collection.add_item(item)
        collection.update_extent_from_items()
        # A trailing slash tells pystac the root href is a folder, not a file.
        collection.normalize_hrefs(str(tmp) + "/")
        for item in items:
            item.make_asset_hrefs_relative()
        collection.save(pystac.CatalogType.SELF_CONTAINED)
        write_truth(tmp / "truth", world, site, months)
        if radar:
            write_radar(tmp / RADAR_COLLECTION, world, months, seed=seed, stream=stream,
                        title=site.title, bbox=list(site.geometry.boundingbox),
                        marker={SYNTH_KEY: _radar_marker(params)}, workers=workers)
        if out.exists():
            out.rmdir()  # empty, checked above
        tmp.chmod(0o755)  # mkdtemp made it private; an archive is meant to be shared
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return _result(out, len(acquisitions), False)


def _result(out: Path, scenes: int, cached: bool) -> SynthResult:
    radar = out / RADAR_COLLECTION / "collection.json"
    if not radar.is_file():
        return SynthResult(out / "collection.json", scenes, out / "truth", cached)
    return SynthResult(out / "collection.json", scenes, out / "truth", cached, radar,
                       _count_items(radar.parent))


def _radar_marker(params: dict[str, Any]) -> dict[str, Any]:
    """What the radar collection records of what made it: the archive's parameters and the
    radar generator's version."""
    return {**params, "radar_version": RADAR_VERSION}


def _radar_parameters(out: Path) -> dict[str, Any] | None:
    return _existing_parameters(out / RADAR_COLLECTION)


def _add_radar(out: Path, site: Site, months: MonthRange, seed: int, ground: Ground,
               params: dict[str, Any], workers: int) -> None:
    """Give an optical archive its radar (or new radar, of this generator): the same world
    drawn again (it is deterministic), its passes written beside it and moved into place."""
    tmp = Path(tempfile.mkdtemp(prefix="kpgeo-synth-tmp-", dir=out)).resolve()
    try:
        stream = site_stream(site)
        world = build_world(_world_grid(site.grid), months, seed, stream, ground)
        write_radar(tmp / RADAR_COLLECTION, world, months, seed=seed, stream=stream,
                    title=site.title, bbox=list(site.geometry.boundingbox),
                    marker={SYNTH_KEY: _radar_marker(params)}, workers=workers)
        (tmp / RADAR_COLLECTION).chmod(0o755)
        if (out / RADAR_COLLECTION).exists():
            shutil.rmtree(out / RADAR_COLLECTION)  # of an older generator
        (tmp / RADAR_COLLECTION).rename(out / RADAR_COLLECTION)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _existing_parameters(out: Path) -> dict[str, Any] | None:
    path = out / "collection.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get(SYNTH_KEY)
    except (json.JSONDecodeError, OSError):
        return None


def _count_items(out: Path) -> int:
    doc = json.loads((out / "collection.json").read_text())
    return sum(1 for link in doc.get("links", []) if link.get("rel") == "item")


def _snapped_grid(bbox: tuple[float, float, float, float], crs: CRS, resolution: int) -> GeoBox:
    """A north-up grid covering ``bbox`` with edges on multiples of 20 m, so that 10 m and 20 m
    bands nest exactly, as in Sentinel-2 tiles."""
    x0, y0, x1, y1 = bbox
    x0, y0 = np.floor(x0 / 20) * 20, np.floor(y0 / 20) * 20
    x1, y1 = np.ceil(x1 / 20) * 20, np.ceil(y1 / 20) * 20
    shape = (round((y1 - y0) / resolution), round((x1 - x0) / resolution))
    return GeoBox(shape, Affine(resolution, 0, x0, 0, -resolution, y1), crs)


def _world_grid(site_grid: GeoBox) -> GeoBox:
    """The site grid grown to 20 m-aligned edges."""
    return _snapped_grid(tuple(site_grid.boundingbox), site_grid.crs, 10)


def _neighbour_crs(site: Site) -> CRS | None:
    """The UTM zone across the nearer zone boundary, if the site lies near one."""
    lon, lat = site.geometry.centroid.coords[0]
    zone = site.epsg % 100
    west_edge = -180 + (zone - 1) * 6
    km_per_degree = 111.32 * np.cos(np.radians(lat))
    to_west, to_east = (lon - west_edge) * km_per_degree, (west_edge + 6 - lon) * km_per_degree
    if min(to_west, to_east) > NEIGHBOUR_ZONE_KM:
        return None
    other = zone - 1 if to_west < to_east else zone + 1
    other = (other - 1) % 60 + 1
    return CRS(f"EPSG:{site.epsg - zone + other}")


def _grid_in(crs: CRS, world_grid: GeoBox, resolution: int) -> GeoBox:
    """A grid in another CRS covering the world."""
    return _snapped_grid(tuple(world_grid.extent.to_crs(crs).boundingbox), crs, resolution)


def _reproject(arr: np.ndarray, src: GeoBox, dst: GeoBox, nearest: bool) -> np.ndarray:
    out = np.zeros(dst.shape.yx, dtype=arr.dtype)
    rasterio.warp.reproject(
        arr, out, src_transform=src.affine, src_crs=str(src.crs), dst_transform=dst.affine,
        dst_crs=str(dst.crs), src_nodata=NODATA, dst_nodata=NODATA,
        resampling=rasterio.warp.Resampling.nearest if nearest
        else rasterio.warp.Resampling.bilinear,
    )
    return out


def _write_scene(root: Path, scene: SceneArrays, acq: Acquisition, world_grid: GeoBox,
                 neighbour: CRS | None) -> pystac.Item:
    grid10 = world_grid
    grid20 = GeoBox(tuple(s // 2 for s in world_grid.shape.yx),
                    world_grid.affine @ Affine.scale(2), world_grid.crs)
    arrays: dict[str, tuple[np.ndarray, GeoBox]] = {}
    if neighbour is None:
        arrays.update({b: (a, grid10) for b, a in scene.bands10.items()})
        arrays.update({b: (a, grid20) for b, a in scene.bands20.items()})
        arrays["scl"] = (scene.scl, grid20)
    else:
        n10, n20 = _grid_in(neighbour, world_grid, 10), _grid_in(neighbour, world_grid, 20)
        arrays.update({b: (_reproject(a, grid10, n10, False), n10)
                       for b, a in scene.bands10.items()})
        arrays.update({b: (_reproject(a, grid20, n20, False), n20)
                       for b, a in scene.bands20.items()})
        arrays["scl"] = (_reproject(scene.scl, grid20, n20, True), n20)
    crs = arrays["blue"][1].crs
    epsg = int(crs.epsg)
    zone = epsg % 100
    tile = f"{zone:02d}PSY"  # P: latitude band 8-16 N; SY: marks a synthetic tile
    stamp = str(acq.day).replace("-", "")
    item_id = f"S2{acq.platform[-1].upper()}_T{tile}_{stamp}T105000_L2A"
    folder = root / item_id
    footprint = arrays["blue"][1].extent.to_crs("EPSG:4326")
    item = pystac.Item(
        id=item_id,
        geometry=footprint.json,
        bbox=list(footprint.boundingbox),
        datetime=np.datetime64(acq.day, "s").astype(object).replace(hour=10, minute=50),
        properties={
            "platform": acq.platform,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": round(scene.cloud_pct, 2),
            "proj:epsg": epsg,
            "mgrs:utm_zone": zone,
            "mgrs:latitude_band": "P",
            "mgrs:grid_square": "SY",
            "grid:code": f"MGRS-{tile}",
            "s2:processing_baseline": "05.10",
            "s2:nodata_pixel_percentage": round(scene.nodata_pct, 2),
            "kpgeo:synthetic": True,
            "kpgeo:shift_px": [round(v, 3) for v in scene.shift_px],
        },
        stac_extensions=list(_STAC_EXTENSIONS),
    )
    meta = {name: (band_id, centre, fwhm, res) for name, band_id, centre, fwhm, res in ASSET_BANDS}
    for name, (arr, grid) in arrays.items():
        # Fastest DEFLATE level: the archive is rebuilt on demand, speed beats size here.
        path = write_cog(folder / f"{name}.tif", arr, grid, nodata=NODATA, zlevel=1,
                         resampling="nearest" if name == "scl" else "average")
        res = int(grid.resolution.x)
        raster_band: dict[str, Any] = {
            "nodata": NODATA, "data_type": arr.dtype.name, "spatial_resolution": res,
        }
        extra: dict[str, Any] = {
            "proj:shape": list(grid.shape.yx),
            "proj:transform": list(grid.affine)[:6],
        }
        if name == "scl":
            title = "Scene classification map (SCL)"
        else:
            band_id, centre, fwhm, _ = meta[name]
            raster_band.update(bits_per_sample=15, scale=SCALE, offset=OFFSET)
            extra["eo:bands"] = [{"name": band_id, "common_name": name,
                                  "center_wavelength": centre, "full_width_half_max": fwhm}]
            title = f"{name} ({band_id}) - {res}m"
        extra["raster:bands"] = [raster_band]
        item.add_asset(name, pystac.Asset(
            href=str(path), media_type=pystac.MediaType.COG, roles=["data"], title=title,
            extra_fields=extra,
        ))
    return item


def _collection(site: Site, months: MonthRange, params: dict[str, Any]) -> pystac.Collection:
    bbox = list(site.geometry.boundingbox)
    start = np.datetime64(months.first, "s").astype(object)
    end = np.datetime64(months.last + 1, "s").astype(object)
    collection = pystac.Collection(
        id="sentinel-2-c1-l2a",
        description=(
            f"Synthetic Sentinel-2 L2A archive of {site.title} written by kpgeo synth "
            "(Earth Search Collection-1 form). Not real imagery: every scene is drawn from a "
            "simulated savanna world whose truth lies in truth/."
        ),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]),
                             pystac.TemporalExtent([[start, end]])),
        license="CC0-1.0",
        title=f"kpgeo synthetic Sentinel-2 L2A: {site.title}",
        extra_fields={SYNTH_KEY: params},
        stac_extensions=list(_STAC_EXTENSIONS),
    )
    return collection
