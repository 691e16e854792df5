"""``kpgeo report`` (docs/product.md §4): a period's findings as report.html and report.pdf.

The report of a finished run (two sites, April a gap month) is printed to PDF, whose first pages
``pdftoppm`` turns into images; the PDF's text (``pdftotext``) holds the figures of
``timeseries.csv`` and the volume CSVs, summed over the period as documented, says
``SYNTHETIC DATA`` on every page, and sets the estimate against a declared-production file. Bad
input is one line and exit code 2, and writes nothing.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from kpgeo.cli import cli
from kpgeo.products.index_page import significant

from .conftest import FinishedRun

PERIOD = "2024-01..2024-04"
DECLARED = "scope,period,carats\ntw,2024-01..2024-04,100\nCIV,2024-02..2024-03,1000\n"
needs_poppler = pytest.mark.skipif(shutil.which("pdftoppm") is None,
                                   reason="poppler-utils (pdftoppm, pdftotext) not installed")


@dataclass(frozen=True)
class Written:
    out: Path
    folder: Path
    text: str
    """The PDF's text, pages separated by form feeds (pdftotext -layout)."""


def _pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True, timeout=120).stdout


@pytest.fixture(scope="module")
def written(finished_run: FinishedRun, tmp_path_factory: pytest.TempPathFactory) -> Written:
    root = tmp_path_factory.mktemp("report")
    out = root / "OUT"
    shutil.copytree(finished_run.out, out)
    declared = root / "declared.csv"
    declared.write_text(DECLARED, encoding="utf-8")
    result = CliRunner().invoke(cli, ["report", "--months", PERIOD, "--declared", str(declared),
                                      "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    folder = out / "reports" / "2024-01_2024-04"
    assert result.output.split() == [str(folder / "report.html"), str(folder / "report.pdf")]
    text = _pdftotext(folder / "report.pdf") if shutil.which("pdftotext") else ""
    return Written(out, folder, text)


def _rows(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(out / "timeseries.csv", newline="", encoding="utf-8") as f:
        return {(r["site"], r["month"]): r for r in csv.DictReader(f)}


def _volumes(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    found = {}
    for path in (out / "exports").glob("volume-*.csv"):
        with open(path, newline="", encoding="utf-8") as f:
            found.update({(r["site"], r["month"]): r for r in csv.DictReader(f)})
    return found


def _in_sequence(text: str, values: list[str]) -> bool:
    """Whether ``values`` follow one another in ``text``, separated by white space only."""
    pattern = r"(?<![\d.,])" + r"\s+".join(re.escape(v) for v in values) + r"(?![\d.,])"
    return re.search(pattern, text) is not None


MONTHS = ["2024-01", "2024-02", "2024-03", "2024-04"]


@needs_poppler
def test_the_report_prints_to_pdf_whose_pages_become_images(written: Written,
                                                            tmp_path: Path) -> None:
    pdf = written.folder / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "3", str(pdf),
                    str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 3
    for page in pages:
        image = np.asarray(Image.open(page).convert("L"))
        # A4 portrait, and not blank.
        assert abs(image.shape[0] / image.shape[1] - 297 / 210) < 0.02
        assert (image < 240).mean() > 0.01


@needs_poppler
def test_every_page_says_synthetic(written: Written) -> None:
    pages = [p for p in written.text.split("\f") if p.strip()]
    assert len(pages) >= 4
    assert all("SYNTHETIC DATA" in p for p in pages)


@needs_poppler
def test_the_figures_are_those_of_the_time_series_and_volume_csvs(written: Written) -> None:
    rows, volumes = _rows(written.out), _volumes(written.out)
    text = written.text
    totals = {"new": 0.0, "dug": 0.0, "cum": 0.0, "active": 0.0, "pre": 0.0}
    carats = np.zeros(6)
    for site in ("tw", "th"):
        ok = [m for m in MONTHS if rows[(site, m)]["status"] == "ok"]
        assert ok == ["2024-01", "2024-02", "2024-03"]  # April is a gap
        end = rows[(site, ok[-1])]
        new = sum(float(rows[(site, m)]["new_ha"]) for m in ok)
        dug = sum(float(rows[(site, m)]["new_dug_ha"]) for m in ok)
        assert new > 0
        # Summary row: new footprint, dug area, then the end month's cumulative, active and
        # pre-existing areas and the end month (the month not measured is named after it).
        assert _in_sequence(text, [f"{new:.2f}", f"{dug:.2f}", end["cumulative_new_ha"],
                                   end["active_ha"], end["preexisting_ha"], "2024-03",
                                   "2024-04"]), site
        for key, value in zip(totals, (new, dug, float(end["cumulative_new_ha"]),
                                       float(end["active_ha"]), float(end["preexisting_ha"])),
                              strict=True):
            totals[key] += value
        site_volume = np.array([sum(float(volumes[(site, m)][f"new_{w}_{q}"]) for m in ok)
                                for w in ("gravel_m3", "carats") for q in ("p10", "p50", "p90")])
        carats += site_volume
        assert _in_sequence(text, [significant(v) for v in site_volume]), site
        # Each month's row of the site's table, as timeseries.csv has it.
        for m in ok:
            r = rows[(site, m)]
            assert _in_sequence(text, [m, "ok", r["scenes"], r["valid_pct"], r["new_ha"],
                                       r["new_dug_ha"], r["cumulative_new_ha"],
                                       r["active_ha"], r["preexisting_ha"]]), (site, m)
        gap = rows[(site, "2024-04")]
        assert _in_sequence(text, ["2024-04", "gap", gap["scenes"], gap["valid_pct"], "n/m"])
    assert _in_sequence(text, ["all sites", *(f"{v:.2f}" for v in totals.values())])
    assert _in_sequence(text, [significant(v) for v in carats])


@needs_poppler
def test_the_estimate_is_set_against_declared_production(written: Written) -> None:
    volumes = _volumes(written.out)
    tw = [sum(float(volumes[("tw", m)][f"new_carats_{q}"]) for m in MONTHS[:3])
          for q in ("p10", "p50", "p90")]
    both = [sum(float(volumes[(s, m)][f"new_carats_{q}"]) for s in ("tw", "th")
                for m in ("2024-02", "2024-03")) for q in ("p10", "p50", "p90")]
    text = re.sub(r"\s+", " ", written.text)
    for declared, (p10, p50, p90) in ((100, tw), (1000, both)):
        ratio = (f"{significant(p10 / declared)} to {significant(p90 / declared)} "
                 f"(P50 {significant(p50 / declared)})")
        assert ratio in text
    assert "CIV (th, tw)" in text


def test_the_html_is_self_contained(written: Written) -> None:
    page = (written.folder / "report.html").read_text(encoding="utf-8")
    assert "<script" not in page
    addresses = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert addresses and all(a.startswith("data:") for a in addresses)
    assert "url(" not in page
    assert page.count("data:image/png;base64,") == 4  # start and end maps of both sites
    assert page.count("data:image/svg+xml;base64,") == 2  # a chart per site
    assert "SYNTHETIC DATA" in page.split("<body>")[1][:400]


def test_a_gap_month_is_named_and_its_map_shows_the_last_measured(written: Written) -> None:
    page = (written.folder / "report.html").read_text(encoding="utf-8")
    assert "2024-04 (gap)" in page
    assert "end of the period: 2024-03 (the last measured month before 2024-04)" in page


def test_one_site_only(written: Written, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(written.out.parent)  # --out as users type it, relative
    result = CliRunner().invoke(cli, ["report", "--months", "2024-02..2024-03", "--site", "th",
                                      "--out", written.out.name])
    assert result.exit_code == 0, result.output
    page = (written.out / "reports" / "2024-02_2024-03_th" / "report.html").read_text("utf-8")
    assert "Tortiya west half" in page and "Tortiya window" not in page


# ---- bad input -------------------------------------------------------------------------------
BAD_DECLARED = {
    "header": ("site,when,ct\ntw,2024-01,5\n", "is not the header scope,period,carats"),
    "carats": ("scope,period,carats\ntw,2024-01,lots\n", "line 2: carats 'lots'"),
    "negative": ("scope,period,carats\ntw,2024-01,-5\n", "line 2: carats '-5'"),
    "period": ("scope,period,carats\ntw,2024-13,5\n", "has month 13"),
    "outside": ("scope,period,carats\ntw,2023,5\n", "period '2023' is not within"),
    "scope": ("scope,period,carats\nGHA,2024-01,5\n", "scope 'GHA' is neither a site"),
    "fields": ("scope,period,carats\ntw,2024-01\n", "line 2 has 2 fields"),
    "empty": ("scope,period,carats\n", "has no declaration"),
    "binary": (b"\xff\xfe\x00\x01", "is not UTF-8"),
}


def _refused(args: list[str], out: Path, match: str) -> None:
    before = sorted(p.relative_to(out) for p in out.rglob("*")) if out.is_dir() else None
    result = CliRunner().invoke(cli, ["report", *args])
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kpgeo: error: "), result.output
    assert match in lines[0], lines[0]
    after = sorted(p.relative_to(out) for p in out.rglob("*")) if out.is_dir() else None
    assert after == before


@pytest.mark.parametrize("case", sorted(BAD_DECLARED))
def test_a_malformed_declared_file_is_refused(finished_run: FinishedRun, tmp_path: Path,
                                              case: str) -> None:
    content, match = BAD_DECLARED[case]
    path = tmp_path / "declared.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    _refused(["--months", PERIOD, "--declared", str(path), "--out", str(finished_run.out)],
             finished_run.out, match)


@pytest.mark.parametrize(("args", "match"), [
    (["--months", PERIOD, "--site", "nowhere"], "--site 'nowhere' is not a site of the run"),
    (["--months", "2023-11..2024-02"], "no products of th for 2023-11, 2023-12"),
    (["--months", "2024-03..2024-06"], "no products of th for 2024-05, 2024-06"),
    (["--months", "2024-04..2024-01"], "runs backwards"),
    (["--months", "2024-1..2024-02"], "is not a month"),
    (["--months", PERIOD, "--declared", "missing.csv"], "'missing.csv' does not exist"),
])
def test_bad_months_site_and_files_are_refused(finished_run: FinishedRun,
                                               args: list[str], match: str) -> None:
    _refused([*args, "--out", str(finished_run.out)], finished_run.out, match)


def test_an_out_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    _refused(["--months", PERIOD, "--out", str(tmp_path)], tmp_path, "is not a kpgeo run")
    _refused(["--months", PERIOD, "--out", str(tmp_path / "nothing")], tmp_path,
             "is not a folder")
    (tmp_path / "timeseries.csv").write_text("a,b\n1,2\n")
    _refused(["--months", PERIOD, "--out", str(tmp_path)], tmp_path, "is not a kpgeo time series")
