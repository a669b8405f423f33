"""PSF-fit centroids of many sources at once (Gauss-Newton on flux and position).

Model on a stamp around each source: ``F · P(x - x0, y - y0)`` with the PSF ``P`` from a `PsfStampSampler`,
weighted by the inverse variance. The flux is free in sign, so negative difference-image sources are fitted
the same way. Errors come from the inverse Fisher matrix at the solution.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..exposure import Exposure
from .psf_stamps import PsfStampSampler
from .stamps import cut_stamps, pixel_centres, usable_pixels

__all__ = ["CentroidResult", "fit_psf_centroids", "weighted_normal_equations"]


@dataclasses.dataclass
class CentroidResult:
    """Per-source PSF-fit centroid.

    Attributes
    ----------
    x, y : `numpy.ndarray`
        Centroid [pixels]; the starting position where ``flag`` is set.
    x_err, y_err, xy_cov : `numpy.ndarray`
        Uncertainties [pixels] and covariance [pixels²]; NaN where ``flag`` is set.
    flux : `numpy.ndarray`
        Fitted PSF amplitude [nJy] (weighted fit; the catalogue's psfFlux is measured separately).
    flag : `numpy.ndarray`
        Fit failed (no usable pixels, singular, non-finite, or moved more than the allowed shift).
    """

    x: np.ndarray
    y: np.ndarray
    x_err: np.ndarray
    y_err: np.ndarray
    xy_cov: np.ndarray
    flux: np.ndarray
    flag: np.ndarray


def weighted_normal_equations(
    jac: np.ndarray, weight: np.ndarray, resid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Batched ``JᵀWJ`` and ``JᵀWr`` for Jacobian stacks ``(n, p, k, k)``, weights and residuals ``(n, k, k)``."""
    wj = jac * weight[:, None]
    hess = np.einsum("naij,nbij->nab", wj, jac, dtype=float)
    grad = np.einsum("naij,nij->na", wj, resid, dtype=float)
    return hess, grad


def _linear_flux(psf: np.ndarray, data: np.ndarray, weight: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.einsum("nij,nij,nij->n", weight, psf, data, dtype=float) / np.einsum(
            "nij,nij,nij->n", weight, psf, psf, dtype=float
        )


def fit_psf_centroids(
    exposure: Exposure,
    x0: np.ndarray,
    y0: np.ndarray,
    sampler: PsfStampSampler,
    fit_size: int,
    bad_bits: int,
    max_iter: int = 8,
    max_shift: float = 2.0,
) -> CentroidResult:
    """Fit PSF centroids starting from ``(x0, y0)``.

    Parameters
    ----------
    exposure : `~lsst.dia.pipe.exposure.Exposure`
        Image [nJy] with variance and mask.
    x0, y0 : `numpy.ndarray`
        Starting positions (e.g. detection peaks) [pixels].
    sampler : `PsfStampSampler`
        PSF of ``exposure``.
    fit_size : `int`
        Odd side of the PSF part of the stamp; the fitted stamp adds ``max_shift`` on each side.
    bad_bits : `int`
        Mask bits of pixels to ignore.
    max_iter : `int`
        Gauss-Newton iterations (each step is clipped to half a pixel).
    max_shift : `float`
        Largest allowed distance from the start [pixels].
    """
    x0 = np.asarray(x0, float)
    y0 = np.asarray(y0, float)
    n = len(x0)
    cx, cy = pixel_centres(x0, y0)
    size = fit_size + 2 * int(np.ceil(max_shift))
    stamps = cut_stamps(exposure, cx, cy, size)
    good = usable_pixels(stamps, bad_bits)
    with np.errstate(divide="ignore"):
        weight = np.where(good, 1.0 / stamps.variance, 0).astype(np.float32)
    data = np.where(good, stamps.image, 0).astype(np.float32)
    x, y = x0.copy(), y0.copy()
    hess = np.zeros((n, 3, 3))
    flux = np.zeros(n)
    # A bounded loop over iterations; every iteration handles all sources at once.
    for _ in range(max_iter + 1):
        psf, d_dx, d_dy = sampler.render(x, y, cx, cy, size, gradients=True)
        flux = _linear_flux(psf, data, weight)
        f = flux.astype(np.float32)[:, None, None]
        jac = np.stack([psf, f * d_dx, f * d_dy], axis=1)
        hess, grad = weighted_normal_equations(jac, weight, data - f * psf)
        ok = np.isfinite(hess).all(axis=(1, 2)) & (np.linalg.det(np.nan_to_num(hess)) > 0)
        step = np.zeros((n, 3))
        step[ok] = np.linalg.solve(hess[ok], grad[ok][..., None])[..., 0]
        step = np.clip(step, -0.5, 0.5)
        x += step[:, 1]
        y += step[:, 2]
        if np.all(np.abs(step[:, 1:]) < 1e-3):
            break
    cov = np.full((n, 3, 3), np.nan)
    ok = np.isfinite(hess).all(axis=(1, 2)) & (np.linalg.det(np.nan_to_num(hess)) > 0)
    cov[ok] = np.linalg.inv(hess[ok])
    flag = ~ok | ~np.isfinite(x) | ~np.isfinite(y) | (np.hypot(x - x0, y - y0) > max_shift) | (flux == 0)
    flag |= ~(np.diagonal(cov, axis1=1, axis2=2) > 0).all(axis=1)
    x = np.where(flag, x0, x)
    y = np.where(flag, y0, y)
    cov[flag] = np.nan
    return CentroidResult(
        x=x,
        y=y,
        x_err=np.sqrt(cov[:, 1, 1]),
        y_err=np.sqrt(cov[:, 2, 2]),
        xy_cov=cov[:, 1, 2],
        flux=np.where(flag, np.nan, flux),
        flag=flag,
    )
