"""A driver run through a real one-node Slurm (``--batch-type slurm``): bps + Parsl submit Slurm jobs that
run the quanta, and the outputs land in the repository.

The test starts Slurm with ``scripts/start-slurm.sh`` (installing slurm-wlm and munge with apt-get if
needed; skipped only when they cannot be installed), reusing a cluster the script already started, and
stops it afterwards only if it was not running before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lsst.daf.butler import Butler
from lsst.dia.pipe.execution.tests.toy_repo import TOY_INSTRUMENT, make_toy_repo

pytestmark = pytest.mark.slurm

SCRIPTS = Path(__file__).resolve().parents[6] / "scripts"


@pytest.fixture(scope="module")
def slurm_conf():
    state = Path(os.environ.get("DIA_SLURM_DIR", "/tmp/dia_pipe_slurm"))
    was_running = all(_alive(state / "run" / f"{daemon}.pid") for daemon in ("slurmctld", "slurmd"))
    start = subprocess.run([str(SCRIPTS / "start-slurm.sh")], capture_output=True, text=True, timeout=900)
    if start.returncode != 0 and not _installed():
        reason = (start.stderr.strip().splitlines() or ["start-slurm.sh failed"])[-1]
        pytest.skip(f"Slurm cannot be installed here: {reason}")
    assert start.returncode == 0, start.stderr
    conf = start.stdout.strip().splitlines()[-1]
    yield conf, state
    if not was_running:
        subprocess.run([str(SCRIPTS / "stop-slurm.sh")], capture_output=True, timeout=60)


def _alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def _installed() -> bool:
    return all(os.path.exists(f"/usr/sbin/{name}") for name in ("slurmctld", "slurmd", "munged"))


def test_driver_runs_through_slurm(slurm_conf, tmp_path):
    conf, state = slurm_conf
    repo = make_toy_repo(str(tmp_path / "repo"), n_visits=1, n_detectors=2)
    env = dict(os.environ, SLURM_CONF=conf, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    command = [
        sys.executable,
        "-m",
        "lsst.dia.pipe.cli.tests.toy_driver",
        repo,
        "--rerun",
        "slurm",
        "--id",
        "visit=1",
        "--batch-type",
        "slurm",
        "--procs",
        "2",
        "--walltime",
        "600",
        "--batch-output",
        str(tmp_path / "batch"),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "#SBATCH --cpus-per-task=2" in result.stdout
    # The quanta ran in a Slurm job: slurmctld allocated one, and Parsl wrote its sbatch script.
    log = (state / "log" / "slurmctld.log").read_text()
    assert "sched: Allocate JobId=" in log
    assert list((tmp_path / "batch").rglob("submit_scripts/parsl.slurm.*"))
    butler = Butler.from_config(repo)
    values = {
        ref.dataId["detector"]: butler.get(ref)["value"]
        for ref in butler.query_datasets(
            "toy_scaled", collections="rerun/slurm", where=f"instrument='{TOY_INSTRUMENT}'"
        )
    }
    assert values == {0: 200.0, 1: 202.0}
    (total,) = butler.query_datasets(
        "toy_sum", collections="rerun/slurm", where=f"instrument='{TOY_INSTRUMENT}'"
    )
    assert butler.get(total) == {"value": 402.0, "n": 2}
    children = butler.collections.get_info("rerun/slurm").children
    assert children[0].startswith("rerun/slurm/") and children[-1] == "dia/inputs"
