"""A site's baseline as Dask tasks per chunk, after its months are composited: no process holds
the whole grid (:mod:`kpgeo.methods.baseline_chunks` has the numpy of each step).

1. While each baseline month is composited, every chunk counts the NDVI of its clear land in
   bins, then sends its values in the bins that hold the median: the site's typical land of
   the month, exactly (:class:`~.site_parts.SiteMedian`; :func:`clear_counts`,
   :func:`~.site_parts.values_in_bins`).
2. ``states``: each chunk reads its window (and halo) of every valid month's
   ``composite.tif``, computes its per-pixel baseline and writes its tile of ``baseline.tif``
   (every band but the pre-existing map); it labels its bodies of water.
3. The run joins the water across chunk edges; ``ponds``: small ponds are pits; each chunk
   writes its candidates of pre-existing digging as a tile.
4. ``closing``: each chunk reads the candidates around it (a VRT of the tiles), opens and
   closes them, and labels what is left open (holes or the outside).
5. The run decides which open groups are enclosed (holes, filled) and then, twice (before and
   after clipping to the site), which groups reach the mapping unit; each chunk writes its
   tile of the pre-existing map and the pieces of its pre-existing areas' polygons, with the
   histogram of their pixels' seasons seen in the baseline, and counts its site pixels seen in
   every season (:mod:`~.baseline_seasons`): the site's coverage is their sum.
6. One task makes ``baseline.tif`` from the tiles (GDAL, streamed), with the coverage in its
   tags, and removes them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dask
import numpy as np
import rasterio
import rasterio.windows
from dask.delayed import Delayed
from odc.geo.geobox import GeoBox

from ..config import DetectionConfig
from ..methods.baseline_chunks import (
    FIRST_PASS_SKIPS,
    Candidates,
    Window,
    chunk_states,
    clear_ndvi,
    closed_workings,
    closing_halo,
    sides_on_border,
    state_halo,
)
from ..methods.baseline_seasons import SEASONS_MIN, BaselineCoverage
from ..methods.chunkwise import Layout
from ..methods.detection import STORED_BANDS, min_area_px, small_ponds
from ..methods.polygons import AreaPiece, area_pieces
from ..methods.site_parts import (
    EIGHT,
    FOUR,
    Components,
    bin_counts,
    by_label,
    components,
    merge_components,
)
from ..products.atomic import atomic_path
from ..products.encoding import REFLECTANCE, decode, read_values
from ..products.export import COG_BLOCK_PX
from ..products.tiff_whole import check_tiff_whole
from ..products.tiles import TILES_FOLDER, copy_mosaic, mosaic, tile_path, write_planes_tile
from ..sources import REFLECTANCE_BANDS
from .chunk_baseline import inside_pixels
from .cluster import compute


# ---- 1. the site's typical land, while the months are composited ----------------------------
def clear_counts(medians: np.ndarray, params: DetectionConfig) -> tuple[np.ndarray, np.ndarray]:
    """A chunk's composite ``(band, y, x)`` as the baseline will read it back from
    ``composite.tif`` (encoded and decoded), its clear land's NDVI values and their bin
    counts."""
    stored = {b: decode(REFLECTANCE.encode(m), REFLECTANCE.scale, REFLECTANCE.offset,
                        REFLECTANCE.nodata)
              for b, m in zip(REFLECTANCE_BANDS, medians, strict=True)}
    values = clear_ndvi(stored, params)
    return values, bin_counts(values)


# ---- 2-6. the baseline from the composites ---------------------------------------------------
def build(layout: Layout, grid: GeoBox, outline: Any, folder: Path,
          months: Sequence[tuple[Path, int, float | None]], params: DetectionConfig,
          tags: Mapping[str, str], months_total: int | None = None,
          ) -> tuple[Path, list[AreaPiece], BaselineCoverage]:
    """``folder/baseline.tif`` from the composites of the valid baseline months (their path,
    calendar month and the site's typical land NDVI), the pieces of the pre-existing digging
    areas' polygons, and how well the baseline saw the site (``months_total``: the baseline's
    months, gaps included; the valid ones when not given), also kept in the file's tags."""
    pixel_m = abs(grid.resolution.x)
    chunks = layout.chunks()
    shape = grid.shape.yx
    stored_names: list[str] = []

    def persist(tasks: list[Delayed]) -> list[Delayed]:
        return list(dask.persist(*tasks))

    def gather(results: list[Delayed], part: Callable[[Any], Any] = operator.itemgetter(1),
               ) -> list[Any]:
        return list(compute(*[_delayed(part)(r) for r in results], quiet=True))

    def merge(parts: list[Components], eight: bool) -> tuple[list[np.ndarray], np.ndarray,
                                                             np.ndarray, np.ndarray]:
        return merge_components(*layout.shape, parts, eight=eight)

    # 2. per-pixel states, the stored tiles, the water's groups
    states = persist([_delayed(_states)(folder, grid, rows, cols, months, params, pixel_m)
                      for rows, cols in chunks])
    gathered = gather(states, _names_and_ponds)
    stored_names = gathered[0][0]
    # 3. small ponds are pits
    groups, sizes, _, _ = merge([g[1] for g in gathered], eight=True)
    small = small_ponds(sizes, params, pixel_m)
    compute(*[_delayed(_write_candidates)(states[i], by_label(groups[i], small, False), folder,
                                          grid, rows, cols)
              for i, (rows, cols) in enumerate(chunks)], quiet=True)
    del states
    inputs = mosaic(folder, "preexisting-inputs", grid, chunks, descriptions=["candidates"],
                    dtype="uint8")
    # 4. opened and closed; what is left open, by group
    closing = persist([_delayed(_closing)(inputs, shape, rows, cols, params, pixel_m)
                       for rows, cols in chunks])
    groups, _, border, _ = merge(gather(closing), eight=False)
    # 5. holes filled; areas below the mapping unit dropped, before and after the clip
    filled = persist([_delayed(_filled)(closing[i], by_label(groups[i], ~border, False))
                      for i in range(len(chunks))])
    del closing
    min_px = max(min_area_px(params.min_area_ha, pixel_m), 1)
    groups, sizes, _, _ = merge(gather(filled), eight=True)
    clipped = persist([_delayed(_clipped)(filled[i], by_label(groups[i], sizes >= min_px, False),
                                          outline, grid, rows, cols)
                       for i, (rows, cols) in enumerate(chunks)])
    del filled
    groups, sizes, _, numbers = merge(gather(clipped), eight=True)
    seasons_band = stored_names.index("baseline_seasons") + 1
    finished = compute(*[_delayed(_preexisting)(clipped[i],
                                                by_label(groups[i], sizes >= min_px, False),
                                                by_label(groups[i], numbers), folder, grid, rows,
                                                cols, seasons_band, outline)
                         for i, (rows, cols) in enumerate(chunks)], quiet=True)
    del clipped
    coverage = BaselineCoverage(
        months=len(months) if months_total is None else months_total, months_seen=len(months),
        pixels=sum(inside for _, (inside, _) in finished),
        pixels_seen=sum(seen for _, (_, seen) in finished))
    # 6. one file
    path = compute(_delayed(_assemble)(folder, grid, chunks, stored_names,
                                       {**tags, **coverage.tags()}), quiet=True)[0]
    return path, [p for chunk, _ in finished for p in chunk], coverage


