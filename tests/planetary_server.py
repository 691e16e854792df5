"""A loopback stand-in for Microsoft Planetary Computer: its STAC API (landing page and item
search), its SAS token endpoint, and the Azure blob storage its asset URLs point to, reached
as an HTTP proxy (GDAL's ``GDAL_HTTP_PROXY``) so that the asset URLs keep the blob storage's
host name, which the planetary-computer package signs. A blob is served (with byte ranges) only
with the token's signature in its query. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: The blob storage account and container of Planetary Computer's Sentinel-1 RTC.
ACCOUNT, CONTAINER = "sentinel1euwest", "s1-grd-rtc"
BLOB_HOST = f"{ACCOUNT}.blob.core.windows.net"
#: The signature of the tokens handed out (a real one is an HMAC).
SIGNATURE = "loopback-signature"


@dataclass
class PlanetaryServer:
    """What the server was asked: token requests, blob reads with and without signature."""

    archive: Path
    """A synthetic archive's ``sentinel-1-rtc`` folder: its items are served by the API."""
    url: str = ""
    tokens: list[str] = field(default_factory=list)
    signed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    @property
    def proxy(self) -> str:
        return self.url.removeprefix("http://")

    def features(self, start: str, end: str) -> list[dict[str, Any]]:
        """The archive's items within [start, end], asset hrefs on the blob storage."""
        found = []
        for path in sorted(self.archive.glob("*/*.json")):
            doc = json.loads(path.read_text())
            if not start <= doc["properties"]["datetime"] <= end:
                continue
            for key, asset in doc["assets"].items():
                asset["href"] = f"http://{BLOB_HOST}/{CONTAINER}/{path.parent.name}/{key}.tif"
            doc["collection"] = "sentinel-1-rtc"
            doc["links"] = []
            found.append(doc)
        return found


@contextmanager
def planetary_server(archive: Path) -> Iterator[PlanetaryServer]:
    """Serve ``archive`` (a ``sentinel-1-rtc`` folder) as Planetary Computer on 127.0.0.1."""
    from RangeHTTPServer import RangeRequestHandler

    state = PlanetaryServer(archive)

    class Handler(RangeRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # http.server's name
            if self.path.startswith("http://"):
                return super().do_GET()  # a blob, through the proxy
            route = urlsplit(self.path).path
            if route == "/api/stac/v1/":
                return self._json(_landing(state.url))
            if route == f"/api/sas/v1/token/{ACCOUNT}/{CONTAINER}":
                state.tokens.append(route)
                expiry = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
                return self._json({"msft:expiry": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "token": f"st=2024&se=2099&sp=rl&sr=c&sig={SIGNATURE}"})
            self.send_error(404)
            return None

        def do_POST(self) -> None:  # http.server's name
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            start, end = str(body.get("datetime", "../..")).split("/")
            features = state.features(start, end)
            self._json({"type": "FeatureCollection", "features": features, "links": []})

        def send_head(self):  # type: ignore[no-untyped-def]
            parts = urlsplit(self.path)
            if parts.netloc != BLOB_HOST or not parts.path.startswith(f"/{CONTAINER}/"):
                self.send_error(404)
                return None
            if parse_qs(parts.query).get("sig") != [SIGNATURE]:
                state.refused.append(self.path)
                self.send_error(403, "AuthenticationFailed: no valid SAS token")
                return None
            state.signed.append(parts.path)
            self.path = parts.path.removeprefix(f"/{CONTAINER}")
            return super().send_head()

        def _json(self, doc: Any) -> None:
            data = json.dumps(doc).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    handler = functools.partial(Handler, directory=str(archive))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _landing(base: str) -> dict[str, Any]:
    return {
        "type": "Catalog", "id": "microsoft-pc", "description": "loopback Planetary Computer",
        "stac_version": "1.0.0",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                       "https://api.stacspec.org/v1.0.0/item-search"],
        "links": [{"rel": "self", "href": f"{base}/api/stac/v1/"},
                  {"rel": "root", "href": f"{base}/api/stac/v1/"},
                  {"rel": "search", "href": f"{base}/api/stac/v1/search", "method": "POST",
                   "type": "application/geo+json"}],
    }
