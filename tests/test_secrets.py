"""Credentials never reach an output stream or file, at any verbosity (docs/product.md §10;
issue 19, point 5).

``kpgeo -vv run --source sentinelhub`` runs as its own process (its real stdout and stderr, its
logging set up by the command line) with marker credentials against the loopback Sentinel Hub
server, whose errors echo the request's headers (the bearer token) and the token request's body
(the client secret). Every stream and every file the run wrote is searched for the markers and
for every token the server issued.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kpgeo.redaction import MASK, redact

from .builders import write_site_file
from .sentinelhub_server import SentinelHubTestServer

CLIENT_ID = "kpgeo-marker-id-7Q2xK"
CLIENT_SECRET = "kpgeo-marker-secret-9Zr4W"
TOKEN_PREFIX = "kpgeo-marker-token-"


def _run(tmp_path: Path, server: SentinelHubTestServer, *flags: str,
         ) -> subprocess.CompletedProcess[str]:
    aoi = write_site_file(tmp_path / "my.geojson", (-5.702, 8.718, -5.698, 8.722), name="my")
    pipeline = tmp_path / "sh.toml"
    pipeline.write_text(
        f'name = "sh"\n[source]\nkind = "sentinelhub"\nsh_base_url = "{server.url}"\n'
        f'sh_token_url = "{server.token_url}"\nsh_cache = "{tmp_path / "cache"}"\n'
        "sh_backoff_s = 0.05\nsh_max_attempts = 3\n")
    env = {**os.environ, "SH_CLIENT_ID": CLIENT_ID, "SH_CLIENT_SECRET": CLIENT_SECRET,
           "OAUTHLIB_INSECURE_TRANSPORT": "1", "HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "DASK_SCHEDULER": "threads"}
    return subprocess.run(
        [sys.executable, "-m", "kpgeo.cli", *flags, "run", str(pipeline), "--aoi", str(aoi),
         "--baseline", "2024-01..2024-01", "--months", "2024-01..2024-02",
         "--out", str(tmp_path / "out")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)


def _assert_no_secret(tmp_path: Path, server: SentinelHubTestServer,
                      result: subprocess.CompletedProcess[str]) -> None:
    assert server.tokens, "the run never got a token: nothing was tested"
    markers = [CLIENT_ID, CLIENT_SECRET, *server.tokens]
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        for marker in markers:
            assert marker not in text, f"{marker} in {name}:\n{text[-3000:]}"
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".json") and p.parent.name == "runs" for p in files) or \
        result.returncode != 0
    for path in files:
        data = path.read_bytes()
        for marker in markers:
            assert marker.encode() not in data, f"{marker} in {path}"


def test_echoing_errors_at_vv_leave_no_secret_in_any_stream_or_file(small_archive,
                                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = SentinelHubTestServer(small_archive.collection, client_id=CLIENT_ID,
                                   client_secret=CLIENT_SECRET, token_prefix=TOKEN_PREFIX)
    # Each endpoint once answers an error that quotes what was sent: the token request's body
    # (the client secret), the bearer token of a catalog search and of a Process request.
    server.fail("token", 500, echo=True)
    server.fail("catalog", 500, echo=True)
    server.fail("process", 400, echo=True)
    with server.running():
        result = _run(tmp_path, server, "-vv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "you sent headers" in result.stderr  # the echoing answer was logged, redacted
    assert MASK in result.stderr
    manifest = next((tmp_path / "out" / "runs").glob("*.json")).read_text()
    assert "you sent headers" in manifest and MASK in manifest  # the skipped scene's reason
    _assert_no_secret(tmp_path, server, result)


@pytest.mark.parametrize("endpoint, status, flags", [
    ("process", 403, ()), ("process", 403, ("-vv",)), ("token", 401, ("-v",))])
def test_one_line_error_quoting_an_echo_holds_no_secret(small_archive, tmp_path: Path,
                                                        endpoint: str, status: int,
                                                        flags: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    server = SentinelHubTestServer(small_archive.collection, client_id=CLIENT_ID,
                                   client_secret=CLIENT_SECRET, token_prefix=TOKEN_PREFIX)
    server.fail(endpoint, status, times=None, echo=True)
    if endpoint == "token":
        server.tokens.add(f"{TOKEN_PREFIX}never")  # no token is issued; the secret is sent
    with server.running():
        result = _run(tmp_path, server, *flags)
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("kpgeo: error:")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert f"HTTP {status}" in errors[0] or "refused the client credentials" in errors[0]
    _assert_no_secret(tmp_path, server, result)


def test_redact_masks_credentials_by_shape_and_keeps_kpgeo_s_words() -> None:
    assert redact("headers {'Authorization': 'Bearer abc.def-ghi'}") == \
        f"headers {{'Authorization': 'Bearer {MASK}'}}"
    assert redact("grant_type=client_credentials&client_id=x1&client_secret=y2") == \
        f"grant_type=client_credentials&client_id={MASK}&client_secret={MASK}"
    assert redact('{"access_token": "abc", "expires_in": 600}') == \
        f'{{"access_token": "{MASK}", "expires_in": 600}}'
    for words in ("token: HTTP 500; gave up after 3 attempts",
                  "export SH_CLIENT_ID=... and SH_CLIENT_SECRET=..., or use --source stac"):
        assert redact(words) == words
