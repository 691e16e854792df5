"""Accuracy of kpgeo's digging detection against the truth of synthetic archives (SPEC §11).

Builds synthetic archives (several seeds, both demo site windows, one unusually cloudy year),
runs ``kpgeo run`` on each exactly as a user would (source ``stac`` on the archive's
``collection.json``), and scores the products of the last month against the archive's truth:

- new digging on pixels: F1, precision, recall (truth: dug after the baseline's end; pixels
  first dug in the last month are left out of these three, as no method can have seen them
  twice yet; they stay in the area error and the delay);
- ``cumulative_new_ha`` of the final month against the truth, and the mean absolute error over
  the months after the baseline where the truth exceeds 1 ha;
- pre-existing area against ground dug by the baseline's end that is still visible then (not
  fully regrown after abandonment, or a pit holding water), and against all ground ever dug before then;
- false-positive area on dry-season fields and on burn scars, as a share of their area;
- detection delay: confirmation month minus the true month dug, median over detected pixels.

The same figures are computed for a plain method, the usual first notebook: monthly median
composites, NDVI at least 0.2 below the baseline's median NDVI in two consecutive months.

Usage::

    python benchmarks/accuracy.py                 # all archives, writes benchmarks/RESULTS.md
    python benchmarks/accuracy.py --quick         # one small archive, prints only
"""

from __future__ import annotations

import argparse
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

from results import machine, replace_section  # benchmarks/results.py

from kpgeo.aoi import load_site
from kpgeo.config import PipelineConfig, SiteConfig, SourceConfig, Window, validate
from kpgeo.detection import month_label, remove_small
from kpgeo.indices import ndvi
from kpgeo.months import parse_month_range
from kpgeo.pipeline import CHANGE_BANDS, DIGGING_NEW, DIGGING_PREEXISTING, read_composite, run
from kpgeo.synth import write_archive

BASELINE = "2023-01..2023-12"
MONTHS = "2023-01..2024-12"
#: The demo windows (pipelines/demo.toml): digging known from Africa Mining Watch detections.
WINDOWS = {
    "bobi-seguela": ("aoi/bobi-seguela.geojson", -6.732, 8.036),
    "tortiya": ("aoi/tortiya.geojson", -5.700, 8.720),
}
#: (window, seed, cloudiness): several seeds, both windows, one unusually cloudy year.
CASES = [
    ("bobi-seguela", 1, 1.0),
    ("tortiya", 2, 1.0),
    ("bobi-seguela", 3, 1.0),
    ("tortiya", 4, 1.0),
    ("tortiya", 5, 1.8),
]
PLAIN_NDVI_DROP = 0.2


@dataclass
class Scores:
    f1: float
    precision: float
    recall: float
    cumulative_error_pct: float
    cumulative_mae_pct: float
    preexisting_error_pct: float | None
    preexisting_error_all_pct: float | None
    fields_fp_pct: float
    burns_fp_pct: float
    delay_months: float


def _read(path: Path, band: int = 1) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(band)


