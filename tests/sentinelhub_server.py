"""A loopback server that speaks enough of the Sentinel Hub protocol to test the ``sentinelhub``
source without a network (docs/product.md §6 "Tests reach nothing beyond loopback").

- ``POST <token path>``: OAuth2 client credentials (form body or HTTP Basic) -> bearer token;
  wrong credentials -> 401 ``invalid_client``.
- ``POST /api/v1/catalog/1.0.0/search``: STAC item search over a static archive (``collections``,
  ``datetime``, ``intersects``/``bbox``, ``eo:cloud_cover`` CQL2 text filter, ``limit``/``next``
  paging) answering a FeatureCollection with ``context``.
- ``POST /api/v1/process``: reads the archive's COGs for the requested bbox, CRS, width/height
  and time range onto that grid (odc-stac, the way the ``stac`` source reads them), runs the
  *form* of a SIMPLE-mosaicking evalscript (its input bands, its outputs and what
  ``evaluatePixel`` returns for each), and answers one TIFF, or a TAR of ``<id>.tif`` when
  several outputs are asked for. Values are harmonised DN (reflectance x 10 000, clipped to
  0..65535) like the service's ``harmonizeValues``; ``dataMask`` is 1 where SCL and every band
  have data; ``CLM`` is 0 unless a callable provides it. Width or height above 2500 is a 400,
  as on the service.

Sentinel-1 (``sentinel-1-grd``), when a radar collection is given: the Catalog serves its items
with the CDSE properties (``sar:instrument_mode``, ``s1:polarization`` DV, ``s1:resolution``,
``sat:orbit_state``, ``sat:relative_orbit``) and honours ``prop='value'`` CQL2 clauses on them; the
Process API checks the request's ``dataFilter`` (IW, DV) and answers the evalscript's outputs
from ``gamma0(items, geobox)``: VV and VH float32 linear power, NaN without data (by default
:func:`plane_gamma0`, a known function of map coordinates). ``dataMask`` is 0 where it is NaN, and
the samples there are 0, as on the service, unless the evalscript maps ``dataMask`` to NaN.

Faults are scripted per endpoint (429 with Retry-After, 5xx, dropped connections, an error that
echoes the request's headers and body, as a careless proxy does), and every request is recorded
for tests to inspect. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import re
import socket
import tarfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import shapely.geometry
import tifffile
from affine import Affine
from odc.geo.geobox import GeoBox

#: Token path of the Copernicus Data Space identity service, mirrored on loopback.
TOKEN_PATH = "/auth/realms/CDSE/protocol/openid-connect/token"
CATALOG_PATH = "/api/v1/catalog/1.0.0/search"
PROCESS_PATH = "/api/v1/process"
S2L2A = "sentinel-2-l2a"
S1GRD = "sentinel-1-grd"
MAX_PX = 2500
#: Sentinel Hub band names -> asset keys of a kpgeo (Earth Search-style) archive.
ASSETS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir", "B11": "swir16",
          "B12": "swir22", "SCL": "scl"}
DTYPES = {"UINT8": np.uint8, "UINT16": np.uint16, "FLOAT32": np.float32}
HARMONISED_SCALE = 10000.0


@dataclass
class Fault:
    """A scripted failure: the next ``times`` requests to ``endpoint`` (``token``, ``catalog``
    or ``process``) that ``when`` accepts get ``status`` (an HTTP status, or ``"drop"`` to close
    the connection without an answer). ``times=None`` repeats forever. ``echo`` puts the
    request's headers and body (credentials and all) into the error's message."""

    endpoint: str
    status: int | str
    times: int | None = 1
    headers: dict[str, str] = field(default_factory=dict)
    when: Callable[[dict[str, Any]], bool] | None = None
    echo: bool = False


@dataclass
class Recorded:
    """One request the server received."""

    endpoint: str
    body: Any
    authorized: bool
    answered: int | str


class SentinelHubTestServer:
    """Loopback Sentinel Hub over a static STAC archive (e.g. one written by ``kpgeo synth``).

    Parameters
    ----------
    archive
        ``collection.json`` (or a folder holding one) whose items and COGs back the catalog
        and the Process API; None serves an empty catalog and no-data pixels.
    client_id, client_secret
        The only credentials the token endpoint accepts.
    token_prefix
        Issued tokens are this and a count (a marker a test can look for).
    offer_clm
        False answers 400 to evalscripts that ask for the s2cloudless mask ``CLM``.
    clm
        ``clm(items, geobox) -> uint8 (y, x)`` s2cloudless mask of a request; zeros by default.
    radar
        A Sentinel-1 ``collection.json`` (or its folder) whose items' metadata back
        ``sentinel-1-grd``; its pixels are not read.
    gamma0
        ``gamma0(items, geobox) -> float32 (2, y, x)`` VV, VH of a pass, NaN without data;
        :func:`plane_gamma0` by default.

    Examples
    --------
    >>> with SentinelHubTestServer(archive).running() as server:  # doctest: +SKIP
    ...     source = SourceConfig(kind="sentinelhub", sh_base_url=server.url,
    ...                           sh_token_url=server.token_url)
    """

    def __init__(self, archive: str | Path | None = None, *, client_id: str = "kpgeo-test",
                 client_secret: str = "kpgeo-test-secret", token_prefix: str = "token-",
                 offer_clm: bool = True,
                 clm: Callable[[list[pystac.Item], GeoBox], np.ndarray] | None = None,
                 radar: str | Path | None = None,
                 gamma0: Callable[[list[pystac.Item], GeoBox], np.ndarray] | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_prefix = token_prefix
        self.offer_clm = offer_clm
        self.clm = clm
        self.items = _read_items(archive) if archive is not None else []
        self.radar_items = _read_items(radar) if radar is not None else []
        self.gamma0 = gamma0 or plane_gamma0
        self.faults: list[Fault] = []
        self.requests: list[Recorded] = []
        self.tokens: set[str] = set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    @property
    def token_url(self) -> str:
        return self.url + TOKEN_PATH

    def fail(self, endpoint: str, status: int | str, *, times: int | None = 1,
             headers: dict[str, str] | None = None,
             when: Callable[[dict[str, Any]], bool] | None = None, echo: bool = False) -> None:
        """Script a fault (see :class:`Fault`)."""
        with self._lock:
            self.faults.append(Fault(endpoint, status, times, dict(headers or {}), when, echo))

    def calls(self, endpoint: str) -> list[Recorded]:
        """Requests received at an endpoint, in order."""
        with self._lock:
            return [r for r in self.requests if r.endpoint == endpoint]

    @contextmanager
    def running(self) -> Iterator[SentinelHubTestServer]:
        """Serve on 127.0.0.1 (a free port) until the block ends."""
        handler = _handler_for(self)
        self._server = _QuietServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                  daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ---- endpoints ------------------------------------------------------------------------
    def _fault_for(self, endpoint: str, body: Any) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.endpoint != endpoint or fault.times == 0:
                    continue
                if fault.when is not None and not fault.when(body):
                    continue
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    def _record(self, endpoint: str, body: Any, authorized: bool, answered: int | str) -> None:
        with self._lock:
            self.requests.append(Recorded(endpoint, body, authorized, answered))

    def token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, Any]:
        client_id = form.get("client_id") or (basic[0] if basic else "")
        secret = form.get("client_secret") or (basic[1] if basic else "")
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type"}
        if (client_id, secret) != (self.client_id, self.client_secret):
            return 401, {"error": "invalid_client",
                         "error_description": "Invalid client or Invalid client credentials"}
        with self._lock:
            token = f"{self.token_prefix}{len(self.tokens) + 1}"
            self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "expires_in": 600}

    def search(self, body: dict[str, Any]) -> tuple[int, Any]:
        if body.get("collections") == [S1GRD]:
            return self._search_s1(body)
        if body.get("collections") != [S2L2A]:
            return 400, _sh_error(400, f"unknown collections {body.get('collections')}")
        start, end = (_parse_time(t) for t in str(body["datetime"]).split("/"))
        if "intersects" in body:
            area = shapely.geometry.shape(body["intersects"])
        else:
            area = shapely.geometry.box(*body["bbox"])
        max_cc = _cloud_filter(body.get("filter"))
        found = [i for i in self.items
                 if start <= _when(i) <= end
                 and shapely.geometry.shape(i.geometry).intersects(area)
                 and float(i.properties.get("eo:cloud_cover", 0)) <= max_cc]
        found.sort(key=lambda i: (_when(i), i.id))
        offset = int(body.get("next") or 0)
        limit = int(body.get("limit", 10))
        page = found[offset:offset + limit]
        context: dict[str, Any] = {"limit": limit, "returned": len(page)}
        if offset + limit < len(found):
            context["next"] = offset + limit
        return 200, {"type": "FeatureCollection", "features": [_feature(i) for i in page],
                     "links": [], "context": context}

    def _search_s1(self, body: dict[str, Any]) -> tuple[int, Any]:
        """``sentinel-1-grd`` search: time, area and the ``prop='value'`` clauses."""
        start, end = (_parse_time(t) for t in str(body["datetime"]).split("/"))
        area = shapely.geometry.shape(body["intersects"])
        clauses = re.findall(r"([\w:]+)\s*=\s*'([^']*)'", body.get("filter") or "")
        features = [_s1_feature(i) for i in self.radar_items
                    if start <= _when(i) <= end
                    and shapely.geometry.shape(i.geometry).intersects(area)]
        for prop, _ in clauses:
            if features and prop not in features[0]["properties"]:
                return 400, _sh_error(400, f"unknown queryable {prop}")
        found = [f for f in features
                 if all(str(f["properties"].get(p)) == v for p, v in clauses)]
        found.sort(key=lambda f: (f["properties"]["datetime"], f["id"]))
        offset = int(body.get("next") or 0)
        limit = int(body.get("limit", 10))
        context: dict[str, Any] = {"limit": limit, "returned": len(found[offset:offset + limit])}
        if offset + limit < len(found):
            context["next"] = offset + limit
        return 200, {"type": "FeatureCollection", "features": found[offset:offset + limit],
                     "links": [], "context": context}

    def _process_s1(self, request: _ProcessRequest, script: _Evalscript
                    ) -> tuple[int, Any, str]:
        """S1GRD on the requested grid: the pass's ``gamma0``, as the evalscript asks."""
        wanted = {"acquisitionMode": "IW", "polarization": "DV"}
        for key, value in wanted.items():
            if request.data_filter.get(key) != value:
                return 400, _sh_error(400, f"this stand-in serves dataFilter.{key} = {value}, "
                                           f"not {request.data_filter.get(key)!r}"), \
                    "application/json"
        direction = str(request.data_filter.get("orbitDirection", "")).lower()
        grid = request.geobox
        area = shapely.geometry.box(*grid.extent.to_crs("EPSG:4326").boundingbox)
        items = [i for i in self.radar_items if request.start <= _when(i) <= request.end
                 and (not direction or i.properties.get("sat:orbit_state") == direction)
                 and shapely.geometry.shape(i.geometry).intersects(area)]
        values = (self.gamma0(items, grid).astype("float32") if items
                  else np.full((2, *grid.shape.yx), np.nan, "float32"))
        has = np.isfinite(values).all(axis=0)
        samples = {"VV": np.where(has, values[0], 0), "VH": np.where(has, values[1], 0),
                   "dataMask": has.astype("uint8")}
        files = {}
        for ident in request.responses:
            count, sample_type = script.outputs[ident]
            names = script.returns[ident]
            if len(names) != count:
                return 400, _sh_error(400, f"output {ident} returns {len(names)} values for "
                                           f"{count} bands"), "application/json"
            arr = np.stack([samples[n] for n in names], axis=-1).astype(DTYPES[sample_type])
            if ident in script.masked:
                arr[~has] = np.nan
            files[f"{ident}.tif"] = _tiff(arr)
        if len(files) == 1:
            return 200, next(iter(files.values())), "image/tiff"
        return 200, _tar(files), "application/x-tar"

    def process(self, body: dict[str, Any]) -> tuple[int, Any, str]:
        try:
            request = _ProcessRequest.parse(body)
        except (KeyError, ValueError, TypeError) as exc:
            return 400, _sh_error(400, f"bad payload: {exc}"), "application/json"
        if not (1 <= request.width <= MAX_PX and 1 <= request.height <= MAX_PX):
            return 400, _sh_error(400, "Output width and height must be integers between 1 "
                                       f"and {MAX_PX}."), "application/json"
        script = _Evalscript.parse(request.evalscript)
        unknown = [r for r in request.responses if r not in script.outputs]
        if unknown:
            return 400, _sh_error(400, f"responses {unknown} are not outputs of the "
                                       "evalscript"), "application/json"
        if request.data_type == S1GRD:
            return self._process_s1(request, script)
        if "CLM" in script.inputs and not self.offer_clm:
            return 400, _sh_error(400, "Dataset sentinel-2-l2a has no band CLM."), \
                "application/json"
        samples = self._samples(request, script.inputs)
        files = {}
        for ident in request.responses:
            count, sample_type = script.outputs[ident]
            names = script.returns[ident]
            if len(names) != count:
                return 400, _sh_error(400, f"output {ident} returns {len(names)} values for "
                                           f"{count} bands"), "application/json"
            arr = np.stack([samples[n] for n in names], axis=-1).astype(DTYPES[sample_type])
            files[f"{ident}.tif"] = _tiff(arr)
        if len(files) == 1:
            return 200, next(iter(files.values())), "image/tiff"
        return 200, _tar(files), "application/x-tar"

    def _samples(self, request: _ProcessRequest, inputs: list[str]) -> dict[str, np.ndarray]:
        """Every input band of the evalscript on the requested grid, mosaicked mostRecent."""
        grid = request.geobox
        shape = grid.shape.yx
        area = shapely.geometry.box(*grid.extent.to_crs("EPSG:4326").boundingbox)
        items = [i for i in self.items if request.start <= _when(i) <= request.end
                 and shapely.geometry.shape(i.geometry).intersects(area)]
        dn = {b: np.zeros(shape, "float64") for b in ASSETS}
        has = np.zeros(shape, bool)
        if items:
            import odc.stac

            resampling = {"*": request.upsampling, "scl": "nearest"}
            ds = odc.stac.load(items, bands=list(ASSETS.values()), geobox=grid,
                               groupby="solar_day", resampling=resampling)
            for t in reversed(range(ds.sizes["time"])):  # mostRecent first
                raw = {b: ds[a].values[t] for b, a in ASSETS.items()}
                here = ~has & np.logical_and.reduce([v != 0 for v in raw.values()])
                for band, values in raw.items():
                    if band == "SCL" or not request.harmonize:
                        dn[band][here] = values[here]
                    else:
                        scale, offset = _scaling(items[0], ASSETS[band])
                        refl = values[here] * scale + offset
                        dn[band][here] = np.clip(np.round(refl * HARMONISED_SCALE), 0, 65535)
                has |= here
        samples = {b: np.where(has, v, 0) for b, v in dn.items()}
        samples["dataMask"] = has.astype("uint8")
        clm = self.clm(items, grid) if (self.clm is not None and items) else np.zeros(shape)
        samples["CLM"] = np.where(has, clm, 255)
        return {k: v for k, v in samples.items() if k in inputs}


