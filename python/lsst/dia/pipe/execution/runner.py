"""From a `RunRequest` to executed quanta: `plan_run` (read-only), then `execute_plan` (local workers) or
`lsst.dia.pipe.execution.batch.submit_plan` (bps + Parsl).

A typical local run (what `lsst.dia.pipe.cli.run_driver` does)::

    butler = open_repository(request.repo)
    pool = start_workers(request, butler.dimensions)   # workers import while the graph is built
    plan = plan_run(request, butler)
    summary = execute_plan(plan, pool)
"""

from __future__ import annotations

__all__ = ["RunPlan", "execute_plan", "plan_run", "start_workers"]

import dataclasses
import logging
from collections import defaultdict

from lsst.daf.butler import Butler, DimensionUniverse, InvalidQueryError
from lsst.pipe.base.all_dimensions_quantum_graph_builder import AllDimensionsQuantumGraphBuilder
from lsst.pipe.base.pipeline_graph import IncompatibleDatasetTypeError, PipelineGraph
from lsst.pipe.base.quantum_graph import PredictedQuantumGraph, PredictedQuantumGraphComponents
from lsst.pipe.base.quantum_graph_builder import QuantumGraphBuilderError
from lsst.pipe.base.separable_pipeline_executor import SeparablePipelineExecutor

from .errors import ConfigMismatchError, RunRequestError
from .graph_executor import PersistentWorkerExecutor
from .pool import InlinePool, JobPool, WorkerPool
from .progress import ExecutionSummary, format_data_id
from .request import RunRequest
from .rerun import (
    RerunState,
    config_differences,
    define_output_chain,
    new_run_name,
    open_repository,
    prune_superseded,
    read_rerun,
    require_collections,
)
from .worker import LogSettings, WorkerSetup, preload_modules

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass
class RunPlan:
    """A run request resolved against the repository; nothing written yet.

    Attributes
    ----------
    request : `RunRequest`
        The request.
    rerun : `RerunState`
        The output chain as found.
    output_run : `str`
        The new RUN collection the outputs will go to.
    search_path : `tuple` [`str`, ...]
        Collections the quantum graph reads from (the output chain first, when it exists).
    components : `lsst.pipe.base.quantum_graph.PredictedQuantumGraphComponents`
        The quantum graph, in writeable form (batch submission saves it).
    graph : `lsst.pipe.base.quantum_graph.PredictedQuantumGraph`
        The quantum graph of the quanta still to run.
    skipped : `dict` [`str`, `int`]
        Per task label, quanta already done in the rerun (not in the graph).
    """

    request: RunRequest
    rerun: RerunState
    output_run: str
    search_path: tuple[str, ...]
    components: PredictedQuantumGraphComponents
    graph: PredictedQuantumGraph
    skipped: dict[str, int]

    @property
    def n_quanta(self) -> int:
        """Number of quanta to run."""
        return len(self.graph)

    def data_ids(self) -> dict[str, list[str]]:
        """Formatted data IDs of the quanta to run, per task label (pipeline order)."""
        result: dict[str, list[str]] = {}
        for label, quanta in self.graph.quanta_by_task.items():
            result[label] = [format_data_id(data_id) for data_id in sorted(quanta)]
        return result

    def describe(self) -> str:
        """Multi-line description of what would run (``--dry-run``)."""
        lines = [f"Output run {self.output_run} in {self.rerun.chain}; reading {', '.join(self.search_path)}"]
        for label, data_ids in self.data_ids().items():
            skipped = self.skipped.get(label, 0)
            lines.append(f"{label}: {len(data_ids)} quanta to run, {skipped} already done")
        return "\n".join(lines)


def _count_done(
    butler: Butler,
    request: RunRequest,
    rerun: RerunState,
    search_path: tuple[str, ...],
    pipeline_graph: PipelineGraph,
) -> dict[str, int]:
    """Count, per task, quanta whose metadata already exists in the rerun for the requested data."""
    counts: dict[str, int] = defaultdict(int)
    if not rerun.own_runs or request.clobber_output:
        return counts
    # Default collections let the butler infer governor values (e.g. the instrument), as graph building does.
    butler = butler.clone(collections=list(search_path))
    for label, task_node in pipeline_graph.tasks.items():
        name = task_node.metadata_output.dataset_type_name
        try:
            refs = butler.query_datasets(
                name, collections=list(rerun.own_runs), where=request.where, bind=request.bind, explain=False
            )
        except LookupError:
            continue
        counts[label] = len({ref.dataId for ref in refs})
    return counts


