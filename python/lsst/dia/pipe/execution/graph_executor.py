"""Walk a quantum graph with a pool of persistent workers.

The parent process walks the graph (`lsst.pipe.base.graph_walker.GraphWalker`), keeps the pool busy,
reports each finished quantum, and alone writes the registry: outputs of successful quanta are
registered in batches (one transaction each) from the provenance the workers return.  A failed quantum
blocks only its descendants; a crashed worker breaks the pool, which is restarted, and the quanta that
were running are retried one at a time to find the culprit; a quantum over its time limit has its worker
killed.  On Ctrl-C the workers are killed, what succeeded is registered, and `KeyboardInterrupt`
propagates: the registry only ever references complete outputs.
"""

from __future__ import annotations

__all__ = ["PersistentWorkerExecutor"]

import collections
import concurrent.futures
import logging
import time
import uuid
from concurrent.futures.process import BrokenProcessPool

import networkx
from lsst.daf.butler import Butler, DatasetRef, Quantum, QuantumProvenanceData
from lsst.pipe.base.graph import QuantumGraph
from lsst.pipe.base.graph_walker import GraphWalker
from lsst.pipe.base.quantum_graph import PredictedQuantumGraph
from lsst.pipe.base.quantum_graph_executor import QuantumGraphExecutor

from .errors import QuantumExecutionError, WorkerStartupError
from .pool import JobPool
from .progress import ExecutionSummary, ProgressReporter, QuantumOutcome, format_data_id
from .worker import QuantumJob, QuantumResult, QuantumStatus, TaskPayload

_LOG = logging.getLogger(__name__)

#: Seconds between checks of running quanta (time limits, start events) while waiting for results.
POLL_INTERVAL = 0.2

#: Consecutive pool failures without any quantum starting after which execution is abandoned.
MAX_STERILE_RESTARTS = 3


class _Registrar:
    """Register outputs of successful quanta in batches, in the parent process."""

    def __init__(self, butler: Butler, batch_size: int = 64, max_delay: float = 5.0):
        self._butler = butler
        self._batch_size = batch_size
        self._max_delay = max_delay
        self._pending: list[tuple[Quantum, QuantumProvenanceData]] = []
        self._last_flush = time.monotonic()
        self.registered: list[DatasetRef] = []

    def add(self, quantum: Quantum, provenance: QuantumProvenanceData) -> None:
        self._pending.append((quantum, provenance))
        if len(self._pending) >= self._batch_size or time.monotonic() - self._last_flush > self._max_delay:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        quanta, provenance = zip(*self._pending, strict=True)
        with self._butler.transaction():
            QuantumProvenanceData.collect_and_transfer(self._butler, quanta, provenance)
        for quantum, prov in self._pending:
            self.registered.extend(
                ref for refs in quantum.outputs.values() for ref in refs if ref.id in prov.actual_outputs
            )
        self._pending.clear()


class PersistentWorkerExecutor(QuantumGraphExecutor):
    """Execute a quantum graph on a `JobPool` and register outputs from the parent process.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Writeable butler of the output run (used only in this process, for registration).
    pool : `JobPool`
        The pool to run quanta on (shut down when the graph is done).
    timeout : `float` or `None`
        Per-quantum wall-clock limit in seconds (needs a `WorkerPool`).
    doraise : `bool`
        Stop at the first failure and raise `QuantumExecutionError`.
    """

    def __init__(
        self,
        butler: Butler,
        pool: JobPool,
        *,
        timeout: float | None = None,
        doraise: bool = False,
    ):
        self._butler = butler
        self._pool = pool
        self._timeout = timeout
        self._doraise = doraise
        self.summary = ExecutionSummary()
        self.registered_refs: list[DatasetRef] = []

    def execute(
        self, graph: QuantumGraph | PredictedQuantumGraph, *, provenance_graph_file: str | None = None
    ) -> None:
        # Docstring inherited.
        if provenance_graph_file is not None:
            raise NotImplementedError("provenance graph files are not written by PersistentWorkerExecutor")
        if isinstance(graph, QuantumGraph):
            graph = PredictedQuantumGraph.from_old_quantum_graph(graph)
        graph.build_execution_quanta()
        run = _GraphRun(graph, self._pool, self._timeout, self._doraise)
        registrar = _Registrar(self._butler)
        start = time.perf_counter()
        try:
            run.walk(registrar)
        finally:
            run.pool.shutdown(kill=True)
            registrar.flush()
            self.registered_refs = registrar.registered
            self.summary = run.reporter.summary
            self.summary.task_labels = tuple(graph.pipeline_graph.tasks.keys())
            self.summary.execution_seconds = time.perf_counter() - start