# ---- parsing requests -------------------------------------------------------------------------
@dataclass(frozen=True)
class _ProcessRequest:
    geobox: GeoBox
    width: int
    height: int
    start: dt.datetime
    end: dt.datetime
    upsampling: str
    harmonize: bool
    evalscript: str
    responses: list[str]
    data_type: str = S2L2A
    data_filter: dict[str, Any] = field(default_factory=dict)
    processing: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _ProcessRequest:
        bounds = body["input"]["bounds"]
        crs = bounds.get("properties", {}).get("crs", "http://www.opengis.net/def/crs/OGC/1.3/CRS84")
        epsg = 4326 if crs.endswith("CRS84") else int(crs.rsplit("/", 1)[-1])
        x0, y0, x1, y1 = (float(v) for v in bounds["bbox"])
        (data,) = body["input"]["data"]
        if data["type"] not in (S2L2A, S1GRD):
            raise ValueError(f"unknown data type {data['type']!r}")
        time_range = data["dataFilter"]["timeRange"]
        processing = data.get("processing", {})
        output = body["output"]
        width, height = int(output["width"]), int(output["height"])
        geobox = GeoBox((max(height, 1), max(width, 1)),
                        Affine((x1 - x0) / max(width, 1), 0, x0, 0, -(y1 - y0) / max(height, 1),
                               y1), f"EPSG:{epsg}")
        return cls(geobox, width, height, _parse_time(time_range["from"]),
                   _parse_time(time_range["to"]),
                   str(processing.get("upsampling", "NEAREST")).lower(),
                   bool(processing.get("harmonizeValues", True)), body["evalscript"],
                   [r["identifier"] for r in output["responses"]], data["type"],
                   dict(data["dataFilter"]), dict(processing))


