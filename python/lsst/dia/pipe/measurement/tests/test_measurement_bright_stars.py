"""Bright template stars (point-like, bright relative to the difference noise; saturated ones) and their rings."""

from __future__ import annotations

import numpy as np

from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.measurement.bright_stars import bright_template_stars, in_bright_star_rings
from lsst.dia.pipe.psf import GaussianPsf

SHAPE = (300, 300)
SIGMA = 2.0
NOISE = 10.0


def _pair():
    """Template: a bright star (60, 60), a fainter star (150, 60), a bright galaxy (60, 200; sigma 5 px) and a
    saturated star (220, 220); the difference is noise only."""
    rng = np.random.default_rng(7)
    image = render_gaussian_sources(SHAPE, np.array([60.3, 150.6]), np.array([60.2, 60.7]), np.array([5e6, 2e4]),
                                    SIGMA)
    image += render_gaussian_sources(SHAPE, np.array([60.0]), np.array([200.0]), np.array([5e6]), 5.0)
    image += render_gaussian_sources(SHAPE, np.array([220.0]), np.array([220.0]), np.array([1e9]), SIGMA)
    mask = np.where(image > 1e6, np.uint32(MaskBit.SAT_TEMPLATE), np.uint32(0))
    image = np.minimum(image, np.float32(1e6)) + rng.normal(0, 1.0, SHAPE).astype(np.float32)
    template = Exposure(image.astype(np.float32), np.ones(SHAPE, np.float32), mask, GaussianPsf(SIGMA), None)
    difference = Exposure(rng.normal(0, NOISE, SHAPE).astype(np.float32), np.full(SHAPE, NOISE**2, np.float32),
                          np.zeros(SHAPE, np.uint32), GaussianPsf(SIGMA), None)
    return template, difference


def test_point_like_bright_and_saturated_stars_only():
    template, difference = _pair()
    x, y = bright_template_stars(template, difference, min_snr=1000.0, max_fit_residual=0.1)
    found = sorted(zip(np.round(x).astype(int), np.round(y).astype(int)))
    # the 5e6 star (S/N ~ 7e4 on the difference) and the saturated one; not the 2e4 star (S/N ~ 280), not the
    # galaxy (PSF fit residual ~ its whole flux)
    assert found == [(60, 60), (220, 220)]


def test_rings_between_the_radii_only():
    star_x, star_y = np.array([60.3, 220.0]), np.array([60.2, 220.0])
    x = np.array([60.3, 68.3, 75.0, 100.0, 220.0, 220.0])
    y = np.array([60.2, 60.2, 60.2, 60.2, 228.0, 245.0])
    ring = in_bright_star_rings(x, y, star_x, star_y, inner=4.7, outer=16.5)
    np.testing.assert_array_equal(ring, [False, True, True, False, True, False])
    assert not in_bright_star_rings(x, y, np.zeros(0), np.zeros(0), 4.7, 16.5).any()
