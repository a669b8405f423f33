"""makeDiaSimRepo.py bad input: clear one-line errors, exit != 0, nothing overwritten."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(__file__).resolve().parents[6] / "bin" / "makeDiaSimRepo.py"


def _run(*args):
    return subprocess.run([sys.executable, str(BIN), *args], capture_output=True, text=True, timeout=120)


def test_unknown_preset_writes_nothing(tmp_path):
    result = _run(str(tmp_path / "repo"), "--preset", "nope")
    assert result.returncode == 2
    assert "Unknown preset 'nope'" in result.stderr
    assert not (tmp_path / "repo").exists()


def test_existing_repo_is_not_touched(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "butler.yaml").write_text("keep me\n")
    result = _run(str(root))
    assert result.returncode == 2 and "already exists" in result.stderr
    assert (root / "butler.yaml").read_text() == "keep me\n"
    assert os.listdir(root) == ["butler.yaml"]


def test_unwritable_location(tmp_path):
    result = _run(str(tmp_path / "no" / "such" / "dir" / "repo"))
    assert result.returncode == 2 and "Cannot create a repository" in result.stderr
