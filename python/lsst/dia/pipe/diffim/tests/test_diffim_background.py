"""The differential background: its fit, and what it does to the ZOGY score and the AL difference."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.diffim import SubtractionConfig, subtract_images
from lsst.dia.pipe.diffim.background import fit_differential_background
from lsst.dia.pipe.diffim.spatial import ChebyshevSpatialModel
from lsst.dia.pipe.diffim.synthetic import star_field_pair

SHAPE = (512, 512)
NOISE = 10.0


def _bilinear(shape, terms=(3.0, 2.0, -1.5, 2.5)) -> np.ndarray:
    """A sky-subtraction residual as the simulator makes it: constant, x, y and x*y terms over [-1, 1]² [nJy]."""
    lx = np.linspace(-1.0, 1.0, shape[1])[None, :]
    ly = np.linspace(-1.0, 1.0, shape[0])[:, None]
    return (terms[0] + terms[1] * lx + terms[2] * ly + terms[3] * lx * ly).astype(np.float32)


def test_fit_recovers_a_bilinear_background_despite_sources_and_masks():
    rng = np.random.default_rng(3)
    truth = _bilinear(SHAPE)
    data = truth + rng.normal(0, NOISE, SHAPE).astype(np.float32)
    data[rng.integers(0, SHAPE[0], 300), rng.integers(0, SHAPE[1], 300)] += 1e4  # unmasked outliers: clipped
    good = np.ones(SHAPE, bool)
    good[:, 100:110] = False
    data[:, 100:110] = 1e6  # masked: never read
    variance = np.full(SHAPE, NOISE**2, np.float32)
    fit = fit_differential_background(data, 0 * data, variance, 0 * variance, good, order=2)
    # 257 000 pixels of noise 10 for six terms: ~0.05 nJy rms, a few times more at the corners.
    error = fit.image() - truth
    assert np.sqrt(np.mean(error**2)) < 0.1 and np.abs(error).max() < 0.3
    assert fit.n_pixels > 0.95 * np.count_nonzero(good)
    assert fit.rms() == pytest.approx(np.sqrt(np.mean(truth**2)), rel=0.02)
    # Order 1 cannot follow the x*y term.
    assert np.abs(fit_differential_background(data, 0 * data, variance, 0 * variance, good, order=1).image()
                  - truth).max() > 2.0


def test_too_few_pixels_leave_no_background():
    data = np.ones(SHAPE, np.float32)
    good = np.zeros(SHAPE, bool)
    good[:10, :10] = True
    ones = np.ones(SHAPE, np.float32)
    fit = fit_differential_background(data, 0 * data, ones, ones, good, order=2)
    assert fit.n_pixels == 0 and not fit.image().any()
    assert ChebyshevSpatialModel(2, SHAPE).n_terms == fit.coefficients.size


@pytest.mark.parametrize("algorithm", ["zogy", "al"])
def test_subtraction_removes_a_science_background(algorithm):
    """A bilinear residual of ~0.3 sigma per pixel in the science image alone: without the background step the
    ZOGY score is off by up to ~2.6 sigma and AL's difference by 0.1 sigma per pixel; with it, the score and the
    difference are centred on zero in every quarter."""
    pair = star_field_pair(SHAPE, n_stars=150, seed=5)
    pair.science.image += _bilinear(SHAPE)
    config = SubtractionConfig()
    config.algorithm = algorithm
    result = subtract_images(pair.science, pair.template, config)
    assert result.metadata["background_rms"] == pytest.approx(np.sqrt(np.mean(_bilinear(SHAPE) ** 2)), rel=0.1)
    normalised = result.difference.image / np.sqrt(result.difference.variance)
    planes = [normalised] if result.score is None else [normalised, result.score]
    quarters = [np.s_[32:256, 32:256], np.s_[32:256, 256:-32], np.s_[256:-32, 32:256], np.s_[256:-32, 256:-32]]
    for plane in planes:
        assert max(abs(np.median(plane[q])) for q in quarters) < 0.05
    config.doSubtractBackground = False
    plain = subtract_images(pair.science, pair.template, config)
    if algorithm == "zogy":
        assert max(abs(np.median(plain.score[q])) for q in quarters) > 1.0
    else:  # AL's joint order-1 background, fitted on the kernel stamps, misses the x*y term (0.1 sigma per pixel)
        normalised = plain.difference.image / np.sqrt(plain.difference.variance)
        assert max(abs(np.median(normalised[q])) for q in quarters) > 0.08
