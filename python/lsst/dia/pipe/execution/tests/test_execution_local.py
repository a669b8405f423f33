"""Tests of local in-process execution through `run_driver` on a toy repository: failure counting,
reruns, config checks, usage errors, --show, --dry-run, --doraise."""

from __future__ import annotations

import logging
import re

import pytest
from lsst.daf.butler import Butler
from lsst.dia.pipe.cli import run_driver
from lsst.dia.pipe.cli.tests.toy_driver import TOY_SCALE_SPEC, TOY_SPEC
from lsst.dia.pipe.execution import QuantumExecutionError, read_rerun
from lsst.dia.pipe.execution.tests.toy_repo import TOY_INSTRUMENT, make_toy_repo

PROGRESS = re.compile(
    r"^toy(Scale|Sum) visit=\d+( detector=\d+)? (done|failed|blocked) \d+\.\d\ds \[\d+/\d+\]"
)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> str:
    return make_toy_repo(str(tmp_path_factory.mktemp("toy") / "repo"), n_visits=4, n_detectors=2)


def _butler(repo: str) -> Butler:
    return Butler.from_config(repo)


def _values(repo: str, rerun: str, dataset_type: str = "toy_scaled") -> dict[tuple, float]:
    """Values of ``dataset_type`` in ``rerun/<rerun>`` keyed by (visit, detector) or (visit,)."""
    butler = _butler(repo)
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


def _chain_exists(repo: str, rerun: str) -> bool:
    return read_rerun(_butler(repo), f"rerun/{rerun}").exists


def test_one_failing_data_id_gives_exit_status_1(repo, caplog, capsys):
    caplog.set_level(logging.INFO, logger="lsst.dia.pipe.execution")
    argv = [repo, "--rerun", "fail1", "--id", "visit=1..2", "-c", "failVisits=[2]", "failDetectors=[1]"]
    assert run_driver(TOY_SCALE_SPEC, argv) == 1
    assert _values(repo, "fail1") == {(1, 0): 200.0, (1, 1): 202.0, (2, 0): 400.0}
    lines = [r.getMessage() for r in caplog.records if r.name == "lsst.dia.pipe.execution"]
    assert len([line for line in lines if PROGRESS.match(line)]) == 4
    assert any(line.startswith("toyScale visit=2 detector=1 failed") and "[" in line for line in lines)
    out = capsys.readouterr().out
    assert re.search(r"toyScale\s+3\s+0\s+1\s+0", out)
    assert (
        "toyScale visit=2 detector=1: failed: ToyFailure: toy failure requested for visit=2 detector=1" in out
    )


def test_dependents_of_a_failure_are_blocked_and_counted(repo, capsys):
    argv = [repo, "--rerun", "block", "--id", "visit=1..2", "-c", "failVisits=[2]", "failDetectors=[1]"]
    assert run_driver(TOY_SPEC, argv) == 2
    assert _values(repo, "block", "toy_sum") == {(1,): 402.0}
    out = capsys.readouterr().out
    assert re.search(r"toySum\s+1\s+0\s+0\s+1", out)
    assert "toySum visit=2: blocked: upstream toyScale visit=2 detector=1 failed" in out


