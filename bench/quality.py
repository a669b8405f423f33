#!/usr/bin/env python
"""Quality benchmark against simulation truth: AL and ZOGY on one simulated survey.

Builds (or reuses) a simulated repository, runs the three drivers with Alard-Lupton (rerun ``quality_al``)
and with ZOGY (``-c subtraction.algorithm=zogy``, rerun ``quality_zogy``), evaluates both reruns with
`lsst.dia.pipe.qa` (metric definitions in `lsst.dia.pipe.qa.metrics`) and writes one JSON document (and
small PNG figures with ``--plots``).

Usage::

    python bench/quality.py --preset demo|dc2 --json OUT.json [--plots DIR] [--repo PATH] [--reuse]
                            [--cores N] [--seed N] [--rerun-prefix NAME]

Without ``--repo`` the repository lives in ``bench/cache/quality_<preset>/repo`` and is rebuilt unless
``--reuse`` is given.  With ``--reuse`` an existing repository is kept and the drivers skip completed work.
Keys without a suffix are those of the default algorithm (AL); ``*_al`` and ``*_zogy`` give both.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent

#: The reruns, by label: extra imageDifferenceDriver.py arguments.
ALGORITHMS = {"al": [], "zogy": ["-c", "subtraction.algorithm=zogy"]}

#: Keys reported without a suffix (from the default algorithm's run).
DEFAULT_KEYS = (
    "residual_noise_ratio", "snr50", "artifacts_per_ccd4k", "artifact_noise_floor_per_ccd4k",
    "diasrc_flux_bias_highsnr", "diasrc_pull_std", "forced_pull_mean_diff", "forced_pull_std_diff",
    "forced_pull_mean_sci", "forced_pull_std_sci", "forced_bias_highsnr_diff", "forced_bias_highsnr_sci",
    "forced_pull_mean_null", "forced_pull_std_null", "assoc_purity", "assoc_completeness",
)


def build_repo(repo: Path, preset: str, seed: int, cores: int) -> dict:
    """Simulate the survey into ``repo``."""
    from lsst.dia.pipe.repo.simulate import make_sim_repo

    summary = make_sim_repo(str(repo), preset, seed=seed, workers=cores, progress=print)
    return {"n_visits": summary.n_visits, "n_calexps": summary.n_calexps, "n_coadds": summary.n_coadds,
            "simulation_s": round(summary.seconds, 1)}


def run_drivers(repo: Path, rerun: str, extra: list[str], cores: int) -> tuple[dict, dict]:
    """Run the three drivers into ``rerun``; return failures and wall times per driver."""
    from lsst.daf.butler import Butler

    from lsst.dia.pipe.cli.driver import run_driver
    from lsst.dia.pipe.drivers import ASSOCIATION, FORCED_PHOT_CCD_DIA, IMAGE_DIFFERENCE
    from lsst.dia.pipe.repo.collections import DEFAULT_INPUT_COLLECTION

    butler = Butler.from_config(str(repo), collections=[DEFAULT_INPUT_COLLECTION])
    calexps = list(butler.query_datasets("calexp", explain=False))
    visits = "^".join(str(v) for v in sorted({r.dataId["visit"] for r in calexps}))
    bands = "^".join(sorted({r.dataId["band"] for r in calexps}))
    tracts = "^".join(str(t) for t in sorted({r.dataId["tract"] for r in
                                             butler.query_datasets("deepCoadd_calexp", explain=False)}))
    common = [str(repo), "--rerun", rerun, "--cores", str(cores)]
    steps = {
        "imageDifference": (IMAGE_DIFFERENCE, [*common, "--id", f"visit={visits}", *extra]),
        "association": (ASSOCIATION, [*common, "--id", f"tract={tracts}", f"filter={bands}"]),
        "forcedPhotCcdDia": (FORCED_PHOT_CCD_DIA, [*common, "--id", f"visit={visits}"]),
    }
    failed, seconds = {}, {}
    for name, (spec, argv) in steps.items():
        print(f"== {rerun}: {spec.name}", flush=True)
        start = time.perf_counter()
        failed[name] = run_driver(spec, argv)
        seconds[name] = round(time.perf_counter() - start, 1)
    return failed, seconds


def evaluate(repo: Path, rerun: str, label: str):
    """Catalogs and `RunQuality` of one rerun."""
    from lsst.dia.pipe.qa.collect import iter_differences, load_run
    from lsst.dia.pipe.qa.evaluate import evaluate_run

    catalogs = load_run(str(repo), rerun)
    done = [(int(r["visit"]), int(r["detector"])) for r in catalogs.ccds if r["status"] == "done"]
    return evaluate_run(catalogs, iter_differences(str(repo), rerun, done), label=label)


def make_plots(qualities: dict, out: Path) -> list[str]:
    """The benchmark figures (PNG) in ``out``."""
    from lsst.dia.pipe.qa import figures
    from lsst.dia.pipe.qa.metrics import binned_completeness

    out.mkdir(parents=True, exist_ok=True)
    snr_edges = np.geomspace(1.0, 100.0, 21)
    mag_edges = np.arange(19.0, 27.01, 0.4)
    by_snr, by_mag, pulls, rates, maps = {}, {}, {}, {}, {}
    for label, q in qualities.items():
        name = label.upper()
        by_snr[name] = (binned_completeness(q.injected["trueSnr"], q.injected["detected"], snr_edges),
                        q.completeness_fit)
        by_mag[name] = (binned_completeness(q.injected["diffMag"], q.injected["detected"], mag_edges), None)
        pulls[f"{name} difference"] = q.pull_values_diff
        pulls[f"{name} science"] = q.pull_values_sci
        rates[name] = q.artifacts_by_cause()
        for (visit, detector), values in list(q.noise_maps.items())[:4]:
            maps[f"{name} v{visit} d{detector}"] = values
    paths = [
        figures.plot_completeness(by_snr, out / "completeness_snr.png"),
        figures.plot_completeness(by_mag, out / "completeness_mag.png", xlabel="magnitude of |diffFlux|",
                                  log_x=False),
        figures.plot_pull_histograms(pulls, out / "forced_pulls.png"),
        figures.plot_noise_maps(maps, out / "residual_noise_maps.png"),
        figures.plot_artifact_causes(rates, out / "artifacts_by_cause.png"),
    ]
    return [str(p) for p in paths]


def _clean(value):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="demo", choices=("demo", "dc2"), help="simulation preset")
    parser.add_argument("--json", required=True, metavar="OUT.json", help="write the results here")
    parser.add_argument("--plots", metavar="DIR", help="write PNG figures into DIR")
    parser.add_argument("--repo", metavar="PATH", help="repository (default bench/cache/quality_<preset>/repo)")
    parser.add_argument("--reuse", action="store_true", help="keep an existing repository and reruns")
    parser.add_argument("--cores", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=1, help="simulation seed (default 1)")
    parser.add_argument("--rerun-prefix", default="quality", metavar="NAME",
                        help="reruns are NAME_al and NAME_zogy (default quality); a new name with --reuse "
                        "re-runs the drivers on the same simulated repository")
    args = parser.parse_args()
    if args.cores < 1:
        parser.error("--cores must be >= 1")
    default_repo = args.repo is None
    repo = Path(args.repo) if args.repo else BENCH / "cache" / f"quality_{args.preset}" / "repo"
    result: dict = {"preset": args.preset, "seed": args.seed, "repo": str(repo), "cores": args.cores}
    start = time.perf_counter()
    if (repo / "butler.yaml").exists() and args.reuse:
        print(f"Reusing {repo}", flush=True)
        result["reused_repo"] = True  # driver times then only cover work not done before
    else:
        if repo.exists():
            if not default_repo:
                parser.error(f"{repo} exists: pass --reuse to use it, or remove it")
            shutil.rmtree(repo)
        repo.parent.mkdir(parents=True, exist_ok=True)
        result.update(build_repo(repo, args.preset, args.seed, args.cores))

    qualities = {}
    for label, extra in ALGORITHMS.items():
        rerun = f"{args.rerun_prefix}_{label}"
        failed, seconds = run_drivers(repo, rerun, extra, args.cores)
        result[f"failed_{label}"] = failed
        result[f"driver_seconds_{label}"] = seconds
        qualities[label] = evaluate(repo, rerun, label)
        result.update(qualities[label].summary())
    for key in DEFAULT_KEYS:
        result[key] = result.get(f"{key}_al")
    if args.plots:
        result["plots"] = make_plots(qualities, Path(args.plots))
    result["bench_s"] = round(time.perf_counter() - start, 1)
    result = _clean(result)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
