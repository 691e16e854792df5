"""The local cluster a run starts (docs/product.md §9; issue 19, point 9): never more worker
processes than cores, and nothing on stderr but kpgeo's own lines.

``--workers 64`` on 2 cores made a month's run 10x slower, gave the workers more memory than
the machine has, and printed dozens of heartbeat tracebacks as the overloaded workers were
stopped; a second cluster on the machine made distributed warn in three lines that port 8787
was taken.
"""

from __future__ import annotations

import contextlib
import logging
import socket

import pytest

from kpgeo.compute import cluster
from kpgeo.compute.cluster import dask_context


def test_workers_above_the_cores_are_capped_with_a_warning_and_a_quiet_stderr(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    import dask

    monkeypatch.setattr(cluster.os, "cpu_count", lambda: 1)
    with contextlib.ExitStack() as stack:
        # The tests' configuration computes on threads: a local cluster here.
        stack.enter_context(dask.config.set(scheduler=None))
        # Port 8787 taken, as by another cluster on the machine (when it is not already).
        taken = socket.socket()
        stack.callback(taken.close)
        with contextlib.suppress(OSError):
            taken.bind(("", 8787))
            taken.listen()
        with caplog.at_level(logging.WARNING), dask_context(workers=64) as described:
            client = cluster._active_client()
            assert client is not None
            assert len(client.scheduler_info()["workers"]) == 1
    assert "(1 workers" in described
    assert "--workers 64 is more than this machine's 1 cores: starting 1 workers" in caplog.text
    err = capfd.readouterr().err
    assert "Traceback" not in err and "already in use" not in err, err


def test_threads_above_the_cores_are_only_warned(monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import dask

    monkeypatch.setattr(cluster.os, "cpu_count", lambda: 2)
    with caplog.at_level(logging.WARNING), dask_context("threads", workers=8):
        assert dask.config.get("num_workers") == 8
    assert "--workers 8 is more than this machine's 2 cores: each thread" in caplog.text


def _fail() -> None:
    raise OSError(28, "No space left on device")


def test_a_failed_task_of_a_local_cluster_prints_no_worker_log(
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """A task failing on a worker (a full disk) is kpgeo's to say in one line: the worker
    printed distributed's "Compute Failed" record and the task's traceback on stderr."""
    import dask

    monkeypatch.setattr(cluster.os, "cpu_count", lambda: 1)
    with dask.config.set(scheduler=None), dask_context(workers=1):
        client = cluster._active_client()
        with pytest.raises(OSError, match="No space left"):
            client.submit(_fail, pure=False).result()
    err = capfd.readouterr().err
    assert "Compute Failed" not in err and "Traceback" not in err, err