def test_rerun_skips_done_work_and_adds_runs(repo, capsys):
    assert run_driver(TOY_SPEC, [repo, "--rerun", "grow", "--id", "visit=1"]) == 0
    assert run_driver(TOY_SPEC, [repo, "--rerun", "grow", "--id", "visit=1..2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"toyScale\s+2\s+2\s+0\s+0", out)  # 2 done now, 2 skipped (visit 1)
    assert _values(repo, "grow", "toy_sum") == {(1,): 402.0, (2,): 802.0}
    children = _butler(repo).collections.get_info("rerun/grow").children
    assert len(children) == 3 and children[-1] == "dia/inputs"
    assert children[0] > children[1]  # newest RUN first
    # Nothing left to do: warning, exit 0, no new RUN.
    assert run_driver(TOY_SPEC, [repo, "--rerun", "grow", "--id", "visit=1..2"]) == 0
    assert len(_butler(repo).collections.get_info("rerun/grow").children) == 3


def test_changed_config_needs_clobber_config(repo, capsys):
    assert run_driver(TOY_SCALE_SPEC, [repo, "--rerun", "cfg", "--id", "visit=1"]) == 0
    capsys.readouterr()
    assert run_driver(TOY_SCALE_SPEC, [repo, "--rerun", "cfg", "--id", "visit=3", "-c", "scale=3"]) == 2
    err = capsys.readouterr().err
    assert "toyScaleDriver.py: error: config of task 'toyScale' differs" in err and "--clobber-config" in err
    assert len(_butler(repo).collections.get_info("rerun/cfg").children) == 2
    argv = [repo, "--rerun", "cfg", "--id", "visit=3", "-c", "scale=3", "--clobber-config"]
    assert run_driver(TOY_SCALE_SPEC, argv) == 0
    assert _values(repo, "cfg") == {(1, 0): 200.0, (1, 1): 202.0, (3, 0): 900.0, (3, 1): 903.0}


def test_clobber_output_redoes_and_removes_superseded(repo):
    assert run_driver(TOY_SCALE_SPEC, [repo, "--rerun", "clob", "--id", "visit=4", "detector=0"]) == 0
    argv = [repo, "--rerun", "clob", "--id", "visit=4", "detector=0", "--clobber-output"]
    assert run_driver(TOY_SCALE_SPEC, argv) == 0
    butler = _butler(repo)
    refs = butler.query_datasets(
        "toy_scaled",
        collections="rerun/clob",
        find_first=False,
        explain=False,
        where=f"instrument='{TOY_INSTRUMENT}'",
    )
    newest = butler.collections.get_info("rerun/clob").children[0]
    assert [ref.run for ref in refs] == [newest]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["-c", "nosuch=1"], "no attribute nosuch"),
        (["--input", "no/such/collection"], "does not exist"),
        (["--id", "visit=abc"], "integers"),
        (["--id", "ccd=1..x"], "malformed range"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(repo, extra, message, capsys):
    assert run_driver(TOY_SPEC, [repo, "--rerun", "never", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toyDriver.py: error: ") and message in err and "\n" not in err
    assert not _chain_exists(repo, "never")


def test_missing_repository_exit_2(tmp_path, capsys):
    assert run_driver(TOY_SPEC, [str(tmp_path / "nope"), "--rerun", "x"]) == 2
    assert "cannot open butler repository" in capsys.readouterr().err


def test_no_matching_data_warns_and_exits_0(repo, caplog):
    assert run_driver(TOY_SPEC, [repo, "--rerun", "empty", "--id", "visit=99"]) == 0
    assert any("No data matched --id visit=99" in r.getMessage() for r in caplog.records)
    assert not _chain_exists(repo, "empty")


def test_show_prints_and_stops_before_writing(repo, capsys):
    argv = [
        repo,
        "--rerun",
        "shown",
        "--id",
        "visit=2",
        "-c",
        "scale=4",
        "--show",
        "config=*.scale",
        "data",
        "tasks",
    ]
    assert run_driver(TOY_SPEC, argv) == 0
    out = capsys.readouterr().out
    assert "toyScale.scale = 4.0" in out
    assert "toyScale: lsst.dia.pipe.execution.tests.toy_tasks.ToyScaleTask" in out
    assert "toyScale: 2 data IDs to process\n  visit=2 detector=0\n  visit=2 detector=1" in out
    assert "toySum: 1 data IDs to process\n  visit=2" in out
    assert not _chain_exists(repo, "shown")


def test_dry_run_writes_nothing(repo, capsys):
    assert run_driver(TOY_SPEC, [repo, "--rerun", "dry", "--id", "visit=3", "--dry-run"]) == 0
    assert "toyScale: 2 quanta to run, 0 already done" in capsys.readouterr().out
    assert not _chain_exists(repo, "dry")


def test_doraise_raises_after_registering_successes(repo):
    argv = [
        repo,
        "--rerun",
        "raise",
        "--id",
        "visit=1..2",
        "-c",
        "failVisits=[2]",
        "failDetectors=[1]",
        "--doraise",
    ]
    with pytest.raises(QuantumExecutionError, match="toyScale visit=2 detector=1 failed: ToyFailure") as info:
        run_driver(TOY_SCALE_SPEC, argv)
    assert "Traceback" in str(info.value)
    # Quanta run in (detector, visit) order: the failing one is last, the three before it are registered.
    assert _values(repo, "raise") == {(1, 0): 200.0, (2, 0): 400.0, (1, 1): 202.0}


def test_select_id_restricts_contributing_inputs(repo):
    argv = [repo, "--rerun", "select", "--id", "visit=1", "--selectId", "detector=0"]
    assert run_driver(TOY_SPEC, argv) == 0
    assert _values(repo, "select") == {(1, 0): 200.0}
    butler = _butler(repo)
    (ref,) = butler.query_datasets(
        "toy_sum", collections="rerun/select", where=f"instrument='{TOY_INSTRUMENT}'"
    )
    assert butler.get(ref) == {"value": 200.0, "n": 1}
