"""kpgeo's indices on two real Sentinel-2 patches from Ghana (Twifo Praso, 2025 median).

``galamsey_001.tif`` lies over galamsey digging on the Pra river, ``forest_001.tif`` over forest
about 5 km east (``shared/realdata/ghana_twifo_praso_galamsey_patches_2025/README.md``). Both
are read as they are: EPSG:4326, 8 float64 bands (B2, B3, B4, B8 as reflectance x 10000, VV,
VH, NDVI, NDWI). There is no SWIR, so of kpgeo's indices only NDVI and NDTI apply, and water is
taken from the patches' own NDWI (band 8 > 0) instead of MNDWI.

Measured (numbers printed by the tests): share of bare-or-turbid-water pixels 30.1 % in the
galamsey patch against 3.5 % in the forest; median NDVI 0.46 against 0.64; NDWI > 0 flags no
pixel in either patch (the sediment-laden Pra is brighter in NIR than in green in this
composite), so the share is carried by the low-NDVI term.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.crs import CRS

from kpgeo.config import DetectionConfig
from kpgeo.methods.indices import ndti, ndvi, normalized_difference
from kpgeo.methods.reference import dug_share

PATCHES = "ghana_twifo_praso_galamsey_patches_2025"
GALAMSEY, FOREST = "galamsey_001", "forest_001"
#: Band numbers of the patches (README "Band order").
BAND_NUMBERS = {"blue": 1, "green": 2, "red": 3, "nir": 4, "vv": 5, "vh": 6, "ndvi": 7,
                "ndwi": 8}
Patch = tuple[dict[str, np.ndarray], Affine, CRS]
"""A patch's bands by name, its transform and its CRS."""
REFLECTANCE = ("blue", "green", "red", "nir")
DN_PER_REFLECTANCE = 10000.0
#: Bare ground: NDVI below this (vegetation, even sparse farm, is above).
BARE_NDVI_MAX = 0.3
UTM_30N = "EPSG:32630"
UTM_RESOLUTION_M = 10.0
#: Thresholds, with margin below the measured 8.6x and 26.6 percentage points.
MIN_SHARE_RATIO = 3.0
MIN_SHARE_DIFFERENCE = 0.10
MIN_NDVI_MEDIAN_GAP = 0.10
#: Shares may move this much (as a fraction) when resampled to the UTM grid.
REPROJECTION_TOLERANCE = 0.02


def _realdata_folder() -> Path | None:
    """The copy committed under ``tests/data`` (1.2 MB, MIT + Copernicus attribution, see its
    README), else ``$KPGEO_REALDATA`` (the realdata root or the patch folder)."""
    candidates = [Path(__file__).resolve().parent / "data" / PATCHES]
    if os.environ.get("KPGEO_REALDATA"):
        root = Path(os.environ["KPGEO_REALDATA"]).expanduser()
        candidates += [root / PATCHES, root]
    for folder in candidates:
        if (folder / f"{GALAMSEY}.tif").is_file() and (folder / f"{FOREST}.tif").is_file():
            return folder
    return None


FOLDER = _realdata_folder()
pytestmark = pytest.mark.skipif(
    FOLDER is None,
    reason=f"real Ghana patches not found: set KPGEO_REALDATA to the folder holding {PATCHES}/",
)


def read_patch(name: str) -> Patch:
    """A patch's bands by name (reflectance for blue..nir), its transform and CRS."""
    assert FOLDER is not None
    with rasterio.open(FOLDER / f"{name}.tif") as src:
        assert (src.count, src.dtypes) == (8, ("float64",) * 8)
        cube = src.read()
        transform, crs = src.transform, src.crs
    bands = {b: cube[i - 1] for b, i in BAND_NUMBERS.items()}
    for b in REFLECTANCE:
        bands[b] = bands[b] / DN_PER_REFLECTANCE
    return bands, transform, crs


def digging_share(bands: dict[str, np.ndarray]) -> dict[str, float]:
    """Shares of observed pixels that are bare (NDVI < 0.3), turbid water (NDWI > 0 and
    NDTI > 0), and either."""
    vi, ti = ndvi(bands), ndti(bands)
    observed = np.isfinite(vi) & np.isfinite(bands["ndwi"])
    with np.errstate(invalid="ignore"):
        bare = vi < BARE_NDVI_MAX
        turbid_water = (bands["ndwi"] > 0) & (ti > 0)
    n = observed.sum()
    assert n > 0
    return {"bare": float((bare & observed).sum() / n),
            "turbid_water": float((turbid_water & observed).sum() / n),
            "digging": float(((bare | turbid_water) & observed).sum() / n),
            "water": float(((bands["ndwi"] > 0) & observed).sum() / n)}


@pytest.fixture(scope="module")
def patches() -> dict[str, Patch]:
    return {name: read_patch(name) for name in (GALAMSEY, FOREST)}


def test_patches_are_wgs84_10m_and_where_the_readme_says(patches: dict[str, Patch]) -> None:
    """Both patches are EPSG:4326 at about 10 m, 129 x 130 px, 5 km apart on the Pra."""
    for name, (bands, transform, crs) in patches.items():
        assert crs.to_epsg() == 4326, name
        assert bands["ndvi"].shape == (130, 129)
        assert transform.a == pytest.approx(8.983e-5, rel=1e-3)
        assert transform.e == pytest.approx(-8.983e-5, rel=1e-3)
    assert patches[GALAMSEY][1].c == pytest.approx(-1.55885, abs=1e-4)
    assert patches[FOREST][1].c == pytest.approx(-1.51663, abs=1e-4)


