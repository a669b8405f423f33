"""Goodness of the PSF fit of a DIASource: residuals that are not point sources.

A real transient or variable on a difference image is the difference PSF times a flux, so its PSF fit leaves
``χ² ≈ N`` (``N`` usable pixels). Subtraction residuals are not: rings where the two PSFs' wings or
truncations differ around bright stars, cosmic rays sharper than the PSF, edges of masked regions. On the
simulated demo survey their median ``χ²/N`` is 4-8 (rings) and 8-18 (unflagged cosmic rays at S/N > 10),
against 1.01 (99th percentile 2.5-4.9) for detections of injected sources.

A real source may exceed ``N`` for two known reasons, which the test allows for: the difference-PSF model is
imperfect (a residual proportional to the source's flux, ``χ²`` excess ``≈ (f S/N)²`` for a fractional model
error ``f``), and the subtraction leaves a fraction ``ε`` of the template flux behind (excess
``≈ (ε F_T / σ_F)²``; ``ε`` as measured by `lsst.dia.pipe.detection.systematics`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["poor_psf_fit"]


def poor_psf_fit(
    psf_chi2: np.ndarray,
    n_data: np.ndarray,
    psf_flux: np.ndarray,
    psf_flux_err: np.ndarray,
    template_flux: np.ndarray,
    max_reduced_chi2: float,
    model_error_fraction: float,
    systematic_fraction: float = 0.0,
) -> np.ndarray:
    """Sources whose PSF-fit ``χ²`` exceeds what noise and the expected model errors allow.

    Parameters
    ----------
    psf_chi2 : `numpy.ndarray`
        ``χ²`` of the PSF fit over its usable pixels.
    n_data : `numpy.ndarray`
        Number of usable pixels of the fit.
    psf_flux, psf_flux_err : `numpy.ndarray`
        PSF flux and its statistical error on the difference image [nJy].
    template_flux : `numpy.ndarray`
        PSF flux of the matched template at the source [nJy] (non-finite: no systematic allowance).
    max_reduced_chi2 : `float`
        Largest ``χ²/N`` allowed for a faint source (1 = a perfect fit on average).
    model_error_fraction : `float`
        Fractional PSF-model error ``f`` allowed for bright sources.
    systematic_fraction : `float`
        Fraction ``ε`` of the template flux left by the subtraction (non-finite or negative: 0).

    Returns
    -------
    poor : `numpy.ndarray` of `bool`
        `True` where ``χ² > max_reduced_chi2 N + (f S/N)² + (ε F_T / σ_F)²``; `False` where the fit is
        undefined (no usable pixel, non-finite ``χ²`` or error), which other flags report.
    """
    chi2 = np.asarray(psf_chi2, float)
    n = np.asarray(n_data, float)
    err = np.asarray(psf_flux_err, float)
    eps = float(systematic_fraction) if np.isfinite(systematic_fraction) and systematic_fraction > 0 else 0.0
    defined = np.isfinite(chi2) & (n > 0) & np.isfinite(err) & (err > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(defined, np.abs(np.asarray(psf_flux, float)) / err, 0.0)
        template = np.where(np.isfinite(template_flux), np.abs(np.asarray(template_flux, float)), 0.0)
        systematic = np.where(defined, eps * template / err, 0.0)
    allowed = max_reduced_chi2 * n + (model_error_fraction * np.nan_to_num(snr)) ** 2 + systematic**2
    return defined & (chi2 > allowed)
