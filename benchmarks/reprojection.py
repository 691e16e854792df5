"""Reprojection of the neighbouring UTM zone's scenes: kpgeo's reader against GDAL's warper.

Issue 17 asks for GDAL's warper (rasterio's ``WarpedVRT`` or ``reproject``, with its
approximate transformer) unless a benchmark shows kpgeo's own operator wins on the full site.
This is that benchmark, on the case users run: the full Tortiya site (3327 x 3345 px) in 1024 px
chunks, and the scenes of one month whose tile lies in UTM zone 29 while the site grid is in
zone 30 (``benchmarks/throughput.py``'s ``full`` archive, 2024-02).

For every such scene and chunk, in the order a month's chunk task reads them (chunk by chunk,
scene by scene), its 6 reflectance bands (bilinear) and SCL (nearest) are read onto the chunk:

- ``kpgeo``: :func:`kpgeo.sources.reader.read_pixels` as the pipeline calls it: the source
  pixel of every destination pixel computed once per (tile grid, chunk) and kept in its small
  cache, then a windowed read and a sparse product per band. The cache is emptied before
  each pass: a month of the full site needs more entries than it holds, so every month
  computes them again;
- ``gdal``: a ``WarpedVRT`` per band onto the chunk's grid (bilinear or nearest, the
  transformer's error bound at 0.01 px, the bound at which its pixels match the exact
  transform's; 0.125 px, GDAL's default, costs the same), one thread, the same GDAL cache.

Both run in one thread, page cache warm (one untimed pass first); each figure is the median of
``PASSES`` passes. Agreement: the bands' DN where both have a value, GDAL's against kpgeo's.

Usage::

    python benchmarks/reprojection.py          # writes its section of benchmarks/RESULTS.md
    python benchmarks/reprojection.py --print  # prints only
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from results import machine, replace_section  # benchmarks/results.py
from throughput import CASES, make_config, prepare_archive

from kpgeo.methods.blocks import chunk_slices
from kpgeo.months import parse_month_range
from kpgeo.sources import REFLECTANCE_BANDS, SCL_BAND, open_source
from kpgeo.sources.gdal_env import GDAL_OPTIONS
from kpgeo.sources.reader import Asset, _source_pixels, read_pixels

MONTH = "2024-02"
PASSES = 3
#: GDAL's transformer error bound for the ``gdal`` side, in source pixels.
TOLERANCE_PX = 0.01


def _assets(item) -> list[tuple[Asset, bool]]:  # type: ignore[no-untyped-def]
    """The item's assets as the reader sees them (DN, nodata 0), and whether nearest."""
    return [(Asset(band, item.assets[band].get_absolute_href(), nodata=0), band == SCL_BAND)
            for band in (*REFLECTANCE_BANDS, SCL_BAND)]