@dataclass(frozen=True)
class _Evalscript:
    inputs: list[str]
    outputs: dict[str, tuple[int, str]]
    returns: dict[str, list[str]]
    masked: set[str] = field(default_factory=set)
    """Outputs whose evalscript returns NaN where ``dataMask`` is 0."""

    @classmethod
    def parse(cls, text: str) -> _Evalscript:
        if not text.lstrip().startswith("//VERSION=3"):
            raise ValueError("only evalscript V3 is understood")
        inputs = re.search(r"input:\s*\[\{\s*bands:\s*\[([^\]]*)\]", text)
        outputs = re.findall(r'\{\s*id:\s*"(\w+)",\s*bands:\s*(\d+),\s*sampleType:\s*"(\w+)"\s*\}',
                             text)
        body = re.search(r"function evaluatePixel\((\w+)\)\s*\{\s*return\s*\{(.*?)\};", text,
                         re.DOTALL)
        if inputs is None or body is None or not outputs:
            raise ValueError("evalscript has no input bands, outputs or evaluatePixel return")
        sample = body.group(1)
        # ``id: [s.A, s.B]``, or ``id: s.dataMask == 1 ? [s.A, s.B] : [NaN, NaN]``
        found = re.findall(rf"(\w+):\s*({sample}\.dataMask\s*==\s*1\s*\?\s*)?\[([^\]]*)\]",
                           body.group(2))
        returns = {ident: re.findall(rf"{sample}\.(\w+)", values)
                   for ident, _, values in found}
        return cls(re.findall(r'"(\w+)"', inputs.group(1)),
                   {i: (int(n), t) for i, n, t in outputs}, returns,
                   {ident for ident, masked, _ in found if masked})


