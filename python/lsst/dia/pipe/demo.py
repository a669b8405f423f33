"""The end-to-end demo behind ``make demo``: simulate a survey repo, run the three drivers, report."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from lsst.daf.butler import Butler

from .cli.driver import run_driver
from .drivers import ASSOCIATION, FORCED_PHOT_CCD_DIA, IMAGE_DIFFERENCE
from .qa.report import write_report
from .repo.collections import DEFAULT_INPUT_COLLECTION, rerun_collection
from .repo.simulate import make_sim_repo

__all__ = ["DemoSummary", "run_demo"]

@dataclasses.dataclass
class DemoSummary:
    """Counts of what the demo produced."""

    repo: str
    rerun: str
    ccds: int
    failed_steps: dict[str, int]
    dia_sources: int
    dia_objects: int
    forced: int
    report: str | None
    seconds: float

    def format(self) -> str:
        """A short human-readable summary."""
        failures = ", ".join(f"{k}: {v}" for k, v in self.failed_steps.items() if v) or "none"
        lines = [
            f"dia_pipe demo finished in {self.seconds:.0f} s",
            f"  CCDs differenced : {self.ccds} (failed data IDs per driver: {failures})",
            f"  DIASources       : {self.dia_sources}",
            f"  DIAObjects       : {self.dia_objects}",
            f"  forced measures  : {self.forced}",
            f"  outputs          : {self.repo}  collection {rerun_collection(self.rerun)}",
        ]
        if self.report:
            lines.append(f"  QA report        : {self.report}")
        return "\n".join(lines)


def _count_rows(butler: Butler, dataset_type: str, collection: str) -> tuple[int, int]:
    refs = list(butler.query_datasets(dataset_type, collections=collection, explain=False))
    return len(refs), sum(len(butler.get(ref)) for ref in refs)


def run_demo(repo: str, cores: int = 2, rerun: str = "demo", preset: str = "demo", seed: int = 1,
             report: bool = True) -> DemoSummary:
    """Simulate (unless ``repo`` exists) and process a survey end to end.

    Parameters
    ----------
    repo : `str`
        Repository path; created with the ``preset`` survey if it does not exist yet.
    cores : `int`
        Worker processes for simulation and the drivers.
    rerun : `str`
        Output rerun name.
    """
    start = time.perf_counter()
    if not (Path(repo) / "butler.yaml").exists():
        summary = make_sim_repo(repo, preset, seed=seed, workers=cores, progress=print)
        print(f"Simulated {summary.n_calexps} calexps and {summary.n_coadds} template patches "
              f"in {summary.seconds:.0f} s.")
    else:
        print(f"Reusing the existing repository {repo} (completed work is skipped).")
    butler = Butler.from_config(repo, collections=[DEFAULT_INPUT_COLLECTION])
    visits = sorted({r.dataId["visit"] for r in butler.query_datasets("calexp", explain=False)})
    bands = sorted({r.dataId["band"] for r in butler.query_datasets("calexp", explain=False)})
    tracts = sorted({r.dataId["tract"] for r in butler.query_datasets("deepCoadd_calexp", explain=False)})
    visit_ids = "^".join(str(v) for v in visits)
    common = [repo, "--rerun", rerun, "--cores", str(cores)]
    failed = {}
    print(f"== imageDifferenceDriver.py: {len(visits)} visits")
    failed["imageDifference"] = run_driver(IMAGE_DIFFERENCE, [*common, "--id", f"visit={visit_ids}"])
    print(f"== associationDriver.py: tracts {tracts}, bands {bands}")
    failed["association"] = run_driver(
        ASSOCIATION, [*common, "--id", f"tract={'^'.join(map(str, tracts))}", f"filter={'^'.join(bands)}"]
    )
    print("== forcedPhotCcdDiaDriver.py")
    failed["forcedPhotCcdDia"] = run_driver(FORCED_PHOT_CCD_DIA, [*common, "--id", f"visit={visit_ids}"])

    out = Butler.from_config(repo, collections=[rerun_collection(rerun)])
    ccds, n_src = _count_rows(out, "deepDiff_diaSrc", rerun_collection(rerun))
    _, n_obj = _count_rows(out, "deepDiff_diaObject", rerun_collection(rerun))
    _, n_forced = _count_rows(out, "deepDiff_forced_diaSrc", rerun_collection(rerun))
    report_path = str(write_report(repo, rerun, Path(repo) / "qa")) if report else None
    return DemoSummary(repo, rerun, ccds, failed, n_src, n_obj, n_forced, report_path,
                       time.perf_counter() - start)
