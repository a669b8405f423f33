"""What to run and how: the run request the command line hands to the execution layer."""

from __future__ import annotations

__all__ = ["BATCH_TYPES", "BatchOptions", "LocalOptions", "RunRequest"]

import dataclasses
from collections.abc import Mapping
from typing import Any

from lsst.pipe.base.pipeline_graph import PipelineGraph

from ..repo.collections import DEFAULT_INPUT_COLLECTION, rerun_collection

#: Batch systems reachable through ``lsst-ctrl-bps`` + ``lsst-ctrl-bps-parsl``.
BATCH_TYPES = ("slurm", "pbs", "smp")


@dataclasses.dataclass(frozen=True)
class LocalOptions:
    """Options of local execution (``--batch-type none``).

    Attributes
    ----------
    cores : `int`
        Number of persistent worker processes; 1 runs quanta in the calling process (unless ``timeout``
        is set, which needs a worker process that can be killed).
    timeout : `float` or `None`
        Wall-clock limit per quantum in seconds; a quantum exceeding it is killed and counted as failed.
    doraise : `bool`
        Stop at the first failed quantum and raise `QuantumExecutionError` (after registering what
        succeeded) instead of continuing with the others.
    """

    cores: int = 1
    timeout: float | None = None
    doraise: bool = False

    def __post_init__(self) -> None:
        if self.cores < 1:
            raise ValueError(f"cores must be >= 1, got {self.cores}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")

    @property
    def in_process(self) -> bool:
        """Whether quanta run in the calling process."""
        return self.cores == 1 and self.timeout is None


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """Options of batch execution through bps + Parsl (the ctrl_pool options).

    Attributes
    ----------
    batch_type : `str`
        ``"slurm"``, ``"pbs"`` (Torque/PBS) or ``"smp"`` (the local machine through Parsl).
    nodes : `int`
        Nodes per batch job (``--nodes``).
    procs : `int` or `None`
        Cores (worker slots) per node (``--procs``); `None` lets the scheduler decide (one for PBS).
    time_per_quantum : `float` or `None`
        Expected seconds per quantum (``--time``); the walltime is derived from it when ``walltime`` is
        not given.
    walltime : `float` or `None`
        Wall-clock limit of the batch job in seconds (``--walltime``).
    queue : `str` or `None`
        Slurm partition or PBS queue (``--queue``).
    job_name : `str` or `None`
        Batch job name (``--job``).
    output_dir : `str` or `None`
        Directory for submission files and logs (``--batch-output``).
    submit_options : `tuple` [`str`, ...]
        Extra scheduler flags given with ``--batch-submit`` (rendered as directives).
    scheduler_options : `tuple` [`str`, ...]
        Extra scheduler directives given with ``--batch-options``.
    verbose : `bool`
        Echo the bps/Parsl output on the console (``--batch-verbose``).
    """

    batch_type: str
    nodes: int = 1
    procs: int | None = None
    time_per_quantum: float | None = None
    walltime: float | None = None
    queue: str | None = None
    job_name: str | None = None
    output_dir: str | None = None
    submit_options: tuple[str, ...] = ()
    scheduler_options: tuple[str, ...] = ()
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.batch_type not in BATCH_TYPES:
            raise ValueError(f"batch_type must be one of {BATCH_TYPES}, got {self.batch_type!r}")
        if self.nodes < 1:
            raise ValueError(f"nodes must be >= 1, got {self.nodes}")
        if self.procs is not None and self.procs < 1:
            raise ValueError(f"procs must be >= 1, got {self.procs}")
        for name in ("time_per_quantum", "walltime"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 seconds, got {value}")


@dataclasses.dataclass
class RunRequest:
    """A complete description of one driver invocation.

    Attributes
    ----------
    repo : `str`
        Butler repository root (or butler.yaml).
    output : `str`
        Rerun name ``OUT``: outputs go to the CHAINED collection ``rerun/OUT``, one new RUN per invocation.
    pipeline_graph : `lsst.pipe.base.pipeline_graph.PipelineGraph`
        The pipeline with every config override already applied (not yet resolved).
    inputs : `tuple` [`str`, ...]
        Input collections (``--input``).
    input_rerun : `str` or `None`
        ``IN`` of ``--rerun IN:OUT``: ``rerun/IN`` is searched before ``inputs``.
    where : `str`
        Butler data query expression selecting the data (from ``--id`` / ``--selectId``).
    bind : `dict`
        Bind values of the identifiers in ``where``.
    selection : `str`
        Human-readable data selection, for messages (e.g. ``"--id visit=1^2"``).
    clobber_output : `bool`
        Re-run quanta already done in the rerun, and remove their superseded outputs from older RUNs of
        the rerun once the new ones are registered.
    clobber_config : `bool`
        Accept a task config that differs from the one stored earlier in the rerun.
    dry_run : `bool`
        Plan only (and, for batch, write the submission files); write nothing to the repository.
    local : `LocalOptions`
        Options of local execution.
    batch : `BatchOptions` or `None`
        Options of batch execution; `None` runs locally.
    """

    repo: str
    output: str
    pipeline_graph: PipelineGraph
    inputs: tuple[str, ...] = (DEFAULT_INPUT_COLLECTION,)
    input_rerun: str | None = None
    where: str = ""
    bind: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    selection: str = "all data"
    clobber_output: bool = False
    clobber_config: bool = False
    dry_run: bool = False
    local: LocalOptions = dataclasses.field(default_factory=LocalOptions)
    batch: BatchOptions | None = None

    @property
    def output_collection(self) -> str:
        """The output CHAINED collection ``rerun/OUT``."""
        return rerun_collection(self.output)

    @property
    def input_collections(self) -> tuple[str, ...]:
        """Collections read in addition to the output chain: ``rerun/IN`` (if any), then ``inputs``."""
        head = (rerun_collection(self.input_rerun),) if self.input_rerun else ()
        return head + tuple(c for c in self.inputs if c not in head)