class _GraphRun:
    """State of one walk over a graph."""

    def __init__(self, graph: PredictedQuantumGraph, pool: JobPool, timeout: float | None, doraise: bool):
        self.xgraph: networkx.DiGraph = graph.quantum_only_xgraph
        self.pool = pool
        self.timeout = timeout
        self.doraise = doraise
        self.reporter = ProgressReporter(len(self.xgraph))
        self.finished: set[uuid.UUID] = set()
        dataset_types = {node.name: node.dataset_type for node in graph.pipeline_graph.dataset_types.values()}
        self.payloads = {
            label: TaskPayload.make(task_node, dataset_types)
            for label, task_node in graph.pipeline_graph.tasks.items()
        }
        self.walker = GraphWalker[uuid.UUID](self.xgraph.copy())
        self.ready: collections.deque[uuid.UUID] = collections.deque()
        self.in_flight: dict[concurrent.futures.Future[QuantumResult], uuid.UUID] = {}
        self.started: dict[uuid.UUID, tuple[int, float]] = {}
        self.suspects: collections.deque[uuid.UUID] = collections.deque()
        self.retrying: uuid.UUID | None = None
        self.timed_out: dict[uuid.UUID, float] = {}
        self.first_failure: tuple[uuid.UUID, QuantumResult] | None = None
        self.progressed = False
        self.sterile_restarts = 0

    # -- helpers -----------------------------------------------------------------------------------------
    def _label(self, quantum_id: uuid.UUID) -> str:
        return self.xgraph.nodes[quantum_id]["task_label"]

    def _data_id(self, quantum_id: uuid.UUID) -> str:
        return format_data_id(self.xgraph.nodes[quantum_id]["data_id"])

    def _sort_key(self, quantum_id: uuid.UUID) -> tuple:
        node = self.xgraph.nodes[quantum_id]
        return (node["task_label"], *node["data_id"].required_values)

    def _submit(self, quantum_id: uuid.UUID) -> None:
        node = self.xgraph.nodes[quantum_id]
        job = QuantumJob(quantum_id, self.payloads[node["task_label"]], node["quantum"])
        self.in_flight[self.pool.submit(job)] = quantum_id

    def _outcome(
        self, quantum_id: uuid.UUID, status: QuantumStatus, seconds: float = 0.0, reason: str = ""
    ) -> None:
        self.finished.add(quantum_id)
        self.reporter.report(
            QuantumOutcome(self._label(quantum_id), self._data_id(quantum_id), status, seconds, reason)
        )

    def _fail(self, quantum_id: uuid.UUID, seconds: float, reason: str) -> None:
        self._outcome(quantum_id, QuantumStatus.FAILED, seconds, reason)
        blocked_by = f"upstream {self._label(quantum_id)} {self._data_id(quantum_id)} failed"
        for descendant in sorted(self.walker.fail(quantum_id), key=self._sort_key):
            self._outcome(descendant, QuantumStatus.BLOCKED, reason=blocked_by)

    # -- main loop ---------------------------------------------------------------------------------------
    def walk(self, registrar: _Registrar) -> None:
        """Run the whole graph (or up to the first failure with ``doraise``)."""
        try:
            self._walk(registrar)
        except KeyboardInterrupt:
            self.pool.shutdown(kill=True)
            pending = [quantum_id for quantum_id in self.xgraph if quantum_id not in self.finished]
            for quantum_id in sorted(pending, key=self._sort_key):
                self._outcome(quantum_id, QuantumStatus.INTERRUPTED, reason="interrupted by user")
            _LOG.warning(
                "Interrupted: %d quanta not finished; completed outputs are registered.", len(pending)
            )
            raise
        if self.first_failure is not None:
            quantum_id, result = self.first_failure
            error = QuantumExecutionError(
                self._label(quantum_id), self._data_id(quantum_id), result.error or "", result.traceback
            )
            raise error from result.exception

    def _walk(self, registrar: _Registrar) -> None:
        exhausted = False
        while True:
            if not exhausted:
                try:
                    self.ready.extend(sorted(next(self.walker), key=self._sort_key))
                except StopIteration:
                    exhausted = True
            if self.first_failure is None:
                self._fill()
            if not self.in_flight:
                if exhausted or self.first_failure is not None:
                    return
                raise RuntimeError("internal error: the quantum graph walk stalled")
            done, _ = concurrent.futures.wait(
                self.in_flight, timeout=POLL_INTERVAL, return_when=concurrent.futures.FIRST_COMPLETED
            )
            self._poll_started()
            self._enforce_timeout()
            lost = []
            for future in done:
                quantum_id = self.in_flight.pop(future)
                exc = future.exception()
                if isinstance(exc, BrokenProcessPool):
                    lost.append(quantum_id)
                elif exc is not None:  # e.g. the task's module does not import in the worker
                    self._handle_result(quantum_id, QuantumResult.from_exception(quantum_id, exc), registrar)
                else:
                    self._handle_result(quantum_id, future.result(), registrar)
            if lost:
                self._recover(lost, registrar)

    def _poll_started(self) -> None:
        for event in self.pool.poll_started():
            self.started[event.quantum_id] = (event.pid, event.time)
            self.progressed = True

    def _fill(self) -> None:
        """Submit work: a suspect alone after a crash, otherwise keep two jobs per worker queued."""
        if self.retrying is not None:
            return
        if self.suspects:
            if not self.in_flight:
                self.retrying = self.suspects.popleft()
                self._submit(self.retrying)
            return
        while self.ready and len(self.in_flight) < 2 * self.pool.size:
            self._submit(self.ready.popleft())

    def _handle_result(self, quantum_id: uuid.UUID, result: QuantumResult, registrar: _Registrar) -> None:
        self.progressed = True
        self.started.pop(quantum_id, None)
        if quantum_id == self.retrying:
            self.retrying = None
        if result.status is QuantumStatus.FAILED:
            self._fail(quantum_id, result.seconds, result.error or "unknown error")
            if self.doraise and self.first_failure is None:
                self.first_failure = (quantum_id, result)
            return
        assert result.provenance is not None
        registrar.add(self.xgraph.nodes[quantum_id]["quantum"], result.provenance)
        self._outcome(quantum_id, result.status, result.seconds)
        self.walker.finish(quantum_id)

    def _enforce_timeout(self) -> None:
        if self.timeout is None:
            return
        now = time.time()
        running = set(self.in_flight.values())
        for quantum_id, (pid, start) in list(self.started.items()):
            if quantum_id in running and quantum_id not in self.timed_out and now - start > self.timeout:
                _LOG.warning(
                    "%s %s exceeded %gs: killing its worker.",
                    self._label(quantum_id),
                    self._data_id(quantum_id),
                    self.timeout,
                )
                self.timed_out[quantum_id] = now - start
                self.pool.kill(pid)

    def _recover(self, lost: list[uuid.UUID], registrar: _Registrar) -> None:
        """The pool broke: sort the quanta it held, restart it.

        Quanta over their time limit fail; a quantum retried alone after an earlier crash and crashing
        again fails; quanta that had not started, or were running beside a quantum whose worker we killed,
        go back in line; quanta running when a worker died on its own become suspects, retried alone.

        Raises
        ------
        WorkerStartupError
            The pool broke `MAX_STERILE_RESTARTS` times in a row without any quantum starting.
        """
        self._poll_started()
        for future, quantum_id in list(self.in_flight.items()):
            del self.in_flight[future]
            if future.done() and future.exception() is None:
                self._handle_result(quantum_id, future.result(), registrar)
            else:
                lost.append(quantum_id)
        deliberate = bool(self.timed_out)
        for quantum_id in sorted(lost, key=self._sort_key):
            start = self.started.pop(quantum_id, None)
            if quantum_id in self.timed_out:
                limit = f"timed out after {self.timeout:g}s (worker killed)"
                self._fail(quantum_id, self.timed_out[quantum_id], limit)
            elif start is None:
                (self.suspects if quantum_id == self.retrying else self.ready).appendleft(quantum_id)
            elif quantum_id == self.retrying:
                elapsed = time.time() - start[1]
                self._fail(quantum_id, elapsed, "worker process died while running this quantum alone")
            elif deliberate:
                self.ready.appendleft(quantum_id)
            else:
                self.suspects.append(quantum_id)
        self.sterile_restarts = 0 if self.progressed else self.sterile_restarts + 1
        if self.sterile_restarts >= MAX_STERILE_RESTARTS:
            raise WorkerStartupError(self.sterile_restarts)
        self.progressed = False
        self.retrying = None
        self.timed_out.clear()
        self.started.clear()
        if self.suspects:
            _LOG.warning(
                "A worker died; retrying the %d quanta it may have been running one at a time.",
                len(self.suspects),
            )
        self.pool.restart()
