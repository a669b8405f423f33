"""PSF stamps at sub-pixel positions and PSF fluxes of isolated point sources (known answers, pulls)."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.measurement import ForcedPhotometryConfig, PsfStampSampler, forced_psf_photometry
from lsst.dia.pipe.measurement.render import render_point_sources
from lsst.dia.pipe.psf import GaussianPsf, GridPsf

NOISE = 10.0


def _gaussian(size: int, sigma: float, ox: float, oy: float) -> np.ndarray:
    r = np.arange(size) - size // 2
    gx = np.exp(-0.5 * ((r - ox) / sigma) ** 2)
    gy = np.exp(-0.5 * ((r - oy) / sigma) ** 2)
    return np.outer(gy, gx) / (2 * np.pi * sigma**2)


def _exposure(image: np.ndarray, psf, variance: float = NOISE**2) -> Exposure:
    return Exposure(
        image=image.astype(np.float32),
        variance=np.full(image.shape, variance, np.float32),
        mask=np.zeros(image.shape, np.uint32),
        psf=psf,
        wcs=None,
    )


def test_sampler_shifts_match_analytic_gaussian():
    sampler = PsfStampSampler(GaussianPsf(2.0), (100, 100))
    x = np.array([10.3, 20.0, 30.7, 41.49])
    y = np.array([10.1, 20.45, 29.6, 40.0])
    cx, cy = np.round(x).astype(int), np.round(y).astype(int)
    psf, d_dx, d_dy = sampler.render(x, y, cx, cy, 21, gradients=True)
    eps = 1e-4
    for i in range(len(x)):
        ox, oy = x[i] - cx[i], y[i] - cy[i]
        assert np.abs(psf[i] - _gaussian(21, 2.0, ox, oy)).max() < 1e-6
        numeric = (_gaussian(21, 2.0, ox + eps, oy) - _gaussian(21, 2.0, ox - eps, oy)) / (2 * eps)
        assert np.abs(d_dx[i] - numeric).max() < 1e-6
        numeric = (_gaussian(21, 2.0, ox, oy + eps) - _gaussian(21, 2.0, ox, oy - eps)) / (2 * eps)
        assert np.abs(d_dy[i] - numeric).max() < 1e-6
    # A source several pixels from the stamp centre lands where it should.
    far = sampler.render(np.array([13.0]), np.array([10.0]), np.array([10]), np.array([10]), 31)[0]
    assert np.unravel_index(far.argmax(), far.shape) == (15, 18)


def test_sampler_interpolates_grid_psf_like_the_model():
    psf = GridPsf.from_function(
        lambda x, y: GaussianPsf(1.5 + x / 100, size=21).kernel_image(0, 0), (0, 99), (0, 99), 3, 3
    )
    sampler = PsfStampSampler(psf, (100, 100))
    x = np.array([25.0, 99.0, 60.0])
    y = np.array([3.0, 50.0, 77.0])
    stamps = sampler.render(x, y, x.astype(int), y.astype(int), 21)
    for i in range(3):
        assert np.abs(stamps[i] - psf.kernel_image(x[i], y[i])).max() < 1e-7
    assert sampler.sigma_max == pytest.approx(2.49, abs=0.01)


@pytest.mark.parametrize("varying", [False, True])
def test_psf_flux_pulls_of_isolated_sources(varying):
    """A few hundred isolated sources at random sub-pixel positions: flux pulls have mean 0 and std 1."""
    n = 1024
    rng = np.random.default_rng(20 + varying)
    if varying:
        psf = GridPsf.from_function(
            lambda x, y: GaussianPsf(1.6 + 0.8 * x / n + 0.3 * y / n, size=25).kernel_image(0, 0),
            (0, n - 1),
            (0, n - 1),
            4,
            4,
        )
    else:
        psf = GaussianPsf(2.0)
    g = np.arange(20, n - 20, 40, dtype=float)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    flux = rng.uniform(200, 3000, x.size)
    image = render_point_sources((n, n), psf, x, y, flux) + rng.normal(0, NOISE, (n, n))
    table = forced_psf_photometry(_exposure(image, psf), x, y)
    pull = (np.asarray(table["psfFlux"]) - flux) / np.asarray(table["psfFluxErr"])
    assert x.size > 500
    assert abs(np.mean(pull)) < 0.1
    assert np.std(pull) == pytest.approx(1.0, abs=0.08)
    assert np.all(table["blendSize"] == 1) and not np.any(table["psfFlux_flag"])
    # chi2 per pixel of the right model in white noise is 1.
    assert np.median(table["psfChi2"] / table["psfNdata"]) == pytest.approx(1.0, abs=0.05)
    # The error is the meas_base PsfFlux error sqrt(sum P^2 V) / sum P^2 = sigma / sqrt(sum P^2).
    p = psf.kernel_image(0, 0)
    if not varying:
        assert np.median(table["psfFluxErr"]) == pytest.approx(NOISE / np.sqrt((p * p).sum()), rel=1e-3)


def test_bright_source_flux_is_unbiased_to_a_permille():
    n = 128
    rng = np.random.default_rng(4)
    psf = GaussianPsf(1.7)
    x, y, flux = np.array([63.37]), np.array([60.81]), np.array([2.0e6])
    image = render_point_sources((n, n), psf, x, y, flux) + rng.normal(0, NOISE, (n, n))
    row = forced_psf_photometry(_exposure(image, psf), x, y)[0]
    assert row["psfFlux"] == pytest.approx(flux[0], rel=1e-3)
    assert abs(row["psfFlux"] - flux[0]) < 4 * row["psfFluxErr"]
    # A position error of half a pixel costs flux: the measurement follows the given position.
    off = forced_psf_photometry(_exposure(image, psf), x + 0.5, y)[0]
    assert off["psfFlux"] < 0.98 * flux[0]


def test_background_fit_recovers_flux_and_level():
    n = 512
    rng = np.random.default_rng(30)
    psf = GaussianPsf(2.0)
    g = np.arange(20, n - 20, 32, dtype=float)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    flux = rng.uniform(500, 3000, x.size)
    level = 25.0
    image = render_point_sources((n, n), psf, x, y, flux) + level + rng.normal(0, NOISE, (n, n))
    exposure = _exposure(image, psf)
    plain = forced_psf_photometry(exposure, x, y)
    assert "localBackground" not in plain.colnames
    # Without a background term the offset biases every flux upwards.
    assert np.mean((plain["psfFlux"] - flux) / plain["psfFluxErr"]) > 3
    config = ForcedPhotometryConfig()
    config.fitBackground = True
    fitted = forced_psf_photometry(exposure, x, y, config)
    pull = (np.asarray(fitted["psfFlux"]) - flux) / np.asarray(fitted["psfFluxErr"])
    assert abs(np.mean(pull)) < 0.15
    assert np.std(pull) == pytest.approx(1.0, abs=0.12)
    bkg_pull = (np.asarray(fitted["localBackground"]) - level) / np.asarray(fitted["localBackgroundErr"])
    assert abs(np.mean(bkg_pull)) < 0.2
    assert np.std(bkg_pull) == pytest.approx(1.0, abs=0.15)
