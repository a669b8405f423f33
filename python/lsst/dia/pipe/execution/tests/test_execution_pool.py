"""Tests of execution with persistent worker processes (``--cores 2``): results, a crashing worker, a
quantum over its time limit, Ctrl-C, workers that cannot start."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from lsst.daf.butler import Butler
from lsst.dia.pipe.cli import run_driver
from lsst.dia.pipe.cli.tests.toy_driver import TOY_SCALE_SPEC, TOY_SPEC
from lsst.dia.pipe.execution import (
    LocalOptions,
    LogSettings,
    RunRequest,
    WorkerPool,
    WorkerStartupError,
    execute_plan,
    plan_run,
)
from lsst.dia.pipe.execution.tests.toy_repo import TOY_INSTRUMENT, make_toy_repo
from lsst.dia.pipe.execution.tests.toy_tasks import make_toy_pipeline
from lsst.dia.pipe.execution.worker import WorkerSetup

PROGRESS = re.compile(
    r"^toy(Scale|Sum) visit=\d+( detector=\d+)? (done|failed|blocked) \d+\.\d\ds \[\d+/\d+\]"
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> str:
    return make_toy_repo(str(tmp_path_factory.mktemp("toy") / "repo"), n_visits=4, n_detectors=2)


def _values(repo: str, rerun: str, dataset_type: str = "toy_scaled") -> dict[tuple, float]:
    """Values of ``dataset_type`` in ``rerun/<rerun>`` keyed by (visit, detector) or (visit,)."""
    butler = Butler.from_config(repo)
    refs = butler.query_datasets(
        dataset_type, collections=f"rerun/{rerun}", where=f"instrument='{TOY_INSTRUMENT}'", explain=False
    )
    result = {}
    for ref in refs:
        key = (ref.dataId["visit"],) + (
            (ref.dataId["detector"],) if "detector" in ref.dataId.dimensions else ()
        )
        result[key] = butler.get(ref)["value"]
    return result


def test_two_workers(repo, caplog):
    caplog.set_level(logging.INFO, logger="lsst.dia.pipe.execution")
    assert run_driver(TOY_SPEC, [repo, "--rerun", "pool", "-j", "2", "-c", "offset=1"]) == 0
    assert _values(repo, "pool", "toy_sum") == {(v,): 2 * (200.0 * v + 1) + 2 for v in range(1, 5)}
    lines = [r.getMessage() for r in caplog.records if r.name == "lsst.dia.pipe.execution"]
    assert sorted(int(re.search(r"\[(\d+)/12\]", line)[1]) for line in lines if PROGRESS.match(line)) == list(
        range(1, 13)
    )


def test_worker_crash_and_time_limit_are_isolated(repo, capsys):
    argv = [
        repo,
        "--rerun",
        "crash",
        "--id",
        "visit=1..3",
        "detector=0",
        "-j",
        "2",
        "--timeout",
        "3",
        "-c",
        "crashVisits=[1]",
        "hangVisits=[2]",
    ]
    start = time.perf_counter()
    assert run_driver(TOY_SCALE_SPEC, argv) == 2
    assert time.perf_counter() - start < 120
    out = capsys.readouterr().out
    assert "toyScale visit=1 detector=0: failed: worker process died while running this quantum alone" in out
    assert "toyScale visit=2 detector=0: failed: timed out after 3s (worker killed)" in out
    assert _values(repo, "crash") == {(3, 0): 600.0}


def test_ctrl_c_leaves_repository_consistent(repo, tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    command = [
        sys.executable,
        "-m",
        "lsst.dia.pipe.cli.tests.toy_driver",
        repo,
        "--rerun",
        "intr",
        "-j",
        "2",
        "-c",
        "hangVisits=[4]",
    ]
    # A shell that starts the test suite in the background (``make test &``) leaves SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler in the child: restore the default so Ctrl-C is what we test.
    process = subprocess.Popen(
        command,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    done = 0
    deadline = time.monotonic() + 90
    assert process.stderr is not None
    for line in process.stderr:
        done += " done " in line
        if done >= 6 or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"the driver did not exit within 60 s of Ctrl-C; its stderr ends with:\n{err[-3000:]}")
    assert process.returncode == 130
    assert "interrupted" in out
    values = _values(repo, "intr")
    assert len(values) >= 6 and (4, 0) not in values and (4, 1) not in values
    assert all(values[(v, d)] == 200.0 * v + d * 2 for v, d in values)


def test_workers_that_cannot_start_abort_the_run(repo):
    request = RunRequest(
        repo=repo,
        output="nostart",
        pipeline_graph=make_toy_pipeline(with_sum=False).to_graph(),
        where="visit = 1",
        local=LocalOptions(cores=2),
    )
    butler = Butler.from_config(repo)
    plan = plan_run(request, butler)
    setup = WorkerSetup(repo, butler.dimensions, LogSettings(), ("lsst.dia.pipe.no_such_module",))
    with pytest.raises(WorkerStartupError, match="died 3 times in a row"):
        execute_plan(plan, WorkerPool(2, setup))
