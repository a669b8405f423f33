"""Session fixtures: one small simulated survey repo, processed once by the three drivers."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lsst.dia.pipe.cli.driver import run_driver
from lsst.dia.pipe.drivers import ASSOCIATION, FORCED_PHOT_CCD_DIA, IMAGE_DIFFERENCE
from lsst.dia.pipe.repo.simulate import make_sim_repo


@dataclasses.dataclass
class ProcessedRepo:
    root: str
    rerun: str
    visits: list[int]
    tracts: list[int]
    bands: list[str]
    status: dict[str, int]


@pytest.fixture(scope="session")
def sim_repo(tmp_path_factory) -> ProcessedRepo:
    """A 2-band x 3-visit demo survey, differenced, associated and force-photometered (rerun 'e2e')."""
    root = str(tmp_path_factory.mktemp("e2e") / "repo")
    summary = make_sim_repo(root, "demo", seed=3, workers=2, visits_per_band=3, bands=("g", "r"))
    visits = list(range(1, summary.n_visits + 1))
    visit_ids = "^".join(map(str, visits))
    common = [root, "--rerun", "e2e", "--cores", "2"]
    status = {
        "imageDifference": run_driver(IMAGE_DIFFERENCE, [*common, "--id", f"visit={visit_ids}"]),
        "association": run_driver(
            ASSOCIATION, [*common, "--id", f"tract={'^'.join(map(str, summary.tracts))}", "filter=g^r"]
        ),
        "forcedPhotCcdDia": run_driver(FORCED_PHOT_CCD_DIA, [*common, "--id", f"visit={visit_ids}"]),
    }
    return ProcessedRepo(root, "e2e", visits, summary.tracts, ["g", "r"], status)


@pytest.fixture(scope="session")
def config_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "config"
