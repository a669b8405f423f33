"""Adaptive second moments (elliptical Gaussian weight matched to the source), vectorised over stamps."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["AdaptiveMoments", "adaptive_moments"]


@dataclasses.dataclass
class AdaptiveMoments:
    """Per-source adaptive moments in pixel units.

    Attributes
    ----------
    ixx, iyy, ixy : `numpy.ndarray`
        Second moments [pixels²] of the matched Gaussian weight (equal to the source's for a Gaussian source);
        NaN where ``flag``.
    flag : `numpy.ndarray`
        No convergence, non-positive weighted flux, or a weight too large for the stamp.
    no_pixels : `numpy.ndarray`
        No usable pixel in the stamp.
    """

    ixx: np.ndarray
    iyy: np.ndarray
    ixy: np.ndarray
    flag: np.ndarray
    no_pixels: np.ndarray


def adaptive_moments(
    image: np.ndarray,
    usable: np.ndarray,
    dx: np.ndarray,
    dy: np.ndarray,
    sigma0: float,
    max_iter: int = 40,
    tolerance: float = 1e-4,
) -> AdaptiveMoments:
    """Adaptive moments about fixed centres.

    Iterates ``M ← 2 Q(M)``, where ``Q`` is the second moment of the image times the Gaussian weight of
    covariance ``M``; the fixed point ``M = 2Q`` is the covariance of a Gaussian source (the iteration
    contracts by 1/2 per step for Gaussian sources).

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(n, k, k)`` stamps (sources positive).
    usable : `numpy.ndarray`
        ``(n, k, k)`` bool, pixels to use.
    dx, dy : `numpy.ndarray`
        Centre of each source relative to the stamp's central pixel [pixels].
    sigma0 : `float`
        Starting Gaussian sigma of the weight [pixels] (e.g. the PSF's).
    max_iter : `int`
        Iterations.
    tolerance : `float`
        Convergence when every moment changes by less than this fraction of the trace.
    """
    n, k, _ = image.shape
    h = k // 2
    r = np.arange(-h, h + 1, dtype=float)
    ox = r[None, None, :] - np.asarray(dx, float)[:, None, None]
    oy = r[None, :, None] - np.asarray(dy, float)[:, None, None]
    xx, yy, xy = ox * ox, oy * oy, ox * oy
    data = np.where(usable, image, 0).astype(float)
    m = np.zeros((n, 3))  # ixx, iyy, ixy
    m[:, :2] = sigma0**2
    active = np.ones(n, bool)
    converged = np.zeros(n, bool)
    failed = ~usable.any(axis=(1, 2))
    max_trace = 2 * (k / 4.0) ** 2  # weight sigma up to a quarter of the stamp
    # A bounded loop over iterations; each updates all active sources at once.
    for _ in range(max_iter):
        idx = np.flatnonzero(active & ~failed)
        if idx.size == 0:
            break
        a, c, b = m[idx, 0], m[idx, 1], m[idx, 2]
        det = a * c - b * b
        expo = (c[:, None, None] * xx[idx] + a[:, None, None] * yy[idx] - 2 * b[:, None, None] * xy[idx]) / det[
            :, None, None
        ]
        wi = np.exp(-0.5 * expo) * data[idx]
        s0 = wi.sum(axis=(1, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            q = np.column_stack(
                [
                    np.einsum("nij,nij->n", wi, xx[idx]) / s0,
                    np.einsum("nij,nij->n", wi, yy[idx]) / s0,
                    np.einsum("nij,nij->n", wi, xy[idx]) / s0,
                ]
            )
        new = 2 * q
        bad = (
            ~(s0 > 0)
            | ~np.isfinite(new).all(axis=1)
            | (new[:, 0] <= 0)
            | (new[:, 1] <= 0)
            | (new[:, 0] * new[:, 1] - new[:, 2] ** 2 <= 0)
            | (new[:, 0] + new[:, 1] > max_trace)
        )
        failed[idx[bad]] = True
        done = ~bad & (np.abs(new - m[idx]).max(axis=1) < tolerance * (new[:, 0] + new[:, 1]))
        m[idx[~bad]] = new[~bad]
        converged[idx[done]] = True
        active[idx[done]] = False
    flag = failed | ~converged
    m[flag] = np.nan
    return AdaptiveMoments(
        ixx=m[:, 0], iyy=m[:, 1], ixy=m[:, 2], flag=flag, no_pixels=~usable.any(axis=(1, 2))
    )
