"""Tests of batch submission files (bps YAML, Parsl sites, PBS and Slurm job scripts) via ``--dry-run``."""

from __future__ import annotations

import os
import re

import pytest
import yaml
from lsst.dia.pipe.cli import run_driver
from lsst.dia.pipe.cli.tests.toy_driver import TOY_SPEC
from lsst.dia.pipe.execution import BatchOptions, read_rerun
from lsst.dia.pipe.execution.batch import WALLTIME_MARGIN, format_walltime, walltime_seconds
from lsst.dia.pipe.execution.rerun import open_repository
from lsst.dia.pipe.execution.tests.toy_repo import make_toy_repo
from lsst.pipe.base.quantum_graph import PredictedQuantumGraph


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> str:
    return make_toy_repo(str(tmp_path_factory.mktemp("toy") / "repo"), n_visits=3, n_detectors=2)


def test_walltime_from_time_per_quantum():
    options = BatchOptions("pbs", nodes=2, procs=4, time_per_quantum=60.0)
    # 10 quanta on 8 slots: two rounds of 60 s, plus the margin.
    assert walltime_seconds(options, 10) == 120.0 + WALLTIME_MARGIN
    assert format_walltime(walltime_seconds(options, 10)) == "00:12:00"
    assert format_walltime(walltime_seconds(BatchOptions("slurm", walltime=93600.0), 10)) == "26:00:00"
    assert format_walltime(walltime_seconds(BatchOptions("slurm"), 10)) == "01:00:00"
    assert format_walltime(59.2) == "00:01:00"


def _dry_run(repo, tmp_path, capsys, *extra) -> tuple[dict, str, str, str]:
    argv = [
        repo,
        "--rerun",
        "batch",
        "--id",
        "visit=1..2",
        "--batch-output",
        str(tmp_path),
        "--dry-run",
        *extra,
    ]
    assert run_driver(TOY_SPEC, argv) == 0
    out = capsys.readouterr().out
    (bps_file,) = re.findall(r"^# bps submission: (\S+)$", out, flags=re.M)
    with open(bps_file) as stream:
        config = yaml.safe_load(stream)
    script_file = os.path.join(os.path.dirname(bps_file), "scheduler_script.sh")
    script = open(script_file).read() if os.path.exists(script_file) else ""
    return config, script, out, bps_file


def test_pbs_job_script(repo, tmp_path, capsys):
    config, script, out, bps_file = _dry_run(
        repo,
        tmp_path,
        capsys,
        "--batch-type",
        "pbs",
        "--nodes",
        "2",
        "--procs",
        "4",
        "--time",
        "60",
        "--queue",
        "short",
        "--job",
        "diffim_g",
        "--batch-options=-l mem=8gb",
        "--batch-submit=-A dia -m abe",
    )
    assert config["wmsServiceClass"] == "lsst.ctrl.bps.parsl.ParslService"
    assert config["computeSite"] == "torque"
    site = config["site"]["torque"]
    # 6 quanta (4 toyScale + 2 toySum) on 8 slots: one 60 s round plus the margin.
    assert site == {
        "class": "lsst.dia.pipe.execution.parsl_sites.Torque",
        "nodes": 2,
        "walltime": "00:11:00",
        "tasks_per_node": 4,
        "queue": "short",
        "worker_init": site["worker_init"],
        "scheduler_options": "#PBS -A dia\n#PBS -m abe\n#PBS -l mem=8gb",
    }
    assert "export PYTHONPATH=" in site["worker_init"] and "export PATH=" in site["worker_init"]
    assert "export MALLOC_MMAP_THRESHOLD_=" in site["worker_init"]
    payload = config["payload"]
    assert payload["output"] == "rerun/batch" and payload["outputRun"].startswith("rerun/batch/")
    assert payload["dataQuery"] == "visit IN (1, 2)"
    assert config["finalJob"]["updateOutputChain"] == ""
    directives = [line for line in script.splitlines() if line.startswith("#PBS")]
    for expected in (
        "#PBS -l walltime=00:11:00",
        "#PBS -l nodes=2:ppn=4",
        "#PBS -q short",
        "#PBS -N diffim_g",
        "#PBS -l mem=8gb",
        "#PBS -A dia",
        "#PBS -m abe",
        "#PBS -S /bin/bash",
    ):
        assert expected in directives, expected
    assert "WORKERCOUNT=8" in script and "mpirun -np $WORKERCOUNT" in script
    assert re.search(r"^export PYTHONPATH='[^']*python", script, flags=re.M)
    assert re.search(r"# scheduler script \(qsub\s+-q short \S+\.submit\)", out)
    # The saved quantum graph holds the 6 quanta; nothing was written to the repository.
    with PredictedQuantumGraph.open(config["qgraphFile"]) as reader:
        reader.read_thin_graph()
        assert len(reader.finish()) == 6
    assert not read_rerun(open_repository(repo), "rerun/batch").exists


def test_slurm_job_script(repo, tmp_path, capsys):
    config, script, out, _ = _dry_run(
        repo,
        tmp_path,
        capsys,
        "--batch-type",
        "slurm",
        "--procs",
        "2",
        "--walltime",
        "1:30:00",
        "--queue",
        "debug",
        "--batch-options=--mem=4G --qos=normal",
    )
    site = config["site"]["slurm"]
    assert site["class"] == "lsst.ctrl.bps.parsl.sites.Slurm"
    assert (site["nodes"], site["cores_per_node"], site["walltime"]) == (1, 2, "01:30:00")
    for expected in (
        "#SBATCH --time=90",
        "#SBATCH --nodes=1",
        "#SBATCH --partition=debug",
        "#SBATCH --mem=4G",
        "#SBATCH --qos=normal",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --job-name=dia_pipe_batch",
    ):
        assert expected in script.splitlines(), expected
    assert "# scheduler script (sbatch " in out


def test_smp_uses_local_site(repo, tmp_path, capsys):
    config, script, out, _ = _dry_run(repo, tmp_path, capsys, "--batch-type", "smp", "--procs", "2")
    assert config["site"]["local"]["class"] == "lsst.ctrl.bps.parsl.sites.Local"
    assert config["site"]["local"]["cores"] == 2
    assert config["finalJob"]["requestCpus"] == 2
    assert script == "" and "LocalProvider on this machine, 2 worker slots" in out
