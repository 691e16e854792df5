"""Surface-reflectance endmembers of the synthetic savanna, bands ``blue green red nir swir16 swir22``.

Values are typical Sentinel-2 L2A reflectances for West-African Guinea savanna covers, chosen so
the indices behave as the literature reports (``docs/domain.md`` §3.1): green vegetation has
NDVI ≈ 0.8, dry grass ≈ 0.3; lateritic bare ground has high red and SWIR (BSI > 0); turbid pit
water has MNDWI > 0 and red above green (NDTI > 0); clear river water has NDTI < 0; fresh burn
scars are dark in every band with NIR barely above red.

Worked ground of an artisanal working is a mix of dry spoil (``DUG_GRAVEL``), wet spoil and
turbid pit water. A typical mix, 70 % dug beside green grass, gives blue/green/red/NIR near
0.10/0.14/0.17/0.27, as the low-NDVI pixels of a real galamsey patch do (Twifo Praso, Ghana,
2025 median: 0.105/0.149/0.178/0.260).
"""

from __future__ import annotations

import numpy as np

BANDS = ("blue", "green", "red", "nir", "swir16", "swir22")

GREEN_VEGETATION = np.array([0.030, 0.065, 0.040, 0.360, 0.200, 0.100], dtype="float32")
DRY_GRASS = np.array([0.070, 0.100, 0.140, 0.250, 0.330, 0.240], dtype="float32")
FOREST = np.array([0.025, 0.050, 0.030, 0.320, 0.160, 0.070], dtype="float32")
SAVANNA_SOIL = np.array([0.090, 0.130, 0.190, 0.260, 0.340, 0.280], dtype="float32")
TILLED_SOIL = np.array([0.100, 0.140, 0.200, 0.255, 0.360, 0.300], dtype="float32")
DUG_GRAVEL = np.array([0.150, 0.200, 0.270, 0.300, 0.400, 0.350], dtype="float32")
#: Wet spoil and mud beside fresh pits (water darkens NIR and SWIR most).
WET_SPOIL = np.array([0.075, 0.110, 0.150, 0.170, 0.190, 0.150], dtype="float32")
#: Dry sand and gravel bars of a riverbed: bright, barely vegetated.
SAND_BAR = np.array([0.130, 0.170, 0.210, 0.250, 0.330, 0.270], dtype="float32")
#: Laterite track.
ROAD = np.array([0.120, 0.160, 0.230, 0.270, 0.360, 0.310], dtype="float32")
TURBID_WATER = np.array([0.080, 0.120, 0.145, 0.060, 0.030, 0.020], dtype="float32")
CLEAR_WATER = np.array([0.050, 0.065, 0.045, 0.030, 0.012, 0.006], dtype="float32")
CHAR = np.array([0.040, 0.050, 0.055, 0.090, 0.140, 0.120], dtype="float32")
CLOUD = np.array([0.450, 0.450, 0.460, 0.500, 0.400, 0.300], dtype="float32")
#: Path radiance added by harmattan dust haze at full strength (blue scatters most).
HAZE = np.array([0.060, 0.045, 0.035, 0.020, 0.010, 0.005], dtype="float32")
#: Standard deviation of sensor and retrieval noise per band.
NOISE_SD = np.array([0.004, 0.004, 0.005, 0.006, 0.006, 0.005], dtype="float32")
