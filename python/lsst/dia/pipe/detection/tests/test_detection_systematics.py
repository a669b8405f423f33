"""Systematic noise near bright template sources: the variance model, its measurement, and detection with it."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.detection import DetectionConfig, detect_sources
from lsst.dia.pipe.detection.matched_filter import PsfCorrelator, filtered_noise_variance
from lsst.dia.pipe.detection.systematics import measure_systematics, systematic_variance
from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources, tan_wcs
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.psf import GaussianPsf

SHAPE = (512, 512)
SIGMA = 2.0
NOISE = 10.0


def test_systematic_variance_known_answer():
    """On a linear ramp the gradient is constant: V = (ε M)² + σ² |∇M|²."""
    yy, xx = np.mgrid[0:50, 0:60].astype(np.float32)
    model = 100 + 3 * xx - 4 * yy
    var = systematic_variance(model, 0.02, 0.5)
    np.testing.assert_allclose(var, (0.02 * model) ** 2 + 0.25 * 25, rtol=1e-5)
    np.testing.assert_array_equal(systematic_variance(model, 0.0, 0.0), 0)


def _stars(seed: int, n: int = 120):
    rng = np.random.default_rng(seed)
    x, y = rng.uniform(30, SHAPE[1] - 30, n), rng.uniform(30, SHAPE[0] - 30, n)
    flux = 10 ** rng.uniform(4.5, 6.0, n)
    return rng, x, y, flux


def test_measure_systematics_recovers_injected_mismatch_and_shift():
    """Stars 1% (rms) off in flux and misregistered by 0.05 px (rms per axis): both recovered."""
    rng, x, y, flux = _stars(1)
    template = render_gaussian_sources(SHAPE, x, y, flux, SIGMA)
    dx, dy = rng.normal(0, 0.05, (2, x.size))
    science = render_gaussian_sources(SHAPE, x + dx, y + dy, flux * (1 + rng.normal(0, 0.01, x.size)), SIGMA)
    difference = science - template + rng.normal(0, NOISE, SHAPE).astype(np.float32)
    correlator = PsfCorrelator(GaussianPsf(SIGMA), SHAPE)
    noise_var = filtered_noise_variance(correlator, np.full(SHAPE, NOISE**2, np.float32))
    eps, sigma, n = measure_systematics(correlator.correlate(difference), noise_var, correlator.correlate(template))
    assert n > 50
    assert eps == pytest.approx(0.01, rel=0.3)
    assert sigma == pytest.approx(0.05, rel=0.3)


def _difference(seed: int, variable_change: float):
    """Difference of a field of bright stars left with 1.5% flux residuals, plus one isolated faint transient
    and one bright star that really varied by ``variable_change``."""
    rng, x, y, flux = _stars(seed, 60)
    residual = flux * rng.normal(0, 0.015, x.size)
    residual[0] = flux[0] * variable_change
    tx, ty, tflux = np.array([256.0]), np.array([40.0]), np.array([600.0])  # ~ 8 sigma
    keep = np.hypot(x - tx, y - ty) > 30
    image = render_gaussian_sources(SHAPE, np.r_[x[keep], tx], np.r_[y[keep], ty], np.r_[residual[keep], tflux],
                                    SIGMA) + rng.normal(0, NOISE, SHAPE).astype(np.float32)
    model = render_gaussian_sources(SHAPE, x[keep], y[keep], flux[keep], SIGMA)
    exposure = Exposure(image, np.full(SHAPE, NOISE**2, np.float32), np.zeros(SHAPE, np.uint32), GaussianPsf(SIGMA),
                        tan_wcs(SHAPE))
    return exposure, model, (x[0], y[0]), (tx[0], ty[0])


def _found(result, position, radius=2.0) -> bool:
    return bool(np.any(np.hypot(result.peaks["x"] - position[0], result.peaks["y"] - position[1]) < radius))


def test_detection_with_systematics_rejects_residuals_keeps_real_changes():
    exposure, model, variable, transient = _difference(2, variable_change=0.3)
    plain = detect_sources(exposure, DetectionConfig())
    corrected = detect_sources(exposure, DetectionConfig(), model=model)
    assert len(plain) > 20  # the 1.5% residuals of bright stars are detected on their own ...
    assert len(corrected) <= 3  # ... and not once their systematic noise is modelled
    assert corrected.systematics.n_sources > 20
    assert corrected.systematics.flux_fraction == pytest.approx(0.015, rel=0.4)
    assert _found(plain, transient) and _found(corrected, transient)
    assert _found(corrected, variable)  # a 30% change of a bright star is still a detection, at its position


def test_configured_floors_without_measurement():
    exposure, model, _, _ = _difference(3, variable_change=0.0)
    config = DetectionConfig()
    config.doMeasureSystematics = False
    assert detect_sources(exposure, config, model=model).systematics.n_sources == 0
    config.systematicFluxFraction = 0.05
    result = detect_sources(exposure, config, model=model)
    assert result.systematics.flux_fraction == 0.05 and len(result) <= 3
