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
import ctypes
import itertools
import logging
import sys
from collections.abc import Iterator
from typing import Any

import dask
import dask.array as da
import numpy as np

from .config import LOCAL_SCHEDULERS
from .errors import KpgeoError

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
        yield client


@contextlib.contextmanager
def _local_cluster(workers: int) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    _quiet_distributed()

    # n_workers=None lets distributed size the cluster to the cores; memory_limit "auto" gives
    # each worker its share of the machine's memory, so a worker spills rather than swapping.
    # distributed starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also stops glibc
    # raising its mmap threshold: every array of a month is then mapped and faulted in afresh,
    # and a month of the demo window took 1.4 s instead of 0.9 s. Unset (None) here; workers
    # give the memory back after a month of a site larger than a chunk, or one read from
    # Sentinel Hub, instead (release_worker_memory).
    no_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    # The client fetches results from the workers themselves (direct_to_workers), not through
    # the scheduler, which shares this process's event loop: a month's 11 MB of results
    # crossed it twice (the loop's CPU over the demo year: 0.6 -> 0.5 s). A remote cluster
    # keeps the default: its workers may not be reachable from here.
    with dask.config.set(no_trim), LocalCluster(
            n_workers=workers or None, processes=True, dashboard_address=None,
            memory_limit="auto") as cluster, Client(cluster, direct_to_workers=True) as client:
        yield client


def _describe(client: Any) -> str:
    info = client.scheduler_info()["workers"].values()
    threads = sum(w["nthreads"] for w in info)
    memory = sum(w.get("memory_limit") or 0 for w in info) / 2**30
    return f"{len(info)} workers, {threads} threads, {memory:.1f} GiB"


def release_worker_memory() -> None:
    """On a cluster, have the workers hand the memory their tasks freed back to the system
    (called once a month of a site larger than a chunk, or a month from a source that does
    not read by chunk, is computed; see :func:`_local_cluster`). Best effort: a worker that
    cannot is left as it is."""
    client = _active_client()
    if client is None:
        return
    try:
        client.run(_trim_memory, on_error="ignore")
    except (OSError, TimeoutError) as exc:  # a lost connection fails the next computation
        log.debug("workers did not trim their memory: %s", exc)


def _trim_memory() -> None:
    """glibc's ``malloc_trim``: a worker keeps the memory its tasks freed for their next
    arrays (see :func:`_local_cluster`); between computations it returns it."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def compute(*collections: Any, pin: bool = False) -> tuple[Any, ...]:
    """Like ``dask.compute``; with a progress bar on stderr when the run asked for one.

    ``pin``: on a cluster, run every task on one worker, the next in turn (for as long as it
    is alive). For work whose tasks all feed one (a month's reads, its composite): nothing
    then travels between workers, and two such computations at once keep two workers busy.
    """
    progress = _show_progress.get()
    client = _active_client()
    if client is None:
        if not progress:
            return dask.compute(*collections)
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(*collections)
    lazy = [i for i, c in enumerate(collections) if dask.is_dask_collection(c)]
    placement: dict[str, Any] = {}
    worker = _next_worker(client) if pin else None
    if worker is not None:
        placement = {"workers": [worker], "allow_other_workers": True}
    futures = client.compute([collections[i] for i in lazy], **placement)
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


_turn = itertools.count()


def _next_worker(client: Any) -> str | None:
    """The address of the cluster's next worker in turn (None while it has none)."""
    workers = sorted(client.nthreads())  # every worker (scheduler_info may list only a few)
    return workers[next(_turn) % len(workers)] if workers else None


def worker_count() -> int:
    """Workers of the cluster :func:`compute` runs on; 0 on dask's local schedulers."""
    return len(worker_threads())


def worker_threads() -> list[int]:
    """The threads of each worker of the cluster :func:`compute` runs on; none on dask's
    local schedulers."""
    client = _active_client()
    return [] if client is None else list(client.nthreads().values())


def lazy_array(array: np.ndarray, chunks: Any) -> da.Array:
    """A numpy array as a dask array with ``chunks``. On a cluster it is sent to the workers
    once, instead of inside each task graph (a full site's baseline band is 44 MB, and
    distributed warns about, and slowly ships, graphs that large)."""
    client = _active_client()
    if client is None:
        return da.from_array(array, chunks=chunks)
    future = client.scatter(array)
    return da.from_delayed(future, array.shape, array.dtype).rechunk(chunks)


def _active_client() -> Any:
    """The distributed client dask computes on, or None for a local scheduler."""
    if dask.config.get("scheduler", None) in LOCAL_SCHEDULERS:
        return None
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None
