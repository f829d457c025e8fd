"""Where preprocessing tasks run: an existing Dask cluster, a local one, or this process.

`DASK_SCHEDULER_ADDRESS` set: connect to that scheduler (workers must see the same filesystem).
Otherwise `workers >= 1` starts a `LocalCluster` of that many one-thread processes (the work is
numpy/scipy per image: processes scale, threads would fight over the GIL and over BLAS/FFT pools);
`workers == 0` runs the tasks in this process, in order (tests, debugging).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from daisnet.atomic import settle_zarr_writes
from daisnet.progress import Progress

# One core per worker: numeric libraries and zarr's codec thread pool would otherwise oversubscribe.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "ZARR_THREADING__MAX_WORKERS": "1"}


@contextlib.contextmanager
def dask_client(workers: int) -> Iterator[Any]:
    """A `distributed.Client`, or None for in-process execution (see the module docstring)."""
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        from distributed import Client

        with Client(address) as client:
            yield client
    elif workers <= 0:
        yield None
    else:
        import dask
        from distributed import Client, LocalCluster

        # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's adaptive mmap
        # threshold: every per-image array (MBs) is then mmapped and page-faulted afresh, and the
        # features ran 2-3x slower in a worker than in process. Unset it (None = unset).
        # Workers log nothing below CRITICAL: a failed task's error ("Compute Failed" and its
        # traceback) comes back to this process, which reports it as one line.
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}), LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=logging.CRITICAL, env=ONE_THREAD) as cluster, Client(cluster) as client:
            yield client


def _settled(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)`, which on failure returns only once its Zarr writes have ended: the caller
    removes the half-written output when a task fails (`daisnet.atomic.settle_zarr_writes`)."""
    try:
        return function(*args)
    except BaseException:
        settle_zarr_writes()
        raise


def submit_tasks(client: Any, function: Callable[..., Any], args: Sequence[tuple]) -> list[Any]:
    """Start `function(*a)` for each `a` on the client: Dask futures, run in submission order as
    workers free up. Without a client the calls run here and now, and their results stand in."""
    if client is None:
        return [function(*a) for a in args]
    # pure=False: tasks write files; never let Dask dedupe or cache them.
    return [client.submit(_settled, function, *a, pure=False) for a in args]


def gather_tasks(client: Any, handles: Sequence[Any], *, progress: bool = False, label: str = "") -> list[Any]:
    """Results of `submit_tasks` handles, in order. A task's exception is re-raised here (an
    `InputError` keeps its message) once the other tasks have ended."""
    bar = Progress(len(handles), label or "tasks", "task", bar=progress)
    try:
        if client is None:
            bar.update(len(handles))
            bar.close()
            return list(handles)
        from distributed import as_completed

        try:
            for future in as_completed(handles):
                future.result()  # raises the task's exception, if any
                bar.update()
        except BaseException:
            # The caller removes the half-written output next: no task may still be writing then.
            settle_tasks(client, handles)
            raise
        results = [future.result() for future in handles]
        bar.close()
        return results
    finally:
        bar.close(failed=True)  # no-op after a successful close


def settle_tasks(client: Any, handles: Sequence[Any]) -> None:
    """Wait until every submitted task has ended, ignoring their errors.

    Not `client.cancel`: a cancelled task that is already running goes on in its worker and
    could write into an output the caller has just removed (seen as a leftover temporary store)."""
    if client is not None and handles:
        from distributed import wait

        wait(list(handles))


def run_tasks(client: Any, function: Callable[..., Any], args: Sequence[tuple], *, progress: bool = False,
              label: str = "") -> list[Any]:
    """`[function(*a) for a in args]` on the client (or in process when None), results in order.

    A task's exception is re-raised here (an `InputError` keeps its message)."""
    return gather_tasks(client, submit_tasks(client, function, args), progress=progress, label=label)