def plane_gamma0(items: list[pystac.Item], grid: GeoBox) -> np.ndarray:
    """VV, VH gamma0 (linear power) of a pass on ``grid``, a known function of the map
    coordinates of pixel centres, so a test can tell which grid was asked for: VV rises 1e-5
    a metre east within each kilometre and 1e-6 a metre north, times a factor of the pass's
    day; VH is a fifth of VV."""
    rows, cols = np.mgrid[0:grid.shape.y, 0:grid.shape.x] + 0.5
    a = grid.affine
    x, y = a.c + a.a * cols, a.f + a.e * rows
    day = _when(items[0]).timetuple().tm_yday if items else 0
    vv = (0.01 + 1e-5 * (x % 1000) + 1e-6 * (y % 1000)) * (1 + day / 100)
    return np.stack([vv, vv / 5]).astype("float32")


def _s1_feature(item: pystac.Item) -> dict[str, Any]:
    """A radar archive item as CDSE's Catalog serves ``sentinel-1-grd``."""
    doc = _feature(item)
    props = doc["properties"]
    dual = {"VV", "VH"} <= set(props.get("sar:polarizations", []))
    props.update({"s1:polarization": "DV" if dual else "SV", "s1:resolution": "HIGH",
                  "s1:timeliness": "Fast24h", "sar:product_type": "GRD"})
    return doc


