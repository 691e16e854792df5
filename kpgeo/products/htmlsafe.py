"""Text into HTML pages, safely, and pages onto disk atomically (docs/product.md §10).

Site titles come from user AOI files and other text from products on disk; none of it is
trusted. Everything that reaches a page goes through one of two doors: :func:`text` for HTML
element content and attribute values, :func:`json_for_script` for data inside ``<script>``.
Pages are written through :func:`kpgeo.products.atomic.atomic_path` like every other product.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from .atomic import atomic_path

#: Characters that could end a ``<script>`` element, open a comment or an entity inside it,
#: or end a JavaScript string (U+2028/2029 before ES2019), each with its JSON escape.
_SCRIPT_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "'": "\\u0027",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def text(value: Any) -> str:
    """``value`` as HTML text, safe in element content and in quoted attribute values.

    Examples
    --------
    >>> text("<script>alert(1)</script>")
    '&lt;script&gt;alert(1)&lt;/script&gt;'
    """
    return html.escape(str(value), quote=True)


def json_for_script(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe inside an inline ``<script>``.

    ``json.dumps`` alone would let a title such as ``</script><script>alert(1)`` end the
    element; the escapes keep the literal inert whatever the text holds.

    Examples
    --------
    >>> json_for_script({"title": "</script>"})
    '{"title": "\\\\u003c/script\\\\u003e"}'
    """
    out = json.dumps(value, ensure_ascii=False, allow_nan=False)
    for char, escape in _SCRIPT_ESCAPES.items():
        out = out.replace(char, escape)
    return out


def write_html(path: str | Path, page: str) -> Path:
    """Write an HTML page (UTF-8) atomically: a reader never sees half a page."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