def _months_between(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
    return (later // 100 * 12 + later % 100) - (earlier // 100 * 12 + earlier % 100)


def _pct(estimate: float, truth: float) -> float:
    return 100.0 * (estimate - truth) / truth if truth > 0 else float("nan")


def score(pred_new: np.ndarray, confirmed: np.ndarray, pred_pre: np.ndarray | None,
          new_by_month: dict[str, np.ndarray], truth: dict[str, np.ndarray],
          baseline_end: int, months: list[str]) -> Scores:
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
    not_dug = ~dug_by_end & ~true_new
    pred_any = pred_new | (pred_pre if pred_pre is not None else False)
    fields = truth["fields"].astype(bool) & not_dug
    burns = (truth["burns"] > 0) & not_dug
    hit = pred_new & true_new
    delay = _months_between(confirmed[hit], first[hit])
    return Scores(
        f1=f1, precision=precision, recall=recall,
        cumulative_error_pct=_pct(pred_last, true_last),
        cumulative_mae_pct=float(np.mean(errors)) if errors else float("nan"),
        preexisting_error_pct=(_pct(float((pred_pre & ~boundary).sum()),
                                    float(visible_pre.sum()))
                               if pred_pre is not None else None),
        preexisting_error_all_pct=(_pct(float((pred_pre & ~boundary).sum()),
                                        float((dug_by_end & ~boundary).sum()))
                                   if pred_pre is not None else None),
        fields_fp_pct=100.0 * float((pred_any & fields).sum()) / max(fields.sum(), 1),
        burns_fp_pct=100.0 * float((pred_any & burns).sum()) / max(burns.sum(), 1),
        delay_months=float(np.median(delay)) if delay.size else float("nan"),
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


def run_case(window: str, seed: int, cloudiness: float, workdir: Path,
             size_km: float) -> dict[str, object]:
    aoi, lon, lat = WINDOWS[window]
    site = load_site(ROOT / aoi).window(lon, lat, size_km)
    months = parse_month_range(MONTHS)
    name = f"{window}-seed{seed}-cloud{cloudiness:g}-{size_km:g}km"
    archive_dir = workdir / "archives" / name
    started = time.perf_counter()
    archive = write_archive(site, months, archive_dir, seed=seed, cloudiness=cloudiness)
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
    ours = score(digging == DIGGING_NEW, confirmed, digging == DIGGING_PREEXISTING, cumulative,
                 truth, baseline_end, month_names)
    plain_new, plain_confirmed, plain_cumulative = plain_method(
        site_dir, baseline_names, month_names, config.detection.min_area_ha)
    plain = score(plain_new, plain_confirmed, None, plain_cumulative, truth, baseline_end,
                  month_names)
    gaps = sum(r.quality.status == "gap" for r in results)
    return {"case": name, "seed": seed, "cloudiness": cloudiness, "gaps": gaps,
            "scenes": archive.scenes, "synth_s": round(synth_s, 1), "run_s": round(run_s, 1),
            "true_new_ha": float((truth["first_month"] > baseline_end).sum()) * 0.01,
            "kpgeo": dataclasses.asdict(ours), "plain": dataclasses.asdict(plain)}


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "—"
    return f"{value:.{digits}f}"


METRICS = [
    ("f1", "F1", 3), ("precision", "precision", 3), ("recall", "recall", 3),
    ("cumulative_error_pct", "cumulative new area error %", 1),
    ("cumulative_mae_pct", "mean abs. monthly cumulative error %", 1),
    ("preexisting_error_pct", "pre-existing area error % (visible)", 1),
    ("preexisting_error_all_pct", "pre-existing area error % (all ever dug)", 1),
    ("fields_fp_pct", "false positives on fields % of area", 2),
    ("burns_fp_pct", "false positives on burns % of area", 2),
    ("delay_months", "median delay, months", 1),
]


def _median(rows: list[dict[str, object]], method: str, key: str) -> float | None:
    values = [r[method][key] for r in rows]  # type: ignore[index]
    values = [v for v in values if v is not None and not np.isnan(v)]
    return statistics.median(values) if values else None


def markdown(rows: list[dict[str, object]], command: str, seconds: float) -> str:
    lines = [
        "<!-- accuracy:start -->",
        "## Accuracy on synthetic archives (`benchmarks/accuracy.py`)",
        "",
        f"Command: `{command}` ({seconds / 60:.1f} min). Machine: {machine()}.",
        (f"Baseline {BASELINE}, months {MONTHS}; scores of the last month. Floors of issue 3: "
         "F1 ≥ 0.85, area error within ±15 %, false positives on fields and burns ≤ 2 %, median "
         "delay ≤ 2 months, pre-existing area within ±25 %."),
        "",
        "Median over the archives:",
        "",
        "| metric | kpgeo | plain method |",
        "| --- | --- | --- |",
    ]
    for key, label, digits in METRICS:
        ours, plain = _median(rows, "kpgeo", key), _median(rows, "plain", key)
        lines.append(f"| {label} | {_fmt(ours, digits)} | {_fmt(plain, digits)} |")
    lines += ["", "Per archive (kpgeo / plain):", "",
              ("| archive | scenes | gap months | true new ha | F1 | area err % | pre err % "
               "(visible / all) | FP fields % | FP burns % | delay | run s |"),
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        k, p = r["kpgeo"], r["plain"]  # type: ignore[index]
        lines.append(
            f"| {r['case']} | {r['scenes']} | {r['gaps']} | {r['true_new_ha']:.1f} | "
            f"{k['f1']:.3f} / {p['f1']:.3f} | "
            f"{k['cumulative_error_pct']:+.1f} / {p['cumulative_error_pct']:+.1f} | "
            f"{k['preexisting_error_pct']:+.1f} / {k['preexisting_error_all_pct']:+.1f} | "
            f"{k['fields_fp_pct']:.2f} / {p['fields_fp_pct']:.2f} | "
            f"{k['burns_fp_pct']:.2f} / {p['burns_fp_pct']:.2f} | "
            f"{k['delay_months']:.0f} / {p['delay_months']:.0f} | {r['run_s']} |"
        )
    lines += [
        "",
        ("Pre-existing digging is scored against ground dug by the baseline's end that is still "
         "visible then (not fully regrown after abandonment, or a pit holding water); "
         "the error against all ground ever dug is shown too: regrown ground is invisible to any "
         "optical method. Pixel scores leave out pixels first dug in the last month (no method "
         "can have seen them twice); the area error and the delay include them. Pixels first dug "
         "in the baseline's last month are left out of every score: they cannot be confirmed "
         "before the baseline ends, and kpgeo reports them as new digging of the first month "
         "after it. The plain method maps no pre-existing digging."),
        "<!-- accuracy:end -->",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "outputs" / "benchmarks")
    parser.add_argument("--size-km", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="one 3 km archive, no file written")
    parser.add_argument("--case", type=int, action="append", default=[],
                        help="only this case (index into CASES, repeatable); no file written")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    args = parser.parse_args(argv)
    cases = CASES[1:2] if args.quick else [CASES[i] for i in args.case] or CASES
    partial = args.quick or bool(args.case)
    size = 3.0 if args.quick else args.size_km
    started = time.perf_counter()
    rows = []
    for window, seed, cloudiness in cases:
        row = run_case(window, seed, cloudiness, args.workdir, size)
        print(json.dumps(row), flush=True)
        rows.append(row)
    seconds = time.perf_counter() - started
    command = "python benchmarks/accuracy.py" + (" --quick" if args.quick else "")
    section = markdown(rows, command, seconds)
    print(section)
    if not partial:
        replace_section(args.results, "accuracy", section)
        (args.workdir / "accuracy.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
