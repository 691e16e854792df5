"""Scale and resumability (docs/product.md §9, §10): a real Dask cluster (a ``dask scheduler`` and two
``dask worker`` processes on 127.0.0.1) gives the products of a local run; a run killed with
SIGKILL leaves no truncated file and the next run completes it to the same products.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from kpgeo.cli import cli
from kpgeo.products.atomic import PART_SUFFIX
from kpgeo.run import output_lock

from .builders import assert_same_products, data_products, write_site_file

BIN = Path(sys.executable).parent


def run_args(tmp_path: Path, catalog: Path, out: Path, *extra: str) -> list[str]:
    aoi = tmp_path / "my.geojson"
    if not aoi.exists():
        write_site_file(aoi, (-5.705, 8.715, -5.695, 8.725), name="my")
    return ["run", "--aoi", str(aoi), "--source", "stac", "--catalog", str(catalog),
            "--baseline", "2024-01..2024-01", "--months", "2024-01..2024-03", "--out", str(out),
            *extra]


# ---- a Dask cluster -------------------------------------------------------------------------
@contextmanager
def _cluster(tmp_path: Path, hidden: Path | None = None) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; yields the address.
    ``hidden``: a folder the workers do not see (an empty file system mounted over it in
    their own mount namespace, as on another machine)."""
    scheduler_file = tmp_path / "scheduler.json"
    logs = open(tmp_path / "cluster.log", "w")  # noqa: SIM115 - closed below
    common = ["--no-dashboard", "--host", "127.0.0.1"]
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--port", "0",
                               "--scheduler-file", str(scheduler_file), *common],
                              stdout=logs, stderr=subprocess.STDOUT)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(scheduler_file.read_text())["address"]
        for _ in range(2):
            worker = [str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads",
                      "1", "--memory-limit", "2GiB", *common]
            if hidden is not None:
                worker = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                          f'mount -t tmpfs none "{hidden}" && exec "$@"', "sh", *worker]
            procs.append(subprocess.Popen(worker, stdout=logs, stderr=subprocess.STDOUT))
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        logs.close()


@pytest.fixture()
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    with _cluster(tmp_path) as address:
        yield address


def test_run_on_a_dask_cluster_gives_the_products_of_a_local_run(
        small_archive, tmp_path: Path, dask_cluster: str) -> None:  # type: ignore[no-untyped-def]
    from distributed import Client

    catalog = small_archive.collection
    local = CliRunner().invoke(cli, run_args(tmp_path, catalog, tmp_path / "local",
                                             "--scheduler", "threads"))
    assert local.exit_code == 0, local.output
    # The cluster computes each month chunk by chunk (64 px chunks: 4 x 4 of them), the local
    # run in one chunk: the products must not tell.
    chunked = tmp_path / "chunked.toml"
    chunked.write_text('name = "kpgeo"\n[composite]\nchunk_px = 64\n')
    remote = CliRunner().invoke(cli, [run_args(tmp_path, catalog, tmp_path / "cluster")[0],
                                      str(chunked), *run_args(tmp_path, catalog,
                                                              tmp_path / "cluster")[1:],
                                      "--scheduler", dask_cluster, "--progress"])
    assert remote.exit_code == 0, remote.output
    assert f"Dask cluster at {dask_cluster} (2 workers" in remote.stderr
    assert "100% Completed" in remote.stderr  # distributed's progress bar, on stderr
    assert "Completed" not in remote.stdout
    # Both workers computed tasks of the run.
    with Client(dask_cluster) as client:
        counts = client.run(lambda dask_worker: len(dask_worker.state.log))
    assert len(counts) == 2 and all(n > 0 for n in counts.values()), counts
    assert_same_products(tmp_path / "local", tmp_path / "cluster")
    # In one chunk on the cluster, the next month observed while one finishes.
    whole = CliRunner().invoke(cli, run_args(tmp_path, catalog, tmp_path / "whole",
                                             "--scheduler", dask_cluster))
    assert whole.exit_code == 0, whole.output
    assert_same_products(tmp_path / "local", tmp_path / "whole")


