"""The ``kpgeo`` command line (docs/product.md §4): a thin click group over the library.

Exit codes: 0 ok, 1 the run failed, 2 bad input or usage. Every error the user can fix is one
line naming the value and the fix, without a traceback (``-v`` adds one for run failures).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .aoi import describe_site, load_site
from .config import SOURCES, PipelineConfig, SiteConfig, load_pipeline, validate
from .errors import ConfigError, InputError, KpgeoError
from .months import MonthRange, parse_month, parse_month_range
from .out_folder import check_writable
from .redaction import redact
from .userlog import setup_logging

log = logging.getLogger("kpgeo")
EXPORT_FORMATS = ("geojson", "gpkg", "kml")


class _KpgeoGroup(click.Group):
    """Turns kpgeo errors into one line on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KpgeoError as exc:
            if log.isEnabledFor(logging.DEBUG) and not isinstance(exc, InputError):
                log.exception("run failed")
            # A service's answer quoted in the error may echo the credentials sent to it.
            click.echo(f"kpgeo: error: {redact(str(exc))}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=_KpgeoGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kpgeo")
@click.option("-v", "--verbose", count=True, help="More log output (repeatable).")
@click.option("-q", "--quiet", count=True, help="Less log output (repeatable).")
def cli(verbose: int, quiet: int) -> None:
    """Monitor artisanal alluvial diamond digging from Sentinel-2.

    \b
    Examples:
      $ kpgeo demo
      $ kpgeo aoi check aoi/tortiya.geojson
      $ kpgeo synth --aoi aoi/tortiya.geojson --months 2024-01..2024-03 --out archive/
      $ kpgeo run pipelines/monthly.toml --month 2025-06
      $ kpgeo report --months 2024-01..2024-12 --out outputs/demo
    """
    setup_logging(verbose, quiet)


# ---- kpgeo aoi check --------------------------------------------------------------------------
@cli.group()
def aoi() -> None:
    """Site (AOI) files."""


@aoi.command("check")
@click.argument("file", type=click.Path(dir_okay=True, path_type=Path))
def aoi_check(file: Path) -> None:
    """Validate a site file; print its area, UTM zone and grid size.

    \b
    Example:
      $ kpgeo aoi check aoi/bobi-seguela.geojson
    """
    click.echo(describe_site(load_site(file)))


# ---- kpgeo synth ------------------------------------------------------------------------------
@cli.command()
@click.option("--aoi", "aoi_file", required=True, type=click.Path(path_type=Path),
              help="Site GeoJSON the archive covers.")
@click.option("--months", "months_text", required=True, help="Months, e.g. 2024-01..2024-12.")
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="New or empty folder for the archive.")
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of the world.")
@click.option("--long-rains", "long_rains", multiple=True, metavar="YYYY-MM..YYYY-MM",
              help="Months with almost no clear view (repeatable).")
@click.option("--clean", is_flag=True,
              help="The clean world: whole dug pixels, narrow rivers, registered scenes, no "
                   "roads, the same seasons every year.")
@click.option("--no-radar", "no_radar", is_flag=True,
              help="Leave out the Sentinel-1 RTC collection (sentinel-1-rtc/).")
def synth(aoi_file: Path, months_text: str, out: Path, seed: int, long_rains: tuple[str, ...],
          clean: bool, no_radar: bool) -> None:
    """Write a synthetic Sentinel-2 archive (static STAC collection of COGs) and its truth,
    with a Sentinel-1 RTC collection of the same world beside it (sentinel-1-rtc/).

    Real ground's hardships are on unless --clean: partly dug pixels, riverbeds with
    dry-season bars, scenes misregistered by up to half a pixel, tracks, years that differ.

    \b
    Example:
      $ kpgeo synth --aoi aoi/tortiya.geojson --months 2024-01..2024-03 --out archive/
      $ kpgeo synth --aoi aoi/tortiya.geojson --months 2024-01..2024-12 \\
          --long-rains 2024-06..2024-10 --out wet-year/
    """
    import dataclasses

    from .synth import write_archive
    from .synth.ground import Ground

    site = load_site(aoi_file)
    months = parse_month_range(months_text, what="--months")
    for text in long_rains:
        parse_month_range(text, what="--long-rains")
    ground = dataclasses.replace(Ground.simple() if clean else Ground(),
                                 long_rains=tuple(long_rains))
    check_writable(out)
    result = write_archive(site, months, out, seed=seed, ground=ground, radar=not no_radar)
    verb = "reused" if result.cached else "wrote"
    click.echo(f"{verb} {result.scenes} scenes: {result.collection}")
    if result.radar is not None:
        click.echo(f"radar: {result.radar_scenes} scenes: {result.radar}")
    click.echo(f"truth: {result.truth}")


