"""Execution of single quanta, in a persistent worker process or in the calling process.

A worker is initialised once (`initialize_worker`: imports, logging, the parsed butler config) and then
runs many quanta (`run_quantum_job`), each with a `~lsst.daf.butler.QuantumBackedButler` that reads inputs
and writes outputs straight to the datastore without touching the registry.  The worker returns the
quantum's provenance; the parent process alone registers outputs.
"""

from __future__ import annotations

__all__ = [
    "LogSettings",
    "QuantumJob",
    "QuantumResult",
    "QuantumRunner",
    "QuantumStatus",
    "TaskPayload",
    "WorkerSetup",
    "configure_logging",
    "initialize_worker",
    "ping_worker",
    "preload_modules",
    "run_quantum_job",
]

import dataclasses
import enum
import hashlib
import importlib
import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from lsst.daf.butler import (
    ButlerConfig,
    DatasetType,
    DimensionUniverse,
    Quantum,
    QuantumBackedButler,
    QuantumProvenanceData,
)
from lsst.pipe.base.pipeline_graph import TaskNode
from lsst.pipe.base.single_quantum_executor import SingleQuantumExecutor

from .memory import retain_freed_memory

#: Format of ``--longlog`` lines (as ``pipetask --long-log``).
LONG_LOG_FORMAT = (
    "%(levelname)s %(asctime)s %(name)s (%(processName)s)(%(filename)s:%(lineno)s) - %(message)s"
)
SHORT_LOG_FORMAT = "%(name)s %(levelname)s: %(message)s"


@dataclasses.dataclass(frozen=True)
class LogSettings:
    """Logging configuration shared by the parent and the workers.

    Attributes
    ----------
    levels : `tuple` [(`str`, `int`), ...]
        ``(logger name, level)`` pairs in the order given; ``""`` is the root logger.
    long_format : `bool`
        Use the long line format (``--longlog``).
    """

    levels: tuple[tuple[str, int], ...] = ()
    long_format: bool = False


#: Loggers whose console output is redundant with the execution layer's own lines: the failure report of
#: SingleQuantumExecutor (our progress line carries the message) and the missing-eups notice.  They are
#: filtered at the console handler only, so the per-quantum logs stored in the butler keep them.
_CONSOLE_MUTED = ("lsst.pipe.base.single_quantum_executor", "lsst.utils.packages")


class _StderrHandler(logging.StreamHandler):
    """A stream handler that always writes to the current ``sys.stderr`` (which may be replaced)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _ConsoleFilter(logging.Filter):
    """Drop records of `_CONSOLE_MUTED` loggers that no ``-L`` option names."""

    def __init__(self, named: set[str]):
        super().__init__()
        self._muted = tuple(name for name in _CONSOLE_MUTED if name not in named)

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(self._muted) or record.levelno >= logging.CRITICAL


def configure_logging(settings: LogSettings) -> None:
    """Send log records to stderr with the requested format and levels.

    The middleware's own per-quantum chatter (``lsst.pipe.base``, ``lsst.daf.butler``, ``lsst.ctrl``) is
    kept at WARNING unless a ``-L`` level names it explicitly.
    """
    root = logging.getLogger()
    formatter = logging.Formatter(LONG_LOG_FORMAT if settings.long_format else SHORT_LOG_FORMAT)
    handler = next((h for h in root.handlers if getattr(h, "_dia_pipe", False)), None)
    if handler is None:
        handler = _StderrHandler()
        handler._dia_pipe = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    named = {name for name, _ in settings.levels}
    handler.setFormatter(formatter)
    handler.filters = [_ConsoleFilter(named)]
    root.setLevel(logging.INFO)
    for quiet in ("lsst.pipe.base", "lsst.daf.butler", "lsst.ctrl"):
        if quiet not in named:
            logging.getLogger(quiet).setLevel(logging.WARNING)
    # Its empty-graph warning (a page of query recipe) is replaced by the driver's one-line warning.
    if "lsst.pipe.base.quantum_graph_builder" not in named:
        logging.getLogger("lsst.pipe.base.quantum_graph_builder").setLevel(logging.CRITICAL)
    for name, level in settings.levels:
        logging.getLogger(name or None).setLevel(level)


@dataclasses.dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs once, at start-up.

    Attributes
    ----------
    repo : `str`
        Butler repository (its config is parsed once per worker).
    universe : `lsst.daf.butler.DimensionUniverse`
        Dimension universe of the repository.
    log_settings : `LogSettings`
        Logging configuration.
    preload : `tuple` [`str`, ...]
        Modules to import at start-up (the task modules), so the first quantum does not pay for them.
    """

    repo: str
    universe: DimensionUniverse
    log_settings: LogSettings = LogSettings()
    preload: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TaskPayload:
    """A pickled task node plus the registry dataset types, sent with every quantum and unpickled once.

    Attributes
    ----------
    digest : `str`
        Hash of ``blob`` (cache key in the workers).
    blob : `bytes`
        ``pickle.dumps((task_node, dataset_types))``.
    """

    digest: str
    blob: bytes

    @classmethod
    def make(cls, task_node: TaskNode, dataset_types: Mapping[str, DatasetType]) -> TaskPayload:
        """Pickle ``task_node`` and ``dataset_types``."""
        blob = pickle.dumps((task_node, dict(dataset_types)), protocol=pickle.HIGHEST_PROTOCOL)
        return cls(hashlib.sha1(blob).hexdigest(), blob)


