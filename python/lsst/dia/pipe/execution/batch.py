"""Batch execution (``--batch-type slurm|pbs|smp``) through ``lsst-ctrl-bps`` + ``lsst-ctrl-bps-parsl``.

The quantum graph is built here, exactly as for a local run (same skip-existing, config checks and output
RUN), saved to a file and handed to ``bps submit`` as ``qgraphFile``; bps then runs
``pipetask pre-exec-init-qbb``, one ``pipetask run-qbb`` per quantum and ``butler aggregate-graph`` as Parsl
apps on the chosen site:

============  =======================================  =============================================
batch type    Parsl site (ctrl_bps_parsl)              ctrl_pool options used
============  =======================================  =============================================
``slurm``     ``lsst.ctrl.bps.parsl.sites.Slurm``      nodes, procs -> cores_per_node, walltime,
                                                       queue -> ``#SBATCH --partition``, job name
``pbs``       ``parsl_sites.Torque`` (fixed launcher)  nodes, procs -> tasks_per_node, walltime,
                                                       queue, job name
``smp``       ``lsst.ctrl.bps.parsl.sites.Local``      procs -> cores (default: all cores here)
============  =======================================  =============================================

``--batch-submit`` flags and ``--batch-options`` directives both become scheduler directives
(``#SBATCH ...`` / ``#PBS ...``) in ``scheduler_options``.  The walltime is ``--walltime``, else
``--time`` x quanta / (nodes x procs) plus `WALLTIME_MARGIN`, else `DEFAULT_WALLTIME`.

Parsl must keep its driver process alive while the jobs run, so the submission is synchronous: the driver
waits for the workflow to finish and then reports per data ID from the repository, like a local run (a
long campaign is run under ``nohup`` or ``screen``).  The jobs find the package and the ``pipetask``/
``butler`` executables through ``PATH``/``PYTHONPATH`` exported by the job scripts (``commandPrefix`` /
``worker_init``) and inherited by the scheduler from the submitting environment.  ``--dry-run`` writes
the bps YAML, the quantum graph and the rendered scheduler script and prints them, without submitting.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_WALLTIME",
    "WALLTIME_MARGIN",
    "BatchSubmission",
    "format_walltime",
    "job_environment",
    "make_bps_config",
    "render_scheduler_script",
    "submit_plan",
    "walltime_seconds",
    "write_submission",
]

import dataclasses
import getpass
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .errors import BatchSubmissionError
from .memory import ALLOCATOR_ENVIRONMENT
from .progress import ExecutionSummary, QuantumOutcome, format_data_id
from .request import BatchOptions
from .rerun import define_output_chain, open_repository
from .runner import RunPlan
from .worker import QuantumStatus

#: Walltime (seconds) of a job when neither ``--walltime`` nor ``--time`` is given.
DEFAULT_WALLTIME = 3600.0
#: Seconds added to a walltime derived from ``--time`` (start-up, graph init, final aggregation).
WALLTIME_MARGIN = 600.0

#: Parsl site per batch type: (compute site name, site class, directive prefix or None).
_SITES = {
    "slurm": ("slurm", "lsst.ctrl.bps.parsl.sites.Slurm", "#SBATCH"),
    "pbs": ("torque", "lsst.dia.pipe.execution.parsl_sites.Torque", "#PBS"),
    "smp": ("local", "lsst.ctrl.bps.parsl.sites.Local", None),
}

_QGRAPH_NAME = "dia_pipe.qg"
_BPS_NAME = "bps_submit.yaml"
_SCRIPT_NAME = "scheduler_script.sh"


def walltime_seconds(options: BatchOptions, n_quanta: int) -> float:
    """Return the job walltime in seconds: explicit, derived from ``--time``, or the default.

    Parameters
    ----------
    options : `BatchOptions`
        Batch options.
    n_quanta : `int`
        Number of quanta in the job.
    """
    if options.walltime is not None:
        return options.walltime
    if options.time_per_quantum is not None:
        slots = options.nodes * (options.procs or 1)
        return options.time_per_quantum * math.ceil(n_quanta / slots) + WALLTIME_MARGIN
    return DEFAULT_WALLTIME


def format_walltime(seconds: float) -> str:
    """Format seconds as ``HH:MM:SS`` (hours may exceed 24), rounding up to the next second."""
    total = int(math.ceil(seconds))
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _directives(prefix: str, tokens: Sequence[str]) -> list[str]:
    """Group scheduler flags (``-l mem=8gb --qos=x``) into directive lines (``#PBS -l mem=8gb``)."""
    groups: list[list[str]] = []
    for token in tokens:
        if token.startswith("-") or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return [f"{prefix} {' '.join(group)}" for group in groups]


def _package_root() -> str:
    """Directory that must be on ``PYTHONPATH`` for ``lsst.dia.pipe`` to be importable."""
    return str(Path(__file__).resolve().parents[4])


def job_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the environment for bps and the batch jobs: this Python's ``bin`` first on ``PATH``, the
    package (and the current ``PYTHONPATH``) on ``PYTHONPATH``, and glibc's malloc told to keep freed memory
    (`~lsst.dia.pipe.execution.memory.ALLOCATOR_ENVIRONMENT`, unless already set)."""
    env = dict(os.environ if base is None else base)
    for name, value in ALLOCATOR_ENVIRONMENT.items():
        env.setdefault(name, value)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")]).rstrip(os.pathsep)
    current = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths = [_package_root(), *current]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _export_lines(env: Mapping[str, str]) -> str:
    return "\n".join(f"export {name}={_quote(env[name])}" for name in ("PATH", "PYTHONPATH", *ALLOCATOR_ENVIRONMENT))


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def _literal_query(where: str, bind: Mapping[str, Any]) -> str:
    """Return ``where`` with its bind identifiers replaced by literals (for the record in the bps file)."""

    def literal(match: re.Match) -> str:
        value = bind[match[1]]
        values = value if isinstance(value, (list, tuple, set)) else [value]
        return ", ".join(repr(v) for v in values)

    return re.sub(r":(\w+)", lambda m: literal(m) if m[1] in bind else m[0], where)


def _job_name(plan: RunPlan, options: BatchOptions) -> str:
    name = options.job_name or f"dia_pipe_{plan.request.output}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def make_bps_config(
    plan: RunPlan, options: BatchOptions, qgraph_file: str, submit_dir: str, env: Mapping[str, str]
) -> dict[str, Any]:
    """Return the bps submit configuration of ``plan`` (a dict ready for YAML).

    Parameters
    ----------
    plan : `RunPlan`
        The planned run (its output RUN, collections and query are recorded).
    options : `BatchOptions`
        ctrl_pool-style batch options.
    qgraph_file : `str`
        Path of the saved quantum graph.
    submit_dir : `str`
        bps ``submitPath`` (must not exist yet: bps creates it).
    env : `dict`
        Job environment (``PATH``/``PYTHONPATH`` are exported in every job).
    """
    site_name, site_class, prefix = _SITES[options.batch_type]
    job_name = _job_name(plan, options)
    site: dict[str, Any] = {"class": site_class}
    exports = _export_lines(env)
    if options.batch_type == "smp":
        site["cores"] = options.procs or os.cpu_count() or 1
        site["commandPrefix"] = exports
    else:
        site["nodes"] = options.nodes
        site["walltime"] = format_walltime(walltime_seconds(options, plan.n_quanta))
        lines = []
        if options.batch_type == "slurm":
            if options.procs is not None:
                site["cores_per_node"] = options.procs
            if options.queue:
                lines.append(f"#SBATCH --partition={options.queue}")
            site["commandPrefix"] = exports
        else:
            site["tasks_per_node"] = options.procs or 1
            if options.queue:
                site["queue"] = options.queue
            site["worker_init"] = exports
        lines += _directives(prefix, [*options.submit_options, *options.scheduler_options])
        if lines:
            site["scheduler_options"] = "\n".join(lines)
    request = plan.request
    return {
        "wmsServiceClass": "lsst.ctrl.bps.parsl.ParslService",
        "computeSite": site_name,
        "uniqProcName": job_name,
        "operator": getpass.getuser(),
        "payload": {
            "payloadName": job_name,
            "butlerConfig": os.path.abspath(request.repo) if "://" not in request.repo else request.repo,
            "inCollection": ",".join(plan.search_path),
            "dataQuery": _literal_query(request.where, request.bind),
            "output": plan.rerun.chain,
            "outputRun": plan.output_run,
        },
        "qgraphFile": qgraph_file,
        "submitPath": submit_dir,
        # The output chain is maintained by dia_pipe (new RUN in front, earlier RUNs and inputs after);
        # the final aggregation uses as many processes as a node has slots (bps default: 16).
        "finalJob": {"updateOutputChain": "", "requestCpus": min(site.get("cores", options.procs or 1), 16)},
        "parsl": {"log_level": "INFO"},
        "site": {site_name: site},
    }


def render_scheduler_script(bps_file: str, script_dir: str) -> tuple[str, str]:
    """Render the job script Parsl would submit for ``bps_file``, without submitting it.

    The site's Parsl provider is built from the bps config and asked to submit; its submission command
    is intercepted, so the script is Parsl's own.

    Returns
    -------
    script : `str`
        The job script (empty for ``smp``, which submits nothing).
    command : `str`
        The submission command (``sbatch ...`` / ``qsub ...``), or a description for ``smp``.
    """
    from lsst.ctrl.bps import BpsConfig
    from lsst.ctrl.bps.parsl.site import SiteConfig

    config = BpsConfig(bps_file)
    site = SiteConfig.from_config(config)
    (executor,) = site.get_executors()
    provider = executor.provider
    if provider.label == "local":
        return "", f"Parsl LocalProvider on this machine, {executor.max_workers_per_node} worker slots"
    captured: list[str] = []

    def fake_execute_wait(cmd: str, timeout: float | None = None) -> tuple[int, str, str]:
        captured.append(cmd)
        return 0, "Submitted batch job 0" if provider.label == "slurm" else "0.dry-run", ""

    provider.script_dir = script_dir
    provider.execute_wait = fake_execute_wait  # type: ignore[method-assign]
    provider.submit(
        "process_worker_pool.py ... # Parsl worker pool, started by the job", 1, config["uniqProcName"]
    )
    script_path = captured[0].split()[-1]
    with open(script_path) as stream:
        script = stream.read()
    os.remove(script_path)
    return script, captured[0]


@dataclasses.dataclass(frozen=True)
class BatchSubmission:
    """Files of one batch submission.

    Attributes
    ----------
    submit_dir : `str`
        Directory holding everything below; bps's own ``submitPath`` is its ``bps`` subdirectory.
    bps_file : `str`
        The bps submit YAML.
    qgraph_file : `str`
        The saved quantum graph.
    script_file : `str`
        The rendered scheduler script (empty for ``smp``).
    submit_command : `str`
        The scheduler submission command Parsl will run.
    """

    submit_dir: str
    bps_file: str
    qgraph_file: str
    script_file: str
    submit_command: str


def write_submission(plan: RunPlan, env: Mapping[str, str] | None = None) -> BatchSubmission:
    """Write the quantum graph, the bps YAML and the rendered scheduler script of ``plan``.

    Files go to ``<--batch-output or ./submit>/<output RUN>/``.
    """
    options = plan.request.batch
    assert options is not None, "not a batch request"
    env = job_environment() if env is None else env
    base = options.output_dir or os.path.join(os.getcwd(), "submit")
    submit_dir = os.path.abspath(os.path.join(base, plan.output_run))
    os.makedirs(submit_dir, exist_ok=True)
    qgraph_file = os.path.join(submit_dir, _QGRAPH_NAME)
    plan.components.write(qgraph_file)
    bps_file = os.path.join(submit_dir, _BPS_NAME)
    with open(bps_file, "w") as stream:
        stream.write("# bps submission generated by dia_pipe\n")
        bps_config = make_bps_config(plan, options, qgraph_file, os.path.join(submit_dir, "bps"), env)
        yaml.safe_dump(bps_config, stream, sort_keys=False)
    script, command = render_scheduler_script(bps_file, submit_dir)
    script_file = ""
    if script:
        script_file = os.path.join(submit_dir, _SCRIPT_NAME)
        with open(script_file, "w") as stream:
            stream.write(script)
    return BatchSubmission(submit_dir, bps_file, qgraph_file, script_file, command)


def _collect_summary(plan: RunPlan, log_path: str) -> ExecutionSummary:
    """Compare the quanta of the graph with the metadata datasets registered in the output RUN."""
    butler = open_repository(plan.request.repo)
    graph = plan.graph
    xgraph = graph.quantum_only_xgraph
    missing = set()
    for label, quanta in graph.quanta_by_task.items():
        name = graph.pipeline_graph.tasks[label].metadata_output.dataset_type_name
        try:
            refs = butler.query_datasets(name, collections=[plan.output_run], explain=False)
        except LookupError:
            refs = []
        done = {ref.dataId.required_values for ref in refs}
        missing.update(qid for data_id, qid in quanta.items() if data_id.required_values not in done)
    summary = ExecutionSummary(
        skipped=dict(plan.skipped), output_run=plan.output_run, task_labels=tuple(graph.pipeline_graph.tasks)
    )
    for label, quanta in graph.quanta_by_task.items():
        for data_id, qid in sorted(quanta.items()):
            if qid not in missing:
                status, reason = QuantumStatus.DONE, ""
            elif any(a in missing for a in xgraph.predecessors(qid)):
                status, reason = QuantumStatus.BLOCKED, "an upstream quantum failed"
            else:
                status, reason = QuantumStatus.FAILED, f"no outputs registered (job logs: {log_path})"
            summary.outcomes.append(QuantumOutcome(label, format_data_id(data_id), status, 0.0, reason))
    return summary


def submit_plan(plan: RunPlan, dry_run: bool = False) -> ExecutionSummary | None:
    """Submit ``plan`` with bps + Parsl and wait for it, or (``dry_run``) only write and print the files.

    Returns
    -------
    summary : `ExecutionSummary` or `None`
        Outcome per data ID read back from the repository; `None` for a dry run.

    Raises
    ------
    BatchSubmissionError
        ``bps submit`` failed and no quantum completed.
    """
    env = job_environment()
    submission = write_submission(plan, env)
    print(f"# bps submission: {submission.bps_file}")
    with open(submission.bps_file) as stream:
        print(stream.read())
    if submission.script_file:
        print(f"# scheduler script ({submission.submit_command}):")
        with open(submission.script_file) as stream:
            print(stream.read())
    else:
        print(f"# {submission.submit_command}")
    if dry_run:
        return None
    request = plan.request
    butler = open_repository(request.repo, writeable=True)
    define_output_chain(butler, plan.rerun, plan.output_run, request.input_collections)
    log_path = os.path.join(submission.submit_dir, "bps.log")
    command = [os.path.join(os.path.dirname(sys.executable), "bps"), "submit", submission.bps_file]
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=submission.submit_dir,
            env=env,
            stdout=subprocess.PIPE if request.batch.verbose else log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            if request.batch.verbose:
                assert process.stdout is not None
                for line in process.stdout:
                    log.write(line)
                    sys.stdout.write(line)
            returncode = process.wait()
        except KeyboardInterrupt:
            process.terminate()
            process.wait()
            raise
    summary = _collect_summary(plan, submission.submit_dir)
    summary.execution_seconds = time.perf_counter() - start
    if returncode != 0 and not any(o.status is QuantumStatus.DONE for o in summary.outcomes):
        raise BatchSubmissionError(command, returncode, log_path)
    return summary
