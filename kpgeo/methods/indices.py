"""Spectral indices of digging (docs/product.md §7), as normalised differences of surface reflectance.

Every index is ``(a - b) / (a + b)`` of two band combinations, between -1 and 1.

NaN policy: an index is NaN where any band it uses is NaN (no valid observation) or where the
denominator is not positive (both terms zero or negative, which only noise on very dark pixels
produces); it is never filled. Callers count NaN pixels as "not observed", never as "no change".

========  ==============================================  =============================================
index     formula (Sentinel-2 bands)                      reference
========  ==============================================  =============================================
NDVI      (nir - red) / (nir + red)         B08, B04      Rouse et al. 1974, NASA SP-351, 309-317
MNDWI     (green - swir16) / (green + swir16) B03, B11    Xu 2006, Int. J. Remote Sens. 27(14), 3025
BSI       ((swir16 + red) - (nir + blue)) /               Rikimaru et al. 2002, Tropical Ecology
          ((swir16 + red) + (nir + blue))   B11 B04 B08 B02  43(1), 39-47
NDTI      (red - green) / (red + green)     B04, B03      Lacaux et al. 2007, Remote Sens. Environ.
                                                          106(1), 66-74
NDWI      (green - nir) / (green + nir)     B03, B08      McFeeters 1996, Int. J. Remote Sens.
                                                          17(7), 1425-1432
========  ==============================================  =============================================

What each says about digging (``docs/domain.md`` §1.4, the USGS indicators): NDVI falls where
vegetation is cleared; BSI rises over bright bare soil and gravel; MNDWI is positive over open
water, including pits; NDTI is positive where water is turbid with suspended sediment (washing
pits, rivers below workings) and negative over clear water. NDTI is only meaningful where MNDWI
says water. NDWI earns its place beside MNDWI because both its bands are 10 m: MNDWI's SWIR band
is 20 m, so a pit one or two pixels across is mixed with the gravel around it and reads dry.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Index names in the order of ``indices.tif``.
INDEX_NAMES = ("ndvi", "mndwi", "bsi", "ndti", "ndwi")

INDEX_DESCRIPTIONS = {
    "ndvi": "NDVI (nir - red) / (nir + red), Rouse et al. 1974",
    "mndwi": "MNDWI (green - swir16) / (green + swir16), Xu 2006",
    "bsi": "BSI ((swir16 + red) - (nir + blue)) / ((swir16 + red) + (nir + blue)), Rikimaru 2002",
    "ndti": "NDTI (red - green) / (red + green), Lacaux et al. 2007",
    "ndwi": "NDWI (green - nir) / (green + nir), McFeeters 1996",
}


def normalized_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)`` as float32; NaN where either is NaN or ``a + b <= 0``.

    Examples
    --------
    >>> normalized_difference(np.array([0.75, np.nan, 0.0]), np.array([0.25, 0.25, 0.0]))
    array([0.5, nan, nan], dtype=float32)
    """
    a = np.asarray(a, dtype="float32")
    b = np.asarray(b, dtype="float32")
    total = a + b
    out = np.asarray(a - b)  # a 0-d array for scalars, so that it can be divided in place
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(out, total, out=out)  # in place: indices run on every scene and month
    # copyto, not out[mask] = nan: boolean indexing is slower (a NaN total made NaN already)
    np.copyto(out, np.float32(np.nan), where=total <= 0)
    return out


def ndvi(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Normalised difference vegetation index."""
    return normalized_difference(bands["nir"], bands["red"])


def mndwi(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Modified normalised difference water index (SWIR 1.6 µm)."""
    return normalized_difference(bands["green"], bands["swir16"])


def bsi(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Bare soil index."""
    return normalized_difference(
        np.asarray(bands["swir16"], dtype="float32") + np.asarray(bands["red"], dtype="float32"),
        np.asarray(bands["nir"], dtype="float32") + np.asarray(bands["blue"], dtype="float32"),
    )


def ndti(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Normalised difference turbidity index."""
    return normalized_difference(bands["red"], bands["green"])


def ndwi(bands: Mapping[str, np.ndarray]) -> np.ndarray:
    """Normalised difference water index (McFeeters), all 10 m bands."""
    return normalized_difference(bands["green"], bands["nir"])


_FUNCTIONS = {"ndvi": ndvi, "mndwi": mndwi, "bsi": bsi, "ndti": ndti, "ndwi": ndwi}


def compute_indices(bands: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All of :data:`INDEX_NAMES` from reflectance bands (arrays of one shape)."""
    return {name: _FUNCTIONS[name](bands) for name in INDEX_NAMES}
