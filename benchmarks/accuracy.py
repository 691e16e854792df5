"""Accuracy of kpgeo's digging detection against the truth of synthetic archives (docs/product.md §11).

Two families of synthetic archives, each run with ``kpgeo run`` exactly as a user would (source
``stac`` on the archive's ``collection.json``) and scored on the products against the truth:

- **current**: the clean world of the first simulator (``Ground.simple()``: whole dug pixels,
  narrow rivers, registered scenes, no roads, the same seasons every year); five archives, both
  demo windows, one unusually cloudy year.
- **hard**: the ground as it really looks from 10 m (``Ground()``: partly dug pixels, riverbeds
  with dry-season bars, misregistration of up to half a pixel, roads, years that differ) and four
  to six months in a row with almost no clear view; other windows and seeds than the current
  five.

Scores (truth: a pixel is dug when at least half of it is):

- new digging on pixels: F1, precision, recall (pixels first dug after the baseline; pixels first
  dug in the last month are left out, as no method can have seen them twice yet);
- footprint area: ``cumulative_new_ha`` of the last month against the truth's dug pixels, and
  the mean absolute error over the months where the truth exceeds 1 ha;
- dug-share area: ``cumulative_new_dug_ha`` against the sum of the truth's dug shares of every
  pixel digging reached after the baseline;
- pre-existing: area against ground dug by the baseline's end that is still visible then, and
  the share of the pre-existing map that lies on ground truly dug by then;
- false positives on dry-season fields, burn scars, riverbeds and roads: the share of each
  confounder's area mapped as digging (new or pre-existing);
- dug sites found: workings with new digging after the baseline that a mapped new area touches,
  and the median delay per found site (its first confirmation minus the month its digging
  began).

- **rains**: the hard family's ground with four to six months in a row without a clear
  optical view in the monitored year, written with Sentinel-1 and run twice, with radar and
  optical only (scores in ``benchmarks/rains.py``).

And on real ground: kpgeo's dug share on the Twifo Praso galamsey and forest patches (Ghana).

The same figures are computed for a plain method, the usual first notebook: monthly median
composites, NDVI at least 0.2 below the baseline's median NDVI in two consecutive months.

Usage::

    python benchmarks/accuracy.py                 # every family, writes benchmarks/RESULTS.md
    python benchmarks/accuracy.py --quick         # one small archive of each family, prints only
    python benchmarks/accuracy.py --family hard   # one family, prints only
    python benchmarks/accuracy.py --family rains  # radar and optical only, writes its section
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rains import rains_markdown, score_rains  # benchmarks/rains.py
from results import machine, replace_section  # benchmarks/results.py

from kpgeo.aoi import load_site
from kpgeo.config import PipelineConfig, RadarConfig, SiteConfig, SourceConfig, Window, validate
from kpgeo.methods.change_bands import CHANGE_BANDS, DIGGING_NEW, DIGGING_PREEXISTING
from kpgeo.methods.detection import month_label, remove_small
from kpgeo.methods.indices import ndvi
from kpgeo.months import parse_month_range
from kpgeo.run import read_composite, run
from kpgeo.synth import write_archive
from kpgeo.synth.ground import Ground
from kpgeo.synth.radar_archive import RADAR_COLLECTION

BASELINE = "2023-01..2023-12"
MONTHS = "2023-01..2024-12"
#: Windows of the sites: digging known from Africa Mining Watch detections.
WINDOWS = {
    "bobi-seguela": ("aoi/bobi-seguela.geojson", -6.732, 8.036),
    "tortiya": ("aoi/tortiya.geojson", -5.700, 8.720),
    # Hard family: other parts of the sites.
    "bobi-dykes": ("aoi/bobi-seguela.geojson", -6.580, 8.170),
    "seguela-south": ("aoi/bobi-seguela.geojson", -6.595, 7.970),
    "tortiya-east": ("aoi/tortiya.geojson", -5.560, 8.670),
}


@dataclass(frozen=True)
class Case:
    window: str
    seed: int
    cloudiness: float = 1.0
    long_rains: tuple[str, ...] = ()
    hard: bool = False

    @property
    def ground(self) -> Ground:
        return Ground(long_rains=self.long_rains) if self.hard else Ground.simple()

    def name(self, size_km: float) -> str:
        rains = "-rains" + "+".join(r.replace("..", "_") for r in self.long_rains) \
            if self.long_rains else ""
        return (f"{self.window}-seed{self.seed}-cloud{self.cloudiness:g}{rains}-{size_km:g}km"
                + ("-hard" if self.hard else ""))


FAMILIES = {
    # Several seeds, both windows, one unusually cloudy year.
    "current": [Case("bobi-seguela", 1), Case("tortiya", 2), Case("bobi-seguela", 3),
                Case("tortiya", 4), Case("tortiya", 5, 1.8)],
    # Long rains in the monitored year (five and six months without a clear view), and in one
    # archive in the baseline's year too.
    "hard": [Case("bobi-dykes", 11, 1.0, ("2024-06..2024-10",), True),
             Case("seguela-south", 12, 1.0, ("2024-05..2024-10",), True),
             Case("tortiya-east", 13, 1.2, ("2023-07..2023-10", "2024-06..2024-10"), True)],
    # Long rains in the monitored year only (four to six months), the archives written with
    # Sentinel-1: each run with radar and optical only (run_rains_case).
    "rains": [Case("bobi-dykes", 21, 1.0, ("2024-06..2024-10",), True),
              Case("tortiya-east", 22, 1.0, ("2024-05..2024-10",), True),
              Case("seguela-south", 23, 1.0, ("2024-07..2024-10",), True)],
}
#: Families run with and without radar, scored by benchmarks/rains.py, in their own section.
RADAR_FAMILIES = {"rains"}
PLAIN_NDVI_DROP = 0.2
#: Confounders whose false positives are scored, and their truth rasters.
CONFOUNDERS = {"fields": "fields", "burns": "burns", "riverbeds": "riverbed", "roads": "roads"}


@dataclass
class Scores:
    f1: float
    precision: float
    recall: float
    cumulative_error_pct: float
    cumulative_mae_pct: float
    dug_area_error_pct: float | None
    preexisting_error_pct: float | None
    preexisting_error_all_pct: float | None
    preexisting_on_dug_pct: float | None
    fields_fp_pct: float
    burns_fp_pct: float
    riverbeds_fp_pct: float | None
    roads_fp_pct: float | None
    sites_found_pct: float | None
    sites_found: str
    delay_months: float


def _read(path: Path, band: int = 1) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(band)


def _months_between(later: np.ndarray | int, earlier: np.ndarray | int) -> np.ndarray:
    later, earlier = np.asarray(later), np.asarray(earlier)
    return (later // 100 * 12 + later % 100) - (earlier // 100 * 12 + earlier % 100)


def _pct(estimate: float, truth: float) -> float:
    return 100.0 * (estimate - truth) / truth if truth > 0 else float("nan")


def score(pred_new: np.ndarray, confirmed: np.ndarray, pred_pre: np.ndarray | None,
          new_by_month: dict[str, np.ndarray], dug_ha: float | None,
          truth: dict[str, np.ndarray], baseline_end: int, months: list[str]) -> Scores:
    first = truth["first_month"]
    dug_by_end = truth["preexisting"].astype(bool) | ((first > 0) & (first <= baseline_end))
    regrown = (truth["regrown_month"] > 0) & (truth["regrown_month"] <= baseline_end)
    # Ground first dug in the baseline's last month cannot be confirmed before the baseline
    # ends; kpgeo reports it as new digging of the next month. It is left out of every score.
    boundary = first == baseline_end
    visible_pre = dug_by_end & ~(regrown & ~truth["pits"].astype(bool)) & ~boundary
    true_new = first > baseline_end
    scored = (first < month_label(months[-1])) & ~boundary  # not dug in the last month
    tp = float((pred_new & true_new & scored).sum())
    precision = tp / max((pred_new & scored).sum(), 1)
    recall = tp / max((true_new & scored).sum(), 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    pixel_ha = 0.01
    errors = []
    for month in months:
        label = month_label(month)
        if label <= baseline_end:
            continue
        true_ha = float(((first > baseline_end) & (first <= label)).sum()) * pixel_ha
        if true_ha > 1.0:
            errors.append(abs(_pct(float((new_by_month[month] & ~boundary).sum()) * pixel_ha,
                                   true_ha)))
    last = months[-1]
    true_last = float(true_new.sum()) * pixel_ha
    pred_last = float((new_by_month[last] & ~boundary).sum()) * pixel_ha
    reached = truth.get("reached_month")
    true_dug_ha = (float(truth["dug_share"][reached > baseline_end].sum()) * pixel_ha
                   if reached is not None else true_last)
    not_dug = ~dug_by_end & ~true_new
    if reached is not None:  # nor touched by digging at all (the edges of workings)
        not_dug &= reached == 0
    pred_any = pred_new | (pred_pre if pred_pre is not None else False)
    fp = {}
    for key, layer in CONFOUNDERS.items():
        if layer not in truth:
            fp[key] = None
            continue
        where = (truth[layer] > 0) & not_dug
        fp[key] = 100.0 * float((pred_any & where).sum()) / max(where.sum(), 1)
    hit = pred_new & true_new
    sites_found, found_text, delays = None, "—", []
    if "site_id" in truth:
        site_id = truth["site_id"]
        new_sites = np.unique(site_id[true_new & scored])
        found = 0
        for sid in new_sites:
            mine = (site_id == sid) & true_new
            caught = pred_new & mine
            if caught.any():
                found += 1
                delays.append(int(_months_between(int(confirmed[caught].min()),
                                                  int(first[mine].min()))))
        sites_found = 100.0 * found / max(len(new_sites), 1)
        found_text = f"{found}/{len(new_sites)}"
    else:
        delays = list(_months_between(confirmed[hit], first[hit]))
    on_dug = None
    if pred_pre is not None and (pred_pre & ~boundary).any():
        on_dug = 100.0 * float((pred_pre & dug_by_end & ~boundary).sum()) / float(
            (pred_pre & ~boundary).sum())
    return Scores(
        f1=f1, precision=precision, recall=recall,
        cumulative_error_pct=_pct(pred_last, true_last),
        cumulative_mae_pct=float(np.mean(errors)) if errors else float("nan"),
        dug_area_error_pct=_pct(dug_ha, true_dug_ha) if dug_ha is not None else None,
        preexisting_error_pct=(_pct(float((pred_pre & ~boundary).sum()),
                                    float(visible_pre.sum()))
                               if pred_pre is not None else None),
        preexisting_error_all_pct=(_pct(float((pred_pre & ~boundary).sum()),
                                        float((dug_by_end & ~boundary).sum()))
                                   if pred_pre is not None else None),
        preexisting_on_dug_pct=on_dug,
        fields_fp_pct=fp["fields"] or 0.0, burns_fp_pct=fp["burns"] or 0.0,
        riverbeds_fp_pct=fp["riverbeds"], roads_fp_pct=fp["roads"],
        sites_found_pct=sites_found, sites_found=found_text,
        delay_months=float(np.median(delays)) if delays else float("nan"),
    )


def plain_method(site_dir: Path, baseline: list[str], months: list[str],
                 min_area_ha: float) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Monthly medians; NDVI ≥ 0.2 below the baseline's median NDVI two months running."""
    base = np.stack([ndvi(read_composite(site_dir / m / "composite.tif")[0]) for m in baseline])
    with warnings.catch_warnings():  # pixels never seen in the baseline give NaN, as meant
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = np.nanmedian(base, axis=0)
    confirmed = np.zeros(reference.shape, dtype="int32")
    previous = np.zeros(reference.shape, dtype=bool)
    cumulative: dict[str, np.ndarray] = {}
    for month in months:
        if month <= baseline[-1]:
            continue
        with np.errstate(invalid="ignore"):
            drop = (reference - ndvi(read_composite(site_dir / month / "composite.tif")[0])
                    ) >= PLAIN_NDVI_DROP
        confirmed[drop & previous & (confirmed == 0)] = month_label(month)
        previous = drop
        cumulative[month] = remove_small(confirmed > 0, min_area_ha)
    return remove_small(confirmed > 0, min_area_ha), confirmed, cumulative


