"""Pools that run `QuantumJob` objects: persistent worker processes, or the calling process.

`WorkerPool` wraps a `concurrent.futures.ProcessPoolExecutor` (spawned workers, initialised once) and a
side channel on which workers announce their pid and the start of every quantum, so the parent can kill
exactly the worker running a quantum that exceeded its time limit, and restart the pool after a crash.
`InlinePool` has the same interface and runs each job immediately in the calling process.
"""

from __future__ import annotations

__all__ = ["InlinePool", "JobPool", "StartEvent", "WorkerPool"]

import concurrent.futures
import dataclasses
import logging
import multiprocessing
import os
import signal
import time
import uuid
from typing import Protocol

from .worker import QuantumJob, QuantumResult, WorkerSetup, initialize_worker, ping_worker, run_quantum_job

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class StartEvent:
    """A worker started a quantum."""

    quantum_id: uuid.UUID
    pid: int
    time: float


class JobPool(Protocol):
    """What the graph executor needs from a pool."""

    size: int

    def submit(self, job: QuantumJob) -> concurrent.futures.Future[QuantumResult]:
        """Queue ``job``; the future resolves to its `QuantumResult`."""

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the workers are initialised."""

    def poll_started(self) -> list[StartEvent]:
        """Return the quanta that started since the last call."""

    def kill(self, pid: int) -> None:
        """Kill worker ``pid`` (this breaks the pool: restart it)."""

    def restart(self) -> None:
        """Replace broken or killed workers by a fresh set."""

    def shutdown(self, kill: bool = False) -> None:
        """Stop the workers, immediately if ``kill``."""


class WorkerPool:
    """``size`` persistent worker processes (spawn start method).

    Parameters
    ----------
    size : `int`
        Number of workers.
    setup : `WorkerSetup`
        Worker start-up information (imports, butler config, logging).

    Notes
    -----
    Workers are started at construction (they import the stack while the caller builds the quantum
    graph).  Entry-point scripts must protect their main code with ``if __name__ == "__main__":`` because
    spawned workers re-import the main module.

    Every worker holds the reading end of a "lifeline" pipe whose writing end only this object holds:
    closing it (`shutdown` with ``kill=True``, `restart`) or the death of the parent process makes every
    worker exit at once, whatever it is doing.
    """

    def __init__(self, size: int, setup: WorkerSetup):
        self.size = size
        self._setup = setup
        self._context = multiprocessing.get_context("spawn")
        self._events = self._context.SimpleQueue()
        self._pids: set[int] = set()
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._lifeline = None
        self._start()

    def _start(self) -> None:
        reader, self._lifeline = self._context.Pipe(duplex=False)
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.size,
            mp_context=self._context,
            initializer=initialize_worker,
            initargs=(self._setup, self._events, reader),
        )
        # Workers are spawned on demand: one ping per worker starts them all now.
        self._pings = [self._executor.submit(ping_worker) for _ in range(self.size)]
        reader.close()

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until every worker has been initialised (imports done), or ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while len(self._pids) < self.size and (deadline is None or time.monotonic() < deadline):
            if any(ping.done() and ping.exception() is not None for ping in self._pings):
                return  # a worker failed to start; the first quantum will report it
            self.poll_started()
            time.sleep(0.02)

    def submit(self, job: QuantumJob) -> concurrent.futures.Future[QuantumResult]:
        assert self._executor is not None, "pool is shut down"
        return self._executor.submit(run_quantum_job, job)

    def poll_started(self) -> list[StartEvent]:
        started = []
        while not self._events.empty():
            event = self._events.get()
            if event[0] == "ready":
                self._pids.add(event[1])
            else:
                started.append(StartEvent(*event[1:]))
        return started

    def kill(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._pids.discard(pid)

    def restart(self) -> None:
        self.shutdown(kill=True)
        self._start()

    def shutdown(self, kill: bool = False) -> None:
        if self._executor is None:
            return
        if kill:
            # CPython keeps the executor's worker processes in ``_processes``; killing them as well as closing the
            # lifeline means no exit path (the interpreter's final join of the executor's manager thread
            # included) can wait on a worker stuck in a quantum that ignores SIGINT.
            processes = list((getattr(self._executor, "_processes", None) or {}).values())
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._lifeline.close()  # every worker exits now
            for process in processes:
                process.kill()
        else:
            self._executor.shutdown(wait=True)
            self._lifeline.close()
        self._executor = None
        self._pids.clear()


class InlinePool:
    """Run each job immediately, in the calling process (``--cores 1``).

    Parameters
    ----------
    setup : `WorkerSetup`
        Start-up information (the calling process's logging is left alone).
    """

    size = 1

    def __init__(self, setup: WorkerSetup):
        initialize_worker(setup, None, None)

    def submit(self, job: QuantumJob) -> concurrent.futures.Future[QuantumResult]:
        future: concurrent.futures.Future[QuantumResult] = concurrent.futures.Future()
        future.set_result(run_quantum_job(job))
        return future

    def wait_ready(self, timeout: float | None = None) -> None:
        pass

    def poll_started(self) -> list[StartEvent]:
        return []

    def kill(self, pid: int) -> None:
        raise RuntimeError("cannot kill the calling process")

    def restart(self) -> None:
        pass

    def shutdown(self, kill: bool = False) -> None:
        pass
