#!/usr/bin/env python
"""Speed and noise quality of `subtract_images` (Alard-Lupton and ZOGY) on a simulated 4k×4k CCD.

Simulates an aligned star-field pair with numpy (`lsst.dia.pipe.diffim.synthetic.star_field_pair`): Gaussian
PSFs of 4 px (template) and 5 px (science) FWHM, white sky noise (science 10 nJy, template 5 nJy per pixel),
a few hundred stars with S/N 15-600, optionally a science PSF whose width changes by 10% across the CCD. Times
`subtract_images` for AL and ZOGY (best of ``--repeat`` calls after a warm-up call, per-stage timings from the result metadata)
and 4096² float32 ``rfft2`` + ``irfft2`` pairs with `scipy.fft` (5 before and 5 after the subtractions, after a
warm-up) in the same process with the same number of FFT threads. Prints JSON: ``al_ccd4k_s``,
``zogy_ccd4k_s``, ``fft_pair_s`` (median pair), ``al_fft_ratio``, ``zogy_fft_ratio`` (targets: <= 25 and
<= 30; also against the fastest pair, ``*_fastest``, the unit on an otherwise idle machine) and the residual
noise ratios (target 1.00-1.10).

Usage: ``python bench/bench_diffim.py [--size 4096] [--stars 600] [--workers 2] [--repeat 2] [--varying-psf]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import scipy.fft

from lsst.dia.pipe.diffim import SubtractionConfig, subtract_images
from lsst.dia.pipe.diffim.synthetic import star_field_pair
from lsst.dia.pipe.execution import retain_freed_memory

FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def fft_pair_seconds(size: int, workers: int, repeat: int = 5) -> list[float]:
    """Times of ``repeat`` float32 rfft2 + irfft2 pairs of a ``size²`` image (after one warm-up)."""
    image = np.random.default_rng(0).normal(size=(size, size)).astype(np.float32)
    scipy.fft.irfft2(scipy.fft.rfft2(image, workers=workers), s=image.shape, workers=workers)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        scipy.fft.irfft2(scipy.fft.rfft2(image, workers=workers), s=image.shape, workers=workers)
        times.append(time.perf_counter() - t0)
    return times


def run(pair, algorithm: str, workers: int, repeat: int) -> tuple[float, dict]:
    """Best wall time of ``repeat`` subtractions (after one untimed warm-up, as for the FFT pair: a process's
    first large allocations page-fault fresh memory) and the metadata of the fastest."""
    config = SubtractionConfig()
    config.algorithm = algorithm
    config.fftWorkers = workers
    subtract_images(pair.science, pair.template, config)
    best, metadata = np.inf, {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = subtract_images(pair.science, pair.template, config)
        elapsed = time.perf_counter() - t0
        if elapsed < best:
            best, metadata = elapsed, result.metadata
    return best, metadata


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--stars", type=int, default=600)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--varying-psf", action="store_true", help="science PSF width varies by 10%% over the CCD")
    args = parser.parse_args()
    retain_freed_memory()  # as the pipeline's workers do

    sigma_t, sigma_s = 4.0 * FWHM_TO_SIGMA, 5.0 * FWHM_TO_SIGMA
    size = args.size
    sigma_science = (lambda x, y: sigma_s * (0.95 + 0.1 * np.asarray(x) / size)) if args.varying_psf else sigma_s
    t0 = time.perf_counter()
    pair = star_field_pair((size, size), n_stars=args.stars, sigma_science=sigma_science, sigma_template=sigma_t,
                           noise_science=10.0, noise_template=5.0, seed=3)
    simulate_s = time.perf_counter() - t0

    fft_times = fft_pair_seconds(size, args.workers)
    al_s, al_meta = run(pair, "al", args.workers, args.repeat)
    zogy_s, zogy_meta = run(pair, "zogy", args.workers, args.repeat)
    fft_times += fft_pair_seconds(size, args.workers)
    # The shared machine makes the FFT unit bimodal (2 free cores or not): report the median and the fastest.
    fft_pair, fft_fastest = float(np.median(fft_times)), float(np.min(fft_times))

    def stages(meta: dict) -> dict:
        return {k: round(v, 3) for k, v in meta.items() if k.startswith("time_")}

    report = {
        "size": size,
        "n_stars": args.stars,
        "varying_psf": args.varying_psf,
        "fft_workers": args.workers,
        "simulate_s": round(simulate_s, 2),
        "fft_pair_s": round(fft_pair, 4),
        "fft_pair_fastest_s": round(fft_fastest, 4),
        "al_ccd4k_s": round(al_s, 3),
        "zogy_ccd4k_s": round(zogy_s, 3),
        "al_fft_ratio": round(al_s / fft_pair, 1),
        "zogy_fft_ratio": round(zogy_s / fft_pair, 1),
        "al_fft_ratio_fastest": round(al_s / fft_fastest, 1),
        "zogy_fft_ratio_fastest": round(zogy_s / fft_fastest, 1),
        "al_residual_noise_ratio": round(al_meta["residual_noise_ratio"], 4),
        "zogy_residual_noise_ratio": round(zogy_meta["residual_noise_ratio"], 4),
        "al_kernel_sum": round(al_meta["kernel_sum"], 5),
        "al_n_kernel_candidates": al_meta["n_kernel_candidates"],
        "al_n_kernel_used": al_meta["n_kernel_used"],
        "al_spatial_order_used": al_meta["spatial_order_used"],
        "al_stages_s": stages(al_meta),
        "zogy_stages_s": stages(zogy_meta),
        "targets": {"al_fft_ratio_max": 25, "zogy_fft_ratio_max": 30, "residual_noise_ratio": [1.0, 1.1]},
    }
    # Noise ratios are judged at the targets' precision (two decimals): the statistic's own error is ~0.001.
    report["targets_met"] = bool(
        report["al_fft_ratio"] <= 25 and report["zogy_fft_ratio"] <= 30
        and all(1.0 <= round(report[k], 2) <= 1.1 for k in ("al_residual_noise_ratio", "zogy_residual_noise_ratio"))
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
