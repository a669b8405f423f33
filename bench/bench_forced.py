#!/usr/bin/env python
"""Throughput of forced PSF photometry on a 4k×4k image (excluding I/O).

Simulates a 4096² image with a Gaussian PSF (sigma 2 px) and point sources at random positions (50 000 by
default: ~60% of them overlap a neighbour and are fitted jointly), then times
`lsst.dia.pipe.measurement.forced_psf_photometry` on one thread (CPU time of this process, user + system, best of
``--repeat`` calls after one untimed warm-up call). Prints JSON with
``forced_per_s_core`` and the flux pulls of unflagged objects against the injected fluxes.

Usage: ``python bench/bench_forced.py [--n-objects N] [--repeat R] [--background]``
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lsst.dia.pipe.exposure import Exposure  # noqa: E402
from lsst.dia.pipe.execution import retain_freed_memory  # noqa: E402
from lsst.dia.pipe.measurement import ForcedPhotometryConfig, forced_psf_photometry  # noqa: E402
from lsst.dia.pipe.measurement.render import render_point_sources  # noqa: E402
from lsst.dia.pipe.psf import GaussianPsf  # noqa: E402


def simulate(n_objects: int, size: int, sigma: float, noise: float, seed: int) -> tuple[Exposure, np.ndarray, ...]:
    """Image with ``n_objects`` PSF sources (flux 300-3000 nJy) on white noise; returns exposure, x, y, flux."""
    rng = np.random.default_rng(seed)
    psf = GaussianPsf(sigma)
    x = rng.uniform(0, size - 1, n_objects)
    y = rng.uniform(0, size - 1, n_objects)
    flux = rng.uniform(300, 3000, n_objects)
    image = render_point_sources((size, size), psf, x, y, flux)
    image += rng.normal(0, noise, (size, size)).astype(np.float32)
    exposure = Exposure(
        image=image,
        variance=np.full((size, size), noise**2, np.float32),
        mask=np.zeros((size, size), np.uint32),
        psf=psf,
        wcs=None,
    )
    return exposure, x, y, flux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-objects", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--background", action="store_true", help="also fit a local background")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args()
    retain_freed_memory()  # as the pipeline's workers do
    exposure, x, y, flux = simulate(args.n_objects, args.size, sigma=2.0, noise=10.0, seed=1)
    config = ForcedPhotometryConfig()
    config.fitBackground = args.background
    forced_psf_photometry(exposure, x, y, config)  # warm-up: imports, PSF sampling caches, allocator
    times = []
    for _ in range(args.repeat):
        t0 = time.process_time()
        table = forced_psf_photometry(exposure, x, y, config)
        times.append(time.process_time() - t0)
    best = min(times)
    pull = (np.asarray(table["psfFlux"]) - flux) / np.asarray(table["psfFluxErr"])
    clean = ~np.asarray(table["psfFlux_flag"])
    report = {
        "n_objects": args.n_objects,
        "image": [args.size, args.size],
        "fit_background": args.background,
        "cpu_seconds_best": round(best, 4),
        "cpu_seconds_all": [round(t, 4) for t in times],
        "forced_per_s_core": round(args.n_objects / best),
        "blended_fraction": round(float(np.mean(np.asarray(table["blendSize"]) > 1)), 4),
        "flagged_fraction": round(float(np.mean(~clean)), 4),
        "pull_mean_unflagged": round(float(np.mean(pull[clean])), 4),
        "pull_std_unflagged": round(float(np.std(pull[clean])), 4),
    }
    text = json.dumps(report)
    print(text)
    if args.output:
        with open(args.output, "w") as stream:
            stream.write(text + "\n")


if __name__ == "__main__":
    main()