def _dug_ha(series: Path, site: str, month: str) -> float | None:
    """``cumulative_new_dug_ha`` of a site-month in ``timeseries.csv``, if the run wrote it."""
    with open(series, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["site"] == site and row["month"] == month:
                value = row.get("cumulative_new_dug_ha")
                return float(value) if value else None
    return None


def run_case(case: Case, workdir: Path, size_km: float) -> dict[str, object]:
    aoi, lon, lat = WINDOWS[case.window]
    site = load_site(ROOT / aoi).window(lon, lat, size_km)
    months = parse_month_range(MONTHS)
    name = case.name(size_km)
    archive_dir = workdir / "archives" / name
    started = time.perf_counter()
    archive = write_archive(site, months, archive_dir, seed=case.seed,
                            cloudiness=case.cloudiness, ground=case.ground, replace_stale=True)
    synth_s = time.perf_counter() - started
    out = workdir / "runs" / name
    config = validate(PipelineConfig(
        name=name,
        source=SourceConfig(kind="stac", catalog=str(archive.collection)),
        sites=(SiteConfig(aoi=str(ROOT / aoi), window=Window(lon, lat, size_km)),),
        baseline=parse_month_range(BASELINE), months=months, out=str(out), overwrite=True,
    ))
    started = time.perf_counter()
    results = run(config, progress=lambda _: None)
    run_s = time.perf_counter() - started
    month_names = [str(m) for m in months.months()]
    baseline_names = [str(m) for m in parse_month_range(BASELINE).months()]
    baseline_end = month_label(baseline_names[-1])
    truth = {p.stem: _read(p) for p in archive.truth.glob("*.tif")}
    site_dir = out / site.name
    change = site_dir / month_names[-1] / "change.tif"
    digging = _read(change, CHANGE_BANDS.index("digging") + 1)
    confirmed = _read(change, CHANGE_BANDS.index("confirmed") + 1).astype("int32")
    cumulative = {m: _read(site_dir / m / "change.tif", CHANGE_BANDS.index("digging") + 1)
                  == DIGGING_NEW for m in month_names if month_label(m) > baseline_end}
    dug_ha = _dug_ha(out / "timeseries.csv", site.name, month_names[-1])
    ours = score(digging == DIGGING_NEW, confirmed, digging == DIGGING_PREEXISTING, cumulative,
                 dug_ha, truth, baseline_end, month_names)
    plain_new, plain_confirmed, plain_cumulative = plain_method(
        site_dir, baseline_names, month_names, config.detection.min_area_ha)
    plain = score(plain_new, plain_confirmed, None, plain_cumulative, None, truth, baseline_end,
                  month_names)
    gaps = sum(r.quality.status == "gap" for r in results)
    return {"case": name, "seed": case.seed, "cloudiness": case.cloudiness, "gaps": gaps,
            "scenes": archive.scenes, "synth_s": round(synth_s, 1), "run_s": round(run_s, 1),
            "true_new_ha": float((truth["first_month"] > baseline_end).sum()) * 0.01,
            "kpgeo": dataclasses.asdict(ours), "plain": dataclasses.asdict(plain)}


def run_rains_case(case: Case, workdir: Path, size_km: float) -> dict[str, object]:
    """An archive written with Sentinel-1, run with radar and optical only, scored by
    :func:`rains.score_rains`."""
    aoi, lon, lat = WINDOWS[case.window]
    site = load_site(ROOT / aoi).window(lon, lat, size_km)
    months = parse_month_range(MONTHS)
    name = case.name(size_km)
    started = time.perf_counter()
    archive = write_archive(site, months, workdir / "archives" / name, seed=case.seed,
                            cloudiness=case.cloudiness, ground=case.ground, replace_stale=True,
                            radar=True)
    row: dict[str, object] = {"case": name, "seed": case.seed, "scenes": archive.scenes,
                              "radar_scenes": archive.radar_scenes,
                              "synth_s": round(time.perf_counter() - started, 1)}
    month_names = [str(m) for m in months.months()]
    baseline_end = month_label(str(parse_month_range(BASELINE).last))
    truth = {p.stem: _read(p) for p in archive.truth.glob("*.tif")}
    rain_months = [str(m) for m in sorted(case.ground.long_rain_months())]
    assert archive.radar is not None
    for mode, radar in (("radar", RadarConfig(catalog=str(archive.radar),
                                              collection=RADAR_COLLECTION)),
                        ("optical", None)):
        out = workdir / "runs" / f"{name}-{mode}"
        config = validate(PipelineConfig(
            name=f"{name}-{mode}",
            source=SourceConfig(kind="stac", catalog=str(archive.collection)),
            sites=(SiteConfig(aoi=str(ROOT / aoi), window=Window(lon, lat, size_km)),),
            baseline=parse_month_range(BASELINE), months=months, out=str(out), overwrite=True,
            radar=radar,
        ))
        started = time.perf_counter()
        results = run(config, progress=lambda _: None)
        row[f"{mode}_run_s"] = round(time.perf_counter() - started, 1)
        site_dir = out / site.name
        new_by_month = {m: _read(site_dir / m / "change.tif", CHANGE_BANDS.index("digging") + 1)
                        == DIGGING_NEW for m in month_names if month_label(m) > baseline_end}
        mapped_since = _read(site_dir / month_names[-1] / "change.tif",
                             CHANGE_BANDS.index("mapped_since") + 1).astype("int32")
        statuses = {r.month: r.quality.status for r in results}
        row[mode] = dataclasses.asdict(score_rains(new_by_month, mapped_since, truth, statuses,
                                                   baseline_end, month_names, rain_months))
    return row


def _fmt(value: float | None, digits: int = 1, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


METRICS = [
    ("f1", "F1 of new digging", 3), ("precision", "precision", 3), ("recall", "recall", 3),
    ("cumulative_error_pct", "footprint area error % (cumulative new)", 1),
    ("cumulative_mae_pct", "mean abs. monthly footprint error %", 1),
    ("dug_area_error_pct", "dug-share area error % (cumulative new)", 1),
    ("preexisting_error_pct", "pre-existing area error % (visible)", 1),
    ("preexisting_error_all_pct", "pre-existing area error % (all ever dug)", 1),
    ("preexisting_on_dug_pct", "pre-existing map on truly dug ground %", 1),
    ("fields_fp_pct", "false positives on fields % of area", 2),
    ("burns_fp_pct", "false positives on burns % of area", 2),
    ("riverbeds_fp_pct", "false positives on riverbeds % of area", 2),
    ("roads_fp_pct", "false positives on roads % of area", 2),
    ("sites_found_pct", "dug sites found %", 0),
    ("delay_months", "median delay per dug site, months", 1),
]
FLOORS = {
    "current": "F1 ≥ 0.95, footprint area within ±10 %",
    "hard": ("F1 ≥ 0.85, footprint area within ±15 %, pre-existing map ≥ 80 % on truly dug "
             "ground, false positives on each confounder ≤ 2 % of its area, ≥ 80 % of dug sites "
             "found"),
}


def _median(rows: list[dict[str, object]], method: str, key: str) -> float | None:
    values = [r[method][key] for r in rows]  # type: ignore[index]
    values = [v for v in values if v is not None and not np.isnan(v)]
    return statistics.median(values) if values else None


def family_markdown(family: str, rows: list[dict[str, object]]) -> list[str]:
    lines = [f"### The {family} family", "", (f"Floors (medians over the family): "
             f"{FLOORS[family]}."), "", "| metric | kpgeo | plain method |", "| --- | --- | --- |"]
    for key, label, digits in METRICS:
        ours, plain = _median(rows, "kpgeo", key), _median(rows, "plain", key)
        lines.append(f"| {label} | {_fmt(ours, digits)} | {_fmt(plain, digits)} |")
    lines += ["", "Per archive (kpgeo / plain where both apply):", "",
              ("| archive | scenes | gap months | true new ha | F1 | footprint err % | "
               "dug-share err % | pre err % (visible) | pre on dug % | FP fields / burns / "
               "riverbeds / roads % | sites found | delay | run s |"),
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        k, p = r["kpgeo"], r["plain"]  # type: ignore[index]
        fps = " / ".join(_fmt(k[f"{c}_fp_pct"], 2) for c in CONFOUNDERS)
        lines.append(
            f"| {r['case']} | {r['scenes']} | {r['gaps']} | {r['true_new_ha']:.1f} | "
            f"{k['f1']:.3f} / {p['f1']:.3f} | "
            f"{_fmt(k['cumulative_error_pct'], 1, True)} / "
            f"{_fmt(p['cumulative_error_pct'], 1, True)} | "
            f"{_fmt(k['dug_area_error_pct'], 1, True)} | "
            f"{_fmt(k['preexisting_error_pct'], 1, True)} | "
            f"{_fmt(k['preexisting_on_dug_pct'], 1)} | {fps} | "
            f"{k['sites_found']} / {p['sites_found']} | "
            f"{_fmt(k['delay_months'], 0)} / {_fmt(p['delay_months'], 0)} | {r['run_s']} |"
        )
    return lines + [""]


#: The real Sentinel-2 patches of Twifo Praso, Ghana (2025 median), committed with the tests.
GHANA = ROOT / "tests" / "data" / "ghana_twifo_praso_galamsey_patches_2025"


def ghana_dug_share() -> dict[str, dict[str, float]] | None:
    """kpgeo's dug share on the real galamsey and forest patches, with the forest's median NDVI
    standing for the undisturbed state of both (the patches are single 2025 medians, without a
    history of their own): the share of pixels at least half dug, the same after the 30 m width
    filter and the mapping unit of the pre-existing map, and the mean share."""
    from scipy import ndimage

    from kpgeo.config import DetectionConfig
    from kpgeo.methods.reference import dug_share

    params = DetectionConfig()
    values = {}
    for name in ("galamsey_001", "forest_001"):
        path = GHANA / f"{name}.tif"
        if not path.is_file():
            return None
        with rasterio.open(path) as src:  # bands 3, 4: red, NIR as reflectance x 10000
            values[name] = ndvi({"red": src.read(3) / 1e4, "nir": src.read(4) / 1e4})
    own = float(np.nanmedian(values["forest_001"]))
    out = {}
    for name, vi in values.items():
        share = dug_share(vi.astype("float32"), np.full(vi.shape, own, "float32"), params)
        half = share >= params.footprint_share_min
        wide = remove_small(ndimage.binary_opening(half, structure=np.ones((3, 3), bool)),
                            params.min_area_ha)
        out[name] = {"half_dug_pct": 100 * float(half.mean()),
                     "mapped_pct": 100 * float(wide.mean()),
                     "mean_share": float(np.nanmean(share)), "own_ndvi": own}
    return out


def ghana_markdown() -> list[str]:
    shares = ghana_dug_share()
    if shares is None:
        return ["### Real data", "", f"The Ghana patches were not found under {GHANA}.", ""]
    g, f = shares["galamsey_001"], shares["forest_001"]
    return [
        "### Real data: the Twifo Praso galamsey and forest patches",
        "",
        ("kpgeo's dug share (NDVI unmixed between a pixel's own vegetation and worked ground's "
         f"`worked_ndvi`) on two real Sentinel-2 patches of Ghana (2025 median, about 1.3 km "
         f"each), with the forest's median NDVI ({g['own_ndvi']:.2f}) standing for the "
         "undisturbed state of both: the patches have no history of their own."),
        "",
        "| patch | at least half dug % | after the 30 m width filter % | mean dug share |",
        "| --- | --- | --- | --- |",
        (f"| galamsey_001 (digging on the Pra) | {g['half_dug_pct']:.1f} | "
         f"{g['mapped_pct']:.1f} | {g['mean_share']:.2f} |"),
        (f"| forest_001 (forest and farm mosaic with a road, 5 km east) | "
         f"{f['half_dug_pct']:.1f} | {f['mapped_pct']:.1f} | {f['mean_share']:.2f} |"),
        "",
        ("The forest patch is not zero: its farms, clearings and road are as bare as partly dug "
         "ground in a single date. Against each pixel's own history, as kpgeo runs, ground that "
         "was already open in the baseline is not new digging."),
        "",
    ]


def markdown(by_family: dict[str, list[dict[str, object]]], command: str,
             seconds: float) -> str:
    lines = [
        "<!-- accuracy:start -->",
        "## Accuracy on synthetic archives (`benchmarks/accuracy.py`)",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min). Machine: {machine()}.",
        (f"Baseline {BASELINE}, months {MONTHS}; scores of the last month. A pixel is dug when "
         "at least half of it is. Archives of the current family are the clean world of the "
         "first simulator; those of the hard family have partly dug pixels, riverbeds with "
         "dry-season bars, misregistration of up to half a pixel, roads, years whose seasons "
         "differ, and long rains (months named in the archive's name without a clear view)."),
        "",
    ]
    for family, rows in by_family.items():
        lines += family_markdown(family, rows)
    lines += ghana_markdown()
    lines += [
        ("Pre-existing digging is scored against ground dug by the baseline's end that is still "
         "visible then (not fully regrown after abandonment, or a pit holding water); the error "
         "against all ground ever dug is shown too: regrown ground is invisible to any optical "
         "method. Pixel scores leave out pixels first dug in the last month (no method can have "
         "seen them twice); the area errors and the delay include them. Pixels first dug in the "
         "baseline's last month are left out of every score: they cannot be confirmed before "
         "the baseline ends, and kpgeo reports them as new digging of the first month after it. "
         "False positives count confounder pixels that no digging touched. A dug site is found "
         "when a mapped new area touches its new digging; its delay runs from the month its "
         "digging began to its first confirmation. The plain method maps no pre-existing "
         "digging and no dug share."),
        "<!-- accuracy:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "benchmarks")
    parser.add_argument("--size-km", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true",
                        help="one 3 km archive of each family, no file written")
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append", default=[],
                        help=("only this family (repeatable); only the rains family's own "
                              "section is written"))
    parser.add_argument("--case", type=int, action="append", default=[],
                        help="only this case of each family (index, repeatable); no file written")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    families = args.family or list(FAMILIES)
    partial = args.quick or bool(args.case)
    size = 3.0 if args.quick else args.size_km
    by_family: dict[str, list[dict[str, object]]] = {}
    seconds_by_family: dict[str, float] = {}
    for family in families:
        family_started = time.perf_counter()
        cases = FAMILIES[family]
        if args.quick:
            cases = cases[1:2]
        elif args.case:
            cases = [cases[i] for i in args.case if i < len(cases)]
        for case in cases:
            row = (run_rains_case if family in RADAR_FAMILIES else run_case)(
                case, args.workdir, size)
            print(json.dumps(row), flush=True)
            by_family.setdefault(family, []).append(row)
        seconds_by_family[family] = time.perf_counter() - family_started
    command = "python benchmarks/accuracy.py" + (" --quick" if args.quick else "")
    optical = {f: rows for f, rows in by_family.items() if f not in RADAR_FAMILIES}
    if optical:
        section = markdown(optical, command, sum(seconds_by_family[f] for f in optical))
        print(section)
        if not partial and not args.family:
            replace_section(args.results, "accuracy", section)
            (args.workdir / "accuracy.json").write_text(json.dumps(optical, indent=1))
    for family in RADAR_FAMILIES & set(by_family):
        section = rains_markdown(
            by_family[family], command + ("" if args.quick else f" --family {family}"),
            seconds_by_family[family], machine(), BASELINE, MONTHS)
        print(section)
        if not partial:
            replace_section(args.results, f"accuracy-{family}", section)
            (args.workdir / f"accuracy-{family}.json").write_text(
                json.dumps(by_family[family], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
