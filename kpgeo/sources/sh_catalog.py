"""Catalog API searches of the ``sentinelhub`` sources (optical and radar), through the bounded
client and the response cache.

A search whose interval ended :data:`CATALOG_SETTLE` before it ran is final and served from the
cache; a younger one (scenes may still arrive) is asked again and falls back on its cached answer
when the service cannot be reached, so a rerun works offline either way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pystac
import shapely.geometry
from sentinelhub import CRS, DataCollection, Geometry, SentinelHubCatalog, SHConfig

from ..aoi import Site
from ..errors import SourceError
from ..months import MonthRange, month_bounds_iso
from .sh_cache import ResponseCache, request_key
from .sh_client import BoundedClient, RequestFailed

log = logging.getLogger(__name__)

#: A catalog search whose interval ended this long before it ran is final and served from the
#: cache; a younger one (scenes may still arrive) is refreshed when the service answers.
CATALOG_SETTLE = dt.timedelta(days=5)


def search_features(collection: DataCollection, site: Site, months: MonthRange, *,
                    sh_config: SHConfig | None, client: BoundedClient, cache: ResponseCache,
                    limit: int, filter_text: str | None = None) -> list[dict[str, Any]]:
    """Catalog features of ``collection`` intersecting ``site`` within ``months``.

    sentinelhub-py adds the collection's own filters (for Sentinel-1 IW: instrument mode,
    polarisation and resolution) to ``filter_text``.

    Raises
    ------
    SourceError
        If the catalog cannot be searched within the retry bounds and no earlier answer to the
        same search is cached.
    """
    start, _ = month_bounds_iso(months.first)
    _, end = month_bounds_iso(months.last)
    catalog = SentinelHubCatalog(config=sh_config)
    catalog.client = client
    search = catalog.search(collection, time=(start, end),
                            geometry=Geometry(site.geometry.geom, CRS.WGS84),
                            filter=filter_text, limit=limit)
    key = request_key(search.url, search.params)
    cached = cache.get(key)
    if cached is not None and cached.meta.get("final"):
        return list(json.loads(cached.body))
    try:
        features = list(search)
    except RequestFailed as exc:
        if cached is None:
            raise SourceError(
                f"Sentinel Hub catalog {search.url} could not be searched for "
                f"{site.name} {months}: {exc.reason}. Check the connection and "
                "source.sh_base_url, then rerun; finished months are kept."
            ) from None
        log.warning("catalog search failed (%s); using the cached answer of %s",
                    exc.reason, cached.meta.get("saved"))
        return list(json.loads(cached.body))
    final = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(end) > CATALOG_SETTLE
    cache.put(search.url, search.params, json.dumps(features).encode(),
              "application/geo+json", extra={"final": final})
    return features


def to_item(feature: dict[str, Any]) -> pystac.Item:
    """A Catalog API feature as a pystac Item (links dropped: nothing is resolved from them)."""
    doc = dict(feature)
    doc.setdefault("type", "Feature")
    doc.setdefault("stac_version", "1.0.0")
    doc.setdefault("assets", {})
    doc["links"] = []
    if doc.get("bbox") is None and doc.get("geometry"):
        doc["bbox"] = list(shapely.geometry.shape(doc["geometry"]).bounds)
    return pystac.Item.from_dict(doc, migrate=False)
