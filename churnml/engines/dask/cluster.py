"""The Dask client, and the cluster's failures as one line each.

``client(scheduler, workers)`` connects to a running scheduler or starts a local cluster.
Dask runs a task again on another worker when its worker dies (up to
``distributed.scheduler.allowed-failures`` times, 3 by default) and recomputes any lost
intermediate result from its inputs, so a result is always complete. When a task keeps
killing workers, or the scheduler goes away, the computation raises ``DaskEngineError`` (a
``ChurnmlError``) with one line, and nothing is returned or written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import dask

from churnml.errors import ConfigError, DaskEngineError

if TYPE_CHECKING:
    from distributed import Client

NO_WORKERS_TIMEOUT = 120.0  # seconds without a live worker before a local cluster gives up
LOCAL_CONFIG = {"dataframe.convert-string": False}  # keep pandas' own str dtype, as validation


@contextmanager
def client(
    scheduler: str | None = None,
    workers: int = 2,
    *,
    memory_limit: str | int = "auto",
    timeout: float = 30.0,
    no_workers_timeout: float = NO_WORKERS_TIMEOUT,
) -> Iterator[Client]:
    """A Dask client: of the scheduler at ``scheduler`` (``tcp://HOST:PORT``), or of a local
    cluster of ``workers`` processes with one thread each (no dashboard, on 127.0.0.1),
    closed on exit. ConfigError when the scheduler cannot be reached.

    The local cluster's scheduler fails the waiting tasks when no worker has been alive for
    ``no_workers_timeout`` seconds (a nanny can give up restarting a worker that keeps
    dying), so that a computation ends in DaskEngineError instead of waiting for ever. A
    remote scheduler keeps its own ``distributed.scheduler.no-workers-timeout``."""
    from distributed import Client, LocalCluster

    if scheduler:
        try:
            connected = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError, ValueError) as error:
            reason = (str(error).splitlines() or [type(error).__name__])[0]
            raise ConfigError(
                f"scheduler {scheduler}: cannot connect ({reason}); start a Dask scheduler "
                "there, or leave the scheduler out to run a local cluster"
            ) from None
        try:
            yield connected
        finally:
            connected.close()
        return
    if workers < 1:
        raise ConfigError(f"workers {workers}: expected at least 1 Dask worker")
    with dask.config.set({"distributed.scheduler.no-workers-timeout": f"{no_workers_timeout}s"}):
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
            memory_limit=memory_limit,
            silence_logs=logging.ERROR,
        )
    try:
        with Client(cluster) as local:
            yield local
    finally:
        cluster.close()


@contextmanager
def cluster_errors(what: str) -> Iterator[None]:
    """Turn the cluster's failures into one line; a ChurnmlError from a task passes as is."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import NoValidWorkerError, NoWorkerError

    try:
        with dask.config.set(LOCAL_CONFIG):
            yield
    except KilledWorker as error:
        task = error.task[0] if isinstance(error.task, tuple) else error.task
        name = str(task).split("-")[0]
        raise DaskEngineError(
            f"{what} failed: Dask workers died {error.allowed_failures + 1} times while "
            f"running task {name} (last {getattr(error.last_worker, 'address', '?')}); "
            "no partial result was kept. See the workers' logs for why they died (often "
            "memory: give them more, or use more partitions)"
        ) from None
    except (NoWorkerError, NoValidWorkerError) as error:
        raise DaskEngineError(
            f"{what} failed: no Dask worker was alive for {error.timeout:g} s "
            "(they kept dying and were not restarted); no partial result was kept. See the "
            "workers' logs for why they died (often memory: give them more, or use more "
            "partitions)"
        ) from None
    except (CancelledError, CommClosedError) as error:
        raise DaskEngineError(
            f"{what} failed: the Dask cluster lost the computation ({type(error).__name__}: "
            f"{(str(error).splitlines() or [''])[0]}); no partial result was kept. Check "
            "that the scheduler is up and run again"
        ) from None
