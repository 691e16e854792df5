"""A month measured by radar alone (status ``radar``) through the products that read statuses."""

from __future__ import annotations

import numpy as np

from kpgeo.config import VolumeConfig
from kpgeo.methods.composite import MonthQuality
from kpgeo.methods.volume import volume_rows
from kpgeo.products import timeseries
from kpgeo.products.index_page import write_index
from kpgeo.products.measured import site_measured_month, status_member
from kpgeo.products.product_tags import grid_tags, quality_from_tags

AREAS = {"preexisting_ha": 10.0, "new_ha": 1.5, "cumulative_new_ha": 4.25, "active_ha": 3.0,
         "water_ha": 0.5, "new_dug_ha": 0.9, "cumulative_new_dug_ha": 2.1}


def test_a_radar_row_gives_the_areas_radar_measures_and_leaves_the_rest_empty() -> None:
    row = timeseries.row("tortiya", "2024-08", "radar", 5, 12.0, AREAS)
    assert (row["preexisting_ha"], row["new_ha"], row["cumulative_new_ha"]) == (
        "10.00", "1.50", "4.25")
    assert [row[c] for c in ("active_ha", "water_ha", "new_dug_ha",
                             "cumulative_new_dug_ha")] == ["", "", "", ""]
    ok = timeseries.row("tortiya", "2024-08", "ok", 5, 92.0, AREAS)
    assert ok["active_ha"] == "3.00"
    gap = timeseries.row("tortiya", "2024-08", "gap", 5, 2.0, AREAS)
    assert all(gap[c] == "" for c in timeseries.AREA_COLUMNS)


def test_a_radar_month_has_its_volume_a_gap_has_none() -> None:
    rows = [timeseries.row("tortiya", "2024-08", "radar", 5, 12.0, AREAS),
            timeseries.row("tortiya", "2024-09", "gap", 0, 0.0, AREAS)]
    radar, gap = volume_rows(rows, VolumeConfig(draws=200))
    assert radar["status"] == "radar" and float(radar["new_carats_p50"]) > 0
    assert "new_carats_p50" not in gap


def test_the_radar_status_survives_the_products_tags() -> None:
    tags = {k: str(v) for k, v in grid_tags("tortiya", "2024-08",
                                            MonthQuality("radar", 5, 12.0)).items()}
    assert quality_from_tags(tags).status == "radar"
    assert quality_from_tags({**tags, "status": "cloudy"}).status == "gap"


def test_a_radar_site_is_measured_in_its_own_month() -> None:
    doc = {"kpgeo": {"month": "2024-08", "sites": {"tortiya": {"status": "radar"}}}}
    assert site_measured_month(doc, "tortiya") == "2024-08"
    both = status_member({"tortiya": {"status": "radar", "measured_month": "2024-08"},
                          "bobi": {"status": "ok", "measured_month": "2024-08"}})
    assert both == {"status": "ok", "measured_month": "2024-08"}
    one = status_member({"tortiya": {"status": "radar", "measured_month": "2024-08"},
                         "bobi": {"status": "gap", "measured_month": "2024-06"}})
    assert one["status"] == "partial"


def test_the_index_names_a_radar_month_and_shades_it_on_the_chart(tmp_path) -> None:
    rows = [timeseries.row("tortiya", "2024-07", "ok", 6, 95.0, AREAS),
            timeseries.row("tortiya", "2024-08", "radar", 5, 12.0,
                           {**AREAS, "cumulative_new_ha": 5.75})]
    timeseries.merge(tmp_path / timeseries.FILE_NAME, rows)
    html = write_index(tmp_path, [("tortiya", "Tortiya")]).read_text(encoding="utf-8")
    latest = html[html.index("kpgeo-latest"):html.index("</div>", html.index("kpgeo-latest"))]
    # The radar month's own areas are shown, not those of the month before; active unknown.
    assert "5.75" in latest and "active" not in latest
    assert "measured by Sentinel-1 radar alone" in html
    # The chart labels the month it shades.
    assert np.char.count(html, ">radar</text>") == 1