@dataclasses.dataclass(frozen=True)
class QuantumJob:
    """One quantum to execute."""

    quantum_id: uuid.UUID
    task: TaskPayload
    quantum: Quantum


class QuantumStatus(enum.Enum):
    """Outcome of one quantum."""

    DONE = "done"
    NO_WORK = "no work"
    SKIPPED = "skipped"
    FAILED = "failed"
    BLOCKED = "blocked"
    INTERRUPTED = "interrupted"


@dataclasses.dataclass
class QuantumResult:
    """What a worker returns for one quantum.

    Attributes
    ----------
    quantum_id : `uuid.UUID`
        Quantum ID.
    status : `QuantumStatus`
        ``DONE``, ``NO_WORK`` or ``FAILED``.
    seconds : `float`
        Wall-clock time spent in the worker.
    provenance : `lsst.daf.butler.QuantumProvenanceData` or `None`
        Datastore records of the outputs (successful quanta only).
    error : `str` or `None`
        One-line ``"ExceptionType: message"`` of a failure.
    traceback : `str` or `None`
        Formatted traceback of a failure.
    exception : `BaseException` or `None`
        The exception itself, in-process only (not sent back by worker processes).
    """

    quantum_id: uuid.UUID
    status: QuantumStatus
    seconds: float
    provenance: QuantumProvenanceData | None = None
    error: str | None = None
    traceback: str | None = None
    exception: BaseException | None = dataclasses.field(default=None, compare=False)

    @classmethod
    def from_exception(cls, quantum_id: uuid.UUID, exc: BaseException, seconds: float = 0.0) -> QuantumResult:
        """Return the result of a quantum that failed with ``exc``."""
        trace = "".join(traceback.format_exception(exc))
        return cls(
            quantum_id, QuantumStatus.FAILED, seconds, error=_one_line(exc), traceback=trace, exception=exc
        )

    def __getstate__(self) -> dict[str, Any]:
        # The exception object may not pickle; its text travels in ``error`` and ``traceback``.
        state = dict(self.__dict__)
        state["exception"] = None
        return state


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class QuantumRunner:
    """Run quanta on quantum-backed butlers of one repository.

    Parameters
    ----------
    repo : `str`
        Butler repository; its configuration is parsed once here.
    universe : `lsst.daf.butler.DimensionUniverse`
        Dimension universe of the repository.
    """

    def __init__(self, repo: str, universe: DimensionUniverse):
        self._config = ButlerConfig(repo)
        self._universe = universe

    def run(
        self,
        task_node: TaskNode,
        dataset_types: Mapping[str, DatasetType],
        quantum: Quantum,
        quantum_id: uuid.UUID,
    ) -> QuantumResult:
        """Execute one quantum; never raises for a task failure.

        Returns
        -------
        result : `QuantumResult`
            Outcome with provenance (success) or the error (failure).
        """
        start = time.perf_counter()
        qbb = QuantumBackedButler.initialize(
            self._config, quantum, self._universe, dataset_types=dataset_types
        )
        try:
            executor = SingleQuantumExecutor(butler=qbb, clobber_outputs=True)
            outcome = executor.execute(task_node, quantum, quantum_id)
            provenance = qbb.extract_provenance_data()
        except Exception as exc:  # noqa: BLE001 - a task failure of any kind is reported, not raised
            return QuantumResult.from_exception(quantum_id, exc, time.perf_counter() - start)
        finally:
            qbb.close()
        status = QuantumStatus.NO_WORK if outcome.adjusted_no_work else QuantumStatus.DONE
        return QuantumResult(quantum_id, status, time.perf_counter() - start, provenance=provenance)