# ---- kpgeo run --------------------------------------------------------------------------------
@cli.command()
@click.argument("pipeline", required=False, type=click.Path(path_type=Path))
@click.option("--month", help="One month to process, YYYY-MM.")
@click.option("--months", "months_text", help="Months to process, YYYY-MM..YYYY-MM.")
@click.option("--site", "site_names", multiple=True, help="Only this site of the pipeline.")
@click.option("--aoi", "aoi_files", multiple=True, type=click.Path(path_type=Path),
              help="Site GeoJSON (repeatable); replaces the pipeline's sites.")
@click.option("--source", help=f"Scene source: {' | '.join(SOURCES)}.")
@click.option("--catalog", help="STAC API URL or path/URL of a static catalog or collection.")
@click.option("--baseline", help="Baseline months, YYYY-MM..YYYY-MM.")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder.")
@click.option("--scheduler",
              help="Address of a running Dask scheduler (tcp://host:8786), or `threads` to "
                   "compute in this process; default: a local cluster sized to the machine.")
@click.option("--workers", type=int, help="Workers of the local cluster (threads with "
                                          "--scheduler threads); default: sized to the "
                                          "machine.")
@click.option("--overwrite", is_flag=True,
              help="Recompute site-months already done; write into a folder holding files "
                   "kpgeo did not write.")
@click.option("--offline/--online", default=None,
              help="Inline every script and style in the maps (default: the pipeline's).")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar of each month's computation (default: on a terminal).")
def run(pipeline: Path | None, month: str | None, months_text: str | None,
        site_names: tuple[str, ...], aoi_files: tuple[Path, ...], source: str | None,
        catalog: str | None, baseline: str | None, out: Path | None, scheduler: str | None,
        workers: int | None, overwrite: bool, offline: bool | None,
        progress: bool | None) -> None:
    """Run the monthly pipeline. Options override the pipeline file.

    \b
    Examples:
      $ kpgeo run pipelines/monthly.toml --month 2025-06
      $ kpgeo run --aoi my.geojson --source stac --catalog path/to/collection.json \\
          --baseline 2024-01..2024-06 --months 2024-01..2025-06 --out DIR
    """
    from . import run as pipeline_module

    config = build_run_config(pipeline, month=month, months_text=months_text,
                              aoi_files=aoi_files, source=source, catalog=catalog,
                              baseline=baseline, out=out, scheduler=scheduler, workers=workers,
                              overwrite=overwrite, offline=offline)
    results = pipeline_module.run(config, site_names=site_names, progress=log.info,
                                  progress_bar=_progress_bar(progress))
    gaps = sum(r.quality.status == "gap" for r in results)
    click.echo(f"{len(results)} site-months written to {config.out_dir} ({gaps} gaps); "
               f"time series: {config.out_dir / 'timeseries.csv'}; "
               f"index: {config.out_dir / 'index.html'}")


def build_run_config(pipeline: Path | None, *, month: str | None = None,
                     months_text: str | None = None, aoi_files: tuple[Path, ...] = (),
                     source: str | None = None, catalog: str | None = None,
                     baseline: str | None = None, out: Path | None = None,
                     scheduler: str | None = None, workers: int | None = None,
                     overwrite: bool = False, offline: bool | None = None) -> PipelineConfig:
    """The validated configuration of ``kpgeo run``: pipeline file, then options on top."""
    config = load_pipeline(pipeline) if pipeline is not None else PipelineConfig()
    if month and months_text:
        raise ConfigError("give --month or --months, not both.")
    changes: dict[str, Any] = {}
    if month:
        changes["months"] = MonthRange.single(parse_month(month, what="--month"))
    if months_text:
        changes["months"] = parse_month_range(months_text, what="--months")
    if baseline:
        changes["baseline"] = parse_month_range(baseline, what="--baseline")
    if aoi_files:
        for f in aoi_files:
            load_site(f)  # refuse a bad site file before anything else happens
        changes["sites"] = tuple(SiteConfig(aoi=str(f)) for f in aoi_files)
    if source is not None:
        if source not in SOURCES:
            raise ConfigError(f"--source {source!r} is unknown; use one of {', '.join(SOURCES)}.")
        changes["source"] = dataclasses.replace(config.source, kind=source)
    if catalog is not None:
        changes["source"] = dataclasses.replace(changes.get("source", config.source),
                                                catalog=catalog)
    if out is not None:
        check_writable(out)
        changes["out"] = str(out)
    if scheduler is not None:
        changes["scheduler"] = scheduler
    if workers is not None:
        changes["workers"] = workers
    if overwrite:
        changes["overwrite"] = True
    if offline is not None:
        changes["offline"] = offline
    return validate(dataclasses.replace(config, **changes))


