"""Builders for tests and examples: site files, hand-made scenes as real COGs with STAC items,
and a loopback HTTP server with byte ranges.

Nothing here reaches a network beyond 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from affine import Affine
from odc.geo.geobox import GeoBox

from kpgeo.products.export import write_cog
from kpgeo.sources.base import REFLECTANCE_BANDS, SCL_BAND

#: Collection-1 scaling, as Earth Search publishes it.
C1_SCALE = 0.0001
C1_OFFSET = -0.1


def write_site_file(path: str | Path, bbox: tuple[float, float, float, float], *,
                    name: str = "test-site", title: str = "Test site") -> Path:
    """Write a rectangular site GeoJSON (RFC 7946, counter-clockwise) and return its path."""
    w, s, e, n = bbox
    doc = {"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"name": name, "title": title, "country": "CIV", "source": "test"},
        "geometry": {"type": "Polygon",
                     "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
    }]}
    path = Path(path)
    path.write_text(json.dumps(doc))
    return path


def reflectance_to_dn(reflectance: np.ndarray | float, *, scale: float = C1_SCALE,
                      offset: float = C1_OFFSET) -> np.ndarray:
    """Digital numbers that a provider with this scale and offset stores for a reflectance."""
    return np.round((np.asarray(reflectance) - offset) / scale).astype("uint16")


def make_scene(
    folder: str | Path,
    item_id: str,
    when: dt.datetime,
    grid: GeoBox,
    dn: Mapping[str, np.ndarray],
    scl: np.ndarray,
    *,
    scale: float = C1_SCALE,
    offset: float = C1_OFFSET,
) -> pystac.Item:
    """Write one hand-made scene as COGs (every band on ``grid``, SCL too) with its STAC item.

    Parameters
    ----------
    dn
        Digital numbers per reflectance band, ``(y, x)`` uint16, 0 = no data. Bands not given
        are filled with the DN of reflectance 0.1.
    scl
        Scene classification ``(y, x)`` uint8.
    """
    folder = Path(folder) / item_id
    footprint = grid.extent.to_crs("EPSG:4326")
    item = pystac.Item(
        id=item_id, geometry=footprint.json, bbox=list(footprint.boundingbox),
        datetime=when.replace(tzinfo=dt.UTC),
        properties={"proj:epsg": int(grid.crs.epsg), "eo:cloud_cover": 0.0},
        stac_extensions=["https://stac-extensions.github.io/projection/v1.1.0/schema.json",
                         "https://stac-extensions.github.io/raster/v1.1.0/schema.json"],
    )
    fill = reflectance_to_dn(np.full(grid.shape.yx, 0.1), scale=scale, offset=offset)
    for band in (*REFLECTANCE_BANDS, SCL_BAND):
        arr = scl.astype("uint8") if band == SCL_BAND else np.asarray(dn.get(band, fill), "uint16")
        path = write_cog(folder / f"{band}.tif", arr, grid, nodata=0)
        raster: dict[str, Any] = {"nodata": 0, "data_type": arr.dtype.name,
                                  "spatial_resolution": float(grid.resolution.x)}
        if band != SCL_BAND:
            raster.update(scale=scale, offset=offset)
        item.add_asset(band, pystac.Asset(
            href=str(path), media_type=pystac.MediaType.COG, roles=["data"],
            extra_fields={"raster:bands": [raster], "proj:shape": list(grid.shape.yx),
                          "proj:transform": list(grid.affine)[:6]},
        ))
    return item


def write_collection(folder: str | Path, items: list[pystac.Item]) -> Path:
    """Save items as a self-contained static collection; return ``collection.json``."""
    folder = Path(folder).resolve()
    bbox = [min(i.bbox[0] for i in items), min(i.bbox[1] for i in items),
            max(i.bbox[2] for i in items), max(i.bbox[3] for i in items)]
    times = [i.datetime for i in items]
    collection = pystac.Collection(
        id="test", description="hand-made test scenes",
        extent=pystac.Extent(pystac.SpatialExtent([bbox]),
                             pystac.TemporalExtent([[min(times), max(times)]])),
    )
    collection.add_items(items)
    collection.normalize_hrefs(str(folder) + "/")
    for item in items:
        item.make_asset_hrefs_relative()
    collection.save(pystac.CatalogType.SELF_CONTAINED)
    return folder / "collection.json"


def grid_for(crs: str, x0: float, y1: float, shape: tuple[int, int],
             resolution: float = 10.0) -> GeoBox:
    """A north-up grid with its top-left corner at ``(x0, y1)``."""
    return GeoBox(shape, Affine(resolution, 0, x0, 0, -resolution, y1), crs)


#: Products compared between runs: every data product (maps carry random element ids).
DATA_SUFFIXES = (".tif", ".geojson", ".csv")


def data_products(out: Path) -> dict[str, Path]:
    """The data products of an output folder by relative path (run manifests left out)."""
    return {str(p.relative_to(out)): p for p in sorted(out.rglob("*"))
            if p.suffix in DATA_SUFFIXES and "runs" not in p.parts}


def assert_same_products(a: Path, b: Path) -> None:
    """Same files; same pixels and tags for COGs, same bytes for the rest."""
    products_a, products_b = data_products(a), data_products(b)
    assert sorted(products_a) == sorted(products_b)
    assert any(name.endswith("change.tif") for name in products_a)
    for name, path in products_a.items():
        other = products_b[name]
        if path.suffix == ".tif":
            with rasterio.open(path) as x, rasterio.open(other) as y:
                np.testing.assert_array_equal(x.read(), y.read(), err_msg=name)
                assert x.tags() == y.tags(), name
        else:
            assert path.read_bytes() == other.read_bytes(), name


#: Faults :func:`range_server` can inject, per path: an error status, the first request only
#: failing (a transient fault), a stall, or an answer dripping one byte at a time.
FAULTS = ("500", "404", "500-once", "stall", "drip")


@contextmanager
def range_server(root: str | Path, faults: dict[str, str] | None = None, *,
                 stall_s: float = 30.0) -> Iterator[str]:
    """Serve a folder over HTTP with byte ranges on 127.0.0.1; yield its base URL.

    ``faults`` maps URL paths (e.g. ``/S2A_x/red.tif``) to one of :data:`FAULTS`: answer every
    request for it with HTTP 500 or 404, or accept the request and send nothing for
    ``stall_s`` seconds (a hung object store), or send the answer (status line first) one byte
    every 0.2 s, which no timeout between bytes catches (``drip``); ``500-once`` fails the
    first request and is then taken out of the mapping. Changes to the mapping apply at once (a server that recovers).
    """
    from RangeHTTPServer import RangeRequestHandler

    faults = faults if faults is not None else {}  # the caller may change it while serving
    unknown = set(faults.values()) - set(FAULTS)
    assert not unknown, f"unknown faults {unknown}; use {FAULTS}"
    stop = threading.Event()

    class FaultyHandler(RangeRequestHandler):
        def send_head(self):  # type: ignore[no-untyped-def]
            path = self.path.split("?", 1)[0]
            fault = faults.get(path)
            if fault == "stall":
                stop.wait(stall_s)
                return None
            if fault == "drip":
                whole = b"HTTP/1.0 200 OK\r\nContent-Length: 100000\r\n\r\n" + bytes(100_000)
                for i in range(len(whole)):
                    if stop.wait(0.2):
                        break
                    try:
                        self.wfile.write(whole[i:i + 1])
                        self.wfile.flush()
                    except OSError:  # the reader gave up: in time
                        break
                return None
            if fault == "500-once":
                faults.pop(path, None)
                fault = "500"
            if fault is not None:
                self.send_error(int(fault), f"injected fault {fault}")
                return None
            return super().send_head()

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

    handler = functools.partial(FaultyHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def radar_pass_on_grid(reads: Any, t: int) -> np.ndarray:
    """Pass ``t`` of :class:`~kpgeo.sources.base.RadarReads` on the whole site grid, from
    its chunks' padded reads (each cropped to its chunk)."""
    import dask

    rows = max(y.stop for y, _, _, _ in reads.chunks)
    cols = max(x.stop for _, x, _, _ in reads.chunks)
    out = np.full((2, rows, cols), np.nan, dtype="float32")
    parts = dask.compute(*[r[t] for _, _, _, r in reads.chunks])
    for (y, x, crop, _), part in zip(reads.chunks, parts, strict=True):
        out[:, y, x] = part[:, crop[0], crop[1]]
    return out
