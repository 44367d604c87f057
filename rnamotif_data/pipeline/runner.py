"""Where a build's tasks run: in process (``synchronous``), on a new Dask LocalCluster,
or on an existing Dask cluster (``tcp://host:8786``), with one interface for both."""

from __future__ import annotations

import logging
import os
import threading
import time

from rnamotif_data.common.extras import require
from rnamotif_data.errors import RNAMotifError, one_line

log = logging.getLogger("rnamotif_data.pipeline.builder")

__all__ = ["Runner", "local_cluster"]


def local_cluster(n_workers: int, threads_per_worker: int = 1, memory_limit: str = "auto"):
    """A Dask ``LocalCluster`` of ``n_workers`` processes for a build.

    Its workers start without ``MALLOC_TRIM_THRESHOLD_``, which Dask sets to 65536 by default.
    Setting it turns off glibc's adaptive malloc thresholds: every array over 128 KiB becomes
    a fresh mmap, page-faulted and zeroed again (a ribosome-size entry took ~60 % more CPU,
    most of it system time; ``benchmarks/RESULTS.md``). Without it glibc adapts its mmap and
    trim thresholds (up to 32 and 64 MiB), so the build's large temporaries (Q-score sample
    points, cubes, FFT boxes) reuse the heap instead of being mapped anew, at the cost of up
    to ~64 MiB of freed memory a worker may keep. The other variables Dask sets before
    spawning a worker (one BLAS/OpenMP thread) are kept; a variable set in the environment
    still wins, as Dask documents.

    Raises :class:`~rnamotif_data.errors.MissingDependencyError` without ``distributed``.
    """
    require("distributed", "the parallel build")
    import dask
    from distributed import LocalCluster

    # a None value unsets a pre-spawn variable (distributed.nanny._get_env_variables)
    with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
        return LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                            memory_limit=memory_limit, processes=True, dashboard_address=None)


def _worker_trim_threshold() -> str | None:
    """``MALLOC_TRIM_THRESHOLD_`` of the process this runs in (a worker)."""
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _captured(fn, *args):
    """``fn(*args)``, or the exception it raised as the task's result: the caller reports it
    (a failed row, or a full disk that stops the build in one line), so the worker must not
    log it as a failed task with its traceback."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - returned to the caller, which reports it
        return exc


class Runner:
    """Runs tasks synchronously or on a Dask cluster, yielding results as they finish."""

    #: seconds between checks for a cluster without workers
    watch_every = 5.0
    #: seconds a LocalCluster this runner made may have no worker before the build stops
    #: (workers that die at start restart forever: a memory limit too low, the OS killing them)
    local_grace = 120.0

    def __init__(self, scheduler: str | None, workers: int | None, threads: int, memory_limit: str):
        self.client = self.cluster = None
        self.fatal: str | None = None  # set by the watcher: why the build cannot go on
        self._stop = threading.Event()
        self._check_malloc = False  # an external cluster's workers' malloc settings, see _note_malloc
        if scheduler == "synchronous":
            return
        require("distributed", "the parallel build")
        from distributed import Client

        logging.getLogger("distributed").setLevel(logging.WARNING)
        if scheduler:
            try:
                self.client = Client(scheduler, timeout="30s")
            except (OSError, ValueError, TypeError) as exc:
                raise RNAMotifError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler there "
                                    f"({one_line(exc)})") from None
            self._check_malloc = True  # once workers have run a task (they may join later)
        else:
            n = workers or max(1, os.cpu_count() or 1)
            self.cluster = local_cluster(n, threads, memory_limit)
            self.client = Client(self.cluster)
        log.info("Dask: %s", self.client)
        threading.Thread(target=self._watch, args=(scheduler or "LocalCluster",), daemon=True).start()

    def _note_malloc(self) -> None:
        """Log once if an external cluster's workers run with ``MALLOC_TRIM_THRESHOLD_`` set
        (one worker asked, 10 s at most: a hint never holds up the build)."""
        if self.client is None:
            return
        try:
            one = list(self.client.scheduler_info().get("workers", {}))[:1]
            values = self.client.run(_worker_trim_threshold, workers=one, on_error="ignore",
                                     callback_timeout=10) if one else {}
        except Exception:  # noqa: BLE001 - a hint only; the build does not depend on it
            return
        found = sorted({v for v in values.values() if v is not None})
        if found:
            log.info("the cluster's workers run with MALLOC_TRIM_THRESHOLD_=%s (Dask's default is 65536), "
                     "which turns off glibc's adaptive malloc thresholds: large arrays are mapped and "
                     "zeroed anew each time, ~60 %% more CPU per ribosome-size entry. For a faster build "
                     "start them with it unset (Dask config distributed.nanny.pre-spawn-environ."
                     "MALLOC_TRIM_THRESHOLD_: null), as rnamotif's own local cluster does", ", ".join(found))

    def _watch(self, where: str) -> None:
        """Log, while tasks wait, how long the cluster has had no worker (a cluster that lost
        its workers otherwise waits silently)."""
        since = None
        while self.client is not None and not self._stop.wait(self.watch_every):
            try:
                n = len(self.client.scheduler_info().get("workers", {}))
            except Exception:  # noqa: BLE001 - the scheduler itself is gone; as_completed will say
                n = 0
            if n:
                since = None
                continue
            since = since or time.monotonic()
            waited = time.monotonic() - since
            if self.cluster is not None and waited >= self.local_grace:
                self.fatal = (f"no Dask worker stayed up for {waited:.0f} s on the local cluster (workers restarting: "
                              "a --memory-limit too low for an entry, or the operating system killing them); the "
                              "store is resumable: fix that and run the same command with --resume")
                return
            log.warning("no workers for %.0f s on %s; waiting (start workers, or stop the build and run it "
                        "again with --resume)", waited, where)

    def submit(self, fn, *args):
        """Start ``fn(*args)``; returns a handle for :meth:`as_completed`. Synchronously,
        runs it now."""
        if self.client is None:
            self._n = getattr(self, "_n", 0) + 1
            try:
                self._done = getattr(self, "_done", [])
                self._done.append((self._n, fn(*args)))
            except Exception as exc:  # noqa: BLE001 - reported to the caller as a result
                self._done.append((self._n, exc))
            return self._n
        fut = self.client.submit(_captured, fn, *args, pure=False)
        if getattr(self, "_ac", None) is not None:
            self._ac.add(fut)
        return fut

    def as_completed(self, pending: dict):
        """Yield ``(handle, result or exception)`` until ``pending`` (which the caller may
        add to while iterating) is empty."""
        if self.client is None:
            while pending:
                if not self._done:
                    raise RuntimeError("synchronous runner: a pending task has no result")
                yield self._done.pop(0)
            return
        from distributed import as_completed

        self._ac = as_completed(list(pending))
        try:
            while not self._ac.is_empty():
                if self.fatal:
                    raise RNAMotifError(self.fatal)
                batch = self._ac.next_batch(block=False)
                if not batch:
                    time.sleep(0.05)
                    continue
                if self._check_malloc:
                    self._check_malloc = False
                    self._note_malloc()
                for fut in batch:
                    try:
                        yield fut, fut.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. a worker killed for memory
                        yield fut, exc
                    fut.release()
                if not pending:
                    break
        finally:
            self._ac = None

    def close(self) -> None:
        """Stop the watcher and close the client (and the LocalCluster this runner made)."""
        self._stop.set()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
