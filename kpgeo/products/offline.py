"""Self-contained map pages: Leaflet and the measure control inlined from packaged files.

Analysts open maps on poor connections or none (docs/product.md §8 ``--offline``). folium links Leaflet and
its plugins from CDNs; here each folium element that needs a script or stylesheet gets, *on the
instance*, a ``file://`` URI of a packaged copy instead (folium's ``add_js_link`` would change the
class-level list for every later map), and after rendering each
``<script src>`` / ``<link rel=stylesheet>`` of those files becomes an inline ``<script>`` /
``<style>``, with the images a stylesheet refers to as ``data:`` URIs. branca's own
``embedded=True`` is not used: it writes a ``b'...'`` bytes repr instead of JavaScript.

Sources: Leaflet 1.9.3 (folium 0.20's version) from the ``xstatic-leaflet`` wheel; leaflet-measure
2.1.7 (folium's MeasureControl version) vendored from its npm package under
``kpgeo/products/vendor/leaflet-measure`` (see its ``SOURCE.md``).
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Iterable
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..errors import KpgeoError

#: Leaflet version of folium 0.20 and of the ``xstatic-leaflet`` pin.
LEAFLET_VERSION = "1.9.3"
#: A source-map comment would make developer tools look for a file beside the page.
_SOURCE_MAP = re.compile(r"^\s*//# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]+)\1\s*\)")
#: Absolute addresses (any scheme: ``data:``, ``https:``, ``file:``...) and scheme-relative
#: ``//host/...`` ones: everything in a stylesheet that is not a file beside it.
_EXTERNAL = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)
#: CSS that loads something: ``@import``, or ``url(...)`` of anything but a data URI or a
#: fragment (``url(#default#VML)``).
_CSS_LOAD = re.compile(r"@import|url\(\s*(?!['\"]?\s*(?:data:|#))", re.IGNORECASE)


class OfflineError(KpgeoError, RuntimeError):
    """A page meant to work offline still refers to a network or file address."""


def _file_uri(path: Path) -> str:
    """The ``file://`` URI rendered in the page until :func:`inline_assets` replaces it."""
    return path.resolve().as_uri()


def _leaflet_dir() -> Path:
    try:
        from xstatic.pkg import leaflet
    except ImportError as exc:  # pragma: no cover - a dependency of kpgeo
        raise ImportError("offline maps need xstatic-leaflet: pip install "
                          f"'xstatic-leaflet=={LEAFLET_VERSION}.0'") from exc
    if leaflet.VERSION != LEAFLET_VERSION:
        raise OfflineError(f"xstatic-leaflet ships Leaflet {leaflet.VERSION}, folium 0.20 expects "
                           f"{LEAFLET_VERSION}; install 'xstatic-leaflet=={LEAFLET_VERSION}.0'.")
    return Path(leaflet.BASE_DIR)


def _measure_dir() -> Path:
    return Path(str(resources.files("kpgeo.products") / "vendor" / "leaflet-measure"))


def leaflet_assets() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(default_js, default_css)`` for a ``folium.Map`` instance: Leaflet only.

    folium's defaults also load jQuery, Bootstrap and Font Awesome, which only its icon markers
    need; kpgeo's maps draw none.
    """
    base = _leaflet_dir()
    return ([("leaflet", _file_uri(base / "leaflet.js"))],
            [("leaflet_css", _file_uri(base / "leaflet.css"))])


def measure_assets() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(default_js, default_css)`` for a ``folium.plugins.MeasureControl`` instance."""
    base = _measure_dir()
    return ([("leaflet_measure_js", _file_uri(base / "leaflet-measure.min.js"))],
            [("leaflet_measure_css", _file_uri(base / "leaflet-measure.css"))])


