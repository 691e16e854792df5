"""Scores of the rains family (``benchmarks/accuracy.py --family rains``): archives with four
to six months in a row without a clear optical view, each run with Sentinel-1 radar and
optical only, so that what radar adds shows.

Per archive and mode:

- the months after the baseline that are ``ok`` (optical), ``radar`` (radar alone) and ``gap``;
- digging begun in the rains: the dug sites whose first dug pixel falls in a long-rains month,
  how many are mapped, and the median delay from that month to the first month any of the
  site's new pixels lies in a mapped new-digging area (``mapped_since`` of the last month's
  ``change.tif``: radar-dated digging keeps the month radar mapped it); the same per pixel;
- F1 of new digging on pixels first dug in the clear months (pixels first dug in the long
  rains left out of truth and map alike), and over all months;
- false positives on floodplains: pixels the river flooded outside its channel in the
  monitored months, never touched by digging, mapped as new digging, as a share of their area,
  in any month and in the last month.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from kpgeo.methods.detection import month_label


@dataclass
class RainsScores:
    ok_months: int
    radar_months: int
    gap_months: int
    rains_sites: int
    rains_sites_mapped: int
    rains_site_delay_months: float
    rains_pixels: int
    rains_pixels_mapped_pct: float
    rains_pixel_delay_months: float
    f1_clear: float
    precision_clear: float
    recall_clear: float
    f1_all: float
    floodplain_ha: float
    floodplain_fp_any_pct: float
    floodplain_fp_end_pct: float


def months_between(later: np.ndarray | int, earlier: np.ndarray | int) -> np.ndarray:
    """Whole months from ``earlier`` to ``later`` (both YYYYMM)."""
    later, earlier = np.asarray(later), np.asarray(earlier)
    return (later // 100 * 12 + later % 100) - (earlier // 100 * 12 + earlier % 100)


def _f1(pred: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth & scored).sum())
    precision = tp / max(int((pred & scored).sum()), 1)
    recall = tp / max(int((truth & scored).sum()), 1)
    return 2 * precision * recall / max(precision + recall, 1e-9), precision, recall


def _median(values: list[int] | np.ndarray) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def score_rains(new_by_month: dict[str, np.ndarray], mapped_since: np.ndarray,
                truth: dict[str, np.ndarray], statuses: dict[str, str], baseline_end: int,
                months: list[str], rain_months: list[str]) -> RainsScores:
    """The rains family's scores of one run.

    ``new_by_month``: the pixels mapped as new digging (``digging`` = 2) in each month after
    the baseline; ``mapped_since``: that band of the last month's ``change.tif``; ``truth``:
    the archive's truth rasters by name (``first_month``, ``site_id``, ``reached_month``,
    ``preexisting``, ``flooded_month``); ``statuses``: each month's status.
    """
    after = [m for m in months if month_label(m) > baseline_end]
    counted = [statuses.get(m, "gap") for m in after]
    first = truth["first_month"]
    boundary = first == baseline_end  # cannot be confirmed before the baseline ends
    true_new = first > baseline_end
    scored = (first < month_label(months[-1])) & ~boundary  # not dug in the last month
    in_rains = np.isin(first, [month_label(m) for m in rain_months])
    last_map = new_by_month[months[-1]]

    # Digging begun in the rains: by dug site, and by pixel.
    rain_labels = {month_label(m) for m in rain_months}
    site_id = truth["site_id"]
    delays, found, begun = [], 0, 0
    for sid in np.unique(site_id[true_new]):
        mine = (site_id == sid) & true_new
        start = int(first[mine].min())
        if start not in rain_labels:
            continue
        begun += 1
        mapped = mine & (mapped_since > 0)
        if mapped.any():
            found += 1
            delays.append(int(months_between(int(mapped_since[mapped].min()), start)))
    rain_pixels = true_new & in_rains & scored
    mapped_pixels = rain_pixels & (mapped_since > 0)
    pixel_delays = months_between(mapped_since[mapped_pixels], first[mapped_pixels])

    f1_clear, precision_clear, recall_clear = _f1(last_map, true_new, scored & ~in_rains)
    f1_all, _, _ = _f1(last_map, true_new, scored)

    # Floodplains: flooded in the monitored months, never dug, nor touched by digging.
    touched = truth["preexisting"].astype(bool) | (first > 0) | (truth["reached_month"] > 0)
    floodplain = (truth["flooded_month"] > baseline_end) & ~touched
    ever = np.zeros_like(last_map)
    for m in after:
        ever |= new_by_month[m]
    area = max(int(floodplain.sum()), 1)
    return RainsScores(
        ok_months=counted.count("ok"), radar_months=counted.count("radar"),
        gap_months=counted.count("gap"),
        rains_sites=begun, rains_sites_mapped=found, rains_site_delay_months=_median(delays),
        rains_pixels=int(rain_pixels.sum()),
        rains_pixels_mapped_pct=100.0 * int(mapped_pixels.sum()) / max(int(rain_pixels.sum()), 1),
        rains_pixel_delay_months=_median(pixel_delays),
        f1_clear=f1_clear, precision_clear=precision_clear, recall_clear=recall_clear,
        f1_all=f1_all,
        floodplain_ha=float(floodplain.sum()) * 0.01,
        floodplain_fp_any_pct=100.0 * int((ever & floodplain).sum()) / area,
        floodplain_fp_end_pct=100.0 * int((last_map & floodplain).sum()) / area,
    )


TARGETS = ("with radar: no month after the baseline is a gap; median delay of digging begun in "
           "the rains ≤ 1 month; F1 of new digging in the clear months within 0.03 of optical "
           "only; false positives on wet-season floodplains ≤ 2 % of their area")


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or np.isnan(value) else f"{value:.{digits}f}"


def rains_markdown(rows: list[dict[str, object]], command: str, seconds: float,
                   machine: str, baseline: str, months: str) -> str:
    """The ``accuracy-rains`` section of RESULTS.md: ``rows`` from ``run_rains_case``."""
    lines = [
        "<!-- accuracy-rains:start -->",
        ("## Accuracy through the rains, with and without radar (`benchmarks/accuracy.py "
        "--family rains`)"),
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min). Machine: {machine}.",
        (f"Baseline {baseline}, months {months}. The hard family's ground (partly dug pixels, "
         "riverbeds, misregistration, roads, years that differ) with long rains in the "
         "monitored year (the months named in the archive's name, almost no clear optical "
         "view), written with Sentinel-1 (`write_archive(..., radar=True)`) and run twice: "
         "with a `[radar]` table on the archive's `sentinel-1-rtc` collection, and optical "
         "only."),
        "",
        f"Targets (issue 20): {TARGETS}.",
        "",
        ("| archive | mode | months ok / radar / gap | rains sites mapped | delay, sites | "
         "rains pixels mapped % | delay, pixels | F1 clear months (P / R) | F1 all | "
         "floodplain ha | FP floodplain % any month / last | run s |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        for mode in ("radar", "optical"):
            s = row[mode]  # type: ignore[index]
            lines.append(
                f"| {row['case']} | {mode} | {s['ok_months']} / {s['radar_months']} / "
                f"{s['gap_months']} | {s['rains_sites_mapped']}/{s['rains_sites']} | "
                f"{_fmt(s['rains_site_delay_months'], 0)} | "
                f"{_fmt(s['rains_pixels_mapped_pct'])} of {s['rains_pixels']} | "
                f"{_fmt(s['rains_pixel_delay_months'], 1)} | "
                f"{s['f1_clear']:.3f} ({s['precision_clear']:.3f} / {s['recall_clear']:.3f}) | "
                f"{s['f1_all']:.3f} | {s['floodplain_ha']:.1f} | "
                f"{_fmt(s['floodplain_fp_any_pct'], 2)} / {_fmt(s['floodplain_fp_end_pct'], 2)} | "
                f"{row[mode + '_run_s']} |")
    lines += ["", "Medians over the archives:", "",
              "| figure | radar | optical only | target (radar) | met |",
              "| --- | --- | --- | --- | --- |"]
    lines += _summary(rows)
    lines += [
        "",
        ("Months: those after the baseline. Digging begun in the rains: dug sites whose first "
         "pixel dug at least half was dug in a long-rains month; a site is mapped when any of "
         "its new pixels ever lay in a mapped new-digging area, and its delay runs from that "
         "first month to the first such month (`mapped_since` of the last month's "
         "`change.tif`: radar-dated digging keeps the month radar mapped it). Per pixel: the "
         "same for each pixel first dug in the rains (pixels dug in the last month left out). "
         "F1 in the clear months: pixels first dug in a long-rains month are left out of truth "
         "and map alike; the last month's map. Floodplain: pixels the river's water covered "
         "outside its low-water channel in a month after the baseline (the truth's "
         "`flooded_month.tif`) that no digging touched; false positives are those mapped as "
         "new digging in any month after the baseline, and in the last month."),
        "<!-- accuracy-rains:end -->",
    ]
    return "\n".join(lines) + "\n"


def _median_of(rows: list[dict[str, object]], mode: str, key: str) -> float:
    values = [r[mode][key] for r in rows]  # type: ignore[index]
    values = [v for v in values if not np.isnan(v)]
    return statistics.median(values) if values else float("nan")


def _summary(rows: list[dict[str, object]]) -> list[str]:
    radar = {k: _median_of(rows, "radar", k) for k in
             ("rains_site_delay_months", "rains_pixel_delay_months", "f1_clear",
              "floodplain_fp_any_pct", "floodplain_fp_end_pct")}
    optical = {k: _median_of(rows, "optical", k) for k in radar}
    gaps_radar = sum(r["radar"]["gap_months"] for r in rows)  # type: ignore[index]
    gaps_optical = sum(r["optical"]["gap_months"] for r in rows)  # type: ignore[index]
    f1_worst = max(r["optical"]["f1_clear"] - r["radar"]["f1_clear"]  # type: ignore[index]
                   for r in rows)

    def met(ok: bool) -> str:
        return "yes" if ok else "**NO**"

    return [
        (f"| gap months after the baseline (all archives) | {gaps_radar} | {gaps_optical} | 0 | "
        f"{met(gaps_radar == 0)} |"),
        (f"| median delay of digging begun in the rains, per site (months) | "
        f"{_fmt(radar['rains_site_delay_months'])} | "
        f"{_fmt(optical['rains_site_delay_months'])} | ≤ 1 | "
        f"{met(radar['rains_site_delay_months'] <= 1)} |"),
        (f"| the same per pixel (months) | {_fmt(radar['rains_pixel_delay_months'])} | "
        f"{_fmt(optical['rains_pixel_delay_months'])} | ≤ 1 | "
        f"{met(radar['rains_pixel_delay_months'] <= 1)} |"),
        (f"| F1 of new digging in the clear months | {radar['f1_clear']:.3f} | "
        f"{optical['f1_clear']:.3f} | ≥ optical − 0.03 (largest drop of an archive: "
        f"{f1_worst:+.3f}) | {met(f1_worst <= 0.03)} |"),
        (f"| false positives on floodplains, any month % | "
        f"{_fmt(radar['floodplain_fp_any_pct'], 2)} | "
        f"{_fmt(optical['floodplain_fp_any_pct'], 2)} | ≤ 2 | "
        f"{met(radar['floodplain_fp_any_pct'] <= 2)} |"),
        (f"| false positives on floodplains, last month % | "
        f"{_fmt(radar['floodplain_fp_end_pct'], 2)} | "
        f"{_fmt(optical['floodplain_fp_end_pct'], 2)} | ≤ 2 | "
        f"{met(radar['floodplain_fp_end_pct'] <= 2)} |"),
    ]
