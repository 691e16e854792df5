"""Tags the month's raster products carry: where and when they lie, how good the month was,
and (``change.tif``) what made its state and the month's areas (docs/product.md §8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..methods.composite import MEASURED, MonthQuality, MonthStatus
from ..months import Month

#: Tag of ``baseline.tif`` and ``change.tif`` that records what made them.
SIGNATURE_TAG = "kpgeo_signature"
#: Tag of ``change.tif`` with the month's time-series areas (a kept month's row comes from it).
AREAS_TAG = "kpgeo_areas"


def grid_tags(site: str, month: Month | str, quality: MonthQuality) -> dict[str, Any]:
    """The tags of every product of a site-month (``site``: its name)."""
    return {"site": site, "month": str(month), "status": quality.status,
            "scenes": quality.scenes, "valid_pct": quality.valid_pct}


def quality_from_tags(tags: Mapping[str, str]) -> MonthQuality:
    """The :class:`MonthQuality` a product's tags record (see :func:`grid_tags`)."""
    found = tags.get("status")
    status: MonthStatus = found if found in MEASURED else "gap"  # type: ignore[assignment]
    return MonthQuality(status, int(tags.get("scenes", 0)), float(tags.get("valid_pct", 0.0)))
