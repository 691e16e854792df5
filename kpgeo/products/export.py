"""Writers at the output edge: Cloud-Optimized GeoTIFFs, JSON, CSV, all written atomically.

Every file is written to a temporary name in its destination folder and renamed into place, so
an interrupted run never leaves a truncated product behind (docs/product.md §10).
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from odc.geo.geobox import GeoBox
from rasterio.enums import ColorInterp

from ..config import VolumeConfig
from ..methods.polygons import DiggingArea, feature_collection
from ..methods.volume import COLUMNS, volume_rows
from .atomic import atomic_path
from .encoding import ScaledInteger
from .synthetic_label import EXPLANATION, is_synthetic, labelled
from .tiff_whole import check_tiff_whole

log = logging.getLogger(__name__)

#: GDAL COG driver options: ZSTD at level 1 (read by GDAL since 2.3, so by QGIS and rasterio; it
#: wrote a month's three products at the size DEFLATE level 1 did in 45 % of the CPU time),
#: a predictor (horizontal for integers; floating-point for floats: float32 reflectance was
#: 12 % smaller for the same CPU time), tiles of 256 px or a little more (:func:`block_px`),
#: averaged overviews for measurements.
COG_BLOCK_PX = 256
#: The largest tile :func:`block_px` picks.
COG_BLOCK_PX_MAX = 512
#: GDAL colour interpretation of the bands named after a colour (Earth Search asset keys); every
#: other band's is ``undefined``. GIS software that honours it (QGIS: red, green and blue bands
#: make its default RGB rendering) then shows a composite in true colour.
TRUE_COLOUR = {"red": "red", "green": "green", "blue": "blue"}


def colour_interpretation(names: Sequence[str]) -> list[str]:
    """GDAL colour interpretation (:class:`rasterio.enums.ColorInterp` names) of bands named
    ``names``: red, green and blue for the bands of those colours, ``undefined`` for the rest.

    Examples
    --------
    >>> colour_interpretation(["blue", "green", "red", "nir", "valid_count"])
    ['blue', 'green', 'red', 'undefined', 'undefined']
    """
    return [TRUE_COLOUR.get(name, "undefined") for name in names]


def block_px(height: int, width: int) -> int:
    """The COG tile size for a raster: of those from :data:`COG_BLOCK_PX` to
    :data:`COG_BLOCK_PX_MAX` (multiples of 16, as TIFF requires), the one whose whole tiles
    cover the raster with the fewest pixels, the smallest of equals.

    Edge tiles are padded to full size and compressed like the others: a 601 px window in
    256 px tiles is compressed as 768 px (63 % more pixels), in 304 px tiles as 608 px. The full Tortiya grid (3327 x 3345 px) takes 336 px tiles, 1 % over, against 7 % in
    GDAL's default 256 px; a raster smaller than a tile, 256 px.

    Examples
    --------
    >>> block_px(601, 601), block_px(3327, 3345), block_px(100, 100)
    (304, 336, 256)
    """
    def padded(size: int) -> int:
        return (-(-height // size) * size) * (-(-width // size) * size)

    return min(range(COG_BLOCK_PX, COG_BLOCK_PX_MAX + 1, 16), key=lambda s: (padded(s), s))
#: Internal overviews only for rasters wider or taller than this: a viewer shows a smaller
#: one whole from its few full-resolution tiles, and the overviews cost 40 % of the writing.
OVERVIEW_MIN_PX = 1024


def cog_options(shape: Sequence[int], dtype: Any, *, resampling: str = "average",
                zlevel: int = 1, predictor: bool = True) -> dict[str, Any]:
    """GDAL COG driver options of a product of ``shape`` ``(y, x)`` and ``dtype`` (see
    :func:`write_cog` for the arguments)."""
    floating = np.issubdtype(np.dtype(dtype), np.floating)
    large = max(shape) > OVERVIEW_MIN_PX
    return {
        "compress": "ZSTD",
        "level": zlevel,
        "predictor": ("NO" if not predictor else "FLOATING_POINT" if floating else "STANDARD"),
        "blocksize": block_px(*shape),
        "overview_resampling": resampling,
        "overviews": "AUTO" if large else "NONE",
        "BIGTIFF": "IF_SAFER",
        # A large raster's tiles are compressed on every core; a small one's in this thread:
        # GDAL's threads cost a fifth more CPU, taken from the months computing meanwhile.
        "NUM_THREADS": "ALL_CPUS" if large else "1",
    }


def write_cog(
    path: str | Path,
    data: np.ndarray | Sequence[np.ndarray],
    grid: GeoBox,
    *,
    descriptions: Sequence[str] = (),
    nodata: float | None = None,
    tags: Mapping[str, Any] | None = None,
    resampling: str = "average",
    zlevel: int = 1,
    encoding: Sequence[ScaledInteger] = (),
    predictor: bool = True,
    colours: Sequence[str] = (),
) -> Path:
    """Write a ``(band, y, x)`` or ``(y, x)`` array, or a sequence of ``(y, x)`` bands of one
    dtype, on ``grid`` as a Cloud-Optimized GeoTIFF (a sequence spares a stacked copy: 300 MB
    for a full-size composite).

    Parameters
    ----------
    path
        Destination file.
    data
        Pixel values; floating point data should use NaN as nodata.
    grid
        The grid the array lies on (CRS and transform).
    descriptions
        One description per band (shown by GDAL and QGIS as the band name).
    nodata
        Nodata value; NaN for float data when None.
    tags
        Dataset-level metadata tags.
    resampling
        Overview resampling, ``average`` for measurements, ``nearest`` for classes.
    zlevel
        ZSTD level, 1 (fastest) to 22 (smallest); products are written every month, hence
        the fastest.
    encoding
        Per band, how its values are stored as scaled integers (:mod:`kpgeo.products.encoding`; one
        integer type and nodata for all), each band encoded as it is copied in, so that no
        encoded copy of the whole raster is held; the values themselves by default.
    predictor
        Whether to apply the predictor (horizontal for integers, floating-point for floats).
        False for floats that are mostly whole numbers (months, classes): the floating-point
        predictor scrambles them (a month's ``change.tif``: 4 % larger, twice the time).
    colours
        Per band, its GDAL colour interpretation (:func:`colour_interpretation`); GDAL's
        default (gray, then undefined) when empty.

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> write_cog("composite.tif", cube, site.grid, descriptions=["red"])  # doctest: +SKIP
    """
    bands = [data] if isinstance(data, np.ndarray) and data.ndim == 2 else list(data)
    shape = tuple(grid.shape.yx)
    if encoding:
        if (len(encoding) != len(bands)
                or len({(e.dtype, e.nodata) for e in encoding}) != 1):
            raise ValueError(f"{path}: {len(bands)} bands, encodings {list(encoding)}: give "
                             "one a band, all of one integer type and nodata")
        dtype, nodata = np.dtype(encoding[0].dtype), encoding[0].nodata
    else:
        dtype = bands[0].dtype
    if not all(b.shape == shape and (bool(encoding) or b.dtype == dtype) for b in bands):
        raise ValueError(f"{path}: bands of {[(b.shape, b.dtype.name) for b in bands]}, not "
                         f"all {shape} of one dtype")
    floating = np.issubdtype(dtype, np.floating)
    if nodata is None and floating:
        nodata = float("nan")
    profile = {
        "count": len(bands),
        "height": shape[0],
        "width": shape[1],
        "dtype": dtype.name,
        "crs": str(grid.crs),
        "transform": grid.affine,
        "nodata": nodata,
    }
    options = cog_options(shape, dtype, resampling=resampling, zlevel=zlevel,
                          predictor=predictor)
    path = Path(path)
    # The COG driver only copies a whole dataset. Writing with driver="COG" makes rasterio do
    # that copy when the file closes, holding the GIL all the while (the run's other Python
    # threads stall during each write); rasterio.shutil.copy releases it. The in-memory
    # dataset is the copy rasterio would hold anyway.
    with rasterio.open("", "w", driver="MEM", **profile) as mem:
        for i, band in enumerate(bands, start=1):
            mem.write(encoding[i - 1].encode(band) if encoding else band, i)
        for i, text in enumerate(descriptions, start=1):
            mem.set_band_description(i, text)
        if colours:
            mem.colorinterp = [ColorInterp[name] for name in colours]
        if encoding:
            mem.scales = tuple(e.scale for e in encoding)
            mem.offsets = tuple(e.offset for e in encoding)
        if tags:
            mem.update_tags(**{k: str(v) for k, v in tags.items()})
        with atomic_path(path, check=check_tiff_whole) as tmp:
            rasterio.shutil.copy(mem, tmp, driver="COG", **options)
    return path


def write_planes(path: str | Path, names: Sequence[str], layers: Iterable[np.ndarray],
                 grid: GeoBox, *, tags: Mapping[str, Any] | None = None) -> Path:
    """Write float32 ``layers`` (one per name, taken one at a time) on ``grid`` as a tiled
    GeoTIFF with one plane per band (``baseline.tif``): a chunk of the grid then decodes only
    the bands it reads, where a COG's pixel-interleaved tiles hold every band (GDAL's COG
    driver has no other layout before 3.11), and no more than one band is held to write it."""
    shape = tuple(grid.shape.yx)
    profile = {"driver": "GTiff", "count": len(names), "height": shape[0], "width": shape[1],
               "dtype": "float32", "crs": str(grid.crs), "transform": grid.affine,
               "nodata": float("nan"), "tiled": True, "blockxsize": COG_BLOCK_PX,
               "blockysize": COG_BLOCK_PX, "interleave": "band", "compress": "ZSTD",
               # No predictor: the floating-point one made the file 7 % smaller and its reads
               # 2.5 times slower, and every chunk of every month reads it.
               "zstd_level": 1, "predictor": 1, "BIGTIFF": "IF_SAFER"}
    path = Path(path)
    with (atomic_path(path, keep_suffix=True, check=check_tiff_whole) as tmp,
          rasterio.open(tmp, "w", **profile) as dst):
        written = 0
        for i, layer in enumerate(layers, start=1):
            dst.write(np.asarray(layer, dtype="float32"), i)
            dst.set_band_description(i, names[i - 1])
            written = i
        if written != len(names):
            raise ValueError(f"{path}: {written} layers for {len(names)} names")
        if tags:
            dst.update_tags(**{k: str(v) for k, v in tags.items()})
    return path


class BackgroundWrites:
    """Product writes in one background thread, so that a site-month's files are compressed
    while the next month reads and computes (GDAL releases the GIL while it compresses).

    The caller bounds the lag: :meth:`wait` before handing over the next month's writes. A
    failed write raises from :meth:`wait`. Nothing is written after :meth:`close` returns.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kpgeo-write")
        self._pending: list[Future[Any]] = []
        self._failed = threading.Event()

    def submit(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a write. Once one has failed, the writes queued after it are skipped: a
        month's ``change.tif`` (which marks it done) must not follow a failed composite."""
        def guarded() -> Any:
            if self._failed.is_set():
                return None
            try:
                return write(*args, **kwargs)
            except BaseException:
                self._failed.set()
                raise

        self._pending.append(self._pool.submit(guarded))

    def wait(self, pending: int = 0) -> float:
        """Wait until no more than ``pending`` writes handed over are not done (the latest
        ones; by default every write); the seconds waited. Raises the first failure."""
        started = time.perf_counter()
        # Interrupted here, close() still sees them all.
        futures.wait(self._pending[:len(self._pending) - pending] if pending else self._pending)
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            future.result()
        return time.perf_counter() - started

    def close(self) -> None:
        """Wait for the writes in flight (even when the caller is failing), log any failure
        :meth:`wait` has not raised, and stop."""
        try:
            futures.wait(self._pending)
            for future in self._pending:
                if future.exception() is not None:
                    log.error("writing a product failed: %s", future.exception(),
                              exc_info=future.exception())
        finally:
            self._pending = []
            self._pool.shutdown(wait=True)


def write_json(path: str | Path, doc: Any) -> Path:
    """Write JSON atomically (UTF-8, keys in insertion order, indented)."""
    return _write_text(path, json.dumps(doc, indent=1, ensure_ascii=False))


def write_feature_collection(path: str | Path, doc: Mapping[str, Any]) -> Path:
    """Write a GeoJSON FeatureCollection atomically, one feature per line after its other
    members: readable, and made by json's C encoder, which ``indent`` turns off (indented, a
    month's features took ten times longer to write, holding the GIL)."""
    head = {k: v for k, v in doc.items() if k != "features"}
    lines = [json.dumps(f, ensure_ascii=False) for f in doc["features"]]
    # The other members indented as usual, without their closing "\n}".
    text = json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ",\n" if head else "{\n"
    text += ' "features": ['
    text += ("\n  " + ",\n  ".join(lines) + "\n ]" if lines else "]") + "\n}"
    return _write_text(path, text)


def write_geojson(path: str | Path, areas: Sequence[DiggingArea], crs_of: Mapping[str, Any],
                  foreign: Mapping[str, Any] | None = None, name: str | None = None) -> Path:
    """Write ``areas`` as RFC 7946 GeoJSON, atomically (``name``: the layer name member)."""
    return write_feature_collection(path, feature_collection(areas, crs_of, foreign, name))


def write_volume_exports(out_dir: Path, timeseries_rows: list[dict[str, str]],
                         months: Iterable[str], config: VolumeConfig) -> list[Path]:
    """``exports/volume-YYYY-MM.csv`` for each month: one row per site."""
    written = []
    for month in months:
        rows = [r for r in timeseries_rows if r["month"] == month]
        if rows:
            written.append(write_csv(out_dir / "exports" / f"volume-{month}.csv",
                                     volume_rows(rows, config), COLUMNS))
    return written


def _write_text(path: str | Path, text: str) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return path


def write_csv(path: str | Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
    """Write rows as CSV atomically, columns in the given order."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


#: Formats of ``kpgeo export --format`` besides GeoJSON, which is the run's own RFC 7946 file.
VECTOR_FORMATS = ("gpkg", "kml")
#: GeoPackage version written: 1.3, which GDAL 3.6 and earlier read without a warning (GDAL
#: 3.7 and later write 1.4 by default, whose ``user_version`` 10400 older GDAL warns about).
GPKG_VERSION = "1.3"


def convert_geojson(source: str | Path, fmt: str) -> Path:
    """Write ``source`` (an RFC 7946 export) beside it as GeoPackage or KML, atomically.

    The same features, properties and WGS84 geometries, with the export's provenance (its
    ``kpgeo`` member: month, software, source, baseline, sites, parameters): in a GeoPackage
    (layer ``digging``) as the dataset's metadata, which GDAL keeps in the ``gpkg_metadata``
    tables, one item per member (objects as JSON); in KML in the document's description and
    extended data, with folders by site and status and styles by status and first-detection
    month (:mod:`kpgeo.products.kml`), each placemark named by its digging-area id.
    """
    source = Path(source)
    target = source.with_suffix(f".{fmt}")
    doc = json.loads(source.read_text(encoding="utf-8"))
    if fmt == "kml":
        from .kml import write_kml

        return write_kml(target, doc)
    if fmt != "gpkg":
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(VECTOR_FORMATS)}")
    import geopandas

    frame = geopandas.read_file(source)
    metadata = {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False,
                                                                 sort_keys=True)
                for k, v in (doc.get("kpgeo") or {}).items()}
    with atomic_path(target, keep_suffix=True) as tmp:
        frame.to_file(tmp, driver="GPKG", layer="digging", engine="pyogrio",
                      dataset_options={"VERSION": GPKG_VERSION},
                      dataset_metadata=metadata or None,
                      layer_options=_gpkg_layer_label(doc))
    return target


def _gpkg_layer_label(doc: Mapping[str, Any]) -> dict[str, str] | None:
    """The ``digging`` layer's identifier and description in ``gpkg_contents`` (QGIS shows
    them as the layer's title and abstract): labelled for a synthetic export, GDAL's defaults
    for a real one."""
    if not is_synthetic(doc):
        return None
    month = str((doc.get("kpgeo") or {}).get("month", ""))
    return {"IDENTIFIER": labelled(f"kpgeo digging areas {month}", True),
            "DESCRIPTION": labelled(EXPLANATION, True)}