def test_kpgeo_ndvi_matches_the_patches_ndvi_band(patches: dict[str, Patch]) -> None:
    """kpgeo's NDVI from bands 3 and 4 equals band 7 to 1e-5 (and NDWI band 8 is
    (green - nir) / (green + nir) through kpgeo's normalised difference)."""
    for name, (bands, _, _) in patches.items():
        vi = ndvi(bands)
        assert np.isfinite(vi).all(), name
        np.testing.assert_allclose(vi, bands["ndvi"], rtol=0, atol=1e-5, err_msg=name)
        wi = normalized_difference(bands["green"], bands["nir"])
        np.testing.assert_allclose(wi, bands["ndwi"], rtol=0, atol=1e-5, err_msg=name)


def test_digging_indices_tell_galamsey_from_forest(patches: dict[str, Patch]) -> None:
    """Bare-or-turbid-water pixels are at least 3x as common, and 10 percentage points more,
    in the galamsey patch; its median NDVI is lower by at least 0.1."""
    shares = {name: digging_share(patches[name][0]) for name in (GALAMSEY, FOREST)}
    medians = {name: float(np.median(ndvi(patches[name][0]))) for name in (GALAMSEY, FOREST)}
    for name in (GALAMSEY, FOREST):
        print(f"{name}: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in shares[name].items())
              + f", median NDVI {medians[name]:.3f}")
    galamsey, forest = shares[GALAMSEY]["digging"], shares[FOREST]["digging"]
    assert galamsey >= MIN_SHARE_RATIO * forest
    assert galamsey - forest >= MIN_SHARE_DIFFERENCE
    assert medians[GALAMSEY] <= medians[FOREST] - MIN_NDVI_MEDIAN_GAP


def _to_utm(bands: dict[str, np.ndarray], transform: Affine,
            crs: CRS) -> dict[str, np.ndarray]:
    """Every band reprojected (nearest) to a 10 m grid of UTM 30N; NaN outside the patch."""
    height, width = bands["ndvi"].shape
    left, top = transform.c, transform.f
    right, bottom = left + width * transform.a, top + height * transform.e
    dst_transform, dst_width, dst_height = rasterio.warp.calculate_default_transform(
        crs, UTM_30N, width, height, left, bottom, right, top, resolution=UTM_RESOLUTION_M)
    out = {}
    for name, arr in bands.items():
        dst = np.full((dst_height, dst_width), np.nan, dtype="float64")
        rasterio.warp.reproject(arr, dst, src_transform=transform, src_crs=crs,
                                dst_transform=dst_transform, dst_crs=UTM_30N,
                                resampling=rasterio.warp.Resampling.nearest,
                                src_nodata=np.nan, dst_nodata=np.nan)
        out[name] = dst
    return out


def test_shares_survive_reprojection_to_utm(patches: dict[str, Patch]) -> None:
    """On the patches' UTM zone grid (EPSG:32630, 10 m) the shares move by at most two
    percentage points and the patch covers about 1.3 x 1.3 km."""
    for name in (GALAMSEY, FOREST):
        bands, transform, crs = patches[name]
        utm = _to_utm(bands, transform, crs)
        observed = np.isfinite(utm["ndvi"])
        area_km2 = observed.sum() * UTM_RESOLUTION_M**2 / 1e6
        assert 1.5 <= area_km2 <= 1.9, (name, area_km2)
        before, after = digging_share(bands), digging_share(utm)
        print(f"{name}: digging share {100 * before['digging']:.2f} % in EPSG:4326, "
              f"{100 * after['digging']:.2f} % in {UTM_30N}; {area_km2:.3f} km2")
        for key in before:
            assert after[key] == pytest.approx(before[key], abs=REPROJECTION_TOLERANCE), key


def test_dug_share_finds_the_galamsey_half_dug_and_little_of_the_forest(
        patches: dict[str, Patch]) -> None:
    """kpgeo's dug share (:func:`kpgeo.methods.reference.dug_share`: NDVI unmixed between a pixel's
    own vegetation and worked ground's ``worked_ndvi``), with the forest's median NDVI standing
    for the undisturbed state of both patches, finds at least a quarter of the galamsey patch at
    least half dug (``footprint_share_min``) and at most a quarter as much of the forest, whose
    own clearings and farms give it a few per cent. Measured: 36.1 % against 5.0 %; mean share
    0.36 against 0.11."""
    params = DetectionConfig()
    own = float(np.nanmedian(ndvi(patches[FOREST][0])))
    half_dug, mean_share = {}, {}
    for name in (GALAMSEY, FOREST):
        vi = ndvi(patches[name][0]).astype("float32")
        share = dug_share(vi, np.full_like(vi, own), params)
        half_dug[name] = float(np.mean(share >= params.footprint_share_min))
        mean_share[name] = float(np.nanmean(share))
        print(f"{name}: {100 * half_dug[name]:.1f} % at least half dug, "
              f"mean dug share {mean_share[name]:.2f}")
    assert half_dug[GALAMSEY] >= 0.25
    assert half_dug[GALAMSEY] >= 4 * half_dug[FOREST]
    assert mean_share[GALAMSEY] >= 2.5 * mean_share[FOREST]