def _can_hide_folders() -> bool:
    """Whether this machine lets a process mount over a folder in its own namespace."""
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            "mount -t tmpfs none /mnt"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_hide_folders(), reason="needs unshare and mount (root)")
def test_output_folder_the_workers_cannot_see_is_refused(small_archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Workers that do not see --out (another machine without the shared file system) would
    write the products' chunks elsewhere: the run stops first, naming the folder (exit 2)."""
    out = tmp_path / "hidden" / "out"
    out.parent.mkdir()
    cluster_dir = tmp_path / "cluster"
    cluster_dir.mkdir()
    with _cluster(cluster_dir, hidden=out.parent) as address:
        result = CliRunner().invoke(cli, run_args(tmp_path, small_archive.collection, out,
                                                  "--scheduler", address))
    assert result.exit_code == 2, result.output
    assert f"--out {out} is not visible to the Dask workers" in result.output
    assert "shared file system" in result.output
    assert not any(out.rglob("*.tif"))


def test_progress_bar_on_the_threaded_scheduler_goes_to_stderr(
        small_archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(cli, run_args(tmp_path, small_archive.collection, tmp_path / "o",
                                              "--scheduler", "threads", "--progress"))
    assert result.exit_code == 0, result.output
    assert "computing on the dask threads scheduler" in result.stderr
    assert result.stderr.count("100% Completed") == 3  # one bar per month
    assert "Completed" not in result.stdout


def test_scheduler_that_is_not_an_address_is_named_with_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, run_args(tmp_path, tmp_path / "missing.json",
                                              tmp_path / "out", "--scheduler", "not-a-host"))
    assert result.exit_code == 2
    assert "--scheduler 'not-a-host' is not a scheduler address" in result.stderr


# ---- SIGKILL midway --------------------------------------------------------------------------
def test_run_killed_midway_leaves_whole_files_and_the_next_run_completes_it(
        small_archive, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    catalog = small_archive.collection
    reference = CliRunner().invoke(cli, run_args(tmp_path, catalog, tmp_path / "whole",
                                                 "--scheduler", "threads"))
    assert reference.exit_code == 0, reference.output

    out = tmp_path / "killed"
    # The default scheduler: a local cluster, whose worker processes die with the run.
    env = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER"}
    proc = subprocess.Popen([str(BIN / "kpgeo"), *run_args(tmp_path, catalog, out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    # Kill the whole process group (the local cluster's workers too) once the first month
    # after the baseline is being written: the baseline month is done, the rest is not.
    marker = out / "my" / "2024-02" / "composite.tif"
    deadline = time.monotonic() + 300
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=30)
    assert b"computing on the local Dask cluster" in stderr

    # Every product on disk is whole: each COG reads to its last pixel, each JSON parses.
    assert not (out / "timeseries.csv").exists()
    products = data_products(out)
    assert products
    for path in products.values():
        if path.suffix == ".tif":
            with rasterio.open(path) as src:
                src.read()
        elif path.suffix == ".geojson":
            json.loads(path.read_text())

    resumed = CliRunner().invoke(cli, run_args(tmp_path, catalog, out,
                                               "--scheduler", "threads"))
    assert resumed.exit_code == 0, resumed.output
    assert "2024-01: done already, kept" in resumed.stderr
    assert not list(out.rglob(f"*{PART_SUFFIX}"))  # half-written files of the killed run: gone
    assert_same_products(tmp_path / "whole", out)


def test_lock_removes_half_written_products_only(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "my" / "2024-02").mkdir(parents=True)
    leftover = out / "my" / "2024-02" / f".composite.tif.x1y2{PART_SUFFIX}"
    leftover.write_bytes(b"half a COG")
    tiles = out / "my" / "2024-02" / ".tiles"  # chunk tiles of a month never finished
    tiles.mkdir()
    (tiles / "change-0-0.tif").write_bytes(b"a chunk")
    kept = [out / "my" / "2024-02" / "notes.part", out / "my" / ".cache.tif.ab.part",
            out / "my" / "2024-02" / "composite.tif"]
    for path in kept:
        path.write_bytes(b"not ours to remove")
    with output_lock(out):
        assert not leftover.exists() and not tiles.exists()
        assert all(path.read_bytes() == b"not ours to remove" for path in kept)
