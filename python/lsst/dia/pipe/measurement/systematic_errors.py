"""Systematic flux errors of difference-image photometry on top of bright template sources.

A subtraction leaves a fraction ``ε`` of the template's flux behind (measured per image by
`lsst.dia.pipe.detection.systematics.measure_systematics` and stored in the difference image's metadata as
``systematicFluxFraction``). At a source with template PSF flux ``F_T`` the difference PSF flux therefore carries
an error ``ε F_T`` that the variance plane does not know about; without it, variable stars get pulls of several
sigma (their difference fluxes are precise, their template residual is not).
"""

from __future__ import annotations

import numpy as np

__all__ = ["with_systematic_error"]


def with_systematic_error(flux_err: np.ndarray, template_flux: np.ndarray, flux_fraction: float) -> np.ndarray:
    """Statistical and systematic flux errors added in quadrature.

    Parameters
    ----------
    flux_err : `numpy.ndarray`
        Statistical PSF-flux errors on the difference image [nJy].
    template_flux : `numpy.ndarray`
        Template PSF flux at the same positions [nJy] (non-finite: no systematic term).
    flux_fraction : `float`
        ``ε``, fractional flux mismatch of the subtraction (non-finite or negative: treated as 0).

    Returns
    -------
    total : `numpy.ndarray`
        ``sqrt(flux_err² + (ε F_T)²)`` [nJy].
    """
    eps = float(flux_fraction) if np.isfinite(flux_fraction) and flux_fraction > 0 else 0.0
    systematic = np.where(np.isfinite(template_flux), eps * np.abs(np.asarray(template_flux, float)), 0.0)
    return np.hypot(np.asarray(flux_err, float), systematic)
