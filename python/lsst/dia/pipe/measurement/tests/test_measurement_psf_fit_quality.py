"""`poor_psf_fit`: point sources pass, rings and cosmic rays fail, bright mis-modelled stars pass by the allowance."""

from __future__ import annotations

import numpy as np

from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.measurement import ForcedPhotometryConfig, forced_psf_photometry, poor_psf_fit
from lsst.dia.pipe.measurement.render import render_point_sources
from lsst.dia.pipe.psf import GaussianPsf

NOISE = 10.0
SHAPE = (400, 400)


def _measure(image: np.ndarray, x: np.ndarray, y: np.ndarray, model_sigma: float = 2.0):
    exposure = Exposure(image=image.astype(np.float32), variance=np.full(SHAPE, NOISE**2, np.float32),
                        mask=np.zeros(SHAPE, np.uint32), psf=GaussianPsf(model_sigma), wcs=None)
    config = ForcedPhotometryConfig()
    config.fitBackground = False
    return forced_psf_photometry(exposure, x, y, config)


def _poor(table, model_error_fraction=0.05, template_flux=None, systematic_fraction=0.0):
    template = np.full(len(table), np.nan) if template_flux is None else template_flux
    return poor_psf_fit(table["psfChi2"], table["psfNdata"], table["psfFlux"], table["psfFluxErr"], template,
                        3.0, model_error_fraction, systematic_fraction)


def test_point_sources_pass_and_artifacts_fail():
    rng = np.random.default_rng(5)
    grid = np.arange(40, 361, 40, dtype=float)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(grid, grid))
    snr = rng.uniform(5, 100, x.size)
    flux = snr * NOISE * np.sqrt(4 * np.pi * 2.0**2)  # PSF-flux S/N of a Gaussian PSF on white noise
    image = render_point_sources(SHAPE, GaussianPsf(2.0), x, y, flux) + rng.normal(0, NOISE, SHAPE)
    points = _measure(image, x, y)
    assert not _poor(points).any()

    # A ring of radius 10 px around (200, 200) (a bright star's PSF-wing residual) and a two-pixel cosmic ray
    # at (100, 300), each detected at S/N > 5 by a PSF fit.
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    residuals = rng.normal(0, NOISE, SHAPE)
    residuals += 50.0 * np.exp(-0.5 * ((np.hypot(xx - 200, yy - 200) - 10.0) / 1.0) ** 2)
    residuals[300, 100:102] += 40 * NOISE
    artifacts = _measure(residuals, np.array([210.0, 100.5]), np.array([200.0, 300.0]))
    assert (np.asarray(artifacts["psfFlux"]) / np.asarray(artifacts["psfFluxErr"]) > 5).all()
    assert _poor(artifacts).all()


def test_allowances_keep_bright_sources_with_known_model_errors():
    """A S/N 1000 star whose PSF is 5% wider than the model (a fractional model error of ~0.046) fails without
    the model-error allowance and passes with the default 0.05; a residual of 2% of a 10^6 nJy template star
    passes only with the systematic allowance."""
    x, y = np.array([200.3]), np.array([199.6])
    flux = 1000 * NOISE * np.sqrt(4 * np.pi * 2.0**2)
    image = render_point_sources(SHAPE, GaussianPsf(2.1), x, y, np.array([flux]))
    image += np.random.default_rng(1).normal(0, NOISE, SHAPE)
    bright = _measure(image, x, y, model_sigma=2.0)
    assert _poor(bright, model_error_fraction=0.0).all()
    assert not _poor(bright).any()

    template_flux = np.array([1e6])
    residual = render_point_sources(SHAPE, GaussianPsf(2.4), x, y, 0.02 * template_flux)
    residual -= render_point_sources(SHAPE, GaussianPsf(2.0), x, y, 0.02 * template_flux)
    residual += np.random.default_rng(2).normal(0, NOISE, SHAPE)
    variable = _measure(residual, x, y)
    assert _poor(variable, template_flux=template_flux).all()
    assert not _poor(variable, template_flux=template_flux, systematic_fraction=0.02).any()


def test_undefined_fits_are_not_judged():
    chi2 = np.array([np.nan, 1e6, 1e6])
    n = np.array([100, 0, 100])
    err = np.array([1.0, 1.0, np.nan])
    assert not poor_psf_fit(chi2, n, np.ones(3), err, np.full(3, np.nan), 3.0, 0.05).any()
