"""On-disk cache of Sentinel Hub responses, keyed by request (docs/product.md §6: a rerun costs no quota).

A response is stored under the SHA-256 of its request's URL and JSON body, the way
sentinelhub-py's own ``data_folder`` names it (``DownloadRequest.get_hashed_name``), but written
atomically (a killed run never leaves half a response that a later run would read) and for
Catalog searches too, which sentinelhub-py does not cache. Neither headers nor the token are
part of the key or of what is written: credentials never reach the disk.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..products.atomic import write_bytes

#: Where responses are cached when the pipeline names no folder.
DEFAULT_SH_CACHE = (Path(os.environ.get("KPGEO_CACHE_DIR", "~/.cache/kpgeo")).expanduser()
                    / "sentinelhub")


def request_key(url: str, body: Any) -> str:
    """Hex SHA-256 of a request's URL and canonical JSON body."""
    text = json.dumps({"url": url, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedResponse:
    """A stored response: its body and what was recorded with it."""

    body: bytes
    meta: dict[str, Any]


class ResponseCache:
    """Responses on disk, ``<folder>/<key[:2]>/<key>.bin`` with a ``.json`` beside it.

    Parameters
    ----------
    folder
        Cache root; created on first write.

    Examples
    --------
    >>> cache = ResponseCache(tmp_path)  # doctest: +SKIP
    >>> key = cache.put("https://sh/api/v1/process", {"input": ...}, b"...", "application/x-tar")
    >>> cache.get(key).body  # doctest: +SKIP
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder).expanduser()

    def _paths(self, key: str) -> tuple[Path, Path]:
        sub = self.folder / key[:2]
        return sub / f"{key}.bin", sub / f"{key}.json"

    def path_of(self, key: str) -> Path:
        """Body file of a key (which may not exist)."""
        return self._paths(key)[0]

    def has(self, key: str) -> bool:
        """Whether ``key`` is fully stored (its metadata is written last)."""
        body_path, meta_path = self._paths(key)
        return meta_path.is_file() and body_path.is_file()

    def get(self, key: str) -> CachedResponse | None:
        """The stored response of ``key``, or None."""
        body_path, meta_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            body = body_path.read_bytes()
        except (OSError, ValueError):
            return None
        return CachedResponse(body, meta)

    def put(self, url: str, body_json: Any, body: bytes, content_type: str, *,
            extra: dict[str, Any] | None = None) -> str:
        """Store a response; return its key. The body is written before the metadata, so a
        key counts as cached only once both are complete."""
        key = request_key(url, body_json)
        body_path, meta_path = self._paths(key)
        meta = {"url": url, "request": body_json, "content_type": content_type,
                "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "bytes": len(body), **(extra or {})}
        write_bytes(body_path, body)
        write_bytes(meta_path, json.dumps(meta, indent=1, sort_keys=True).encode("utf-8"))
        return key


