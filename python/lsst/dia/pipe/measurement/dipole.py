"""Joint fit of a positive and a negative PSF (dipole model) to many candidates at once.

Model on a stamp around the pair: ``F₊ P(x - x₊) - F₋ P(x - x₋)`` with six free parameters
``(F₊, x₊, y₊, F₋, x₋, y₋)``, fitted by Levenberg-Marquardt with inverse-variance weights. All candidates iterate
together; each has its own damping. Fluxes are reported as the absolute lobe fluxes ``F₊``, ``F₋`` (positive
for a real dipole).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..exposure import Exposure
from .centroid import weighted_normal_equations
from .psf_stamps import PsfStampSampler
from .stamps import cut_stamps, pixel_centres, usable_pixels

__all__ = ["DipoleResult", "fit_dipoles"]


@dataclasses.dataclass
class DipoleResult:
    """Per-candidate dipole fit.

    Attributes
    ----------
    params : `numpy.ndarray`
        ``(n, 6)``: ``F₊`` [nJy], ``x₊``, ``y₊`` [pixels], ``F₋`` [nJy], ``x₋``, ``y₋``.
    cov : `numpy.ndarray`
        ``(n, 6, 6)`` parameter covariance (NaN where the fit failed).
    chi2 : `numpy.ndarray`
        Weighted chi² of the model.
    ndata : `numpy.ndarray`
        Usable pixels in the fit.
    success : `numpy.ndarray`
        Finite solution with a positive-definite Fisher matrix, both lobes on the stamp.
    """

    params: np.ndarray
    cov: np.ndarray
    chi2: np.ndarray
    ndata: np.ndarray
    success: np.ndarray


def _model(
    sampler: PsfStampSampler, p: np.ndarray, cx: np.ndarray, cy: np.ndarray, size: int, gradients: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Model stamps and (optionally) the ``(n, 6, k, k)`` Jacobian."""
    pos = sampler.render(p[:, 1], p[:, 2], cx, cy, size, gradients=gradients)
    neg = sampler.render(p[:, 4], p[:, 5], cx, cy, size, gradients=gradients)
    fp = p[:, 0].astype(np.float32)[:, None, None]
    fn = p[:, 3].astype(np.float32)[:, None, None]
    if not gradients:
        return fp * pos - fn * neg, None
    (pp, pdx, pdy), (nn, ndx, ndy) = pos, neg
    jac = np.stack([pp, fp * pdx, fp * pdy, -nn, -fn * ndx, -fn * ndy], axis=1)
    return fp * pp - fn * nn, jac


def _chi2(model: np.ndarray, data: np.ndarray, weight: np.ndarray) -> np.ndarray:
    r = data - model
    return np.einsum("nij,nij,nij->n", r, r, weight, dtype=float)


