"""Gen2 reruns on Gen3 collections.

``--rerun OUT`` is the CHAINED collection ``rerun/OUT``.  Each invocation adds a new timestamped RUN at the
front of the chain, so earlier results stay readable (and shadowed by newer ones); the inputs sit at the
end of the chain.  The task configs stored in the chain are the reference for later invocations.
"""

from __future__ import annotations

__all__ = [
    "RerunState",
    "config_differences",
    "define_output_chain",
    "open_repository",
    "prune_superseded",
    "read_rerun",
    "require_collections",
]

import dataclasses
import datetime
import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence

from lsst.daf.butler import Butler, CollectionType, DatasetRef
from lsst.daf.butler import MissingCollectionError as _ButlerMissing
from lsst.pipe.base.pipeline_graph import PipelineGraph

from .errors import MissingCollectionError, MissingRepositoryError, RunRequestError

_LOG = logging.getLogger(__name__)


def open_repository(repo: str, **kwargs) -> Butler:
    """Open a butler repository, turning every failure into `MissingRepositoryError`.

    Parameters
    ----------
    repo : `str`
        Repository root or butler.yaml path.
    **kwargs
        Forwarded to `lsst.daf.butler.Butler.from_config` (``writeable``, ``run``, ``collections``).

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        The opened butler.
    """
    if "://" not in repo and not os.path.exists(repo):
        raise MissingRepositoryError(repo, "no such file or directory")
    try:
        return Butler.from_config(repo, **kwargs)
    except Exception as exc:  # noqa: BLE001 - any failure to open means the same thing to the user
        raise MissingRepositoryError(repo, f"{type(exc).__name__}: {exc}") from exc


def require_collections(butler: Butler, names: Iterable[str], repo: str) -> None:
    """Raise `MissingCollectionError` for the first of ``names`` absent from the repository."""
    for name in names:
        try:
            butler.collections.get_info(name)
        except _ButlerMissing:
            raise MissingCollectionError(name, repo) from None


@dataclasses.dataclass(frozen=True)
class RerunState:
    """The output chain of a rerun as found in the repository.

    Attributes
    ----------
    chain : `str`
        Name of the CHAINED collection (``rerun/OUT``).
    children : `tuple` [`str`, ...]
        Its direct children, newest RUN first; empty when the chain does not exist yet.
    own_runs : `tuple` [`str`, ...]
        The RUN collections written by earlier invocations of this rerun (``rerun/OUT/<timestamp>``).
    """

    chain: str
    children: tuple[str, ...] = ()
    own_runs: tuple[str, ...] = ()

    @property
    def exists(self) -> bool:
        """Whether the chain exists (i.e. the rerun was run before)."""
        return bool(self.children)


def read_rerun(butler: Butler, chain: str) -> RerunState:
    """Describe the output chain ``chain`` (which may not exist yet).

    Raises
    ------
    RunRequestError
        If ``chain`` exists but is not a CHAINED collection.
    """
    try:
        info = butler.collections.get_info(chain)
    except _ButlerMissing:
        return RerunState(chain)
    if info.type is not CollectionType.CHAINED:
        raise RunRequestError(
            f"output collection {chain!r} exists but is a {info.type.name} collection, not CHAINED"
        )
    children = tuple(info.children)
    own = tuple(c for c in children if c.startswith(chain + "/"))
    return RerunState(chain, children, own)


def new_run_name(butler: Butler, chain: str) -> str:
    """Return a new, unused RUN name ``<chain>/<UTC timestamp>``."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{chain}/{stamp}"
    suffix = 1
    while True:
        try:
            butler.collections.get_info(name)
        except _ButlerMissing:
            return name
        suffix += 1
        name = f"{chain}/{stamp}-{suffix}"


def config_differences(
    butler: Butler, state: RerunState, pipeline_graph: PipelineGraph
) -> dict[str, list[str]]:
    """Compare task configs with the newest ones stored in the rerun.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler to read from.
    state : `RerunState`
        The rerun; nothing is compared when it does not exist yet.
    pipeline_graph : `lsst.pipe.base.pipeline_graph.PipelineGraph`
        The configured pipeline.

    Returns
    -------
    differences : `dict` [`str`, `list` [`str`]]
        For each task label whose config differs, the config comparison messages.
    """
    if not state.own_runs:
        return {}
    result: dict[str, list[str]] = {}
    for label, task_node in pipeline_graph.tasks.items():
        dataset_type = task_node.init.config_output.dataset_type_name
        try:
            stored = butler.get(dataset_type, collections=list(state.own_runs))
        except (LookupError, FileNotFoundError):
            continue
        messages: list[str] = []
        if not task_node.config.compare(stored, shortcut=False, output=messages.append):
            result[label] = messages or ["configs differ"]
    return result


def define_output_chain(butler: Butler, state: RerunState, run: str, inputs: Sequence[str]) -> None:
    """Register ``run`` and put it at the front of the rerun chain (created if needed).

    The chain becomes ``[run] + existing children + inputs not already present``.
    """
    butler.collections.register(run, CollectionType.RUN)
    butler.collections.register(state.chain, CollectionType.CHAINED)
    children = [run, *state.children]
    children += [c for c in inputs if c not in children]
    butler.collections.redefine_chain(state.chain, children)


def prune_superseded(butler: Butler, state: RerunState, new_run: str, refs: Iterable[DatasetRef]) -> int:
    """Remove, from the earlier RUNs of the rerun, datasets superseded by ``refs`` (``--clobber-output``).

    Only datasets with the same dataset type and data ID as one of ``refs`` and living in one of
    ``state.own_runs`` are removed (registry entries and files); inputs and other reruns are never
    touched.

    Returns
    -------
    n_removed : `int`
        Number of datasets removed.
    """
    if not state.own_runs:
        return 0
    by_type: dict[str, set] = defaultdict(set)
    for ref in refs:
        if ref.run == new_run:
            by_type[ref.datasetType.name].add(ref.dataId.required_values)
    doomed: list[DatasetRef] = []
    for name, data_ids in by_type.items():
        old = butler.query_datasets(name, collections=list(state.own_runs), find_first=False, explain=False)
        doomed.extend(ref for ref in old if ref.dataId.required_values in data_ids)
    if doomed:
        butler.pruneDatasets(doomed, disassociate=True, unstore=True, purge=True)
        _LOG.info("Removed %d superseded datasets from earlier runs of %s.", len(doomed), state.chain)
    return len(doomed)
