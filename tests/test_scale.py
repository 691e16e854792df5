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
from pathlib import Path

import pytest
import rasterio
from click.testing import CliRunner

from kpgeo.atomic import PART_SUFFIX
from kpgeo.cli import cli
from kpgeo.pipeline import output_lock
from kpgeo.testing import assert_same_products, data_products, write_site_file

BIN = Path(sys.executable).parent


def run_args(tmp_path: Path, catalog: Path, out: Path, *extra: str) -> list[str]:
    aoi = tmp_path / "my.geojson"
    if not aoi.exists():
        write_site_file(aoi, (-5.705, 8.715, -5.695, 8.725), name="my")
    return ["run", "--aoi", str(aoi), "--source", "stac", "--catalog", str(catalog),
            "--baseline", "2024-01..2024-01", "--months", "2024-01..2024-03", "--out", str(out),
            *extra]


# ---- a Dask cluster -------------------------------------------------------------------------
@pytest.fixture()
def dask_cluster(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; yields the address."""
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
            procs.append(subprocess.Popen(
                [str(BIN / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                 "--memory-limit", "2GiB", *common], stdout=logs, stderr=subprocess.STDOUT))
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
    # In one chunk, two months compute at once on the cluster, each on one worker.
    pinned = CliRunner().invoke(cli, run_args(tmp_path, catalog, tmp_path / "pinned",
                                              "--scheduler", dask_cluster))
    assert pinned.exit_code == 0, pinned.output
    assert_same_products(tmp_path / "local", tmp_path / "pinned")


def test_pinned_computations_take_the_workers_in_turn() -> None:
    """``compute(..., pin=True)`` runs all of a computation's tasks on one worker, the next
    computation on the next worker."""
    import dask
    from distributed import Client, LocalCluster, get_worker

    from kpgeo.cluster import compute

    def where(_: int) -> str:
        return str(get_worker().address)

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster):
        runs = [compute(*[dask.delayed(where, pure=False)(i) for i in range(6)], pin=True)
                for _ in range(4)]
    assert all(len(set(run)) == 1 for run in runs), runs
    assert [run[0] for run in runs[:2]] == [run[0] for run in runs[2:]]
    assert len({run[0] for run in runs}) == 2, runs


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
    kept = [out / "my" / "2024-02" / "notes.part", out / "my" / ".cache.tif.ab.part",
            out / "my" / "2024-02" / "composite.tif"]
    for path in kept:
        path.write_bytes(b"not ours to remove")
    with output_lock(out):
        assert not leftover.exists()
        assert all(path.read_bytes() == b"not ours to remove" for path in kept)


def test_a_month_loading_ahead_stops_at_its_next_chunk(small_archive, small_site) -> None:  # type: ignore[no-untyped-def]
    """A run that fails while the next month loads ahead does not wait for that whole month:
    the load stops before its next chunk (here, before any), having read nothing more."""
    import threading

    import dask
    from dask.callbacks import Callback

    from kpgeo.config import CompositeConfig, PipelineConfig
    from kpgeo.months import parse_month
    from kpgeo.pipeline import LoadStopped, load_month
    from kpgeo.sources.stac import StacSource

    source = StacSource(str(small_archive.collection), chunk_px=64)
    config = PipelineConfig(composite=CompositeConfig(chunk_px=64))
    month = parse_month("2024-02")
    tasks: list[str] = []
    with dask.config.set(scheduler="threads"), Callback(
            pretask=lambda key, dsk, state: tasks.append(str(key))):
        stop = threading.Event()
        stop.set()
        with pytest.raises(LoadStopped):
            load_month(source, small_site, month, config, stop=stop)
        assert tasks == []
        data = load_month(source, small_site, month, config, stop=threading.Event())
    assert data.quality.scenes > 0 and len(tasks) > 0


def test_months_take_their_turn_to_compute_in_order_and_not_after_a_stop() -> None:
    """The next month is prepared while one computes (SiteRun._loaded); its compute waits for
    the month before it to have begun, shares the slots, and does not begin once the run has
    stopped, even when it was already waiting."""
    import threading
    import time

    from kpgeo.pipeline import LoadStopped, MonthGate

    slots, stop = threading.Semaphore(1), threading.Event()
    first = MonthGate(slots, stop)
    second = MonthGate(slots, stop, after=first)
    order: list[str] = []

    def compute(name: str, gate: MonthGate) -> None:
        with gate:
            order.append(name)
            time.sleep(0.05)

    later = threading.Thread(target=compute, args=("second", second), daemon=True)
    later.start()
    time.sleep(0.2)  # prepared first, the second month still waits for the first's turn
    assert order == []
    compute("first", first)
    later.join(5)
    assert order == ["first", "second"]

    # A month that ended without computing (its search failed) lets the next one go.
    failed = MonthGate(slots, stop)
    failed.begin()
    compute("after a failure", MonthGate(slots, stop, after=failed))
    assert order[-1] == "after a failure"

    # Stopped: a month waiting for its turn gives up, and so does one that gets a slot.
    waiting = MonthGate(slots, stop, after=MonthGate(slots, stop))
    outcome: list[BaseException] = []

    def wait_for_turn() -> None:
        try:
            compute("never", waiting)
        except LoadStopped as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait_for_turn, daemon=True)
    waiter.start()
    time.sleep(0.3)  # waiting for its turn when the run stops
    stop.set()
    waiter.join(5)
    assert not waiter.is_alive() and len(outcome) == 1
    with pytest.raises(LoadStopped):
        compute("never either", MonthGate(slots, stop))
    assert "never" not in order and "never either" not in order
    assert slots.acquire(blocking=False)  # every slot given back


def test_one_task_of_a_chunk_equals_its_tasks_by_band(small_archive, small_site) -> None:  # type: ignore[no-untyped-def]
    """The task a month pinned to a one-thread worker makes of a chunk (its reads nested in
    it) gives the composite, count and evidence of the separate tasks, to the bit."""
    import dask
    import numpy as np

    from kpgeo.config import DetectionConfig
    from kpgeo.months import parse_month_range
    from kpgeo.pipeline import _chunk_tasks
    from kpgeo.sources.stac import StacSource

    source = StacSource(str(small_archive.collection))
    items = source.search(small_site, parse_month_range("2024-02..2024-02"))
    (ys, xs, parts), = source.read_chunks(items, small_site).chunks
    shape = small_site.grid.shape.yx
    rng = np.random.default_rng(0)
    # A season's reference (kpgeo.reference.REFERENCE_LAYERS): NDVI floor, MNDWI ceiling,
    # red floor and no misregistration allowance.
    reference = np.stack([rng.uniform(0.2, 0.6, shape), np.full(shape, -0.3), np.zeros(shape),
                          np.zeros(shape), np.zeros(shape)]).astype("float32")
    detection = (reference[:, ys, xs], (rng.random(shape) < 0.5)[ys, xs], DetectionConfig())
    apart = dask.compute(*_chunk_tasks(parts, detection, by_band=True), scheduler="threads")
    (medians, count, codes), = dask.compute(
        *_chunk_tasks(parts, detection, by_band=False, fused=True), scheduler="threads")
    n_bands = medians.shape[0]
    assert len(parts) > 1 and codes.shape == (len(parts), *count.shape)
    np.testing.assert_array_equal(medians, np.stack(apart[:n_bands]))
    np.testing.assert_array_equal(count, apart[n_bands])
    np.testing.assert_array_equal(codes, np.stack(apart[n_bands + 1:]))
    assert (codes == 1).any() and (codes == 0).any()  # the evidence is not trivially empty