def _delayed(function: Callable[..., Any]) -> Any:
    return dask.delayed(function, pure=False)


def _names_and_ponds(result: tuple[Any, ...]) -> tuple[list[str], Components]:
    return result[0], result[3]


def _states(folder: Path, grid: GeoBox, rows: slice, cols: slice,
            months: Sequence[tuple[Path, int, float | None]], params: DetectionConfig,
            pixel_m: float) -> tuple[list[str], Candidates, np.ndarray, Components]:
    window = Window.around(grid.shape.yx, rows, cols, state_halo(params, pixel_m))
    read = rasterio.windows.Window(window.cols.start, window.rows.start,
                                   window.cols.stop - window.cols.start,
                                   window.rows.stop - window.rows.start)

    def composites() -> Any:
        for path, _, _ in months:
            with rasterio.open(path) as src:
                yield {b: read_values(src, i, read)
                       for i, b in enumerate(REFLECTANCE_BANDS, start=1)}

    names, layers, candidates = chunk_states(composites(), [m for _, m, _ in months],
                                             [t for _, _, t in months], params, pixel_m,
                                             window.crop)
    chunk = grid[rows, cols]
    write_planes_tile(tile_path(folder, "baseline", rows, cols), len(names),
                      np.dtype("float32"), chunk.shape.yx, layers, chunk.affine,
                      str(chunk.crs))
    labels, ponds = components(candidates.water, EIGHT)
    return names, candidates, labels, ponds


