"""`run_driver`: one Gen2-style driver invocation, from ``argv`` to exit status."""

from __future__ import annotations

__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "main", "run_driver"]

import cProfile
import logging
import sys
from collections.abc import Sequence
from functools import partial

from lsst.daf.butler import Butler

from ..execution import (
    ExecutionSummary,
    RunRequest,
    RunRequestError,
    WorkerStartupError,
    configure_logging,
    execute_plan,
    open_repository,
    plan_run,
    start_workers,
)
from ..execution.batch import submit_plan
from .arguments import DriverArguments, parse_arguments
from .config_overrides import ConfigOverrideError, configure_pipeline
from .data_ids import DataIdError, build_query
from .show import format_configs, format_data, format_pipeline, format_tasks
from .spec import DriverSpec, load_pipeline

_LOG = logging.getLogger("lsst.dia.pipe.cli")

#: Exit status of a usage error (bad argument, repository, collection, config...).
EXIT_USAGE = 2
#: Exit status after Ctrl-C.
EXIT_INTERRUPTED = 130
#: Largest exit status a process can return.
_EXIT_MAX = 255


def _build_request(spec: DriverSpec, args: DriverArguments, butler: Butler) -> RunRequest:
    extra = partial(spec.apply_arguments, args.namespace) if spec.apply_arguments is not None else None
    pipeline_graph = configure_pipeline(load_pipeline(spec), args.overrides, spec.config_labels, extra)
    where, bind = build_query(args.ids, spec.id_keys, butler.dimensions, prefix="id")
    if args.select_ids:
        select_where, select_bind = build_query(
            args.select_ids, spec.select_keys, butler.dimensions, prefix="sel"
        )
        if select_where:
            where = f"({where}) AND ({select_where})" if where else select_where
            bind = {**bind, **select_bind}
    return RunRequest(
        repo=args.repo,
        output=args.output,
        pipeline_graph=pipeline_graph,
        inputs=args.inputs,
        input_rerun=args.input_rerun,
        where=where,
        bind=bind,
        selection=args.selection,
        clobber_output=args.clobber_output,
        clobber_config=args.clobber_config,
        dry_run=args.dry_run,
        local=args.local,
        batch=args.batch,
    )


def _show_static(args: DriverArguments, request: RunRequest, butler: Butler) -> None:
    show = args.show
    if show.config_globs is not None:
        print(format_configs(request.pipeline_graph, show.config_globs))
    if show.tasks:
        print(format_tasks(request.pipeline_graph))
    if show.pipeline:
        resolved = request.pipeline_graph.copy()
        resolved.resolve(butler.registry)
        print(format_pipeline(resolved, args.overrides))


def _execute(spec: DriverSpec, args: DriverArguments) -> int:
    """Everything after argument parsing; returns the exit status."""
    butler = open_repository(args.repo)
    request = _build_request(spec, args, butler)
    _show_static(args, request, butler)
    if args.show.stop_after and not args.show.data:
        return 0
    will_run = not (args.show.stop_after or args.dry_run or request.batch is not None)
    pool = start_workers(request, butler.dimensions, args.log_settings) if will_run else None
    try:
        plan = plan_run(request, butler)
        if args.show.data:
            print(format_data(plan.data_ids(), plan.skipped))
        if args.show.stop_after:
            return 0
        if plan.n_quanta == 0:
            done = sum(plan.skipped.values())
            if done:
                _LOG.warning(
                    "Nothing to do: the %d data IDs selected by %s are already done in %s "
                    "(use --clobber-output to redo them).",
                    done,
                    request.selection,
                    plan.rerun.chain,
                )
            else:
                _LOG.warning("No data matched %s in %s.", request.selection, ", ".join(plan.search_path))
            return 0
        if request.batch is not None:
            summary = submit_plan(plan, dry_run=args.dry_run)
            if summary is None:
                return 0
        elif args.dry_run:
            print(plan.describe())
            return 0
        else:
            summary = execute_plan(plan, pool, args.log_settings)
            pool = None
    finally:
        if pool is not None:
            pool.shutdown(kill=True)
    return _report(summary, plan.rerun.chain)


def _report(summary: ExecutionSummary, chain: str) -> int:
    print(f"Summary of {summary.output_run or chain} ({summary.execution_seconds:.1f}s):")
    print(summary.format_table())
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return min(summary.n_failed, _EXIT_MAX)


def run_driver(spec: DriverSpec, argv: Sequence[str] | None = None) -> int:
    """Run one driver invocation.

    Parameters
    ----------
    spec : `DriverSpec`
        The driver.
    argv : `list` [`str`], optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : `int`
        The number of data IDs (quanta) that failed, or were blocked by a failed upstream quantum, capped
        at 255; 0 when all succeeded or nothing matched; 2 for a usage error (reported before anything is
        written: bad argument, missing repository or collection, malformed ``--id``, unknown config
        field, config differing from the rerun's without ``--clobber-config``...); 130 after Ctrl-C;
        1 when worker processes die before running anything (`WorkerStartupError`).

    Raises
    ------
    lsst.dia.pipe.execution.QuantumExecutionError
        With ``--doraise``, at the first failed quantum (after registering what succeeded).

    Notes
    -----
    Local runs with ``--cores`` > 1 (or ``--timeout``) spawn worker processes, which re-import the main
    module: entry-point scripts must call this under ``if __name__ == "__main__":``.
    """
    try:
        args = parse_arguments(spec, argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    configure_logging(args.log_settings)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        return _execute(spec, args)
    except (RunRequestError, ConfigOverrideError, DataIdError) as exc:
        print(f"{spec.name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WorkerStartupError as exc:
        print(f"{spec.name}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{spec.name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
            _LOG.info("Profile written to %s.", args.profile)


def main(spec: DriverSpec) -> None:
    """Entry point for ``bin/`` scripts: ``sys.exit(run_driver(spec))``."""
    sys.exit(run_driver(spec))
