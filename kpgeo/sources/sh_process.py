"""Process API requests of the ``sentinelhub`` source: the evalscript, tiles of the site grid
within the 2500 px limit, acquisitions (one output time each), and decoding of responses.

Pure functions and small value types; no I/O but reading a cached response file.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pystac
from odc.geo.geobox import GeoBox
from sentinelhub import DataCollection, MimeType
from sentinelhub.decoding import decode_image, decode_tar
from sentinelhub.evalscript import generate_evalscript

from ..errors import SourceError
from .base import by_solar_day, utc
from .sh_client import RequestFailed

#: Sentinel-2 L2A bands in the order of :data:`REFLECTANCE_BANDS` (blue ... swir22).
SH_BANDS: tuple[str, ...] = ("B02", "B03", "B04", "B08", "B11", "B12")
#: Harmonised L2A DN (``processing.harmonizeValues``, the default) are reflectance x 10 000 for
#: every processing baseline: no offset.
SH_DN_SCALE = 1e-4
#: Process API output width and height must be 1..2500 (ProcessRequestOutput schema).
MAX_TILE_PX = 2500
#: Padding of an acquisition's request time range; one overpass's granules lie within seconds,
#: the next overpass of a place is days away.
ACQUISITION_PAD = dt.timedelta(minutes=10)
#: Output ids of the evalscript (sentinelhub-py's ``generate_evalscript`` names meta bands).
OUT_BANDS, OUT_SCL, OUT_CLM, OUT_MASK = "bands", "SCL", "CLM", "dataMask"
#: The first bytes of a TIFF (little- and big-endian).
TIFF_MAGIC = (b"II*\x00", b"MM\x00*")


def evalscript(with_clm: bool) -> str:
    """Evalscript V3 of one acquisition: ``bands`` (6 x UINT16 DN), ``SCL``, [``CLM``,]
    ``dataMask`` (UINT8), SIMPLE mosaicking."""
    meta = [OUT_SCL, *([OUT_CLM] if with_clm else []), OUT_MASK]
    return generate_evalscript(DataCollection.SENTINEL2_L2A, bands=list(SH_BANDS),
                               meta_bands=meta, merged_bands_output=OUT_BANDS)


# ---- tiles and acquisitions -----------------------------------------------------------------
@dataclass(frozen=True)
class Tile:
    """A part of the site grid that one Process request covers."""

    row: int
    col: int
    grid: GeoBox

    @property
    def label(self) -> str:
        h, w = self.grid.shape.yx
        return f"tile y{self.row}:{self.row + h} x{self.col}:{self.col + w}"


def tiles_of(grid: GeoBox, max_px: int = MAX_TILE_PX) -> list[list[Tile]]:
    """Rows of near-equal tiles covering ``grid``, none wider or taller than ``max_px``.

    Examples
    --------
    >>> [[t.grid.shape.yx for t in row] for row in tiles_of(grid_of_3000x100_px)]  # doctest: +SKIP
    [[(100, 1500), (100, 1500)]]
    """
    height, width = grid.shape.yx
    ys = np.linspace(0, height, math.ceil(height / max_px) + 1).round().astype(int).tolist()
    xs = np.linspace(0, width, math.ceil(width / max_px) + 1).round().astype(int).tolist()
    return [[Tile(y0, x0, grid[y0:y1, x0:x1]) for x0, x1 in itertools.pairwise(xs)]
            for y0, y1 in itertools.pairwise(ys)]


@dataclass(frozen=True)
class Acquisition:
    """The catalog items of one overpass: one output time step."""

    items: tuple[pystac.Item, ...]

    @property
    def scene_id(self) -> str:
        return "+".join(sorted(i.id for i in self.items))

    @property
    def start(self) -> dt.datetime:
        return min(utc(i) for i in self.items)

    @property
    def end(self) -> dt.datetime:
        return max(utc(i) for i in self.items)

    @property
    def time(self) -> np.datetime64:
        return np.datetime64(self.start.replace(tzinfo=None), "ns")


def acquisitions(items: list[pystac.Item]) -> list[Acquisition]:
    """Items grouped by local solar day, oldest first (odc-stac's ``groupby="solar_day"``)."""
    return [Acquisition(tuple(day)) for day in by_solar_day(items)]


def read_layers(path: str, outputs: tuple[str, ...], shape: tuple[int, int, int]) -> np.ndarray:
    """A cached Process response as ``(layer, y, x)`` uint16: the six bands, then the other
    outputs in the order asked for (dataMask last)."""
    body = Path(path).read_bytes()
    decoded = decode_response(body, outputs)
    layers = [np.moveaxis(np.atleast_3d(decoded[o]), -1, 0) for o in outputs]
    cube = np.concatenate(layers).astype("uint16", copy=False)
    if cube.shape != shape:
        raise SourceError(f"cached Sentinel Hub response {path} holds {cube.shape} values, "
                          f"not {shape}; delete it and rerun.")
    return cube


def decode_response(body: bytes, outputs: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
    """Outputs of a Process response: a TAR of ``<id>.tif`` files, or one TIFF."""
    if body[:4] in TIFF_MAGIC:
        if len(outputs) != 1:
            raise SourceError(f"Sentinel Hub answered one TIFF for {len(outputs)} outputs.")
        return {outputs[0]: decode_image(body, MimeType.TIFF)}
    files = decode_tar(body)
    found = {name.rsplit(".", 1)[0]: value for name, value in files.items()}
    missing = [o for o in outputs if o not in found]
    if missing:
        raise SourceError(f"Sentinel Hub response lacks outputs {missing}; it has "
                          f"{sorted(found)}.")
    return {o: np.asarray(found[o]) for o in outputs}


def check_response(body: bytes, outputs: list[str]) -> None:
    """Refuse to cache a response that is not the TAR (or TIFF) asked for."""
    if body[:4] in TIFF_MAGIC and len(outputs) == 1:
        return
    try:
        with tarfile.open(fileobj=io.BytesIO(body)) as tar:
            names = {m.name.rsplit(".", 1)[0] for m in tar.getmembers()}
    except tarfile.TarError as exc:
        raise RequestFailed(f"the Process API answered something that is not a TAR: {exc}",
                            attempts=1) from None
    if not set(outputs) <= names:
        raise RequestFailed(f"the Process API answer lacks outputs "
                            f"{sorted(set(outputs) - names)}", attempts=1)