def plan_run(request: RunRequest, butler: Butler | None = None) -> RunPlan:
    """Resolve ``request`` against the repository and build its quantum graph; write nothing.

    Parameters
    ----------
    request : `RunRequest`
        What to run.
    butler : `lsst.daf.butler.Butler`, optional
        An open (read-only) butler of ``request.repo``.

    Returns
    -------
    plan : `RunPlan`
        The plan; ``plan.n_quanta == 0`` when nothing is left to do or nothing matched.

    Raises
    ------
    RunRequestError
        Missing repository or input collection, invalid data query, or (without ``clobber_config``) a task
        config that differs from the one stored in the rerun.
    """
    if butler is None:
        butler = open_repository(request.repo)
    rerun = read_rerun(butler, request.output_collection)
    require_collections(butler, request.input_collections, request.repo)
    search_path = ((rerun.chain,) if rerun.exists else ()) + request.input_collections
    output_run = new_run_name(butler, rerun.chain)
    metadata = {
        "input": list(search_path),
        "output": rerun.chain,
        "output_run": output_run,
        "data_query": request.where,
    }
    try:
        builder = AllDimensionsQuantumGraphBuilder(
            request.pipeline_graph,
            butler,
            where=request.where,
            bind=request.bind,
            input_collections=list(search_path),
            output_run=output_run,
            skip_existing_in=[rerun.chain] if rerun.exists and not request.clobber_output else [],
        )
        components = builder.finish(metadata=metadata, attach_datastore_records=True)
    except InvalidQueryError as exc:
        hint = " (add instrument=... or skymap=... to --id when the repository has several)"
        raise RunRequestError(f"cannot select data with {request.selection}: {exc}{hint}") from exc
    except (LookupError, QuantumGraphBuilderError, IncompatibleDatasetTypeError) as exc:
        raise RunRequestError(f"cannot build the quantum graph for {request.selection}: {exc}") from exc
    graph = components.assemble()
    pipeline_graph = graph.pipeline_graph
    differences = config_differences(butler, rerun, pipeline_graph)
    if differences and not request.clobber_config:
        label, messages = next(iter(differences.items()))
        raise ConfigMismatchError(label, rerun.chain, messages)
    for label in differences:
        _LOG.warning("Config of %s differs from the one stored in %s (--clobber-config).", label, rerun.chain)
    skipped = _count_done(butler, request, rerun, search_path, pipeline_graph)
    return RunPlan(request, rerun, output_run, search_path, components, graph, dict(skipped))


def start_workers(
    request: RunRequest, universe: DimensionUniverse, log_settings: LogSettings | None = None
) -> JobPool:
    """Start the worker pool for ``request`` (``--cores``), so its imports overlap graph building.

    Parameters
    ----------
    request : `RunRequest`
        The request (its pipeline gives the modules to preload; ``local`` the number of workers).
    universe : `lsst.daf.butler.DimensionUniverse`
        Dimension universe of the repository.
    log_settings : `LogSettings`, optional
        Logging configuration of the workers.

    Returns
    -------
    pool : `JobPool`
        A `WorkerPool`, or an `InlinePool` when quanta run in the calling process.
    """
    preload = preload_modules([node.task_class_name for node in request.pipeline_graph.tasks.values()])
    setup = WorkerSetup(request.repo, universe, log_settings or LogSettings(), preload)
    if request.local.in_process:
        return InlinePool(setup)
    return WorkerPool(request.local.cores, setup)


def execute_plan(
    plan: RunPlan, pool: JobPool | None = None, log_settings: LogSettings | None = None
) -> ExecutionSummary:
    """Execute a plan locally: create the output RUN and chain, pre-execute, run every quantum.

    Parameters
    ----------
    plan : `RunPlan`
        The plan (must not be empty).
    pool : `JobPool`, optional
        A started pool (see `start_workers`); one is started if not given.  It is shut down on return.
    log_settings : `LogSettings`
        Logging configuration for new workers.

    Returns
    -------
    summary : `ExecutionSummary`
        Outcomes; ``summary.interrupted`` is set after Ctrl-C (outputs completed so far are registered).

    Raises
    ------
    QuantumExecutionError
        A quantum failed and ``request.local.doraise`` is set.
    """
    request = plan.request
    butler = open_repository(
        request.repo, writeable=True, run=plan.output_run, collections=list(plan.search_path)
    )
    if pool is None:
        pool = start_workers(request, butler.dimensions, log_settings)
    try:
        butler.collections.register(plan.output_run)
        executor = SeparablePipelineExecutor(butler)
        executor.pre_execute_qgraph(plan.graph, register_dataset_types=True)
        define_output_chain(butler, plan.rerun, plan.output_run, request.input_collections)
        graph_executor = PersistentWorkerExecutor(
            butler, pool, timeout=request.local.timeout, doraise=request.local.doraise
        )
        try:
            executor.run_pipeline(plan.graph, graph_executor=graph_executor)
        except KeyboardInterrupt:
            pass
        finally:
            if request.clobber_output:
                prune_superseded(butler, plan.rerun, plan.output_run, graph_executor.registered_refs)
    finally:
        pool.shutdown(kill=True)
    summary = graph_executor.summary
    summary.skipped = plan.skipped
    summary.output_run = plan.output_run
    return summary
