#!/usr/bin/env python
"""Speed of the local executor: framework overhead per quantum and parallel efficiency.

Runs the toy pipeline (``lsst.dia.pipe.execution.tests.toy_tasks``) on a fresh toy repository:

- ``quantum_overhead_s``: wall-clock seconds per do-nothing quantum at ``--cores`` workers, times the
  number of workers (i.e. the cost one worker pays per quantum: QuantumBackedButler set-up, task
  construction, output/metadata/log writes, result transfer, registration in the parent);
- ``parallel_efficiency``: ``n * t_task / (cores * wall)`` for ``n`` quanta that each burn ``t_task`` CPU
  seconds;
- ``worker_utilisation``: sum of the per-quantum times measured in the workers over ``cores * wall``
  (1 means the parent never lets a worker idle);
- ``inprocess_overhead_s``: per-quantum cost of ``--cores 1`` (in the calling process), for comparison.

The machine may be shared with other work: the busy phase is repeated (``--repeat``) and the best run
kept.

Worker start-up (imports, once per run) is excluded from the timed phases and reported separately as
``worker_startup_s``.  Prints one JSON object.

Usage: ``python bench/bench_executor.py [--cores 2] [--quanta 40] [--task-seconds 1.0] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time

from lsst.dia.pipe.execution import (
    LocalOptions,
    LogSettings,
    RunRequest,
    execute_plan,
    plan_run,
    start_workers,
)
from lsst.dia.pipe.execution.rerun import open_repository
from lsst.dia.pipe.execution.tests.toy_repo import make_toy_repo
from lsst.dia.pipe.execution.tests.toy_tasks import ToyScaleTask
from lsst.pipe.base.pipeline_graph import PipelineGraph

#: Workers log warnings and errors only.
QUIET = LogSettings(levels=(("", logging.WARNING),))


def _toy_graph(task_seconds: float) -> PipelineGraph:
    config = ToyScaleTask.ConfigClass()
    config.sleep = task_seconds
    graph = PipelineGraph()
    graph.add_task("toyScale", ToyScaleTask, config)
    return graph


def _timed_run(
    repo: str, output: str, cores: int, task_seconds: float, n_quanta: int
) -> tuple[float, float, float]:
    """Run ``n_quanta`` toy quanta.

    Returns
    -------
    startup, wall, busy : `float`
        Worker start-up seconds, execution wall-clock seconds, and the sum of the per-quantum seconds
        measured inside the workers.
    """
    request = RunRequest(
        repo=repo,
        output=output,
        pipeline_graph=_toy_graph(task_seconds),
        where="visit <= :n_visits",
        bind={"n_visits": n_quanta // 4},
        local=LocalOptions(cores=cores),
    )
    butler = open_repository(repo)
    start = time.perf_counter()
    pool = start_workers(request, butler.dimensions, log_settings=QUIET)
    pool.wait_ready()
    startup = time.perf_counter() - start
    plan = plan_run(request, butler)
    assert plan.n_quanta == n_quanta, (plan.n_quanta, n_quanta)
    summary = execute_plan(plan, pool)
    assert summary.n_failed == 0
    return startup, summary.execution_seconds, sum(o.seconds for o in summary.outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--quanta", type=int, default=40, help="multiple of 4")
    parser.add_argument("--task-seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2, help="busy-phase repetitions (best kept)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_toy_repo(os.path.join(tmp, "repo"), n_visits=args.quanta // 4, n_detectors=4)
        startup, trivial, trivial_worker = _timed_run(repo, "trivial", args.cores, 0.0, args.quanta)
        _, inprocess, _ = _timed_run(repo, "inprocess", 1, 0.0, args.quanta)
        n_busy = max(4, args.quanta // 2) // 4 * 4
        # The machine may be shared: keep the best of --repeat runs of the busy phase.
        busy, busy_worker = min(
            _timed_run(repo, f"busy{i}", args.cores, args.task_seconds, n_busy)[1:]
            for i in range(args.repeat)
        )
    result = {
        "cores": args.cores,
        "n_trivial_quanta": args.quanta,
        "quantum_overhead_s": round(trivial * args.cores / args.quanta, 4),
        "worker_seconds_per_trivial_quantum": round(trivial_worker / args.quanta, 4),
        "inprocess_overhead_s": round(inprocess / args.quanta, 4),
        "n_busy_quanta": n_busy,
        "task_seconds": args.task_seconds,
        "busy_wall_s": round(busy, 3),
        "parallel_efficiency": round(n_busy * args.task_seconds / (args.cores * busy), 4),
        "worker_utilisation": round(busy_worker / (args.cores * busy), 4),
        "worker_startup_s": round(startup, 3),
        "cpu_count": os.cpu_count(),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as stream:
            stream.write(text + "\n")


if __name__ == "__main__":
    main()
