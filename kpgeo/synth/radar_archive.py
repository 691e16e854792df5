"""The synthetic archive's Sentinel-1 collection: RTC scenes in the form of Microsoft Planetary
Computer's ``sentinel-1-rtc``.

A static STAC collection beside the Sentinel-2 one (``<archive>/sentinel-1-rtc/``), one item per
pass with assets ``vv`` and ``vh``: gamma0 in linear power, float32 COGs, nodata -32768 as in
``raster:bands``; properties ``sat:orbit_state``, ``sat:relative_orbit``, ``sar:polarizations``,
``sar:instrument_mode`` (IW) and ``proj:*``. Pixels are 20 m, Sentinel-1's resolution, where the
service posts 10 m: the archive stays a quarter of the size and a reader resamples onto the site
grid either way. Its truth is the optical scenes' (``truth/``): one world.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pystac
from affine import Affine
from odc.geo.geobox import GeoBox

from ..months import MonthRange
from ..products.export import write_cog
from .backscatter import RadarGround
from .radar_scenes import LOOKS, RadarPass, radar_schedule, render_radar
from .world import World

#: Folder and id of the collection, as Planetary Computer names it.
RADAR_COLLECTION = "sentinel-1-rtc"
#: Version of the radar generator; an archive whose radar is of another is given new radar.
RADAR_VERSION = 1
#: Nodata of the gamma0 COGs (Planetary Computer's ``raster:bands``).
RADAR_NODATA = -32768.0
#: Absolute orbit number, less the relative orbit, of the passes of :data:`ORBIT_EPOCH`.
ABSOLUTE_ORBIT_AT_EPOCH = 46_500
#: Size of a pixel of the written scenes, in metres.
RADAR_PIXEL_M = 20
_STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/sar/v1.0.0/schema.json",
    "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
]
_TITLES = {"vv": "VV: vertical transmit, vertical receive",
           "vh": "VH: vertical transmit, horizontal receive"}


def write_radar(folder: Path, world: World, months: MonthRange, *, seed: int, stream: int,
                title: str, bbox: list[float], marker: dict[str, Any],
                workers: int = 2) -> int:
    """Write the radar collection of ``world`` over ``months`` into ``folder`` (new); return
    the number of scenes. ``marker`` goes into collection.json (what made the archive)."""
    ground = RadarGround(world, seed, stream)
    grid20 = GeoBox(tuple(s // 2 for s in world.grid.shape.yx),
                    world.grid.affine @ Affine.scale(2), world.grid.crs)
    passes = radar_schedule(months)

    def one(acq: RadarPass) -> pystac.Item:
        return _write_pass(folder, render_radar(ground, acq, seed, stream), acq, grid20)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        items = list(pool.map(one, passes))
    start = np.datetime64(months.first, "s").astype(object)
    end = np.datetime64(months.last + 1, "s").astype(object)
    collection = pystac.Collection(
        id=RADAR_COLLECTION,
        description=(
            f"Synthetic Sentinel-1 RTC archive of {title} written by kpgeo synth (Planetary "
            "Computer sentinel-1-rtc form, 20 m pixels). Not real imagery: every pass is drawn "
            "from the simulated savanna world of the optical archive beside it."),
        extent=pystac.Extent(pystac.SpatialExtent([bbox]),
                             pystac.TemporalExtent([[start, end]])),
        license="CC0-1.0",
        title=f"kpgeo synthetic Sentinel-1 RTC: {title}",
        extra_fields=dict(marker),
        stac_extensions=list(_STAC_EXTENSIONS),
    )
    for item in items:
        collection.add_item(item)
    collection.update_extent_from_items()
    collection.normalize_hrefs(str(folder) + "/")
    for item in items:
        item.make_asset_hrefs_relative()
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    return len(items)


def _write_pass(root: Path, scene: Any, acq: RadarPass, grid: GeoBox) -> pystac.Item:
    hours = acq.orbit.hour_utc
    start = np.datetime64(acq.day, "s").astype(dt.datetime) + dt.timedelta(hours=hours)
    # 175 orbits a repeat; Sentinel-1A flew its 46,600th or so early in 2023.
    absolute = ABSOLUTE_ORBIT_AT_EPOCH + acq.orbit.relative_orbit + 175 * acq.cycle
    stamp = start.strftime("%Y%m%dT%H%M%S")
    end = (start + dt.timedelta(seconds=25)).strftime("%Y%m%dT%H%M%S")
    letter = acq.platform[-1].upper()
    item_id = f"S1{letter}_IW_GRDH_1SDV_{stamp}_{end}_{absolute:06d}_SYNTH_rtc"
    footprint = grid.extent.to_crs("EPSG:4326")
    item = pystac.Item(
        id=item_id, geometry=footprint.json, bbox=list(footprint.boundingbox),
        datetime=start,
        properties={
            "platform": f"SENTINEL-1{letter}",
            "constellation": "Sentinel-1",
            "sar:instrument_mode": "IW",
            "sar:frequency_band": "C",
            "sar:center_frequency": 5.405,
            "sar:polarizations": ["VV", "VH"],
            "sar:product_type": "GRD",
            "sar:resolution_range": 20,
            "sar:resolution_azimuth": 22,
            "sar:looks_equivalent_number": LOOKS,
            "sat:orbit_state": acq.orbit.state,
            "sat:relative_orbit": acq.orbit.relative_orbit,
            "sat:absolute_orbit": absolute,
            "proj:epsg": int(grid.crs.epsg),
            "kpgeo:synthetic": True,
            "kpgeo:incidence_deg": acq.orbit.incidence_deg,
            "kpgeo:rain": scene.rain,
        },
        stac_extensions=list(_STAC_EXTENSIONS),
    )
    folder = root / item_id
    for key, values in (("vv", scene.vv), ("vh", scene.vh)):
        # The fastest level: the archive is rebuilt on demand, speed beats size here.
        path = write_cog(folder / f"{key}.tif", values, grid, nodata=RADAR_NODATA, zlevel=1,
                         descriptions=[f"{key.upper()} gamma0 (linear power)"])
        item.add_asset(key, pystac.Asset(
            href=str(path), media_type=pystac.MediaType.COG, roles=["data"], title=_TITLES[key],
            extra_fields={
                "proj:shape": list(grid.shape.yx),
                "proj:transform": list(grid.affine)[:6],
                "raster:bands": [{"nodata": RADAR_NODATA, "data_type": "float32",
                                  "spatial_resolution": RADAR_PIXEL_M, "scale": 1.0,
                                  "offset": 0.0}],
            }))
    return item
