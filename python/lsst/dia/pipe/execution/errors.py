"""Typed errors of the execution layer.

`RunRequestError` and its subclasses describe a request that cannot be run as given; they are raised before
anything is written and the command line turns them into exit status 2 with a one-line message.
"""

from __future__ import annotations

__all__ = [
    "BatchSubmissionError",
    "ConfigMismatchError",
    "MissingCollectionError",
    "MissingRepositoryError",
    "QuantumExecutionError",
    "RunRequestError",
    "WorkerStartupError",
]

from collections.abc import Sequence


class RunRequestError(ValueError):
    """A run request that cannot be executed as given (bad repo, collection, config, option...)."""


class MissingRepositoryError(RunRequestError):
    """The butler repository does not exist or cannot be opened."""

    def __init__(self, repo: str, reason: str):
        super().__init__(f"cannot open butler repository {repo!r}: {reason}")
        self.repo = repo
        self.reason = reason


class MissingCollectionError(RunRequestError):
    """An input collection named on the command line does not exist in the repository."""

    def __init__(self, collection: str, repo: str):
        super().__init__(f"input collection {collection!r} does not exist in repository {repo!r}")
        self.collection = collection
        self.repo = repo


class ConfigMismatchError(RunRequestError):
    """A task config differs from the one stored earlier in the same rerun."""

    def __init__(self, label: str, collection: str, differences: Sequence[str]):
        shown = "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")
        super().__init__(
            f"config of task {label!r} differs from the one stored in {collection!r} ({shown}); "
            "use --clobber-config to run with the new config anyway"
        )
        self.label = label
        self.collection = collection
        self.differences = list(differences)


class QuantumExecutionError(RuntimeError):
    """A quantum failed and the caller asked for failures to be raised (``--doraise``)."""

    def __init__(self, label: str, data_id: str, message: str, remote_traceback: str | None = None):
        text = f"{label} {data_id} failed: {message}"
        if remote_traceback:
            text += "\nTraceback of the failed quantum:\n" + remote_traceback
        super().__init__(text)
        self.label = label
        self.data_id = data_id
        self.message = message
        self.remote_traceback = remote_traceback


class BatchSubmissionError(RuntimeError):
    """The batch system (bps) could not run the workflow."""

    def __init__(self, command: Sequence[str], returncode: int, log_path: str):
        super().__init__(
            f"batch submission {' '.join(command)!r} exited with status {returncode}; see {log_path}"
        )
        self.command = list(command)
        self.returncode = returncode
        self.log_path = log_path


class WorkerStartupError(RuntimeError):
    """Worker processes keep dying before running any quantum (e.g. a task module fails to import)."""

    def __init__(self, attempts: int):
        super().__init__(
            f"worker processes died {attempts} times in a row before starting any quantum; "
            "see the worker errors above (failing imports, missing environment?)"
        )
        self.attempts = attempts
