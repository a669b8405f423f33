"""Shared scenes of the measurement tests."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf


@pytest.fixture
def bright_star_pair() -> tuple[Exposure, Exposure]:
    """Template: a bright star (60, 60), a fainter star (150, 60), a bright galaxy (60, 200; sigma 5 px) and a
    saturated star (220, 220); the difference is noise only (10 nJy per pixel). Gaussian PSF of sigma 2 px."""
    shape, sigma, noise = (300, 300), 2.0, 10.0
    rng = np.random.default_rng(7)
    image = render_gaussian_sources(shape, np.array([60.3, 150.6]), np.array([60.2, 60.7]), np.array([5e6, 2e4]),
                                    sigma)
    image += render_gaussian_sources(shape, np.array([60.0]), np.array([200.0]), np.array([5e6]), 5.0)
    image += render_gaussian_sources(shape, np.array([220.0]), np.array([220.0]), np.array([1e9]), sigma)
    mask = np.where(image > 1e6, np.uint32(MaskBit.SAT_TEMPLATE), np.uint32(0))
    image = np.minimum(image, np.float32(1e6)) + rng.normal(0, 1.0, shape).astype(np.float32)
    template = Exposure(image.astype(np.float32), np.ones(shape, np.float32), mask, GaussianPsf(sigma), None)
    difference = Exposure(rng.normal(0, noise, shape).astype(np.float32), np.full(shape, noise**2, np.float32),
                          np.zeros(shape, np.uint32), GaussianPsf(sigma), None)
    return template, difference