def default_icon_script() -> str:
    """JavaScript that points Leaflet's default marker icon at inline images.

    Leaflet finds its marker images by reading the path of ``marker-icon.png`` back from
    ``leaflet.css``; inlined as a data URI that path is gone, and Leaflet would then ask for
    ``marker-icon.png`` beside the page. leaflet-measure creates such a marker while measuring.
    Run it after ``leaflet.js``.
    """
    images = _leaflet_dir() / "images"
    urls = {"iconUrl": "marker-icon.png", "iconRetinaUrl": "marker-icon-2x.png",
            "shadowUrl": "marker-shadow.png"}
    options = ", ".join(f'{key}: "{_data_uri(images / name)}"' for key, name in urls.items())
    return f'L.Icon.Default.imagePath = ""; L.Icon.Default.mergeOptions({{{options}}});'


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _inline_css(path: Path) -> str:
    """A stylesheet with every relative ``url(...)`` of an existing file as a data URI."""

    def replace(match: re.Match[str]) -> str:
        target = match.group(2).strip()
        if _EXTERNAL.match(target) or target.startswith("#"):
            return match.group(0)  # data: URIs, and IE's url(#default#VML) behaviour
        file = (path.parent / target).resolve()
        if not file.is_file():
            raise OfflineError(f"{path} refers to {target!r}, which is not in the package.")
        return f'url("{_data_uri(file)}")'

    return _CSS_URL.sub(replace, path.read_text(encoding="utf-8"))


def _inline_js(path: Path) -> str:
    code = _SOURCE_MAP.sub("", path.read_text(encoding="utf-8"))
    # ^ A literal "</script" would end the inline element early; none of the packaged files
    #   has one, and escaping it keeps that true for later versions.
    return code.replace("</script", "<\\/script")


def inline_assets(page: str, uris: Iterable[str]) -> str:
    """Replace the ``<script src>`` and stylesheet links of packaged ``file://`` URIs in
    ``page`` by the files' contents.

    Parameters
    ----------
    page
        Rendered HTML.
    uris
        ``file://`` URIs from :func:`leaflet_assets` / :func:`measure_assets`.

    Raises
    ------
    OfflineError
        If a URI does not occur in the page as a script or stylesheet link.
    """
    for uri in uris:
        path = _path_of(uri)
        if path.suffix == ".js":
            pattern = re.compile(r'<script\s+src="' + re.escape(uri) + r'"\s*>\s*</script>')
            body = "<script>" + _inline_js(path) + "</script>"
        else:
            pattern = re.compile(r'<link\s+rel="stylesheet"\s+href="' + re.escape(uri)
                                 + r'"\s*/?>')
            body = "<style>" + _inline_css(path) + "</style>"

        def replacement(_match: re.Match[str], body: str = body) -> str:
            return body  # a function, so backslashes in the file are not read as escapes

        page, count = pattern.subn(replacement, page)
        if count == 0:
            raise OfflineError(f"{uri} is not linked from the page; cannot inline it.")
    return page


def _path_of(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(unquote(urlparse(uri).path))


class _AssetLinks(HTMLParser):
    """Collects addresses a page loads: script ``src``, ``<link href>``, image/frame sources,
    and ``@import``/``url(...)`` in inline styles."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k.lower(): v or "" for k, v in attrs}
        if tag == "link" and "href" in values:
            self.found.append(values["href"])
        elif tag in ("script", "img", "iframe", "embed", "source", "audio", "video", "input") \
                and "src" in values:
            self.found.append(values["src"])
        elif tag == "object" and "data" in values:
            self.found.append(values["data"])
        if "style" in values and _CSS_LOAD.search(values["style"]):
            self.found.append(f"style={values['style'][:80]}")
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            for match in _CSS_LOAD.finditer(data):
                self.found.append(data[match.start():match.start() + 80])


def external_assets(page: str) -> list[str]:
    """Addresses in ``page`` that a browser would fetch from a network or from disk.

    ``data:`` URIs do not count; neither do tile URL templates inside scripts (basemap tiles
    are the one thing an offline page may ask the network for). An empty list means the page's
    scripts, styles, fonts and images are all inline.

    Examples
    --------
    >>> external_assets('<script src="https://cdn.example/leaflet.js"></script>')
    ['https://cdn.example/leaflet.js']
    >>> external_assets('<script>var a = 1;</script><img src="data:image/png;base64,AA==">')
    []
    """
    parser = _AssetLinks()
    parser.feed(page)
    parser.close()
    return [a for a in parser.found if not a.strip().lower().startswith("data:")]


def check_offline(page: str) -> str:
    """``page`` unchanged if it loads nothing from outside itself.

    Raises
    ------
    OfflineError
        Naming the addresses that remain.
    """
    found = external_assets(page)
    if found:
        raise OfflineError(f"offline page still loads {len(found)} external address(es): "
                           f"{', '.join(found[:5])}; inline them or build with offline=False.")
    return page
