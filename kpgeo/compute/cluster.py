"""Where the Dask work of a run computes (docs/product.md §9), and its progress bar.

- no ``--scheduler``: a local cluster sized to the machine by distributed (a worker process
  per core on small machines; ``--workers N`` sets the number, and distributed splits cores
  and memory among them);
- ``--scheduler tcp://host:8786``: an existing cluster (the way past one machine). Its workers
  must see the scenes at the same paths or URLs as this process;
- ``--scheduler threads`` (or ``synchronous``): dask's local schedulers in this process, for
  small jobs and debugging; ``--workers N`` sets the threads. ``DASK_SCHEDULER=threads`` in the
  environment (dask's own configuration) does the same for runs without ``--scheduler``.

:func:`compute` computes a month's collections on whichever is active and, when asked, draws a
progress bar on stderr: dask's own for the local schedulers, distributed's for a cluster (its
scheduler reports task progress, so the bar works for remote workers too).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask

from ..config import LOCAL_SCHEDULERS
from ..errors import ConfigError, KpgeoError

log = logging.getLogger(__name__)

#: Whether :func:`compute` draws a progress bar (set by :func:`dask_context`).
_show_progress: contextvars.ContextVar[bool] = contextvars.ContextVar("kpgeo_progress",
                                                                      default=False)


@contextlib.contextmanager
def dask_context(scheduler: str = "", workers: int = 0, *,
                 progress: bool = False) -> Iterator[str]:
    """Make the scheduler a run asked for the active one; yield a description for the log.

    Raises
    ------
    KpgeoError
        When the scheduler at ``scheduler`` cannot be reached.
    """
    token = _show_progress.set(progress)
    # dask's own configuration (DASK_SCHEDULER=threads, or dask's YAML) can name a local
    # scheduler for runs that give none; the tests use that to skip starting a cluster per run.
    configured = dask.config.get("scheduler", None)
    scheduler = scheduler or (configured if configured in LOCAL_SCHEDULERS else "")
    cores = os.cpu_count() or 1
    if workers > cores and scheduler in LOCAL_SCHEDULERS:
        log.warning("--workers %d is more than this machine's %d cores: each thread gets a "
                    "share of a core and of the memory, and the run is slower; leave "
                    "--workers out to size the threads to the machine.", workers, cores)
    elif workers > cores and not scheduler:
        # Worker processes beyond the cores only compete: 64 on 2 cores made a run 10x
        # slower, gave them more memory than the machine has (distributed's "auto" limit is a
        # core's share each) and, too slow to stop, printed heartbeat tracebacks at shutdown.
        log.warning("--workers %d is more than this machine's %d cores: starting %d workers, "
                    "one a core (more only compete for the cores and the memory).",
                    workers, cores, cores)
        workers = cores
    try:
        if scheduler in LOCAL_SCHEDULERS:
            with dask.config.set(scheduler=scheduler, num_workers=workers or None):
                yield f"dask {scheduler} scheduler"
        elif scheduler:
            with _client(scheduler) as client:
                yield f"Dask cluster at {scheduler} ({_describe(client)})"
        else:
            with _local_cluster(workers) as client:
                yield f"local Dask cluster ({_describe(client)})"
    finally:
        _show_progress.reset(token)


def _quiet_distributed() -> None:
    """distributed logs every worker start and stop at INFO, and resets its logger's level when
    imported: lower it after the import, unless kpgeo itself is logging at debug level (-v)."""
    chatty = logging.getLogger("kpgeo").getEffectiveLevel() <= logging.DEBUG
    logging.getLogger("distributed").setLevel(logging.INFO if chatty else logging.WARNING)


@contextlib.contextmanager
def _client(address: str) -> Iterator[Any]:
    from distributed import Client

    _quiet_distributed()

    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise KpgeoError(
            f"cannot reach the Dask scheduler at --scheduler {address!r} ({exc}); start it "
            "(`dask scheduler`, then `dask worker ADDRESS`) or leave --scheduler out for a "
            "local cluster."
        ) from None
    with client:
        _set_up_workers(client)
        yield client


def _set_up_workers(client: Any) -> None:
    from .worker_setup import QuietWarnings

    client.register_plugin(QuietWarnings())


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    _quiet_distributed()

    # n_workers=None lets distributed size the cluster to the cores; memory_limit "auto" gives
    # each worker its share of the machine's memory, so a worker spills rather than swapping.
    # The client fetches results from the workers themselves (direct_to_workers), not through
    # the scheduler, which shares this process's event loop. A remote cluster keeps the
    # default: its workers may not be reachable from here.
    with LocalCluster(
            # No dashboard (its task stream and plots run in this process's event loop: a
            # year of the demo window took a sixth longer with it), and the scheduler's plain
            # HTTP server, which runs without it, on a free port: its default 8787, taken by
            # another cluster or run on the machine, gave a three-line warning.
            n_workers=workers or None, processes=True, dashboard_address=None,
            scheduler_kwargs={"dashboard_address": ":0"},
            memory_limit="auto") as cluster, Client(cluster, direct_to_workers=True) as client:
        _set_up_workers(client)
        from .worker_setup import QuietWorkerLogs

        chatty = logging.getLogger("kpgeo").getEffectiveLevel() <= logging.DEBUG
        client.register_plugin(QuietWorkerLogs(logging.INFO if chatty else logging.CRITICAL))
        yield client


def _describe(client: Any) -> str:
    info = client.scheduler_info()["workers"].values()
    threads = sum(w["nthreads"] for w in info)
    memory = sum(w.get("memory_limit") or 0 for w in info) / 2**30
    return f"{len(info)} workers, {threads} threads, {memory:.1f} GiB"


def compute(*collections: Any, quiet: bool = False) -> tuple[Any, ...]:
    """Like ``dask.compute``; with a progress bar on stderr when the run asked for one (and
    not ``quiet``: a month draws one bar, for its reads and composite)."""
    progress = _show_progress.get() and not quiet
    client = _active_client()
    if client is None:
        if not progress:
            return dask.compute(*collections)
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(*collections)
    lazy = [i for i, c in enumerate(collections) if dask.is_dask_collection(c)]
    futures = client.compute([collections[i] for i in lazy])
    if progress:
        from distributed.diagnostics.progressbar import TextProgressBar

        # distributed's text bar writes to stdout; stdout is kpgeo's result channel.
        with contextlib.redirect_stdout(sys.stderr):
            TextProgressBar(futures)
        sys.stderr.write("\n")
    try:
        values = client.gather(futures)
    except BaseException:
        client.cancel(futures)  # the rest of a failed month must not compete with its retry
        raise
    results = list(collections)
    for i, value in zip(lazy, values, strict=True):
        results[i] = value
    return tuple(results)


def check_workers_see(out_dir: Path, marker: Path) -> None:
    """On a cluster, refuse an output folder some worker cannot see: the workers write the
    chunks of every product there (``marker``, a file kpgeo has written in it, must exist
    for each of them).

    Raises
    ------
    ConfigError
        Naming the folder and the workers that do not see it.
    """
    client = _active_client()
    if client is None:
        return
    seen = client.run(os.path.exists, str(marker.absolute()))
    blind = sorted(worker for worker, ok in seen.items() if not ok)
    if blind:
        raise ConfigError(
            f"--out {out_dir} is not visible to the Dask workers {', '.join(blind)}: they write "
            "the products' chunks there. Give an --out on storage every worker sees at the "
            "same path (one machine, or a shared file system)."
        )


def on_cluster() -> bool:
    """Whether dask computes on a distributed cluster (else a local scheduler)."""
    return _active_client() is not None


def _active_client() -> Any:
    """The distributed client dask computes on, or None for a local scheduler."""
    if dask.config.get("scheduler", None) in LOCAL_SCHEDULERS:
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None
