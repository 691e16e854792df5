"""The report as a document: HTML from a Jinja template, printed to A4 PDF by WeasyPrint.

The HTML is self-contained (its charts and maps are ``data:`` URIs, its style inline), so it
opens offline; WeasyPrint prints the same HTML with its print style (A4, a running header that
says ``SYNTHETIC DATA`` on every page of a synthetic run, page numbers). WeasyPrint is given a URL
fetcher that refuses everything but ``data:`` URIs: the PDF never reaches the network.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import markupsafe

from ..errors import KpgeoError
from ..products.atomic import atomic_path
from ..products.htmlsafe import write_html

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
_TEMPLATE = _ENV.from_string(Path(__file__).with_name("report.html").read_text(encoding="utf-8"))
#: Debian packages WeasyPrint needs (Pango and its font stack), named when it cannot load them.
SYSTEM_PACKAGES = "libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core"


def css_string(text: str) -> markupsafe.Markup:
    """``text`` as the inside of a CSS string (``content: "..."``): quotes, backslashes,
    angle brackets and every non-ASCII character escaped, so no text ends the string or the
    ``<style>`` element."""
    out = []
    for char in text:
        if char.isascii() and char.isprintable() and char not in '"\\<>&':
            out.append(char)
        else:
            out.append(f"\\{ord(char):06x}")
    return markupsafe.Markup("".join(out))


def render_html(context: Mapping[str, Any]) -> str:
    """The report's HTML from its context (see :func:`kpgeo.report.build.write_report`)."""
    values = dict(context)
    values["page_label"] = css_string(str(values["page_label"]))
    values["footer"] = css_string(str(values["footer"]))
    return _TEMPLATE.render(**values)


def write_documents(folder: Path, page: str) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.pdf`` into ``folder``, each atomically.

    Raises
    ------
    KpgeoError
        WeasyPrint cannot load its system libraries (their Debian packages are named).
    """
    # WeasyPrint logs each step of its work at INFO, from its import on: not news for the user.
    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    try:
        import weasyprint
    except OSError as exc:  # Pango missing: WeasyPrint loads it when imported
        raise KpgeoError(
            f"the PDF cannot be made: WeasyPrint cannot load Pango ({exc}); install the system "
            f"packages it needs (Debian: apt-get install {SYSTEM_PACKAGES}) and run again."
        ) from None
    from weasyprint.urls import URLFetcher

    # data: URIs only, and any other address an error, not a warning: nothing is fetched.
    fetcher = URLFetcher(allowed_protocols=("data",), fail_on_errors=True)
    pdf = weasyprint.HTML(string=page, url_fetcher=fetcher).write_pdf()
    folder.mkdir(parents=True, exist_ok=True)
    html = write_html(folder / "report.html", page)
    target = folder / "report.pdf"
    with atomic_path(target, keep_suffix=True) as tmp:
        tmp.write_bytes(pdf)
    return html, target
