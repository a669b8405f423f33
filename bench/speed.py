#!/usr/bin/env python
"""Speed of dia_pipe on a dc2-like 4k × 4k CCD pair, per stage, against the FFT pair and peer codes.

The pair (`ccd_pair.load_ccd_pair`: one ``dc2`` calexp and the six template patches of three tracts that
cover it, rendered once and cached under ``bench/cache/``) goes through the image-difference steps, each timed
on its own (wall clock, this process):

- ``stages_s.template``: warp and assemble the template patches onto the CCD (`assemble_template`);
- ``al_ccd4k_s`` / ``zogy_ccd4k_s``: `subtract_images` on the already warped template (compute only, as the
  targets "AL ≤ 25× and ZOGY ≤ 30× the FFT pair" mean), with the per-stage split from the subtraction's own
  ``time_*_s`` metadata (candidates, kernel fit, convolution, decorrelation, ...);
- ``stages_s.detection`` / ``stages_s.measurement``: `detect_sources` and `measure_dia_sources` on the AL
  difference;
- ``stages_s.io``: butler put + get of the calexp (``VisitImage`` with its Piff PSF) in a fresh local repo;
- ``fft_pair_s``: median of several 4096² float32 ``rfft2`` + ``irfft2`` pairs (scipy.fft, 2 workers) timed in
  the same process, interleaved with the subtractions; ``al_fft_ratio = al_ccd4k_s / fft_pair_s``, likewise
  ZOGY; ``fft_pair_min_s`` and ``*_fft_ratio_min`` use the fastest pair instead (see `fft_ratios`).
  Subtractions run with ``fftWorkers = 2``, as the FFT pair.

Residual noise ratio (science-notes definition): robust standard deviation (1.4826 × MAD) of
``difference / sqrt(variance)`` over source-free pixels — pixels without mask bits, more than 32 px from the
border and outside discs around every true object (radius where its PSF profile falls below half the noise).
Peers have no variance plane: their differences are divided by ``sqrt(V_science + V_matched template)``, the
variance of a PSF-matched difference (the matched-template variance of our AL fit on the same pair).
properimage returns ZOGY's D, which should have unit noise; its robust standard deviation over the same pixels
is reported as ``properimage_d_robust_std`` (it is not 1 here, so no comparable ratio exists).

Scaling: AL and ZOGY on the top-left 1k, 2k and 4k crops of the pair (same WCS and PSF), exponent of time
against pixel count; forced photometry (``bench_forced.py``) against the number of objects; association
against the number of visits comes from ``bench_association.py``. The executor, association and forced
benches are read from ``--others`` (their JSON) or run when missing.

Peers (``peers.py``; subprocesses with their own venv, on FITS files of the same pair): SFFT at 2k (its numpy
backend needs > 24 GB at 4k), properimage at ``--properimage-size``, HOTPANTS at 4k only when a ``hotpants``
binary is on PATH; each with time, residual noise ratio and peak memory, or the reason it has none.

Usage: ``python bench/speed.py --json OUT.json [--size 4096] [--quick] [--no-peers] [--others DIR]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import scipy.fft

from lsst.dia.pipe.detection import DetectionConfig, detect_sources
from lsst.dia.pipe.diffim import DiffimError, SubtractionConfig, SubtractionResult, WarpConfig, assemble_template
from lsst.dia.pipe.diffim import residual_noise_ratio, subtract_images
from lsst.dia.pipe.execution import retain_freed_memory
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.measurement import MeasurementConfig, measure_dia_sources
from lsst.dia.pipe.qa.metrics import disc_mask

import peers
from ccd_pair import CcdPair, load_ccd_pair
from run_all import RESULTS, run_bench_script

#: Threads of every FFT: the FFT pair and the subtractions.
FFT_WORKERS = 2
#: Border left out of residual statistics (kernel and edge effects of every method) [pixels].
NOISE_BORDER = 32


# --- measuring ----------------------------------------------------------------------------------------------
def _rss_bytes() -> int:
    with open("/proc/self/statm") as stream:
        return int(stream.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def peak_memory(interval: float = 0.02):
    """Sample this process's resident memory in a thread; yields a dict filled with ``extra_gb`` on exit.

    ``extra_gb`` is the peak RSS during the block minus the RSS at its start [GB] (memory the block needed on
    top of its inputs).
    """
    stats: dict = {}
    start = peak = _rss_bytes()
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(interval):
            peak = max(peak, _rss_bytes())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield stats
    finally:
        done.set()
        thread.join()
        stats["extra_gb"] = round((max(peak, _rss_bytes()) - start) / 2**30, 3)


def timed(func, *args, **kwargs):
    """``(func(*args, **kwargs), wall seconds)``."""
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - start


def fft_pair_seconds(size: int, repeat: int = 5, workers: int = FFT_WORKERS) -> list[float]:
    """Wall seconds of ``repeat`` float32 ``rfft2`` + ``irfft2`` pairs of a ``size`` × ``size`` image (one warm-up)."""
    image = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)

    def pair() -> None:
        scipy.fft.irfft2(scipy.fft.rfft2(image, workers=workers), s=image.shape, workers=workers)

    pair()
    return [timed(pair)[1] for _ in range(repeat)]


def fit_exponent(x, y) -> float:
    """Slope of ``log y`` against ``log x`` (least squares)."""
    return round(float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0]), 3)


# --- the pair -----------------------------------------------------------------------------------------------
def crop(exposure: Exposure, size: int) -> Exposure:
    """The top-left ``size`` × ``size`` corner (views; array pixel coordinates, WCS and PSF unchanged)."""
    return Exposure(exposure.image[:size, :size], exposure.variance[:size, :size], exposure.mask[:size, :size],
                    exposure.psf, exposure.wcs, x0=exposure.x0, y0=exposure.y0, band=exposure.band,
                    mjd=exposure.mjd)


def source_exclusion(pair: CcdPair) -> np.ndarray:
    """Pixels that are not source-free: discs around true objects, and a `NOISE_BORDER` frame.

    Each object's disc reaches where its (Moffat) PSF profile at its brighter flux (science or template) falls
    below half the science noise, plus 3 px for galaxy extent, at most 64 px.
    """
    science, truth, preset = pair.science, pair.truth, pair.preset
    ny, nx = science.shape
    beta = preset.psf_beta
    fwhm = float(pair.plan.seeing / preset.pixel_scale)
    alpha = fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    noise = float(np.sqrt(np.median(science.variance)))
    flux = np.maximum(np.abs(np.asarray(truth["trueFlux"])), np.abs(np.asarray(truth["templateFlux"])))
    peak = flux * (beta - 1.0) / (np.pi * alpha**2)
    ratio = np.maximum(peak / (0.5 * noise), 1.0)
    radius = np.minimum(np.ceil(alpha * np.sqrt(ratio ** (1.0 / beta) - 1.0)) + 3, 64)
    x, y = np.asarray(truth["x"]), np.asarray(truth["y"])
    exclude = np.zeros((ny, nx), dtype=bool)
    for r in np.unique(radius):  # a few dozen distinct radii
        chosen = radius == r
        exclude |= disc_mask((ny, nx), x[chosen], y[chosen], float(r))
    exclude[:NOISE_BORDER] = exclude[-NOISE_BORDER:] = True
    exclude[:, :NOISE_BORDER] = exclude[:, -NOISE_BORDER:] = True
    return exclude


def subtraction_config(algorithm: str) -> SubtractionConfig:
    """Default subtraction configuration with ``algorithm`` and `FFT_WORKERS` FFT threads."""
    config = SubtractionConfig()
    config.algorithm = algorithm
    config.fftWorkers = FFT_WORKERS
    return config


def run_subtraction(science: Exposure, template: Exposure, algorithm: str,
                    exclude: np.ndarray) -> tuple[SubtractionResult, dict]:
    """Time one subtraction; return its result and a summary (seconds, stages, memory, residual noise)."""
    cpu = time.process_time()
    with peak_memory() as memory:
        result, seconds = timed(subtract_images, science, template, subtraction_config(algorithm))
    cpu = time.process_time() - cpu
    stages = {k[len("time_"):-2]: round(v, 3) for k, v in result.metadata.items()
              if k.startswith("time_") and k.endswith("_s")}
    ny, nx = science.shape
    summary = {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "stages_s": stages,
        "peak_extra_gb": memory["extra_gb"],
        "residual_noise_ratio": round(residual_noise_ratio(result.difference, exclude=exclude[:ny, :nx]), 4),
        "residual_noise_ratio_internal": round(float(result.metadata.get("residual_noise_ratio", np.nan)), 4),
    }
    for key in ("mode", "kernel_sum", "n_kernel_candidates", "n_kernel_used", "spatial_order_used"):
        if key in result.metadata:
            value = result.metadata[key]
            summary[key] = round(value, 5) if isinstance(value, float) else value
    return result, summary


def time_io(pair: CcdPair, directory: Path) -> dict:
    """Butler put + get of the calexp (a ``VisitImage`` with its Piff PSF) in a fresh local repository."""
    import astropy.units as u
    from lsst.daf.butler import Butler
    from lsst.images.psfs import PiffWrapper
    import lsst.images as li

    from lsst.dia.pipe.imaging.camera import make_camera_frames, make_detector
    from lsst.dia.pipe.imaging.visit import make_visit_image
    from lsst.dia.pipe.repo.create import create_repo
    from lsst.dia.pipe.repo.dimensions import VisitDefinition, register_instrument, register_visits
    from lsst.dia.pipe.repo.simulate import SIM_INSTRUMENT

    plan, preset, science = pair.plan, pair.preset, pair.science
    camera = preset.camera()
    layout = camera.detector(pair.detector_id)
    root = directory / "repo"
    butler = create_repo(root)
    register_instrument(butler, SIM_INSTRUMENT, camera.detectors, {plan.physical_filter: plan.band})
    corners = {layout.id: camera.detector_corners_sky(plan.ra, plan.dec, plan.rotation, layout)}
    register_visits(butler, SIM_INSTRUMENT, [VisitDefinition(plan.visit, plan.physical_filter, plan.mjd,
                                                             plan.exposure_time, corners)])
    butler = Butler.from_config(str(root), writeable=True, run="bench/io")
    ny, nx = science.shape
    frames = make_camera_frames(SIM_INSTRUMENT, camera.detectors, camera.plate_scale_arcsec_per_mm)
    calexp = make_visit_image(
        science.image, science.variance, science.mask, wcs=science.wcs,
        psf=PiffWrapper(science.psf.to_piff(), bounds=li.Box.factory[0:ny, 0:nx], stamp_size=science.psf.size),
        detector=make_detector(SIM_INSTRUMENT, layout, frames, visit=plan.visit), band=plan.band,
        physical_filter=plan.physical_filter, nJy_per_count=1.0, mjd=plan.mjd, exposure_time=plan.exposure_time,
        image_unit=u.nJy,
    )
    data_id = {"instrument": SIM_INSTRUMENT, "visit": plan.visit, "detector": layout.id}
    ref, put_s = timed(butler.put, calexp, "calexp", data_id)
    read, get_s = timed(butler.get, "calexp", data_id)
    if not np.array_equal(read.image.array, calexp.image.array):
        raise RuntimeError("calexp read back differs from what was written")
    size = sum(f.stat().st_size for f in root.rglob("*.fits"))
    return {"put_s": round(put_s, 3), "get_s": round(get_s, 3), "file_mb": round(size / 2**20, 1)}


# --- other benches ------------------------------------------------------------------------------------------
#: Other bench scripts merged here: name -> (script, arguments, keys copied to the top level).
OTHER_BENCHES = {
    "executor": ("bench_executor.py", [], ("quantum_overhead_s", "parallel_efficiency")),
    "association": ("bench_association.py", [], ("assoc_1e6_s", "assoc_1e6_cpu_s")),
    "forced": ("bench_forced.py", [], ("forced_per_s_core",)),
}


def other_benches(directory: Path, quick: bool) -> dict:
    """Results of the executor, association and forced benches: their JSON in ``directory``, or run now."""
    merged: dict = {}
    for name, (script, args, keys) in OTHER_BENCHES.items():
        path = directory / f"{name}.json"
        if path.exists():
            result = json.loads(path.read_text())
        elif quick:
            merged[f"{name}_error"] = f"{path} missing (not run with --quick)"
            continue
        else:
            directory.mkdir(parents=True, exist_ok=True)
            result = run_bench_script(script, args, path)
        if "error" in result:
            merged[f"{name}_error"] = result["error"]
        for key in keys:
            if key in result:
                merged[key] = result[key]
        merged.setdefault("sources", {})[name] = str(path)
        if name == "association" and "scaling" in result:
            merged["association_scaling"] = {
                "n_visits": [row["n_visits"] for row in result["scaling"]],
                "n_sources": [row["n_sources"] for row in result["scaling"]],
                "cpu_s": [row["running_list"]["cpu_seconds"] for row in result["scaling"]],
                "exponent_vs_sources": result.get("running_list_exponent"),
                "exponent_vs_visits": fit_exponent([row["n_visits"] for row in result["scaling"]],
                                                   [row["running_list"]["cpu_seconds"] for row in result["scaling"]])
                if len(result["scaling"]) > 1 else None,
            }
    return merged


def forced_sweep(n_objects: list[int], size: int, work: Path) -> dict:
    """`bench_forced.py` at several object counts: CPU seconds and the exponent of time vs count."""
    seconds, errors = [], []
    for n in n_objects:
        result = run_bench_script("bench_forced.py",
                                  ["--n-objects", str(n), "--size", str(size), "--repeat", "2"],
                                  work / f"forced_{n}.json")
        if "error" in result:
            errors.append(result["error"])
            break
        seconds.append(result["cpu_seconds_best"])
    sweep = {"n_objects": n_objects[:len(seconds)], "cpu_s": seconds, "image_size": size}
    if len(seconds) > 1:
        sweep["exponent"] = fit_exponent(sweep["n_objects"], seconds)
    if errors:
        sweep["error"] = errors[0]
    return sweep


# --- peers --------------------------------------------------------------------------------------------------
def peer_runs(pair: CcdPair, template: Exposure, exclude: np.ndarray, matched_variance: dict[int, np.ndarray],
              sizes: dict[str, int], work: Path) -> dict:
    """Run each peer on its crop of the pair; time, peak memory, residual noise ratio or its error."""
    report: dict = {}
    written: dict[int, peers.PairFiles] = {}
    science = pair.science
    for name, size in sizes.items():
        s, t = crop(science, size), crop(template, size)
        bad = (s.mask != 0) | (t.mask != 0) | ~np.isfinite(t.image)
        if size not in written:
            folder = work / f"pair_{size}"
            folder.mkdir(exist_ok=True)
            written[size] = peers.write_pair(folder, s.image, s.variance, t.image, t.variance, bad)
        run = peers.run_peer(name, written[size], written[size].science.parent)
        tag = f"{name}_{size_tag(size)}"
        if run.error:
            report[f"{name}_error"] = run.error
            if run.max_rss_gb is not None:
                report[f"{name}_max_rss_gb"] = run.max_rss_gb
            continue
        report.update({f"{tag}_s": run.compute_s, f"{name}_size": size, f"{name}_wall_s": run.wall_s,
                       f"{name}_max_rss_gb": run.max_rss_gb, f"{name}_details": run.details})
        mask = (s.mask | t.mask).astype(np.uint32)
        if name == "properimage":
            # ZOGY's D should have unit noise, but properimage's D is not normalised that way here (its robust
            # std is far from 1 on pure-noise pixels), so no ratio comparable with the others is possible.
            unit = Exposure(run.difference, np.ones(s.shape, np.float32), mask, s.psf, s.wcs)
            report["properimage_s"] = run.compute_s
            report["properimage_d_robust_std"] = round(residual_noise_ratio(unit, exclude=exclude[:size, :size]), 4)
            continue
        difference = Exposure(run.difference, s.variance + matched_variance[size], mask, s.psf, s.wcs)
        ratio = residual_noise_ratio(difference, exclude=exclude[:size, :size])
        report[f"{name}_residual_noise_ratio"] = round(ratio, 4)
    return report


# --- plots --------------------------------------------------------------------------------------------------
def plot_scaling(report: dict, path: Path) -> None:
    """Time vs image size (AL, ZOGY, FFT pair × target) and association / forced scaling, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scaling = report["scaling"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    ax = axes[0]
    sizes = np.array(scaling["sizes"])
    ax.loglog(sizes, scaling["al_s"], "o-", label="AL")
    ax.loglog(sizes, scaling["zogy_s"], "s-", label="ZOGY")
    fft = np.array(scaling["fft_pair_s"])
    ax.loglog(sizes, 25 * fft, "k--", lw=1, label="25 × FFT pair")
    ax.loglog(sizes, 30 * fft, "k:", lw=1, label="30 × FFT pair")
    ax.set(xlabel="image side [pixels]", ylabel="seconds", title="subtraction (warped template)")
    ax.legend(fontsize=8)
    assoc = report.get("association_scaling")
    if assoc:
        axes[1].loglog(assoc["n_sources"], assoc["cpu_s"], "o-")
        axes[1].set(xlabel="DIASources", ylabel="CPU seconds",
                    title=f"association (k = {assoc['exponent_vs_sources']})")
    forced = scaling.get("forced")
    if forced and forced.get("cpu_s"):
        axes[2].loglog(forced["n_objects"], forced["cpu_s"], "o-")
        axes[2].set(xlabel="objects per image", ylabel="CPU seconds",
                    title=f"forced photometry (k = {forced.get('exponent')})")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# --- main ---------------------------------------------------------------------------------------------------
def fft_ratios(report: dict) -> dict:
    """FFT-pair unit and the AL/ZOGY ratios to it, from every FFT pair of the CCD size timed in the run.

    ``fft_pair_s`` is the median; ``fft_pair_min_s`` the fastest, i.e. the FFT pair with both cores free (on a
    shared 2-core machine the 2-worker FFT pair is up to twice as slow when another process holds a core,
    while the mostly single-threaded subtractions barely change), and ``*_fft_ratio_min`` the ratios to it;
    ``*_cpu_per_wall``: CPU over wall time of the subtraction (its parallelism).
    """
    samples = np.asarray(report["fft_pair_all_s"])
    out = {"fft_pair_s": round(float(np.median(samples)), 4), "fft_pair_min_s": round(float(samples.min()), 4)}
    for algorithm in ("al", "zogy"):
        seconds = report[algorithm]["seconds"]
        out[f"{algorithm}_fft_ratio"] = round(seconds / out["fft_pair_s"], 2)
        out[f"{algorithm}_fft_ratio_min"] = round(seconds / out["fft_pair_min_s"], 2)
        out[f"{algorithm}_cpu_per_wall"] = round(report[algorithm]["cpu_seconds"] / seconds, 2)
    return out


def size_tag(size: int) -> str:
    """``ccd4k`` for 4096, ``ccd2k`` for 2048, ``ccd300`` for 300."""
    return f"ccd{size // 1024}k" if size % 1024 == 0 else f"ccd{size}"


def ccd_stages(pair: CcdPair, size: int, exclude: np.ndarray, fft_repeat: int, repeat: int,
               keep_variance: bool) -> dict:
    """Stage timings on the ``size`` crop: template, AL and ZOGY, detection, measurement; the FFT pair.

    AL and ZOGY: best of ``repeat`` timed runs after one warm-up run each; the FFT pair: median of all the
    pairs timed between them.

    Returns a dict with the report entries, the warped ``template`` (`Exposure`) and, when
    ``keep_variance``, the AL matched-template variance (``matched_variance``).
    """
    science = crop(pair.science, size)
    stages: dict = {}
    assembled, stages["template"] = timed(assemble_template, pair.patches, science.wcs, science.shape, WarpConfig())
    template = assembled.exposure
    out: dict = {"template_coverage": round(float(assembled.coverage_fraction), 4)}
    # One untimed warm-up subtraction each: the first large allocations of a process page-fault fresh memory
    # (the FFT pair itself is ~2x slower in that state), so both sides are timed warm.
    cold = {algorithm: timed(subtract_images, science, template, subtraction_config(algorithm))[1]
            for algorithm in ("al", "zogy")}
    fft_times = fft_pair_seconds(size, fft_repeat)
    results: dict = {}
    for _ in range(repeat):
        for algorithm in ("al", "zogy"):
            result, summary = run_subtraction(science, template, algorithm, exclude)
            runs = out.get(algorithm, {}).get("all_seconds", []) + [summary["seconds"]]
            if algorithm not in results or summary["seconds"] < out[algorithm]["seconds"]:
                results[algorithm], out[algorithm] = result, summary
            out[algorithm]["all_seconds"] = runs
            out[algorithm]["cold_seconds"] = round(cold[algorithm], 3)
            del result
        fft_times += fft_pair_seconds(size, fft_repeat)  # interleaved: the machine may be shared
    out["fft_pair_all_s"] = [round(t, 4) for t in fft_times]
    for algorithm in ("al", "zogy"):
        summary = out[algorithm]
        out[f"{algorithm}_{size_tag(size)}_s"] = summary["seconds"]
        out[f"{algorithm}_residual_noise_ratio"] = summary["residual_noise_ratio"]

    al, zogy = results["al"], results["zogy"]
    detections, stages["detection"] = timed(detect_sources, al.difference, DetectionConfig())
    al.difference.mask = detections.mask
    sources, stages["measurement"] = timed(measure_dia_sources, al.difference, science, al.matched_template,
                                           detections, MeasurementConfig())
    zogy_detections, stages["detection_zogy"] = timed(detect_sources, zogy.difference, DetectionConfig(),
                                                      score=zogy.score)
    out["n_dia_sources_al"] = len(sources)
    out["n_detections_zogy"] = len(zogy_detections)
    for stage in ("kernel_fit", "convolution", "decorrelation"):
        stages[stage] = out["al"]["stages_s"].get(stage)
    stages["zogy"] = out["zogy"]["stages_s"].get("zogy")
    out["stages_s"] = {k: (round(v, 3) if v is not None else None) for k, v in stages.items()}
    out["template"] = template
    if keep_variance:
        out["matched_variance"] = al.matched_template.variance.copy()
    return out


def size_scaling(pair: CcdPair, template: Exposure, exclude: np.ndarray, sizes: list[int], known: dict,
                 fft_repeat: int, repeat: int, keep_variance: set[int]
                 ) -> tuple[dict, dict[int, np.ndarray], dict[int, list[float]]]:
    """AL and ZOGY time (best of ``repeat``) and residual noise on crops of the pair; exponents of time vs
    pixel count.

    ``known`` holds the entries of `ccd_stages` for its size (reused, not re-run). Returns the scaling dict,
    the AL matched-template variance of the crops in ``keep_variance`` and the FFT-pair times of each size.
    """
    scaling: dict = {"sizes": sizes, "al_s": [], "zogy_s": [], "fft_pair_s": [],
                     "al_residual_noise_ratio": [], "zogy_residual_noise_ratio": []}
    variances: dict[int, np.ndarray] = {}
    fft_samples: dict[int, list[float]] = {}
    for n in sizes:
        for algorithm in ("al", "zogy"):
            summary = {"seconds": None, "residual_noise_ratio": None}
            if f"{algorithm}_{size_tag(n)}_s" in known:
                summary = known[algorithm]
            else:
                try:
                    for _ in range(repeat):
                        result, run = run_subtraction(crop(pair.science, n), crop(template, n), algorithm, exclude)
                        if summary["seconds"] is None or run["seconds"] < summary["seconds"]:
                            summary = run
                except DiffimError as error:
                    scaling.setdefault("errors", []).append(f"{algorithm} {n}²: {error}")
                    result = None
                if result is not None and algorithm == "al" and n in keep_variance:
                    variances[n] = result.matched_template.variance.copy()
                del result
            scaling[f"{algorithm}_s"].append(summary["seconds"])
            scaling[f"{algorithm}_residual_noise_ratio"].append(summary["residual_noise_ratio"])
        fft_samples[n] = [round(t, 4) for t in fft_pair_seconds(n, fft_repeat)]
        scaling["fft_pair_s"].append(round(float(np.median(fft_samples[n])), 4))
    for algorithm in ("al", "zogy"):
        done = [(n * n, t) for n, t in zip(sizes, scaling[f"{algorithm}_s"]) if t is not None]
        if len(done) > 1:
            scaling[f"{algorithm}_exponent"] = fit_exponent(*zip(*done))
    return scaling, variances, fft_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the JSON report here")
    parser.add_argument("--size", type=int, default=4096, help="CCD side for the stage timings (crop of the 4k pair)")
    parser.add_argument("--quick", action="store_true",
                        help="1k CCD, 512-1024 scaling, no peers, other benches only read (a smoke test)")
    parser.add_argument("--no-peers", action="store_true", help="skip the peer codes")
    parser.add_argument("--repeat", type=int, default=4,
                        help="timed AL/ZOGY runs per size (best kept; single runs vary by up to 50%% with the heap layout)")
    parser.add_argument("--sfft-size", type=int, default=2048)
    parser.add_argument("--properimage-size", type=int, default=4096)
    parser.add_argument("--others", type=Path, default=RESULTS, help="directory of the other benches' JSON")
    parser.add_argument("--plot", type=Path, help="PNG of the scaling plots (default: --json with .png)")
    args = parser.parse_args()
    retain_freed_memory()  # as the pipeline's workers do
    size = 1024 if args.quick else min(args.size, 4096)
    sizes = [512, 1024] if args.quick else sorted({n for n in (1024, 2048, 4096) if n <= size} | {size})
    fft_repeat = 3 if args.quick else 5
    peer_sizes = {} if (args.quick or args.no_peers) else {
        name: min(n, size) for name, n in
        (("sfft", args.sfft_size), ("properimage", args.properimage_size), ("hotpants", 4096))}
    wall_start = time.perf_counter()
    load_start = os.getloadavg()

    pair, load_s = timed(load_ccd_pair)
    report: dict = {
        "fft_workers": FFT_WORKERS,
        "pair": {"preset": "dc2", "visit": pair.plan.visit, "detector": pair.detector_id, "band": pair.plan.band,
                 "science_seeing_arcsec": round(pair.plan.seeing, 3),
                 "template_seeing_arcsec": pair.preset.template_seeing,
                 "template_patches": [list(p) for p in pair.patch_ids], "load_s": round(load_s, 1)},
    }
    exclude = source_exclusion(pair)
    report["source_free_fraction"] = round(1.0 - float(exclude[:size, :size].mean()), 3)
    stages = ccd_stages(pair, size, exclude, fft_repeat, args.repeat, keep_variance=size in peer_sizes.values())
    template = stages.pop("template")
    pair.patches = []  # only the warped template is needed from here on (frees ~1.3 GB before the peers run)
    variances = {size: stages.pop("matched_variance")} if size in peer_sizes.values() else {}
    report.update(stages)

    with tempfile.TemporaryDirectory(prefix="dia_bench_") as tmp:
        work = Path(tmp)
        report["io"] = time_io(pair, work)
        report["stages_s"]["io"] = round(report["io"]["put_s"] + report["io"]["get_s"], 3)
        scaling, more, fft_samples = size_scaling(pair, template, exclude, sizes, report, fft_repeat, args.repeat,
                                                  set(peer_sizes.values()))
        report["fft_pair_all_s"] += fft_samples[size]
        variances.update(more)
        for n, al_s, zogy_s in zip(sizes, scaling["al_s"], scaling["zogy_s"]):
            report.setdefault(f"al_{size_tag(n)}_s", al_s)
            report.setdefault(f"zogy_{size_tag(n)}_s", zogy_s)
        report["scaling"] = scaling
        report.update(fft_ratios(report))
        report.update(other_benches(args.others, args.quick))
        if "association_scaling" in report:
            scaling["association_exponent_vs_visits"] = report["association_scaling"]["exponent_vs_visits"]
        if not args.quick:
            scaling["forced"] = forced_sweep([12_500, 25_000, 50_000], 4096, work)
            scaling["forced_exponent"] = scaling["forced"].get("exponent")

        if peer_sizes:
            report.update(peer_runs(pair, template, exclude, variances, peer_sizes, work))
            if report.get("sfft_ccd2k_s") and report.get("al_ccd2k_s"):
                report["sfft_al_ratio_2k"] = round(report["sfft_ccd2k_s"] / report["al_ccd2k_s"], 2)
            zogy_key = f"zogy_{size_tag(report.get('properimage_size', 0) or 1)}_s"
            if report.get("properimage_s") and zogy_key in report:
                report["properimage_zogy_ratio"] = round(report["properimage_s"] / report[zogy_key], 2)
            if report.get("hotpants_ccd4k_s"):
                report["hotpants_fft_ratio"] = round(report["hotpants_ccd4k_s"] / report["fft_pair_s"], 2)
        else:
            report["peers_error"] = "peers not run (--quick or --no-peers)"

    report["load_average_start_end"] = [round(load_start[0], 2), round(os.getloadavg()[0], 2)]
    report["process_max_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    report["bench_wall_s"] = round(time.perf_counter() - wall_start, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    plot_path = args.plot or (args.json.with_suffix(".png") if args.json else None)
    if plot_path:
        plot_scaling(report, plot_path)


if __name__ == "__main__":
    main()
