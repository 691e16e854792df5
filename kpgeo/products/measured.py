"""Which month a product's digging areas were measured in (docs/product.md §8).

A month with too little clear view is a gap: its row of ``timeseries.csv`` is left empty, for
too little was seen to say. Its detection state still advances with what little was seen (the
pixels it confirms count in the next measured month's ``new_ha``), but that is no measurement
of the month's digging areas. So a gap month's ``disturbed.geojson`` carries the areas of the
latest month measured, unchanged, each with that month as its ``measured_month`` and its
``new_ha_this_month`` null (unknown, not zero), and its ``kpgeo`` member says ``"status":
"gap"`` with the ``measured_month``: every product made from it (exports, maps) then shows the
state as last measured, flagged as not re-measured, and no figure the month did not measure.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..methods.composite import MEASURED

#: Top-level ``status`` of a product over sites: every site measured this month, none, some.
ALL_MEASURED, NONE_MEASURED, SOME_MEASURED = "ok", "gap", "partial"


def carried(features: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A gap month's features: those of the month last measured, with their
    ``measured_month``, and no increment of their own (``new_ha_this_month`` null)."""
    return [{**feature, "properties": {**(feature.get("properties") or {}),
                                       "new_ha_this_month": None}}
            for feature in features]


def site_measured_month(doc: Mapping[str, Any], site: str) -> str | None:
    """The month ``site``'s areas in the product ``doc`` were measured in (None: none yet).

    A product written before kpgeo recorded it counts as measured in its own month when the
    site's status was ok.
    """
    meta = doc.get("kpgeo") or {}
    entry = (meta.get("sites") or {}).get(site) or {}
    if "measured_month" in entry:
        return None if entry["measured_month"] is None else str(entry["measured_month"])
    return str(meta.get("month")) if entry.get("status") in MEASURED else None


def read_measured(path: Path, site: str) -> tuple[str | None, list[dict[str, Any]]] | None:
    """A site-month's ``disturbed.geojson``: the month its areas were measured in and its
    features; None if there is no such file."""
    if not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return site_measured_month(doc, site), list(doc.get("features") or [])


def status_member(sites: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The top-level ``status`` and ``measured_month`` of a product over ``sites`` (each with
    its ``status`` and ``measured_month``).

    ``status``: ``ok`` when every site was measured this month (by optical imagery, or by
    radar where clouds hid it: each site's own ``status`` says which), ``gap`` when none was,
    ``partial`` otherwise. ``measured_month``: the earliest month any site's areas were
    measured in (each site's is in ``sites``, each area's in its ``measured_month``); None
    when a site has no measurement yet.
    """
    each = [s.get("status") in MEASURED for s in sites.values()]
    status = (ALL_MEASURED if each and all(each) else
              NONE_MEASURED if not any(each) else SOME_MEASURED)
    months = [s.get("measured_month") for s in sites.values()]
    measured = None if not months or None in months else min(str(m) for m in months)
    return {"status": status, "measured_month": measured}