def _cloud_filter(text: str | None) -> float:
    if not text:
        return float("inf")
    match = re.search(r"eo:cloud_cover\s*<=?\s*([\d.]+)", text)
    return float(match.group(1)) if match else float("inf")


def _parse_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _when(item: pystac.Item) -> dt.datetime:
    assert item.datetime is not None
    return item.datetime if item.datetime.tzinfo else item.datetime.replace(tzinfo=dt.UTC)


def _scaling(item: pystac.Item, asset: str) -> tuple[float, float]:
    bands = item.assets[asset].extra_fields.get("raster:bands") or [{}]
    return float(bands[0].get("scale", 1.0)), float(bands[0].get("offset", 0.0))


def _feature(item: pystac.Item) -> dict[str, Any]:
    """An archive item as the Catalog API returns it: no file assets, no links."""
    doc = item.to_dict(include_self_link=False, transform_hrefs=False)
    doc["assets"] = {"data": {"href": f"s3://loopback/{item.id}", "type": "inode/directory"}}
    doc["links"] = []
    return doc


def _read_items(archive: str | Path) -> list[pystac.Item]:
    path = Path(archive)
    if path.is_dir():
        path = path / "collection.json"
    root = pystac.read_file(str(path))
    assert isinstance(root, pystac.Catalog)
    items = list(root.get_items(recursive=True))
    for item in items:
        item.make_asset_hrefs_absolute()
    return items