def _kpgeo(asset: Asset, chunk, nearest: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.empty(chunk.shape.yx, dtype="uint8" if nearest else "float32")
    return read_pixels(asset, chunk, "nearest" if nearest else "bilinear", out,
                       fill=0 if nearest else np.nan)


def _gdal(asset: Asset, chunk, nearest: bool) -> np.ndarray:  # type: ignore[no-untyped-def]
    out = np.empty(chunk.shape.yx, dtype="uint8" if nearest else "float32")
    with rasterio.open(asset.href) as src, WarpedVRT(
            src, crs=str(chunk.crs), transform=chunk.affine, width=chunk.shape.x,
            height=chunk.shape.y, dtype=out.dtype.name, tolerance=TOLERANCE_PX,
            resampling=Resampling.nearest if nearest else Resampling.bilinear,
            src_nodata=asset.nodata, nodata=0 if nearest else np.nan) as vrt:
        vrt.read(1, out=out)
    return out


def measure() -> dict[str, object]:
    case = CASES["full"]
    collection, *_ = prepare_archive(case, ROOT / "outputs" / "bench-cache")
    config = make_config(case, collection, ROOT / "outputs" / "bench-cache")
    site = case.site()
    grid = site.grid
    items = open_source(config).search(site, parse_month_range(f"{MONTH}..{MONTH}"))
    zone = grid.crs.epsg
    other = [i for i in items
             if int(str(i.properties.get("proj:code") or i.properties.get("proj:epsg"))
                    .removeprefix("EPSG:")) != zone]
    chunks = [grid[r, c] for r in chunk_slices(grid.shape.y, config.composite.chunk_px)
              for c in chunk_slices(grid.shape.x, config.composite.chunk_px)]
    reads = [(chunk, asset, nearest) for chunk in chunks for item in other
             for asset, nearest in _assets(item)]

    def one_pass(read) -> tuple[float, list[np.ndarray]]:  # type: ignore[no-untyped-def]
        _source_pixels.cache_clear()
        started = time.perf_counter()
        with rasterio.Env(**GDAL_OPTIONS):
            values = [read(asset, chunk, nearest) for chunk, asset, nearest in reads]
        return time.perf_counter() - started, values

    one_pass(_gdal)  # page cache warm
    kpgeo_s = [one_pass(_kpgeo)[0] for _ in range(PASSES)]
    gdal_s = [one_pass(_gdal)[0] for _ in range(PASSES)]
    _, ours = one_pass(_kpgeo)
    _, theirs = one_pass(_gdal)
    differences, same_class = [], []
    for (_, _, nearest), a, b in zip(reads, ours, theirs, strict=True):
        if nearest:
            both = (a > 0) & (b > 0)
            same_class.append(np.mean(a[both] == b[both]))
        else:
            both = np.isfinite(a) & np.isfinite(b)
            differences.append(np.abs(a[both] - b[both]))
    difference = np.concatenate(differences)
    return {
        "scenes": len(other), "chunks": len(chunks), "reads": len(reads),
        "kpgeo_s": statistics.median(kpgeo_s), "gdal_s": statistics.median(gdal_s),
        "kpgeo_runs": kpgeo_s, "gdal_runs": gdal_s,
        "median_dn": float(np.median(difference)), "p99_dn": float(np.quantile(difference, 0.99)),
        "max_dn": float(difference.max()), "same_class": float(np.mean(same_class)),
    }


def _verdict(row: dict[str, object]) -> str:
    ratio = float(row["gdal_s"]) / float(row["kpgeo_s"])  # type: ignore[arg-type]
    if ratio > 1:
        return (f"kpgeo's reader is {ratio:.1f}x faster than GDAL's warper on the full site, "
                "where its cache cannot hold a month's operators: it stays.")
    return (f"GDAL's warper is {1 / ratio:.1f}x faster than kpgeo's reader on the full site: "
            "kpgeo's reader should give way to it.")


def markdown(row: dict[str, object], seconds: float) -> str:
    return "\n".join([
        "<!-- reprojection:start -->",
        "## Reprojection of the neighbouring zone (`benchmarks/reprojection.py`)",
        "",
        (f"Command: `python benchmarks/reprojection.py` ({seconds / 60:.1f} min). "
        f"Machine: {machine()}."),
        (f"The full Tortiya site in 1024 px chunks ({row['chunks']}), the {row['scenes']} scenes "
        f"of {MONTH} whose tile lies in UTM zone 29 (the site grid is in zone 30): every band "
        f"and SCL of each onto each chunk ({row['reads']} reads), in one thread, median of "
        f"{PASSES} passes."),
        "",
        "| reader | seconds | all passes |",
        "| --- | --- | --- |",
        (f"| kpgeo (source pixels per tile grid and chunk, sparse bilinear) | "
        f"{row['kpgeo_s']:.2f} | {', '.join(f'{s:.2f}' for s in row['kpgeo_runs'])} |"),
        (f"| GDAL's warper (`WarpedVRT` per band, error bound {TOLERANCE_PX} px) | "
        f"{row['gdal_s']:.2f} | {', '.join(f'{s:.2f}' for s in row['gdal_runs'])} |"),
        "",
        f"Agreement of the bands, in DN: median {row['median_dn']:.2f}, 99th percentile "
        f"{row['p99_dn']:.1f}, largest {row['max_dn']:.1f} (of values around 2,500-4,000); SCL "
        f"classes equal on {100 * float(row['same_class']):.2f} % of pixels (the largest "
        "differences are next to nodata: kpgeo's NaN spreads to every pixel it touches, "
        "GDAL's warper weighs the valid neighbours only). " + _verdict(row),
        "<!-- reprojection:end -->",
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--print", action="store_true", help="print only; no file written")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    section = markdown(measure(), time.perf_counter() - started)
    print(section)
    if not args.print:
        replace_section(args.results, "reprojection", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