def fit_dipoles(
    exposure: Exposure,
    pos_x: np.ndarray,
    pos_y: np.ndarray,
    neg_x: np.ndarray,
    neg_y: np.ndarray,
    sampler: PsfStampSampler,
    fit_size: int,
    bad_bits: int,
    max_iter: int = 30,
) -> DipoleResult:
    """Fit dipole models starting from the positive and negative peak positions.

    Parameters
    ----------
    exposure : `~lsst.dia.pipe.exposure.Exposure`
        Difference image [nJy] with variance and mask.
    pos_x, pos_y, neg_x, neg_y : `numpy.ndarray`
        Starting lobe positions [pixels].
    sampler : `PsfStampSampler`
        PSF of ``exposure``.
    fit_size : `int`
        Odd side of a single-PSF fit stamp; the dipole stamp adds the largest lobe separation.
    bad_bits : `int`
        Mask bits of pixels to ignore.
    max_iter : `int`
        Levenberg-Marquardt iterations.
    """
    pos_x, pos_y, neg_x, neg_y = (np.asarray(a, float) for a in (pos_x, pos_y, neg_x, neg_y))
    n = len(pos_x)
    cx, cy = pixel_centres(0.5 * (pos_x + neg_x), 0.5 * (pos_y + neg_y))
    half_sep = 0.5 * np.hypot(pos_x - neg_x, pos_y - neg_y)
    size = fit_size + 2 * (int(np.ceil(half_sep.max(initial=0.0))) + 1)
    stamps = cut_stamps(exposure, cx, cy, size)
    good = usable_pixels(stamps, bad_bits)
    # Fit only pixels near either starting lobe (the common stamp is sized for the widest pair).
    h, radius = size // 2, fit_size // 2 + 0.5
    offsets = np.arange(-h, h + 1, dtype=float)

    def near(lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
        ox = offsets[None, None, :] - (lx - cx)[:, None, None]
        oy = offsets[None, :, None] - (ly - cy)[:, None, None]
        return ox * ox + oy * oy <= radius * radius

    good &= near(pos_x, pos_y) | near(neg_x, neg_y)
    with np.errstate(divide="ignore"):
        weight = np.where(good, 1.0 / stamps.variance, 0).astype(np.float32)
    data = np.where(good, stamps.image, 0).astype(np.float32)

    # Start: lobe fluxes from a linear fit at the peak positions.
    p = np.column_stack([np.ones(n), pos_x, pos_y, np.ones(n), neg_x, neg_y])
    _, jac = _model(sampler, p, cx, cy, size, gradients=True)
    basis = jac[:, [0, 3]]
    hess, grad = weighted_normal_equations(basis, weight, data)
    ok = np.linalg.det(hess) > 0
    p[ok, 0::3] = np.abs(np.linalg.solve(hess[ok], grad[ok][..., None])[..., 0])

    lam = np.full(n, 1e-3)
    model, jac = _model(sampler, p, cx, cy, size, gradients=True)
    chi2 = _chi2(model, data, weight)
    # A bounded loop over iterations; every iteration handles all candidates at once.
    for _ in range(max_iter):
        hess, grad = weighted_normal_equations(jac, weight, data - model)
        diag = np.einsum("nii->ni", hess)
        damped = hess + lam[:, None, None] * diag[:, :, None] * np.eye(6)
        solvable = np.isfinite(damped).all(axis=(1, 2)) & (np.linalg.det(np.nan_to_num(damped)) > 0)
        step = np.zeros((n, 6))
        step[solvable] = np.linalg.solve(damped[solvable], grad[solvable][..., None])[..., 0]
        step[:, [1, 2, 4, 5]] = np.clip(step[:, [1, 2, 4, 5]], -1.0, 1.0)
        trial = p + step
        trial_chi2 = _chi2(_model(sampler, trial, cx, cy, size, gradients=False)[0], data, weight)
        better = solvable & (trial_chi2 < chi2)
        p[better] = trial[better]
        lam = np.where(better, lam / 3.0, lam * 3.0)
        improvement = np.where(better, chi2 - trial_chi2, 0.0)
        chi2 = np.where(better, trial_chi2, chi2)
        model, jac = _model(sampler, p, cx, cy, size, gradients=True)
        if np.all(improvement <= 1e-6 * np.maximum(chi2, 1.0)) and np.all(better | (lam > 1e3)):
            break
    hess, _ = weighted_normal_equations(jac, weight, data - model)
    cov = np.full((n, 6, 6), np.nan)
    ok = np.isfinite(hess).all(axis=(1, 2)) & (np.linalg.det(np.nan_to_num(hess)) > 0)
    cov[ok] = np.linalg.inv(hess[ok])
    on_stamp = (np.abs(p[:, [1, 4]] - cx[:, None]) <= h).all(axis=1) & (
        np.abs(p[:, [2, 5]] - cy[:, None]) <= h
    ).all(axis=1)
    success = ok & np.isfinite(p).all(axis=1) & on_stamp & (np.diagonal(cov, axis1=1, axis2=2) > 0).all(axis=1)
    cov[~success] = np.nan
    return DipoleResult(params=p, cov=cov, chi2=chi2, ndata=good.sum(axis=(1, 2)), success=success)