def _sh_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "reason": "Bad Request", "message": message,
                      "code": "COMMON_BAD_PAYLOAD"}}


def _tiff(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    data = arr[..., 0] if arr.shape[-1] == 1 else arr
    tifffile.imwrite(buf, data, photometric="minisblack",
                     planarconfig="contig" if data.ndim == 3 else None)
    return buf.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# ---- HTTP -----------------------------------------------------------------------------------
class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # dropped connections are scripted faults, not errors worth a traceback


def _handler_for(server: SentinelHubTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def do_POST(self) -> None:  # http.server's name
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            path = urllib.parse.urlsplit(self.path).path
            endpoint = {TOKEN_PATH: "token", CATALOG_PATH: "catalog",
                        PROCESS_PATH: "process"}.get(path)
            if endpoint is None:
                self._send(404, {"error": f"no such endpoint {path}"})
                return
            if endpoint == "token":
                body: Any = dict(urllib.parse.parse_qsl(raw.decode()))
                safe = {k: v for k, v in body.items() if k != "client_secret"}
            else:
                try:
                    body = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._send(400, _sh_error(400, "body is not JSON"))
                    return
                safe = body
            authorized = endpoint == "token" or self._bearer() in server.tokens
            fault = server._fault_for(endpoint, body)
            if fault is not None:
                server._record(endpoint, safe, authorized, fault.status)
                if fault.status == "drop":
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                assert isinstance(fault.status, int)
                message = "scripted fault"
                if fault.echo:
                    message += (f"; you sent headers {dict(self.headers)} and body "
                                f"{raw.decode(errors='replace')}")
                self._send(fault.status, _sh_error(fault.status, message), headers=fault.headers)
                return
            if not authorized:
                server._record(endpoint, safe, False, 401)
                self._send(401, {"error": {"status": 401, "reason": "Unauthorized",
                                           "message": "You are not authorized!"}})
                return
            if endpoint == "token":
                status, payload = server.token(body, self._basic())
                content_type = "application/json"
            elif endpoint == "catalog":
                status, payload = server.search(body)
                content_type = "application/geo+json"
            else:
                status, payload, content_type = server.process(body)
            server._record(endpoint, safe, authorized, status)
            self._send(status, payload, content_type=content_type)

        def _bearer(self) -> str:
            value = self.headers.get("Authorization", "")
            return value[len("Bearer "):] if value.startswith("Bearer ") else ""

        def _basic(self) -> tuple[str, str] | None:
            value = self.headers.get("Authorization", "")
            if not value.startswith("Basic "):
                return None
            user, _, password = base64.b64decode(value[6:]).decode().partition(":")
            return urllib.parse.unquote(user), urllib.parse.unquote(password)

        def _send(self, status: int, payload: Any, *, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