class _WorkerState:
    """Per-process state of a worker (set by `initialize_worker`)."""

    runner: QuantumRunner | None = None
    events: Any = None
    tasks: dict[str, tuple[TaskNode, dict[str, DatasetType]]] = {}


def _exit_when_closed(lifeline: Any) -> None:
    """Block until the parent closes (or loses) its end of the lifeline pipe, then end this process."""
    try:
        lifeline.recv()
    except (EOFError, OSError):
        pass
    os._exit(0)


def initialize_worker(setup: WorkerSetup, events: Any | None, lifeline: Any | None) -> None:
    """Initialise a worker process: logging, memory allocator (`retain_freed_memory`), imports, butler config;
    announce readiness on ``events``.

    Parameters
    ----------
    setup : `WorkerSetup`
        Start-up information.
    events : `multiprocessing.SimpleQueue` or `None`
        Where to post ``("ready", pid)`` and ``("start", quantum_id, pid, time)`` events; `None` in-process.
    lifeline : `multiprocessing.connection.Connection` or `None`
        Reading end of a pipe: the worker exits as soon as the parent closes the other end (or dies).
    """
    if events is not None:
        # Ctrl-C is handled by the parent, which stops the workers itself.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        configure_logging(setup.log_settings)
    retain_freed_memory()
    if lifeline is not None:
        threading.Thread(target=_exit_when_closed, args=(lifeline,), daemon=True, name="lifeline").start()
    for module in setup.preload:
        importlib.import_module(module)
    _WorkerState.runner = QuantumRunner(setup.repo, setup.universe)
    _WorkerState.events = events
    _WorkerState.tasks = {}
    if events is not None:
        events.put(("ready", os.getpid()))


def ping_worker() -> int:
    """Return the worker's process id (used to start all workers ahead of the first quantum)."""
    return os.getpid()


def run_quantum_job(job: QuantumJob) -> QuantumResult:
    """Execute one quantum in an initialised worker."""
    if _WorkerState.events is not None:
        _WorkerState.events.put(("start", job.quantum_id, os.getpid(), time.time()))
    cached = _WorkerState.tasks.get(job.task.digest)
    if cached is None:
        cached = pickle.loads(job.task.blob)
        _WorkerState.tasks[job.task.digest] = cached
    task_node, dataset_types = cached
    assert _WorkerState.runner is not None, "worker not initialised"
    return _WorkerState.runner.run(task_node, dataset_types, job.quantum, job.quantum_id)


def preload_modules(task_class_names: Sequence[str]) -> tuple[str, ...]:
    """Return the modules defining ``task_class_names`` (fully-qualified class names)."""
    return tuple(sorted({name.rpartition(".")[0] for name in task_class_names if "." in name}))
