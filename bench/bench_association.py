#!/usr/bin/env python
"""Speed, memory and quality of DIASource association on a synthetic patch with truth.

A 0.5° × 0.5° patch straddling RA = 0 is observed in ``n_visits`` visits (one per night, dithered, split
among a 3 × 3 grid of 0.22° detectors). Per visit (about 1000 DIASources):

* ~560 detections of 800 persistent variables (detection probability 0.7),
* ~100 detections of transients (3 new per visit, each visible 60 days, detection probability 0.6),
* ~340 one-off artifacts at random positions (each its own true object; by chance some fall within the
  tolerance of an existing DIAObject, which is what limits purity here),

with per-source position noise of 0.05-0.1 arcsec per axis. Running list and MultiMatch are timed single
core at 10^4, 10^5 and 10^6 DIASources (10, 100, 1000 visits), wall and CPU time; the exponent of CPU time
vs size is fitted on these.
Quality against the truth:

* purity: fraction of DIAObjects whose DIASources all come from one true object;
* completeness: fraction of true objects with >= 2 detections whose DIASources all fall in one DIAObject.

Prints one JSON document (and writes it with ``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import tracemalloc

# Single core: keep BLAS from spawning threads (set before numpy loads).
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402
from astropy.table import Table  # noqa: E402

from lsst.dia.pipe.association import (  # noqa: E402
    MultiMatchAssociator,
    RunningListAssociator,
    summarize_dia_objects,
)
from lsst.dia.pipe.execution import retain_freed_memory  # noqa: E402

PATCH_SIDE_DEG = 0.5
DETECTOR_SIDE_DEG = 0.22
CENTER_RA, CENTER_DEC = 0.0, -30.0


def synthesize(n_visits: int, seed: int = 42) -> tuple[Table, np.ndarray]:
    """Synthetic DIASources of one patch and the true object index of each.

    Parameters
    ----------
    n_visits : `int`
        Number of visits (about 1000 DIASources each).
    seed : `int`
        Random seed.

    Returns
    -------
    sources : `astropy.table.Table`
        SDM DiaSource columns (diaSourceId, visit, detector, band, midpointMjdTai, ra, dec, psfFlux,
        psfFluxErr, scienceFlux, scienceFluxErr), rows shuffled.
    truth : `numpy.ndarray` of `int64`
        True object of each row.
    """
    rng = np.random.default_rng(seed)
    half = PATCH_SIDE_DEG / 2
    n_var, n_tr_per_visit, n_art_per_visit = 800, 3, 340
    mjd = 60000.0 + np.arange(n_visits) + rng.uniform(0, 0.3, n_visits)

    def random_positions(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.uniform(-half, half, n), rng.uniform(-half, half, n)

    # Variables: every visit, detected with probability 0.7.
    var_x, var_y = random_positions(n_var)
    v_visit, v_obj = np.nonzero(rng.random((n_visits, n_var)) < 0.7)
    # Transients: 3 per visit, visible 60 days.
    n_tr = n_tr_per_visit * n_visits
    tr_x, tr_y = random_positions(n_tr)
    tr_start = np.repeat(np.arange(n_visits), n_tr_per_visit)
    t_obj = np.repeat(np.arange(n_tr), 60)
    t_visit = tr_start[t_obj] + np.tile(np.arange(60), n_tr)
    keep = (t_visit < n_visits) & (rng.random(len(t_obj)) < 0.6)
    t_obj, t_visit = t_obj[keep], t_visit[keep]
    # Artifacts: one detection each.
    n_art = n_art_per_visit * n_visits
    art_x, art_y = random_positions(n_art)
    a_visit = np.repeat(np.arange(n_visits), n_art_per_visit)

    x = np.concatenate([var_x[v_obj], tr_x[t_obj], art_x])
    y = np.concatenate([var_y[v_obj], tr_y[t_obj], art_y])
    visit = np.concatenate([v_visit, t_visit, a_visit])
    truth = np.concatenate([v_obj, n_var + t_obj, n_var + n_tr + np.arange(n_art)])
    n = len(x)
    sigma = rng.uniform(0.05, 0.1, n) / 3600.0
    x = x + rng.normal(0, 1, n) * sigma
    y = y + rng.normal(0, 1, n) * sigma
    dec = CENTER_DEC + y
    ra = (CENTER_RA + x / np.cos(np.deg2rad(dec))) % 360.0

    dither = rng.uniform(-0.1, 0.1, (n_visits, 2))
    ix = np.floor((x + dither[visit, 0]) / DETECTOR_SIDE_DEG + 1.5).astype(np.int64)
    iy = np.floor((y + dither[visit, 1]) / DETECTOR_SIDE_DEG + 1.5).astype(np.int64)
    detector = np.clip(ix, 0, 3) * 4 + np.clip(iy, 0, 3)

    flux_true = rng.lognormal(np.log(2000.0), 1.0, truth.max() + 1)
    flux_err = rng.uniform(100.0, 300.0, n)
    psf_flux = flux_true[truth] * rng.uniform(0.5, 1.5, n) + rng.normal(0, 1, n) * flux_err
    bands = np.array(["g", "r", "i"])[visit % 3]
    perm = rng.permutation(n)
    sources = Table(
        {
            "diaSourceId": np.arange(n, dtype=np.int64),
            "visit": visit[perm],
            "detector": detector[perm],
            "band": bands[perm],
            "midpointMjdTai": mjd[visit][perm],
            "ra": ra[perm],
            "dec": dec[perm],
            "psfFlux": psf_flux[perm],
            "psfFluxErr": flux_err[perm],
            "scienceFlux": (psf_flux + 5000.0)[perm],
            "scienceFluxErr": (flux_err * 1.2)[perm],
        }
    )
    return sources, truth[perm]


def purity_completeness(object_index: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Purity of DIAObjects and completeness of true objects with >= 2 detections (see module docstring)."""
    ok = object_index >= 0
    pairs = np.unique(np.stack([object_index[ok], truth[ok]], axis=1), axis=0)
    objects_per_truth = np.bincount(pairs[:, 1], minlength=truth.max() + 1)
    truths_per_object = np.bincount(pairs[:, 0])
    purity = np.mean(truths_per_object[truths_per_object > 0] == 1)
    n_det = np.bincount(truth, minlength=truth.max() + 1)
    dropped = np.bincount(truth[~ok], minlength=truth.max() + 1) > 0
    multi = n_det >= 2
    complete = (objects_per_truth == 1) & ~dropped
    return float(purity), float(np.mean(complete[multi]))


