"""Execution of dia_pipe runs on the Gen3 middleware.

A `RunRequest` (built by `lsst.dia.pipe.cli`) is planned against the repository (`plan_run`: collections,
quantum graph, skip-existing, config checks; read-only), then executed locally by persistent worker
processes (`execute_plan`, ``--cores N``) or submitted to Slurm/PBS/SMP through bps + Parsl
(`lsst.dia.pipe.execution.batch.submit_plan`).
"""

from .errors import (
    BatchSubmissionError,
    ConfigMismatchError,
    MissingCollectionError,
    MissingRepositoryError,
    QuantumExecutionError,
    RunRequestError,
    WorkerStartupError,
)
from .graph_executor import PersistentWorkerExecutor
from .pool import InlinePool, JobPool, WorkerPool
from .progress import ExecutionSummary, ProgressReporter, QuantumOutcome, format_data_id
from .request import BATCH_TYPES, BatchOptions, LocalOptions, RunRequest
from .rerun import RerunState, open_repository, read_rerun
from .runner import RunPlan, execute_plan, plan_run, start_workers
from .memory import retain_freed_memory
from .worker import LogSettings, QuantumStatus, configure_logging

__all__ = [
    "BATCH_TYPES",
    "BatchOptions",
    "BatchSubmissionError",
    "ConfigMismatchError",
    "ExecutionSummary",
    "InlinePool",
    "JobPool",
    "LocalOptions",
    "LogSettings",
    "MissingCollectionError",
    "MissingRepositoryError",
    "PersistentWorkerExecutor",
    "ProgressReporter",
    "QuantumExecutionError",
    "QuantumOutcome",
    "QuantumStatus",
    "RerunState",
    "RunPlan",
    "RunRequest",
    "RunRequestError",
    "WorkerPool",
    "WorkerStartupError",
    "configure_logging",
    "execute_plan",
    "format_data_id",
    "retain_freed_memory",
    "open_repository",
    "plan_run",
    "read_rerun",
    "start_workers",
]
