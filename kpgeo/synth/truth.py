"""The truth of a synthetic archive, on the site grid (``<archive>/truth/``).

What the scenes were drawn from, for tests and benchmarks to score against: each dug pixel's
first month (a pixel is dug when at least half of it is), the share of each pixel dug, the
pre-existing digging, fields, burns, riverbeds, roads, pits, water, the river's flood water
outside its channel by month, and the true area series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..aoi import Site
from ..months import MonthRange
from ..products.export import write_cog, write_csv
from .world import World

#: Days between the samples of the river's water within a month: floods rise and fall over
#: weeks, so a pixel flooded for a few days is still caught.
FLOOD_SAMPLE_DAYS = 2


def write_truth(folder: Path, world: World, site: Site, months: MonthRange) -> None:
    """Truth on the site grid: rasters and the true area series."""
    grid = site.grid
    world_grid = world.grid
    col0 = round((grid.affine.c - world_grid.affine.c) / 10)
    row0 = round((world_grid.affine.f - grid.affine.f) / 10)
    crop = (slice(row0, row0 + grid.shape.y), slice(col0, col0 + grid.shape.x))
    inside = site.pixel_mask()
    start_day = float(np.datetime64(months.first, "D").astype("int64"))
    end_day = float(np.datetime64(months.last + 1, "D").astype("int64"))
    dig_day = world.dig_day[crop]
    share = world.dig_share[crop]
    reached = (dig_day < end_day) & inside  # sites keep growing after the archive ends
    dug = reached & (share >= 0.5)  # a pixel is dug when at least half of it is
    first_month = np.zeros(grid.shape.yx, dtype="int32")
    as_month = np.where(dug, dig_day, 0).astype("int64").astype("datetime64[D]").astype(
        "datetime64[M]")
    yyyymm = (as_month.astype("datetime64[Y]").astype(int) + 1970) * 100 + (
        as_month.astype(int) % 12 + 1)
    preexisting = dug & (dig_day < start_day)
    first_month[dug & ~preexisting] = yyyymm[dug & ~preexisting]
    burns = np.zeros(grid.shape.yx, dtype="int32")
    for burn in sorted(world.burns, key=lambda b: b.day):
        month = np.datetime64(int(burn.day), "D").astype("datetime64[M]")
        mask = burn.full_mask(world.shape)[crop] & inside
        burns[mask] = int(str(month).replace("-", ""))
    write_cog(folder / "first_month.tif", first_month, grid, nodata=None, resampling="nearest",
              descriptions=["first month dug (YYYYMM), 0 = not dug within the archive"])
    write_cog(folder / "preexisting.tif", preexisting.astype("uint8"), grid, nodata=None,
              resampling="nearest", descriptions=["dug before the archive's first month"])
    reached_month = np.zeros(grid.shape.yx, dtype="int32")
    as_month = np.where(reached, dig_day, 0).astype("int64").astype("datetime64[D]").astype(
        "datetime64[M]")
    reached_month[reached] = ((as_month.astype("datetime64[Y]").astype(int) + 1970) * 100
                              + (as_month.astype(int) % 12 + 1))[reached]
    write_cog(folder / "reached_month.tif", reached_month, grid, nodata=None,
              resampling="nearest",
              descriptions=["month digging reached the pixel (YYYYMM), any share; 0 = never"])
    write_cog(folder / "site_id.tif", np.where(reached, world.dig_site[crop], -1).astype("int32"),
              grid, nodata=None, resampling="nearest",
              descriptions=["digging site (working) of the pixel, -1 = none"])
    write_cog(folder / "dug_share.tif", np.where(reached, share, 0).astype("float32"), grid,
              nodata=None, resampling="nearest",
              descriptions=["share of the pixel dug by the archive's end (0-1); dug when >= 0.5"])
    write_cog(folder / "riverbed.tif", (world.riverbed[crop] & inside).astype("uint8"), grid,
              nodata=None, resampling="nearest",
              descriptions=["riverbed outside the low-water river: bars in the dry season"])
    write_cog(folder / "roads.tif", (world.road[crop] & inside).astype("uint8"), grid,
              nodata=None, resampling="nearest", descriptions=["laterite road"])
    write_cog(folder / "fields.tif", (world.field[crop] & inside).astype("uint8"), grid,
              nodata=None, resampling="nearest", descriptions=["dry-season field"])
    write_cog(folder / "burns.tif", burns, grid, nodata=None, resampling="nearest",
              descriptions=["month of the last burn (YYYYMM), 0 = not burned"])
    # Ground of abandoned sites regrows; once regrown it looks like the savanna around it (its
    # pits keep their water). Benchmarks use this to tell visible from past digging.
    ends = np.array([s.end_day + s.regrow_days for s in world.sites] + [np.inf])
    regrown_day = np.where(np.isfinite(dig_day), ends[world.dig_site[crop]], np.inf)
    regrown = np.isfinite(regrown_day) & (regrown_day < end_day) & dug
    regrown_month = np.zeros(grid.shape.yx, dtype="int32")
    if regrown.any():
        as_month = regrown_day[regrown].astype("int64").astype("datetime64[D]").astype(
            "datetime64[M]")
        regrown_month[regrown] = [int(str(m).replace("-", "")) for m in as_month]
    write_cog(folder / "regrown_month.tif", regrown_month, grid, nodata=None, resampling="nearest",
              descriptions=[("month the dug ground had regrown (YYYYMM), 0 = not by the "
                            "archive's end")])
    write_cog(folder / "pits.tif", (world.pit[crop] & dug).astype("uint8"), grid, nodata=None,
              resampling="nearest", descriptions=["pit that holds water once dug"])
    write_cog(folder / "water.tif", (world.channel[crop] & inside).astype("uint8"), grid,
              nodata=None, resampling="nearest", descriptions=["river channel"])
    flooded = np.where(inside, _flooded_month(world, months)[crop], 0).astype("int32")
    write_cog(folder / "flooded_month.tif", flooded, grid, nodata=None, resampling="nearest",
              descriptions=[("last month (YYYYMM) the river's water covered the pixel outside "
                             "its low-water channel (flooded riverbed and floodplain), 0 = never")])
    pixel_ha = (grid.resolution.x ** 2) / 1e4
    rows = []
    for month in months.months():
        end_day = float(np.datetime64(month + 1, "D").astype("int64")) - 1e-3
        label = int(str(month).replace("-", ""))
        rows.append({
            "month": str(month),
            "preexisting_ha": round(preexisting.sum() * pixel_ha, 2),
            "new_ha": round((first_month == label).sum() * pixel_ha, 2),
            "cumulative_new_ha": round(((first_month > 0) & (first_month <= label)).sum()
                                       * pixel_ha, 2),
            "active_ha": round((world.active_by(end_day)[crop] & inside).sum() * pixel_ha, 2),
            "pit_water_ha": round((world.pit_water_by(end_day)[crop] & inside).sum()
                                  * pixel_ha, 2),
            # The dug ground itself: the shares of every pixel reached since the archive began.
            "cumulative_new_dug_ha": round(float(share[inside & (dig_day >= start_day)
                                                       & (dig_day <= end_day)].sum())
                                           * pixel_ha, 2),
        })
    write_csv(folder / "area_series.csv", rows, list(rows[0]))


def _flooded_month(world: World, months: MonthRange) -> np.ndarray:
    """Per pixel of the world, the last month (YYYYMM) of ``months`` in which the river's water
    reached it outside the low-water channel (0 = never): what the rains flood, that neither
    digging nor the river's own channel explains."""
    flooded = np.zeros(world.shape, dtype="int32")
    for month in months.months():
        first = int(month.astype("datetime64[D]").astype("int64"))
        end = int((month + 1).astype("datetime64[D]").astype("int64"))
        wet = np.zeros(world.shape, dtype=bool)
        for day in range(first, end, FLOOD_SAMPLE_DAYS):
            wet |= world.water(float(day))[0]
        flooded[wet & ~world.channel] = int(str(month).replace("-", ""))
    return flooded
