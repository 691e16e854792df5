"""HTTP requests for STAC and JSON documents, bounded in total time and in size
(docs/product.md §10).

A timeout of requests or urllib bounds the wait for each next byte, not the request: a server
sending one byte a second never trips it (a run hung past ``http_timeout_s = 5`` for minutes),
and one streaming without end filled 3.7 GB. Neither library bounds the whole (requests says so
in its documentation), so :class:`BoundedAdapter`, a requests transport adapter, does:

- a watchdog timer shuts down the sockets of a request still unanswered ``total_s`` after it was
  sent, status line, headers, body and urllib3's quick retries included (the blocked read then
  ends at once, also in TLS);
- the body is read up to :data:`MAX_JSON_BYTES` (a ``Content-Length`` above it is refused before
  reading).

Either is raised as :class:`ResponseBoundExceeded` (an ``OSError``, as the static reader's
callers expect), naming the bound. GDAL's reads of COGs are bounded by GDAL itself:
``GDAL_HTTP_TIMEOUT`` is curl's ``CURLOPT_TIMEOUT``, the time of the whole transfer
(:mod:`.gdal_env`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

import pystac.stac_io
import requests
import requests.adapters
import urllib3.connection
import urllib3.connectionpool

#: Largest STAC or JSON answer read: a page of 100 Earth Search items is about 2 MB, a static
#: catalog listing thousands of items a few MB. Parsed, a document takes several times its size.
MAX_JSON_BYTES = 32 * 2**20

_current = threading.local()  # the watchdog of the request this thread is sending


class ResponseBoundExceeded(OSError):
    """An HTTP answer that took longer than its total time, or was larger than allowed."""


class _Watchdog:
    """Shuts down every socket of one request once ``seconds`` have passed."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:  # a retry after the time was up
            _shut(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # shutdown, not close: a read blocked in another thread returns at once (close would wait
    # for the file objects http.client holds on the socket).
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _WatchedMixin:
    """A urllib3 connection that puts its socket under the sending thread's watchdog."""

    sock: socket.socket | None

    def request(self, *args: Any, **kwargs: Any) -> None:
        super().request(*args, **kwargs)  # type: ignore[misc]  # connects, then sends
        watchdog = getattr(_current, "watchdog", None)
        if watchdog is not None:
            watchdog.watch(self.sock)


class _WatchedHTTPConnection(_WatchedMixin, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPSConnection(_WatchedMixin, urllib3.connection.HTTPSConnection):
    pass


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class BoundedAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter whose every request ends within ``total_s`` seconds and reads at
    most ``max_bytes`` of body (see the module docstring); ``max_retries`` as requests'."""

    def __init__(self, total_s: float, *, max_bytes: int = MAX_JSON_BYTES,
                 max_retries: Any = 0) -> None:
        self.total_s = total_s
        self.max_bytes = max_bytes
        super().__init__(max_retries=max_retries)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_POOLS)
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False,  # type: ignore[override]
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        watchdog = _Watchdog(self.total_s)
        _current.watchdog = watchdog
        try:
            response = super().send(request, stream=True, timeout=timeout, verify=verify,
                                    cert=cert, proxies=proxies)
            response._content = self._body(response)  # read here, under the watchdog
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if watchdog.expired:
                raise ResponseBoundExceeded(
                    f"{request.url}: timed out, no complete answer within {self.total_s:g} s "
                    "(http_timeout_s bounds a whole request)") from exc
            raise
        finally:
            _current.watchdog = None
            watchdog.cancel()
        return response

    def _body(self, response: requests.Response) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            raise ResponseBoundExceeded(
                f"{response.url}: an answer of {int(declared):,} bytes, over the "
                f"{self.max_bytes:,} a STAC or JSON document may take")
        parts, size = [], 0
        for part in response.iter_content(64 * 1024):
            size += len(part)
            if size > self.max_bytes:
                response.close()
                raise ResponseBoundExceeded(
                    f"{response.url}: the answer goes on past {self.max_bytes:,} bytes, the "
                    "most a STAC or JSON document may take")
            parts.append(part)
        return b"".join(parts)


def bounded_session(total_s: float, *, max_retries: Any = 0,
                    session: requests.Session | None = None) -> requests.Session:
    """``session`` (or a new one) with :class:`BoundedAdapter` for http and https."""
    session = session if session is not None else requests.Session()
    adapter = BoundedAdapter(total_s, max_retries=max_retries)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def get_text(session: requests.Session, url: str, headers: dict[str, str] | None = None) -> str:
    """The body of a GET of ``url`` as text; an HTTP error or a bound exceeded as ``OSError``."""
    try:
        response = session.get(url, headers=headers)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise OSError(f"{url}: {exc}") from exc
    return response.content.decode("utf-8", errors="replace")


class BoundedStacIO(pystac.stac_io.DefaultStacIO):
    """pystac's reader with every HTTP read bounded in total time and size (pystac's own waits
    forever on a stalled server) and HTTP errors raised as ``OSError``, so that a static
    catalog served over HTTP fails in bounded time and its read can be retried."""

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self.session = bounded_session(timeout_s)

    def read_text_from_href(self, href: str) -> str:
        if "://" not in href or href.startswith("file://"):
            return super().read_text_from_href(href)
        return get_text(self.session, href, headers=self.headers)