def _write_candidates(state: tuple[Any, ...], small: np.ndarray, folder: Path, grid: GeoBox,
                      rows: slice, cols: slice) -> None:
    _, candidates, labels, _ = state
    candidates.dug = candidates.dug | small[labels]
    chunk = grid[rows, cols]
    write_planes_tile(tile_path(folder, "preexisting-inputs", rows, cols), 1,
                      np.dtype("uint8"), chunk.shape.yx, [candidates.packed()], chunk.affine,
                      str(chunk.crs))


def _closing(inputs: Path, shape: tuple[int, int], rows: slice, cols: slice,
             params: DetectionConfig, pixel_m: float,
             ) -> tuple[tuple[np.ndarray, np.ndarray], Components]:
    window = Window.around(shape, rows, cols, closing_halo(params, pixel_m))
    with rasterio.open(inputs) as src:
        bits = src.read(1, window=rasterio.windows.Window.from_slices(window.rows,
                                                                        window.cols))
    closed = closed_workings(bits, window.crop, params, pixel_m)
    # Open ground, 4-connected as scipy's hole filling sees it: a group that reaches the
    # grid's border is the outside, any other a hole.
    labels, open_parts = components(~closed, FOUR, sides_on_border(shape, rows, cols))
    return (closed, labels), open_parts


def _filled(closing: tuple[tuple[np.ndarray, np.ndarray], Components], hole: np.ndarray,
            ) -> tuple[np.ndarray, Components]:
    (closed, open_labels), _ = closing
    return components(closed | hole[open_labels], EIGHT)


def _clipped(filled: tuple[np.ndarray, Components], keep: np.ndarray, outline: Any,
             grid: GeoBox, rows: slice, cols: slice) -> tuple[np.ndarray, Components]:
    labels, _ = filled
    return components(keep[labels] & inside_pixels(outline, grid, rows, cols), EIGHT)


def _preexisting(clipped: tuple[np.ndarray, Components], keep: np.ndarray, numbers: np.ndarray,
                 folder: Path, grid: GeoBox, rows: slice, cols: slice, seasons_band: int,
                 outline: Any) -> tuple[list[AreaPiece], tuple[int, int]]:
    """The chunk's tile of the pre-existing map and its pieces of the areas, and its count of
    site pixels and of those seen in at least :data:`~.baseline_seasons.SEASONS_MIN` seasons
    (read back from the chunk's first-pass tile)."""
    labels, _ = clipped
    kept = keep[labels]
    chunk = grid[rows, cols]
    write_planes_tile(tile_path(folder, "preexisting", rows, cols), 1, np.dtype("uint8"),
                      chunk.shape.yx, [kept.astype("uint8")], chunk.affine, str(chunk.crs))
    with rasterio.open(tile_path(folder, "baseline", rows, cols)) as src:
        seasons = src.read(seasons_band)
    inside = inside_pixels(outline, grid, rows, cols)
    counts = int(inside.sum()), int((inside & (seasons >= SEASONS_MIN)).sum())
    return area_pieces(np.where(kept, numbers[labels], 0), grid, rows, cols, None,
                       seasons=seasons), counts


def _assemble(folder: Path, grid: GeoBox, chunks: Sequence[tuple[slice, slice]],
              first_pass: Sequence[str], tags: Mapping[str, str]) -> Path:
    """``baseline.tif`` (the layout of :func:`~.export.write_planes`) from the chunks' tiles."""
    names = list(first_pass)
    names.insert(STORED_BANDS.index(FIRST_PASS_SKIPS), FIRST_PASS_SKIPS)
    band_sources = [("preexisting", 1) if name == FIRST_PASS_SKIPS
                    else ("baseline", first_pass.index(name) + 1) for name in names]
    vrt = mosaic(folder, "baseline", grid, chunks, descriptions=names, dtype="float32",
                 band_sources=band_sources, nodata=float("nan"), tags=tags)
    target = folder / "baseline.tif"
    with atomic_path(target, check=check_tiff_whole) as tmp:
        copy_mosaic(vrt, tmp, driver="GTiff", tiled=True, blockxsize=COG_BLOCK_PX,
                    blockysize=COG_BLOCK_PX, interleave="band", compress="ZSTD", zstd_level=1,
                    predictor=1, BIGTIFF="IF_SAFER", num_threads="ALL_CPUS")
    for name in ("baseline", "preexisting", "preexisting-inputs"):
        for rows, cols in chunks:
            tile_path(folder, name, rows, cols).unlink(missing_ok=True)
    for name in ("baseline.vrt", "preexisting-inputs.vrt"):
        (folder / TILES_FOLDER / name).unlink(missing_ok=True)
    try:
        (folder / TILES_FOLDER).rmdir()
    except OSError:
        pass
    return target


__all__ = ["build", "clear_counts"]
