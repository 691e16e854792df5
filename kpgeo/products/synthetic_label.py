"""How products made from synthetic scenes say so (docs/product.md §8, "Synthetic data").

A ``kpgeo synth`` archive lies on the real sites, with their names and coordinates: without a
label its maps, exports and tables look like a real month's. Every product of such a run says
:data:`LABEL` where a person looks first, and real runs never carry it. Whether a run is
synthetic is decided once (:func:`kpgeo.sources.synthetic.reads_synthetic`) and recorded in the
GeoJSON's ``kpgeo`` member (``synthetic``) and in the CSVs' first column (``source_kind``); the
pages, KML and GeoPackage are written from those.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The words every synthetic product shows.
LABEL = "SYNTHETIC DATA"
#: ``source_kind`` of the CSV rows measured from synthetic scenes.
SYNTHETIC_KIND = "synthetic"
#: What the label means, in a sentence.
EXPLANATION = ("made from a simulated Sentinel-2 archive (kpgeo synth): the site names and "
               "coordinates are real, the imagery and the digging are not")


def source_kind(kind: str, synthetic: bool) -> str:
    """The ``source_kind`` column of a CSV row: ``synthetic`` for synthetic scenes, whichever
    source read them, else the source's kind (``stac``, ``sentinelhub``)."""
    return SYNTHETIC_KIND if synthetic else kind


def is_synthetic(doc: Mapping[str, Any]) -> bool:
    """Whether a GeoJSON product (its ``kpgeo`` member) was made from synthetic scenes."""
    member = doc.get("kpgeo")
    return isinstance(member, Mapping) and member.get("synthetic") is True


def any_synthetic(rows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether any CSV row (``timeseries.csv``, a volume CSV) was measured from synthetic
    scenes."""
    return any(row.get("source_kind") == SYNTHETIC_KIND for row in rows)


def labelled(text: str, synthetic: bool) -> str:
    """``text`` prefixed with the label when synthetic: ``"SYNTHETIC DATA: ..."``."""
    return f"{LABEL}: {text}" if synthetic else text


def collection_name(month: str, synthetic: bool) -> str | None:
    """The GeoJSON ``name`` member (GDAL's and QGIS's layer name) of a synthetic month's
    FeatureCollection; None for real data, whose files keep their plain form."""
    return labelled(f"kpgeo digging areas {month}", True) if synthetic else None
