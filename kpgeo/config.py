"""The one frozen, validated configuration of a run.

A pipeline file (TOML) gives what to run; command-line options override it; the result is one
:class:`PipelineConfig` passed explicitly to every stage and recorded in the run manifest.
Relative paths in a pipeline file are read from the file's own folder, so a pipeline runs the
same from any working directory.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from .errors import ConfigError, InputError, MonthError
from .limits import check_limits, limit_of
from .months import MonthRange, check_observable, parse_month_range

SourceKind = Literal["synthetic", "stac", "sentinelhub"]
SOURCES: tuple[str, ...] = get_args(SourceKind)
#: ``--scheduler`` values that name one of dask's local schedulers instead of an address.
LOCAL_SCHEDULERS = ("threads", "synchronous")

#: Element 84 Earth Search v1: free, no credentials, Collection-1 L2A COGs.
EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
EARTH_SEARCH_COLLECTION = "sentinel-2-c1-l2a"
#: Microsoft Planetary Computer's STAC API and its Sentinel-1 RTC collection (gamma0, linear
#: power; assets signed with SAS tokens by the planetary-computer package).
PLANETARY_COMPUTER_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
PLANETARY_COMPUTER_RADAR = "sentinel-1-rtc"
#: How a radar collection stores backscatter: linear power, amplitude (its square root), dB.
RADAR_UNITS = ("power", "amplitude", "db")
#: URL signing a radar collection may need.
RADAR_SIGNING = ("", "planetary-computer")


@dataclass(frozen=True)
class SourceConfig:
    """Where scenes come from (docs/product.md §6)."""

    kind: SourceKind = "synthetic"
    """``synthetic`` (an archive from ``kpgeo synth``), ``stac`` or ``sentinelhub``."""
    catalog: str = ""
    """STAC API URL, or path/URL of a static catalog or collection; empty = the default."""
    collection: str = EARTH_SEARCH_COLLECTION
    """Collection to search on a STAC API."""
    max_scene_cloud_pct: float = 95.0
    """Skip scenes whose provider cloud cover (``eo:cloud_cover``) exceeds this, in %."""
    resampling: Literal["bilinear", "nearest"] = "bilinear"
    """``stac``: how 10 m and 20 m bands are resampled onto the site grid (SCL always nearest).
    ``sentinelhub`` always asks the service for nearest, so its SCL classes stay whole; set
    ``nearest`` here to compare the two sources pixel for pixel."""
    read_attempts: int = 3
    """``stac``/``synthetic``: reads of a scene that failed (HTTP error, stall, corrupt COG)
    before it is skipped and recorded in the manifest; its month is retried by the next run."""
    http_timeout_s: float = 60.0
    """``stac``: the most one HTTP request may take, start to end, in seconds (not the wait
    between bytes): a COG read (GDAL's ``GDAL_HTTP_TIMEOUT``) or a STAC/JSON request; a stalled
    or dripping server fails after it."""
    http_retries: int = 3
    """``stac``: GDAL's own quick retries of one HTTP read (429 and 5xx answers, timeouts)."""
    sh_base_url: str = "https://sh.dataspace.copernicus.eu"
    """``sentinelhub``: service URL (Process and Catalog APIs); Copernicus Data Space by default,
    another Sentinel Hub deployment by setting its URL and :attr:`sh_token_url`."""
    sh_token_url: str = ("https://identity.dataspace.copernicus.eu/auth/realms/CDSE/protocol/"
                         "openid-connect/token")
    """``sentinelhub``: OAuth client-credentials token URL of that deployment."""
    sh_cache: str = ""
    """``sentinelhub``: folder of the on-disk response cache (a rerun costs no quota and works
    offline); empty = ``$KPGEO_CACHE_DIR/sentinelhub`` or ``~/.cache/kpgeo/sentinelhub``."""
    sh_tile_px: int = 2500
    """``sentinelhub``: largest side of one Process request in pixels (the API allows 2500)."""
    sh_use_clm: bool = True
    """``sentinelhub``: also mask the service's s2cloudless cloud mask (CLM), dilated like SCL
    clouds by ``mask.cloud_buffer_m``."""
    sh_max_attempts: int = 4
    """``sentinelhub``: attempts per request (429, 5xx, connection errors) before the scene is
    skipped and recorded."""
    sh_backoff_s: float = 2.0
    """``sentinelhub``: wait after the first 5xx or connection error, doubled after each."""
    sh_max_wait_s: float = 60.0
    """``sentinelhub``: longest single wait; a 429 whose Retry-After asks for more gives up."""
    sh_request_budget_s: float = 300.0
    """``sentinelhub``: time one request may take with all its attempts and waits, in seconds."""
    sh_timeout_s: float = 120.0
    """``sentinelhub``: timeout of one HTTP attempt, in seconds."""
    sh_threads: int = 4
    """``sentinelhub``: requests in flight at once."""


@dataclass(frozen=True)
class RadarConfig:
    """Sentinel-1 radar read beside the optical scenes (a ``[radar]`` table turns it on).

    ``stac`` reads a collection of radiometrically terrain-corrected gamma0 (Planetary
    Computer's ``sentinel-1-rtc`` by default); ``sentinelhub`` asks the Process API for
    ``S1GRD`` as terrain-flattened gamma0 and ignores the collection fields here; a
    ``synthetic`` archive carries its own (``sentinel-1-rtc/`` beside the optical one).
    """

    catalog: str = ""
    """STAC API URL, or path/URL of a static collection; empty = Planetary Computer's API
    (``stac``) or the synthetic archive's radar collection (``synthetic``)."""
    collection: str = PLANETARY_COMPUTER_RADAR
    """Collection to search on a STAC API."""
    vv_asset: str = "vv"
    """Asset key of VV backscatter."""
    vh_asset: str = "vh"
    """Asset key of VH backscatter."""
    units: str = "power"
    """How the assets store backscatter: ``power`` (linear, Planetary Computer's),
    ``amplitude`` or ``db``; kpgeo works in linear power."""
    backscatter: str = "gamma0"
    """The backscatter convention, which must be ``gamma0`` (terrain-flattened): the baseline
    compares passes of two orbits over sloping ground."""
    sign: str = ""
    """``planetary-computer``: sign asset URLs with the planetary-computer package's SAS
    tokens (no key needed); empty: read the URLs as they are."""


@dataclass(frozen=True)
class SyntheticConfig:
    """How the embedded synthetic archive is built when the source is ``synthetic``."""

    seed: int = 7
    """Seed of the synthetic world and its scenes."""
    archive: str = ""
    """Folder of the archive; empty = a cache folder keyed by sites, months and seed."""
    long_rains: tuple[str, ...] = ()
    """Month ranges (``YYYY-MM..YYYY-MM``) of long rains: almost no clear optical view, as in
    a wet year's June to October (Sentinel-1 sees through them)."""


@dataclass(frozen=True)
class Window:
    """A square part of a site, used to keep the demo small."""

    lon: float
    """Centre longitude, degrees east."""
    lat: float
    """Centre latitude, degrees north."""
    size_km: float = 6.0
    """Side of the square in km, drawn on the site's UTM grid."""


@dataclass(frozen=True)
class SiteConfig:
    """One site of a pipeline."""

    aoi: str
    """Path of the site GeoJSON."""
    window: Window | None = None
    """Optional window of the site to process instead of all of it."""


@dataclass(frozen=True)
class MaskConfig:
    """Validity of scene pixels from the Sen2Cor scene classification (SCL)."""

    invalid_scl: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
    """SCL classes never used: no data, defective, cloud shadow, clouds, cirrus, snow."""
    cloud_scl: tuple[int, ...] = (3, 8, 9, 10)
    """SCL classes grown by :attr:`cloud_buffer_m`, because their thin edges go unflagged."""
    cloud_buffer_m: float = 60.0
    """Distance by which clouds and shadows are dilated, in metres."""


@dataclass(frozen=True)
class CompositeConfig:
    """Monthly compositing."""

    min_valid_pct: float = 30.0
    """A month whose share of site pixels with a valid observation is lower is a gap, in %."""
    chunk_px: int = 1024
    """Side of the square dask chunks of loaded scenes, in pixels."""


@dataclass(frozen=True)
class DetectionConfig:
    """Thresholds of pre-existing and new digging (``kpgeo/methods/detection.py``,
    ``kpgeo/methods/reference.py``).

    Reflectances are L2A surface reflectance (0-1). New digging is judged against each pixel's
    own state in the same season of the baseline, so most thresholds are sizes of a change, not
    absolute levels; they were set on synthetic archives of real-ground hardships
    (``benchmarks/accuracy.py``) and checked on a real galamsey patch (``tests/test_realdata.py``).
    For another region, the worked ground's NDVI (``worked_ndvi``) is the first to check against
    a few known workings; the change sizes hold where the seasons are as strong as a Guinea
    savanna's, and may be lowered for evergreen forest (less seasonal noise) or raised for
    cropland that is cleared anew every year.
    """

    ndvi_drop: float = 0.10
    """New digging: NDVI this far below the pixel's least-green land state of the same season
    (beyond what misregistration alone can do). Undisturbed savanna stays above that state
    (it is the season's least green); a half-dug pixel falls 0.1-0.2 below it in the dry
    season and 0.3 or more in the green season."""
    wet_ndvi_drop: float = 0.04
    """...or only this far below, when the pixel also turns wetter..."""
    wet_mndwi_rise: float = 0.06
    """...by MNDWI at least this above the wettest land state of its season: worked ground is
    wet spoil and pit water, darker in SWIR than the dry grass it replaced."""
    dark_red_margin: float = 0.01
    """Evidence of digging is never darker in red than the pixel's darkest land state of the
    season by more than this: burn scars and shadows are dark, spoil and gravel are not."""
    worked_ndvi: float = 0.05
    """NDVI of worked ground (spoil, wet gravel, turbid pit water), the bare end of the dug
    share's unmixing: about 0.02 for the low-NDVI pixels of the Twifo Praso galamsey patch
    unmixed at 70 % dug against its vegetation; bare gravel 0.05, turbid water below 0."""
    footprint_share_min: float = 0.5
    """New digging is mapped where a confirmed pixel's dug share has reached at least this: a
    pixel is dug when at least half of it is (the edges of a working are dug less)."""
    preexisting_share_min: float = 0.5
    """Pre-existing: dug share, against the site's typical land of the month, at least this in
    each month seen as land through the baseline's end (fields green up, workings do not); a
    pixel is dug when at least half of it is, as for new digging (``footprint_share_min``).
    Lower shares take in the half-dug pixels along tracks, which then join the workings they
    pass."""
    preexisting_share_min_unseen: float = 0.8
    """Pre-existing, where the baseline never saw the green season: a run of dug months that
    did not begin after an undug one counts only at this share in each of its months (a field
    lies as bare as partly dug ground in the dry season; only near-bare ground is sure)."""
    preexisting_undug_share_max: float = 0.2
    """Pre-existing: a month whose dug share is below this breaks a run of dug months (the
    pixel greened up: a field after the dry season); between this and
    ``preexisting_share_min`` a month neither makes nor breaks one (haze, weeds, an edge)."""
    green_season_contrast: float = 0.2
    """Pre-existing: the baseline saw a green season when the site's monthly median NDVI
    ranged at least this much; the Guinea savanna's rises by 0.3 or more from the dry season
    to the rains, so a baseline whose months differ by less saw at most the edges of the rains
    (long rains hid the rest). Lower it where the seasons are weaker (forest)."""
    preexisting_greening_min: float = 0.75
    """Pre-existing: a month in which the site has greened since its driest month by at least
    half ``green_season_contrast`` and the pixel's NDVI has risen by at least this share of
    the site's rise counts as undug: the pixel greened with the savanna, as a field at the edge
    of the rains does (against the site, a half-green field still looks partly dug); workings
    stay bare."""
    preexisting_min_months: int = 1
    """Pre-existing: seen as land in at least this many baseline months."""
    water_index_min: float = 0.10
    """Open water: the larger of MNDWI and NDWI at least this."""
    turbid_ndti_min: float = -0.02
    """New pit water must be turbid: NDTI at least this."""
    water_buffer_m: float = 60.0
    """New water within this distance of any baseline water is a flood, not a pit, in metres."""
    haze_blue_red_max: float = 0.85
    """Observations with blue above this share of red (and above ``haze_blue_min``) are thin
    cloud or haze that SCL missed; they neither detect nor clear a detection."""
    haze_blue_min: float = 0.12
    """Blue reflectance from which an observation can be haze (dark water is bluish too)."""
    pit_ndti_min: float = 0.0
    """Pre-existing and active digging: water this turbid (NDTI) is a washing pit."""
    active_share_min: float = 0.3
    """Active digging: digging ground whose dug share this month is at least this, or that
    holds turbid water."""
    bare_ndvi_max: float = 0.15
    """Bare bright ground in a composite (the realdata check of indices): NDVI at most this..."""
    bright_red_min: float = 0.12
    """...and red at least this."""
    pond_max_ha: float = 2.0
    """Pre-existing: small water bodies (pits) up to this size count as digging."""
    cluster_gap_m: float = 20.0
    """Pre-existing: pits and spoil this close together form one worked area, in metres."""
    min_area_ha: float = 0.1
    """Minimum mapping unit of digging polygons, in hectares."""


@dataclass(frozen=True)
class Assumption:
    """A ranged assumption of the production-volume chain, with where the range comes from."""

    low: float
    high: float
    source: str = ""


def _assumption(low: float, high: float, source: str) -> Any:
    return field(default_factory=lambda: Assumption(low, high, source))


@dataclass(frozen=True)
class VolumeConfig:
    """Production-volume inputs (docs/product.md §7): carats = new area × gravel fraction × gravel
    thickness × grade × recovery, each drawn uniformly from its range in a seeded Monte Carlo.

    The default ranges are the working bounds of ``docs/domain.md`` §1.6-1.7; replace them with
    the USGS SIR 2013-5185 and field-sheet values for a site before quoting figures.
    """

    seed: int = 2005
    """Seed of the Monte Carlo draws: the same seed gives the same figures."""
    draws: int = 20000
    """Number of Monte Carlo draws."""
    gravel_fraction: Assumption = _assumption(
        0.3, 0.7, "share of dug ground that is extracted gravel (vs spoil, ponds, camps); "
        "estimate, docs/domain.md 1.7")
    gravel_thickness_m: Assumption = _assumption(
        0.3, 1.5, "alluvial gravel bed thickness, decimetres to 1-2 m in the region; to be "
        "replaced by USGS SIR 2013-5185 / SODEMI values, docs/domain.md 1.7")
    grade_ct_per_m3: Assumption = _assumption(
        0.3, 1.9, "placer grade near Seguela, secondary-source bounds 0.3-1.9 ct/m3 "
        "(docs/domain.md 1.6); dyke workings at Bobi are richer and need their own stratum")
    recovery: Assumption = _assumption(
        0.5, 0.9, "share of diamonds recovered by artisanal jigs and sieves; estimate, "
        "docs/domain.md 1.7")

    def assumptions(self) -> dict[str, Assumption]:
        return {"gravel_fraction": self.gravel_fraction,
                "gravel_thickness_m": self.gravel_thickness_m,
                "grade_ct_per_m3": self.grade_ct_per_m3, "recovery": self.recovery}


@dataclass(frozen=True)
class PipelineConfig:
    """Everything a run needs, frozen."""

    name: str = "kpgeo"
    """Pipeline name; the default output folder is ``outputs/<name>``."""
    description: str = ""
    """Free text."""
    source: SourceConfig = field(default_factory=SourceConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    sites: tuple[SiteConfig, ...] = ()
    """Sites to process."""
    baseline: MonthRange | None = None
    """Months that define normal conditions; detection starts after it."""
    months: MonthRange | None = None
    """Months to process."""
    mask: MaskConfig = field(default_factory=MaskConfig)
    composite: CompositeConfig = field(default_factory=CompositeConfig)
    detection: DetectionConfig = field(default_factory=DetectionConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    radar: RadarConfig | None = None
    """Sentinel-1 radar, when the pipeline has a ``[radar]`` table."""
    out: str = ""
    """Output folder; empty = ``outputs/<name>``."""
    scheduler: str = ""
    """Address of a running Dask scheduler (``tcp://host:8786``); ``threads`` computes in this
    process with dask's threaded scheduler; empty = a local cluster sized to the machine."""
    workers: int = 0
    """Workers of the local cluster (threads with ``threads``); 0 = sized to the machine."""
    overwrite: bool = False
    """Recompute site-months that are already done."""
    offline: bool = False
    """Inline every script, style and image in the HTML maps so they work without a network."""
    path: str = ""
    """Pipeline file this came from, if any."""

    @property
    def out_dir(self) -> Path:
        """Resolved output folder."""
        return Path(self.out) if self.out else Path("outputs") / self.name

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON view for the run manifest."""
        return _jsonable(dataclasses.asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"first", "last"}:
            return f"{value['first']}..{value['last']}"
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Read a pipeline TOML file into a validated :class:`PipelineConfig`.

    Raises
    ------
    ConfigError
        On a missing file, bad TOML, an unknown key (named with the file) or a bad value.

    Examples
    --------
    >>> cfg = load_pipeline("pipelines/demo.toml")  # doctest: +SKIP
    >>> cfg.source.kind
    'synthetic'
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"pipeline file {str(path)!r} does not exist; give a TOML file such as "
            "pipelines/monthly.toml."
        )
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"pipeline file {str(path)!r} is not valid TOML: {exc}.") from None
    if "site" in table and "sites" not in table:
        table["sites"] = table.pop("site")
    config = _build(PipelineConfig, table, where=str(path), prefix="")
    base = path.parent
    sites = tuple(
        dataclasses.replace(s, aoi=str(_resolve(base, s.aoi))) for s in config.sites
    )
    synthetic = config.synthetic
    if synthetic.archive:
        synthetic = dataclasses.replace(synthetic, archive=str(_resolve(base, synthetic.archive)))
    source = config.source
    if source.catalog and "://" not in source.catalog:
        source = dataclasses.replace(source, catalog=str(_resolve(base, source.catalog)))
    if source.sh_cache:
        source = dataclasses.replace(source, sh_cache=str(_resolve(base, source.sh_cache)))
    radar = config.radar
    if radar is not None and radar.catalog and "://" not in radar.catalog:
        radar = dataclasses.replace(radar, catalog=str(_resolve(base, radar.catalog)))
    return dataclasses.replace(
        config,
        radar=radar,
        sites=sites,
        synthetic=synthetic,
        source=source,
        out=str(_resolve(base, config.out)) if config.out else "",
        path=str(path),
    )


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    # normpath: print "outputs/demo", not "pipelines/../outputs/demo"
    return Path(os.path.normpath(p if p.is_absolute() else (base / p)))


def _build(cls: type, table: Any, *, where: str, prefix: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, refusing unknown keys."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] must be a table of keys.")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "path"}
    for key in table:
        if key not in known:
            raise ConfigError(
                f"{where}: unknown key {prefix + key!r}; known keys here are "
                f"{', '.join(sorted(known))}."
            )
    values = {key: _convert(hints[key], value, where=where, key=prefix + key)
              for key, value in table.items()}
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"{where}: [{prefix.rstrip('.')}] {exc}.") from None


def _convert(hint: Any, value: Any, *, where: str, key: str) -> Any:
    origin = get_origin(hint)
    args = get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = get_origin(hint), get_args(hint)
    if hint is MonthRange:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string like \"2024-01..2024-12\".")
        try:
            return parse_month_range(value, what=key)
        except InputError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, where=where, prefix=key + ".")  # type: ignore[arg-type]
    if origin is Literal:
        if value not in args:
            raise ConfigError(
                f"{where}: {key} = {value!r} is not one of {', '.join(map(str, args))}."
            )
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list.")
        return tuple(_convert(args[0], v, where=where, key=f"{key}[{i}]")
                     for i, v in enumerate(value))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool) and not (
        isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(
            f"{where}: {key} = {value!r} should be of type {hint.__name__}{_range_of(key)}."
        )
    return value


def _range_of(key: str) -> str:
    """``; give <its range>`` for a number's key (a ranged assumption's ``low`` and ``high``
    under the assumption's), so that ``chunk_px = nan`` names the range as ``chunk_px = 0``
    does; empty for a key without one."""
    limit = limit_of(key) or limit_of(key.rpartition(".")[0])
    return f"; give {limit.describe()}" if limit is not None else ""


def validate(config: PipelineConfig, *, today: Any = None) -> PipelineConfig:
    """Check a complete configuration before anything runs.

    Raises
    ------
    ConfigError, MonthError
        Naming the value and the fix.
    """
    if config.source.kind not in SOURCES:
        raise ConfigError(
            f"source {config.source.kind!r} is unknown; use one of {', '.join(SOURCES)}."
        )
    if not config.sites:
        raise ConfigError("no site to process; give --aoi FILE or a pipeline file with [[sites]].")
    if config.months is None:
        raise ConfigError("no months to process; give --month YYYY-MM or --months A..B.")
    if config.baseline is None:
        raise ConfigError(
            "no baseline; give --baseline A..B, for example --baseline 2024-01..2024-06."
        )
    if config.months.first < config.baseline.first:
        raise ConfigError(
            f"months {config.months} start before the baseline {config.baseline}; kpgeo "
            "measures digging from the baseline on: start --months at or after "
            f"{config.baseline.first}."
        )
    if config.baseline.last >= config.months.last:
        raise ConfigError(
            f"baseline {config.baseline} does not end before the last month to process "
            f"({config.months.last}); detection needs months after the baseline."
        )
    check_limits(config)
    if config.source.kind != "synthetic":
        check_observable(config.months, what="--months", today=today)
        check_observable(config.baseline, what="--baseline", today=today)
    if config.scheduler and config.scheduler not in LOCAL_SCHEDULERS \
            and ":" not in config.scheduler:
        raise ConfigError(
            f"--scheduler {config.scheduler!r} is not a scheduler address; give one like "
            "tcp://host:8786, or `threads`, or leave it out for a local cluster."
        )
    for name, value in config.volume.assumptions().items():
        if not value.low <= value.high:
            raise ConfigError(
                f"volume.{name} = [{value.low}, {value.high}] is not a range; give "
                "low <= high."
            )
    _check_shares(config.detection)
    for text in config.synthetic.long_rains:
        try:
            parse_month_range(text)
        except MonthError as exc:
            raise ConfigError(f"synthetic.long_rains {text!r}: {exc}; give month ranges "
                              'like long_rains = ["2024-07..2024-10"].') from None
    if config.radar is not None:
        check_radar(config.radar)
    return config


def check_radar(radar: RadarConfig) -> None:
    """Refuse a ``[radar]`` table kpgeo cannot read.

    Raises
    ------
    ConfigError
        Naming the value and what to give instead.
    """
    if radar.units not in RADAR_UNITS:
        raise ConfigError(
            f"radar.units = {radar.units!r} is not a unit kpgeo reads; give \"power\" (linear "
            "power, as Planetary Computer's sentinel-1-rtc stores it), \"amplitude\" or \"db\".")
    if radar.backscatter != "gamma0":
        raise ConfigError(
            f"radar.backscatter = {radar.backscatter!r}: kpgeo compares passes of two orbits, "
            "which needs terrain-flattened gamma0; give backscatter = \"gamma0\" and a gamma0 "
            "collection (Planetary Computer's sentinel-1-rtc; --source sentinelhub asks for it).")
    if radar.sign not in RADAR_SIGNING:
        raise ConfigError(
            f"radar.sign = {radar.sign!r} is not a signing kpgeo knows; give "
            "\"planetary-computer\" (SAS tokens for Planetary Computer's assets) or leave it out.")
    for key in ("collection", "vv_asset", "vh_asset"):
        if not getattr(radar, key).strip():
            raise ConfigError(f"radar.{key} is empty; give the {key.replace('_', ' ')} "
                              "(Planetary Computer's are sentinel-1-rtc, vv and vh).")


def _check_shares(detection: DetectionConfig) -> None:
    """The dug-share thresholds (each a share: :mod:`kpgeo.limits`) are in order: undug < dug
    <= surely dug; worked ground's NDVI is below 1 (the dug share unmixes against it)."""
    if not (detection.preexisting_undug_share_max < detection.preexisting_share_min
            <= detection.preexisting_share_min_unseen):
        raise ConfigError(
            "detection.preexisting_undug_share_max "
            f"({detection.preexisting_undug_share_max}) < preexisting_share_min "
            f"({detection.preexisting_share_min}) <= preexisting_share_min_unseen "
            f"({detection.preexisting_share_min_unseen}) does not hold; give them in that order."
        )
    if not -1 <= detection.worked_ndvi < 1:
        raise ConfigError(
            f"detection.worked_ndvi = {detection.worked_ndvi} is not an NDVI; give a number "
            "from -1 to below 1 (about 0.05: the NDVI of pixels almost wholly dug)."
        )
