"""The items of a static STAC catalog or collection, walked link by link (docs/product.md §10).

pystac's ``get_items(recursive=True)`` follows a catalog whose links loop until Python's
recursion limit, reads a collection listed as its own item as an item (a traceback), and stops at
the first item it cannot read, so one bad item lost the whole catalog. Here each document is read
once (links to a document already read are not followed again), at most
:data:`MAX_DOCUMENTS` in all, and an item document that is not a usable item becomes an
:class:`Unreadable` record (its scene is skipped with the reason) instead of an error.

A document that cannot be fetched or is not JSON (a server error, a timeout) still fails the
walk with ``OSError`` or ``json.JSONDecodeError``: the caller reads the catalog again.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pystac
import pystac.utils

from ..errors import InputError, SourceError
from ..products.catalog import PRODUCTS_FIELD
from .http_bounds import MAX_JSON_BYTES
from .stac_items import ItemProblem, parse_item, raw_id, raw_month

log = logging.getLogger(__name__)

#: Documents (catalogs and items) a walk reads at most: a catalog generating links without end
#: must not run forever. Earth Search's Sentinel-2 collection is a STAC API, not static; a static
#: archive of a few sites over years holds some thousands.
MAX_DOCUMENTS = 200_000
#: Link relations that lead to items and to sub-catalogs.
ITEM_RELS = ("item",)
CHILD_RELS = ("child",)


@dataclass(frozen=True)
class Unreadable:
    """An item document that cannot be used: its id (or href), the month its datetime text
    names (None if none), and why."""

    scene_id: str
    month: str | None
    reason: str


@dataclass(frozen=True)
class Walked:
    """What a walk found: the items pystac could read, and the documents it could not."""

    items: list[pystac.Item]
    unreadable: list[Unreadable]


def walk(root_href: str, stac_io: pystac.StacIO) -> Walked:
    """Every item under the catalog or collection at ``root_href`` (or the item it is).

    Raises
    ------
    InputError
        The root is no STAC catalog, collection or item.
    OSError, json.JSONDecodeError
        A document could not be fetched or parsed (the caller retries).
    SourceError
        Past :data:`MAX_DOCUMENTS`.
    """
    root = stac_io.read_json(root_href)
    kind = root.get("type") if isinstance(root, dict) else None
    if kind == "Feature":
        refuse_products(root, root_href)
        item = parse_item(root, root_href)
        return Walked([item], [])
    if kind not in ("Catalog", "Collection"):
        raise InputError(f"--catalog {root_href!r} is not a STAC catalog or collection (its "
                         f"type is {str(kind)[:40]!r}); give a catalog.json or collection.json")
    refuse_products(root, root_href)
    items: list[pystac.Item] = []
    unreadable: list[Unreadable] = []
    seen = {root_href}
    pending = [(root_href, root)]
    while pending:
        href, doc = pending.pop()
        for rel, target in _links(doc, href):
            if target in seen:
                log.debug("%s: a link of rel %s to %s, already read; not followed again",
                          href, rel, target)
                continue
            seen.add(target)
            if len(seen) > MAX_DOCUMENTS:
                raise SourceError(f"static catalog {root_href} links more than "
                                  f"{MAX_DOCUMENTS:,} documents; give a STAC API or a smaller "
                                  "catalog")
            child = stac_io.read_json(target)
            if rel in CHILD_RELS:
                if isinstance(child, dict) and child.get("type") in ("Catalog", "Collection"):
                    pending.append((target, child))
                else:
                    log.debug("%s: child %s is not a catalog; left out", href, target)
                continue
            try:
                items.append(parse_item(child, target))
            except ItemProblem as exc:
                unreadable.append(Unreadable(raw_id(child, target), raw_month(child), str(exc)))
    return Walked(items, unreadable)


def check_local_root(path: str) -> None:
    """Refuse a local ``--catalog`` file that is not a STAC catalog, collection or item, as
    bad input (exit 2, before anything is written); a URL is read during the run.

    Raises
    ------
    InputError
        Naming the file and what it holds instead.
    """
    size = Path(path).stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(f"--catalog {path!r} is a file of {size:,} bytes, over the "
                         f"{MAX_JSON_BYTES:,} a STAC document may take; give a catalog.json or "
                         "collection.json")
    try:
        doc = json.loads(Path(path).read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"--catalog {path!r} is not JSON ({exc}); give a STAC "
                         "catalog.json or collection.json") from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind not in ("Catalog", "Collection", "Feature"):
        shown = f"type {str(kind)[:40]!r}" if isinstance(doc, dict) else \
            f"a JSON {type(doc).__name__}"
        raise InputError(f"--catalog {path!r} is not a STAC catalog or collection ({shown}); "
                         "give a catalog.json or collection.json")
    refuse_products(doc, path)


def refuse_products(doc: Any, href: str) -> None:
    """Refuse a catalog, collection or item of kpgeo's products (a run's ``catalog.json``,
    :mod:`kpgeo.products.catalog`) as a scene archive: it lists digging areas and composites,
    not Sentinel-2 scenes.

    Raises
    ------
    InputError
        Naming the document and what to give instead.
    """
    if not isinstance(doc, dict):
        return
    properties = doc.get("properties")
    marked = doc.get(PRODUCTS_FIELD) or (isinstance(properties, dict)
                                         and properties.get(PRODUCTS_FIELD))
    if marked:
        raise InputError(
            f"--catalog {href!r} is a catalog of kpgeo products ({str(marked)[:40]}: digging "
            "areas, composites and indices of a run), not of Sentinel-2 scenes; give the "
            "scenes' STAC API or static collection (e.g. one written by kpgeo synth), and open "
            "a kpgeo catalog with pystac or QGIS's STAC browser instead.")


def _links(doc: dict[str, Any], href: str) -> list[tuple[str, str]]:
    """``(rel, absolute href)`` of the item and child links of a catalog document; links that
    are not objects with a text href are left out."""
    links = doc.get("links")
    found = []
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict):
            continue
        rel, target = link.get("rel"), link.get("href")
        if rel in (*ITEM_RELS, *CHILD_RELS) and isinstance(target, str) and target.strip():
            found.append((rel, pystac.utils.make_absolute_href(target, href)))
    return found