def _progress_bar(asked: bool | None) -> bool:
    """A progress bar when asked, else when stderr is a terminal and logging is not quieted."""
    if asked is not None:
        return asked
    return sys.stderr.isatty() and log.getEffectiveLevel() <= logging.INFO


# ---- kpgeo demo -------------------------------------------------------------------------------
def demo_pipeline_path() -> Path:
    """``pipelines/demo.toml`` of the working directory, else of the source tree."""
    here = Path("pipelines/demo.toml")
    if here.is_file():
        return here
    return Path(__file__).resolve().parent.parent / "pipelines" / "demo.toml"


@cli.command()
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: the pipeline's, outputs/demo).")
def demo(out: Path | None) -> None:
    """Build the embedded synthetic archive and run both demo sites over all its months.

    \b
    Example:
      $ kpgeo demo --out outputs/demo
    """
    from . import run as pipeline_module

    config = build_run_config(demo_pipeline_path(), out=out)
    results = pipeline_module.run(config, progress=log.info, progress_bar=_progress_bar(None))
    click.echo(f"{len(results)} site-months written to {config.out_dir}")
    click.echo(f"open {config.out_dir / 'index.html'}")


# ---- kpgeo export -----------------------------------------------------------------------------
@cli.command()
@click.option("--month", required=True, help="Month to export, YYYY-MM.")
@click.option("--format", "fmt", default="geojson", show_default=True,
              help=f"Output format: {' | '.join(EXPORT_FORMATS)}.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs/kpgeo"),
              show_default=True, help="Output folder of the run to export from.")
def export(month: str, fmt: str, out: Path) -> None:
    """Export a month's digging areas of a finished run.

    \b
    Example:
      $ kpgeo export --month 2024-06 --format gpkg --out outputs/demo
    """
    label = str(parse_month(month, what="--month"))
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"--format {fmt!r} is unknown; use one of {', '.join(EXPORT_FORMATS)}.")
    source = out / "exports" / f"disturbed-{label}.geojson"
    if not source.is_file():
        raise InputError(
            f"no digging areas for {label} in {str(out)!r} ({source} is missing); run "
            f"`kpgeo run ... --month {label} --out {out}` first."
        )
    if fmt == "geojson":  # the run already wrote it, in RFC 7946 form
        click.echo(str(source))
        return
    from .products.export import convert_geojson

    click.echo(str(convert_geojson(source, fmt)))


# ---- kpgeo report -----------------------------------------------------------------------------
@cli.command()
@click.option("--months", "months_text", required=True,
              help="The report's period, YYYY-MM..YYYY-MM, within the run's months.")
@click.option("--site", help="Only this site of the run (default: every site).")
@click.option("--declared", type=click.Path(path_type=Path),
              help="CSV of declared production: scope,period,carats (scope: a site or a "
                   "country code).")
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs/kpgeo"),
              show_default=True, help="Output folder of the finished run to report on.")
def report(months_text: str, site: str | None, declared: Path | None, out: Path) -> None:
    """Write the period report of a finished run: report.html and report.pdf.

    Reads the run's products only (time series, volume CSVs, digging areas, composites,
    manifests, catalog); nothing is recomputed. The report goes to
    OUT/reports/<first>_<last>[_<site>]/.

    \b
    Examples:
      $ kpgeo report --months 2024-01..2024-12 --out outputs/demo
      $ kpgeo report --months 2024-01..2024-06 --site tortiya --declared declared.csv \\
          --out outputs/demo
    """
    from .report import write_report

    months = parse_month_range(months_text, what="--months")
    written = write_report(out, months, site=site, declared=declared)
    click.echo(f"{written.html}")
    click.echo(f"{written.pdf}")


def main() -> None:
    """Console entry point."""
    cli(prog_name="kpgeo")


if __name__ == "__main__":
    main()
