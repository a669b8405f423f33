"""Science-image forced photometry next to a static neighbour that is not a DIAObject."""

from __future__ import annotations

import numpy as np

from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources, tan_wcs
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.measurement import ForcedPhotometryConfig, forced_psf_photometry, science_neighbours
from lsst.dia.pipe.psf import GaussianPsf

SHAPE = (200, 200)
SIGMA = 2.0
NOISE = 10.0


def _scene(seed: int):
    """Targets of 2000 nJy, each with a 20000 nJy static star 7 px away (a blend at 1.5 FWHM)."""
    rng = np.random.default_rng(seed)
    tx = np.array([40.3, 100.6, 160.2, 60.5, 140.8])
    ty = np.array([50.4, 60.7, 40.1, 150.2, 140.6])
    sx, sy = tx + 7.0, ty - 1.0
    image = render_gaussian_sources(SHAPE, np.r_[tx, sx], np.r_[ty, sy], np.r_[np.full(5, 2000.0), np.full(5, 2e4)],
                                    SIGMA) + rng.normal(0, NOISE, SHAPE).astype(np.float32)
    exposure = Exposure(image, np.full(SHAPE, NOISE**2, np.float32), np.zeros(SHAPE, np.uint32), GaussianPsf(SIGMA),
                        tan_wcs(SHAPE))
    return exposure, tx, ty, sx, sy


def test_neighbours_found_targets_excluded():
    exposure, tx, ty, sx, sy = _scene(1)
    nx, ny = science_neighbours(exposure, tx, ty)
    assert len(nx) == 5
    assert np.all(np.hypot(nx[:, None] - sx, ny[:, None] - sy).min(axis=1) <= 1.0)
    assert science_neighbours(exposure, tx, ty, max_distance=5.0)[0].size == 0


def test_fitting_neighbours_removes_the_blend_bias():
    """Alone, the targets absorb part of their neighbour's wing (pulls ~ +5); fitted jointly the bias falls
    below one sigma (what is left comes from the local background and the cropped stamps of a neighbour ten
    times brighter only 1.5 FWHM away: the same with the neighbours' true positions)."""
    config = ForcedPhotometryConfig()
    biased, fair = [], []
    for seed in range(8):
        exposure, tx, ty, _, _ = _scene(seed)
        biased.append(forced_psf_photometry(exposure, tx, ty, config))
        nx, ny = science_neighbours(exposure, tx, ty)
        fair.append(forced_psf_photometry(exposure, np.r_[tx, nx], np.r_[ty, ny], config)[:5])
    pulls_biased = np.concatenate([(t["psfFlux"] - 2000.0) / t["psfFluxErr"] for t in biased])
    pulls_fair = np.concatenate([(t["psfFlux"] - 2000.0) / t["psfFluxErr"] for t in fair])
    assert np.mean(pulls_biased) > 3
    assert abs(np.mean(pulls_fair)) < 1.0
    assert 0.6 < np.std(pulls_fair) < 1.5


def test_neighbour_inside_the_targets_footprint_is_found():
    """A 5000 nJy star 8 px (1.7 FWHM) from a 20000 nJy target shares its detection footprint: it is still a
    neighbour (every local maximum counts, not one peak per footprint)."""
    rng = np.random.default_rng(3)
    tx, ty = np.array([80.2, 130.7]), np.array([90.4, 120.1])
    sx, sy = tx + np.array([8.0, -5.6]), ty + np.array([0.5, 5.7])
    image = render_gaussian_sources(SHAPE, np.r_[tx, sx], np.r_[ty, sy], np.r_[np.full(2, 2e4), np.full(2, 5e3)],
                                    SIGMA) + rng.normal(0, NOISE, SHAPE).astype(np.float32)
    exposure = Exposure(image, np.full(SHAPE, NOISE**2, np.float32), np.zeros(SHAPE, np.uint32), GaussianPsf(SIGMA),
                        tan_wcs(SHAPE))
    nx, ny = science_neighbours(exposure, tx, ty, min_separation=4.0)
    assert len(nx) == 2
    assert np.all(np.hypot(nx[:, None] - sx, ny[:, None] - sy).min(axis=1) <= 1.0)


def test_saturated_star_is_one_neighbour():
    """A saturated star (clipped core flagged SATURATED) next to a target is one neighbour: the second pass does
    not turn what its model cannot fit into more neighbours."""
    rng = np.random.default_rng(4)
    image = render_gaussian_sources(SHAPE, np.array([100.0, 88.0]), np.array([100.0, 100.0]), np.array([1e7, 2e3]),
                                    SIGMA) + rng.normal(0, NOISE, SHAPE).astype(np.float32)
    mask = np.where(image > 2e5, np.uint32(MaskBit.SATURATED), np.uint32(0))
    image = np.minimum(image, np.float32(2e5))
    exposure = Exposure(image, np.full(SHAPE, NOISE**2, np.float32), mask, GaussianPsf(SIGMA), tan_wcs(SHAPE))
    nx, ny = science_neighbours(exposure, np.array([88.0]), np.array([100.0]), min_separation=4.0)
    assert len(nx) == 1 and abs(nx[0] - 100.0) < 1.0 and abs(ny[0] - 100.0) < 1.0
