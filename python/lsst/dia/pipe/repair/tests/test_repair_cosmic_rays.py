"""Cosmic-ray finding and repair on simulated star fields with known tracks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources, tan_wcs
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf
from lsst.dia.pipe.repair import CosmicRayConfig, find_cosmic_rays, repair_cosmic_rays
from lsst.dia.pipe.repair.cosmic_rays import psf_contrast

SHAPE = (400, 400)
SIGMA = 1.6
NOISE = 10.0


def _track(image: np.ndarray, x0: float, y0: float, angle: float, length: float, charge: float) -> np.ndarray:
    """Add a one-pixel-wide straight track (half-pixel sampling); return its pixels as a boolean mask."""
    t = np.linspace(-0.5, 0.5, int(2 * length))
    xs = np.floor(x0 + t * length * np.cos(angle) + 0.5).astype(int)
    ys = np.floor(y0 + t * length * np.sin(angle) + 0.5).astype(int)
    np.add.at(image, (ys, xs), charge / 2)
    hit = np.zeros(image.shape, bool)
    hit[ys, xs] = True
    return hit


def _field(seed: int = 3):
    rng = np.random.default_rng(seed)
    n = 150
    x, y = rng.uniform(15, SHAPE[1] - 15, n), rng.uniform(15, SHAPE[0] - 15, n)
    flux = 10 ** rng.uniform(3, 6.5, n)  # peak S/N from ~5 to ~20000
    image = render_gaussian_sources(SHAPE, x, y, flux, SIGMA) + rng.normal(0, NOISE, SHAPE).astype(np.float32)
    stars = render_gaussian_sources(SHAPE, x, y, flux, SIGMA) > 3 * NOISE
    variance = np.full(SHAPE, NOISE**2, np.float32) + np.maximum(image, 0)  # source Poisson noise
    return image, variance, stars, (x, y, flux)


def test_psf_contrast_of_a_gaussian():
    """A centred sampled Gaussian: centre / mean(neighbours) = exp(d² / 2σ²) along each axis."""
    contrast = psf_contrast(GaussianPsf(SIGMA), SHAPE)
    expected = np.exp(np.array([1, 1, 2, 2]) / (2 * SIGMA**2))
    np.testing.assert_allclose(contrast, expected, rtol=1e-3)


def test_tracks_found_and_stars_left_alone():
    image, variance, stars, _ = _field()
    tracks = np.zeros(SHAPE, bool)
    for x0, y0, angle, length, charge in ((100, 100, 0.3, 30, 400), (250, 300, 1.2, 12, 150), (320, 80, 2.5, 5, 300)):
        tracks |= _track(image, x0, y0, angle, length, charge)
    found = find_cosmic_rays(image, variance, np.zeros(SHAPE, np.uint32), psf_contrast(GaussianPsf(SIGMA), SHAPE))
    assert found[tracks].mean() > 0.95
    # nothing but the tracks, grown by at most the configured steps (into stars they cross, too)
    config = CosmicRayConfig()
    grow = config.nGrowSteps + config.nGrowFinal
    near_track = ndimage.binary_dilation(tracks, np.ones((3, 3), bool), iterations=grow)
    assert not (found & ~near_track).any()
    assert stars.sum() > 1000 and (found & stars).sum() < 0.05 * stars.sum()


def test_masked_neighbours_and_saturation_do_not_seed():
    """A bright star cut by a bad column and a saturated star are not cosmic rays."""
    image = render_gaussian_sources(SHAPE, np.array([100.0, 250.0]), np.array([100.0, 250.0]),
                                    np.array([3e5, 3e6]), SIGMA)
    image += np.random.default_rng(1).normal(0, NOISE, SHAPE).astype(np.float32)
    mask = np.zeros(SHAPE, np.uint32)
    image[:, 101] = 0
    mask[:, 101] |= np.uint32(MaskBit.BAD)
    core = image > 5e4
    image[core] = 5e4
    mask[core] |= np.uint32(MaskBit.SATURATED)
    variance = np.full(SHAPE, NOISE**2, np.float32) + np.maximum(image, 0)
    found = find_cosmic_rays(image, variance, mask, psf_contrast(GaussianPsf(SIGMA), SHAPE))
    assert not found.any()


def test_repair_interpolates_and_flags_in_place():
    rng = np.random.default_rng(5)
    image = rng.normal(0, NOISE, SHAPE).astype(np.float32)
    variance = np.full(SHAPE, NOISE**2, np.float32)
    clean = image.copy()
    hit = _track(image, 200, 200, 0.7, 25, 500)
    exposure = Exposure(image, variance, np.zeros(SHAPE, np.uint32), GaussianPsf(SIGMA), tan_wcs(SHAPE))
    n = repair_cosmic_rays(exposure, CosmicRayConfig())
    assert n >= hit.sum()
    flagged = (exposure.mask & np.uint32(MaskBit.COSMIC_RAY | MaskBit.INTERPOLATED)) != 0
    assert flagged[hit].all()
    # the charge is gone: what is left on the track is the local mean of untouched neighbours (noise / ~5)
    assert np.abs(exposure.image[hit]).max() < 2 * NOISE
    assert np.array_equal(exposure.image[~flagged], clean[~flagged])


def test_bad_contrast_is_an_error():
    with pytest.raises(ValueError, match="contrast"):
        find_cosmic_rays(np.zeros(SHAPE), np.ones(SHAPE), np.zeros(SHAPE, np.uint32), np.array([1.0, 1.0, 0.5, 1]))