def timed(func, *args):
    """Run ``func(*args)``; return (result, wall seconds, CPU seconds of this process).

    On a shared machine the CPU time is the better measure of single-core cost (wall time includes waiting).
    """
    wall, cpu = time.perf_counter(), time.process_time()
    result = func(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visits", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    retain_freed_memory()  # as the pipeline's workers do

    report: dict = {"scaling": []}
    algorithms = {"running_list": RunningListAssociator(), "multimatch": MultiMatchAssociator()}
    for n_visits in args.visits:
        sources, truth = synthesize(n_visits)
        row = {"n_visits": n_visits, "n_sources": len(sources), "n_true_objects": int(truth.max() + 1)}
        for name, associator in algorithms.items():
            result, seconds, cpu = timed(associator.associate, sources)
            purity, completeness = purity_completeness(result.dia_source_to_object, truth)
            row[name] = {
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu, 3),
                "n_objects": result.n_objects,
                "n_ambiguous_sources": int(result.ambiguous.sum()),
                "purity": round(purity, 5),
                "completeness": round(completeness, 5),
            }
        result = algorithms["running_list"].associate(sources)
        _, seconds, cpu = timed(
            summarize_dia_objects,
            sources,
            result.dia_source_to_object,
            ["g", "r", "i"],
            np.arange(1, result.n_objects + 1),
        )
        row["summary_seconds"] = round(seconds, 3)
        row["summary_cpu_seconds"] = round(cpu, 3)
        report["scaling"].append(row)
        print(json.dumps(row), flush=True)

    largest = report["scaling"][-1]
    n = np.array([r["n_sources"] for r in report["scaling"]], dtype=float)
    for name in algorithms:
        t = np.array([r[name]["cpu_seconds"] for r in report["scaling"]])
        if len(n) > 1:
            report[f"{name}_exponent"] = round(float(np.polyfit(np.log(n), np.log(t), 1)[0]), 3)
    report["assoc_1e6_s"] = largest["running_list"]["seconds"]
    report["assoc_1e6_cpu_s"] = largest["running_list"]["cpu_seconds"]
    report["multimatch_1e6_s"] = largest["multimatch"]["seconds"]
    report["multimatch_1e6_cpu_s"] = largest["multimatch"]["cpu_seconds"]
    report["exponent"] = report.get("running_list_exponent")
    report["purity"] = largest["running_list"]["purity"]
    report["completeness"] = largest["running_list"]["completeness"]

    # Peak memory of the running list on the largest catalog (Python allocations incl. numpy buffers).
    sources, _ = synthesize(args.visits[-1])
    tracemalloc.start()
    algorithms["running_list"].associate(sources)
    report["running_list_peak_traced_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    report["process_max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        with open(args.output, "w") as stream:
            stream.write(text + "\n")


if __name__ == "__main__":
    main()
