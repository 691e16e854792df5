"""GDAL settings for reading COGs, in one commented place (STYLE.md "Configuration").

Measured against a loopback range server (``notes/ecosystem.md`` §2.5): these cut one windowed
read of a COG over HTTP from 14 requests to 4.
"""

from __future__ import annotations

import odc.stac

GDAL_OPTIONS: dict[str, str | int | bool] = {
    # ^ do not list the remote "directory" looking for sidecar files; a COG has none
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # ^ only probe the URL itself, never .aux.xml / .msk neighbours
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.TIF,.tiff,.TIFF",
    # ^ fetch the several byte ranges of one read in one request where the server allows it
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    # ^ transient 5xx/429 from object stores: a few quick retries inside GDAL
    "GDAL_HTTP_MAX_RETRY": 3,
    "GDAL_HTTP_RETRY_DELAY": 0.5,
    # ^ never hang a worker on a stalled server
    "GDAL_HTTP_TIMEOUT": 60,
    "VSI_CACHE": True,
}


def configure_gdal() -> None:
    """Apply :data:`GDAL_OPTIONS` to odc-stac's readers, and to the workers of an active Dask
    client (odc-stac installs a worker plugin). Cheap and idempotent."""
    odc.stac.configure_rio(cloud_defaults=False, **GDAL_OPTIONS)
