"""Per-quantum progress lines and the end-of-run summary table."""

from __future__ import annotations

__all__ = ["ExecutionSummary", "ProgressReporter", "QuantumOutcome", "format_data_id"]

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from .worker import QuantumStatus

_LOG = logging.getLogger("lsst.dia.pipe.execution")

#: Dimensions left out of displayed data IDs (they rarely vary within a repository).
_QUIET_DIMENSIONS = frozenset({"instrument", "skymap"})

#: Display order of the usual dimensions (others follow alphabetically).
_DIMENSION_ORDER = {name: i for i, name in enumerate(("visit", "detector", "tract", "patch", "band"))}

#: Statuses that count against the exit status.
FAILURE_STATUSES = frozenset({QuantumStatus.FAILED, QuantumStatus.BLOCKED, QuantumStatus.INTERRUPTED})


def format_data_id(data_id: Mapping[str, Any] | Any) -> str:
    """Format a data ID Gen2-style, e.g. ``visit=12 detector=3`` (instrument and skymap left out).

    Parameters
    ----------
    data_id : `lsst.daf.butler.DataCoordinate` or mapping
        Data ID; only the required dimensions of a `DataCoordinate` are shown.
    """
    mapping = data_id.required if hasattr(data_id, "required") else data_id
    keys = sorted(
        (k for k in mapping if k not in _QUIET_DIMENSIONS), key=lambda k: (_DIMENSION_ORDER.get(k, 99), k)
    )
    items = [f"{k}={mapping[k]}" for k in keys]
    return " ".join(items) if items else "{}"


@dataclasses.dataclass(frozen=True)
class QuantumOutcome:
    """Final state of one quantum (or data ID).

    Attributes
    ----------
    task_label : `str`
        Task label.
    data_id : `str`
        Formatted data ID.
    status : `QuantumStatus`
        Outcome.
    seconds : `float`
        Execution time (0 when not executed).
    reason : `str`
        One-line reason of a failure, block or interruption.
    """

    task_label: str
    data_id: str
    status: QuantumStatus
    seconds: float = 0.0
    reason: str = ""


@dataclasses.dataclass
class ExecutionSummary:
    """All outcomes of a run.

    Attributes
    ----------
    outcomes : `list` [`QuantumOutcome`]
        Executed, failed, blocked or interrupted quanta.
    skipped : `dict` [`str`, `int`]
        Per task label, quanta not run because the rerun already holds their outputs.
    output_run : `str`
        The RUN collection written ("" when nothing was written).
    task_labels : `tuple` [`str`, ...]
        Task labels in pipeline order (rows of the table).
    execution_seconds : `float`
        Wall-clock time of the graph execution (after pre-execution, excluding worker start-up).
    """

    outcomes: list[QuantumOutcome] = dataclasses.field(default_factory=list)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)
    output_run: str = ""
    task_labels: tuple[str, ...] = ()
    execution_seconds: float = 0.0

    @property
    def n_failed(self) -> int:
        """Number of quanta that did not produce their outputs (failed, blocked or interrupted)."""
        return sum(o.status in FAILURE_STATUSES for o in self.outcomes)

    @property
    def interrupted(self) -> bool:
        """Whether the run was interrupted."""
        return any(o.status is QuantumStatus.INTERRUPTED for o in self.outcomes)

    def count(self, label: str, status: QuantumStatus) -> int:
        """Number of quanta of task ``label`` with ``status``."""
        if status is QuantumStatus.SKIPPED:
            return self.skipped.get(label, 0)
        return sum(o.task_label == label and o.status is status for o in self.outcomes)

    def format_table(self) -> str:
        """Return the summary table: one row per task, then one line per failure."""
        columns = [
            ("done", (QuantumStatus.DONE, QuantumStatus.NO_WORK)),
            ("skipped", (QuantumStatus.SKIPPED,)),
            ("failed", (QuantumStatus.FAILED,)),
            ("blocked", (QuantumStatus.BLOCKED,)),
        ]
        if self.interrupted:
            columns.append(("interrupted", (QuantumStatus.INTERRUPTED,)))
        labels = list(self.task_labels) or sorted({o.task_label for o in self.outcomes} | set(self.skipped))
        width = max([len("task"), *(len(label) for label in labels)])
        lines = ["task".ljust(width) + "".join(f"  {name:>11}" for name, _ in columns)]
        for label in labels:
            counts = [sum(self.count(label, s) for s in statuses) for _, statuses in columns]
            lines.append(label.ljust(width) + "".join(f"  {c:>11d}" for c in counts))
        order = {label: i for i, label in enumerate(labels)}
        problems = sorted(
            (o for o in self.outcomes if o.status in FAILURE_STATUSES),
            key=lambda o: order.get(o.task_label, 0),
        )
        if problems:
            lines.append(f"{len(problems)} data IDs not processed:")
            lines.extend(f"  {o.task_label} {o.data_id}: {o.status.value}: {o.reason}" for o in problems)
        return "\n".join(lines)


class ProgressReporter:
    """Log one line per finished quantum: ``label data_id status seconds [k/n]``.

    Parameters
    ----------
    total : `int`
        Number of quanta in the graph.
    """

    def __init__(self, total: int):
        self.total = total
        self.summary = ExecutionSummary()
        self._finished = 0

    def report(self, outcome: QuantumOutcome) -> None:
        """Record ``outcome`` and log its line."""
        self._finished += 1
        self.summary.outcomes.append(outcome)
        level = logging.INFO if outcome.status not in FAILURE_STATUSES else logging.WARNING
        reason = f" ({outcome.reason})" if outcome.reason else ""
        _LOG.log(
            level,
            "%s %s %s %.2fs [%d/%d]%s",
            outcome.task_label,
            outcome.data_id,
            outcome.status.value,
            outcome.seconds,
            self._finished,
            self.total,
            reason,
        )
