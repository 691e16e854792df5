"""What each Dask worker of a cluster sets up before computing kpgeo's tasks.

Worker processes write to the terminal of whoever started them (a local cluster's, this run's):
a library warning raised in a task would show there with its file path and source line. Each
worker ignores the same uninformative warnings the command line does
(:func:`kpgeo.userlog.quiet_uninformative_warnings`); as a plugin, also in a worker restarted
during the run.
"""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from ..userlog import quiet_uninformative_warnings


class QuietWarnings(WorkerPlugin):
    """Ignore library warnings that tell a user nothing, in each worker."""

    name = "kpgeo-quiet-warnings"

    def setup(self, worker: Any) -> None:
        quiet_uninformative_warnings()


class QuietWorkerLogs(WorkerPlugin):
    """A local cluster's workers log no task failure or lost heartbeat (unless at ``level``).

    Their log goes to this run's stderr, past kpgeo's one line: a task failing on a full disk
    printed distributed's "Compute Failed" record with the task's traceback, and workers too
    slow to stop printed "Failed to communicate with scheduler during heartbeat" with theirs.
    kpgeo says each failure of a task itself, in one line; at ``-v`` the workers log again.
    A remote cluster's workers log to their own terminals and are left alone.
    """

    name = "kpgeo-quiet-worker-logs"

    def __init__(self, level: int) -> None:
        self.level = level

    def setup(self, worker: Any) -> None:
        import logging

        logging.getLogger("distributed.worker").setLevel(self.level)
