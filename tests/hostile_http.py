"""A loopback HTTP server that answers each path as scripted, fairly or not: a JSON document,
one byte at a time (from the status line on), a body without end, or a ``Content-Length`` of
terabytes. Nothing here reaches beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: Hostile answers a path can be given instead of a document.
DRIP, ENDLESS, HUGE = "drip", "endless", "huge"


@contextmanager
def hostile_server(routes: dict[str, Any], *, drip_s: float = 0.2) -> Iterator[str]:
    """Serve ``routes`` (path -> a JSON-able document, or :data:`DRIP`, :data:`ENDLESS`,
    :data:`HUGE`) on 127.0.0.1 for GET and POST; yield the base URL. A document may hold
    ``{base}``, replaced by the base URL. :data:`DRIP` sends a whole answer one byte every
    ``drip_s`` seconds, well within any timeout between bytes."""
    stop = threading.Event()
    base = ""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # http.server's name
            self._answer()

        def do_POST(self) -> None:  # http.server's name
            length = int(self.headers.get("Content-Length", 0))
            self.rfile.read(length)
            self._answer()

        def _answer(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            with contextlib.suppress(OSError):  # the client hangs up: it gave up in time
                if route is None:
                    self._send(404, {"error": "not found"})
                elif route == DRIP:
                    body = json.dumps({"type": "Catalog", "padding": "x" * 10_000}).encode()
                    whole = (b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                    for i in range(len(whole)):
                        if stop.wait(drip_s):
                            return
                        self.wfile.write(whole[i:i + 1])
                        self.wfile.flush()
                elif route == ENDLESS:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"type": "Catalog", "links": [')
                    chunk = b'{"rel": "item", "href": "./x.json"}, ' * 2000
                    while not stop.is_set():
                        self.wfile.write(chunk)
                elif route == HUGE:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(2**40))
                    self.end_headers()
                    self.wfile.write(b'{"type": "Catalog", ')
                    stop.wait(30)
                else:
                    self._send(200, json.loads(json.dumps(route).replace("{base}", base)))

        def _send(self, status: int, doc: Any) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield base
    finally:
        stop.set()
        server.shutdown()
        server.server_close()


def api_landing(search: str = "/search") -> dict[str, Any]:
    """The landing page of a STAC API that searches items at ``search``."""
    return {
        "type": "Catalog", "id": "hostile", "description": "loopback", "stac_version": "1.0.0",
        "conformsTo": ["https://api.stacspec.org/v1.0.0/core",
                       "https://api.stacspec.org/v1.0.0/item-search"],
        "links": [{"rel": "self", "href": "{base}/"}, {"rel": "root", "href": "{base}/"},
                  {"rel": "search", "href": "{base}" + search, "method": "POST",
                   "type": "application/geo+json"}],
    }


__all__ = ["DRIP", "ENDLESS", "HUGE", "api_landing", "hostile_server"]
