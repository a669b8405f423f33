"""Circular-aperture fluxes on stacks of stamps, with exact-to-sub-pixel overlap weights."""

from __future__ import annotations

import numpy as np

__all__ = ["aperture_weights", "aperture_flux"]

_HALF_DIAGONAL = np.sqrt(0.5)


def aperture_weights(dx: np.ndarray, dy: np.ndarray, size: int, radius: float, subsample: int = 8) -> np.ndarray:
    """Fraction of each stamp pixel inside a circle of ``radius`` centred ``(dx, dy)`` from the stamp centre.

    Pixels wholly inside (outside) get 1 (0); only pixels crossed by the circle are split into
    ``subsample`` × ``subsample`` sub-pixels.

    Returns
    -------
    weights : `numpy.ndarray`
        ``(n, size, size)`` float32 in [0, 1].
    """
    h = size // 2
    r = np.arange(-h, h + 1, dtype=float)
    ox = r[None, None, :] - np.asarray(dx, float)[:, None, None]
    oy = r[None, :, None] - np.asarray(dy, float)[:, None, None]
    dist = np.sqrt(ox * ox + oy * oy)
    weights = (dist <= radius - _HALF_DIAGONAL).astype(np.float32)
    edge = np.nonzero((dist > radius - _HALF_DIAGONAL) & (dist < radius + _HALF_DIAGONAL))
    sub = (np.arange(subsample) + 0.5) / subsample - 0.5
    ex = np.broadcast_to(ox, dist.shape)[edge][:, None, None] + sub[None, None, :]
    ey = np.broadcast_to(oy, dist.shape)[edge][:, None, None] + sub[None, :, None]
    weights[edge] = np.mean(ex * ex + ey * ey <= radius * radius, axis=(1, 2))
    return weights


def aperture_flux(
    image: np.ndarray, variance: np.ndarray, usable: np.ndarray, inside: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Aperture flux, its error, and flags, from ``(n, k, k)`` stacks.

    Returns
    -------
    flux, flux_err : `numpy.ndarray`
        ``Σ w D`` and ``sqrt(Σ w² V)`` over usable pixels [image units].
    incomplete : `numpy.ndarray`
        Some pixel of the aperture is unusable or off the image (the flux misses it).
    truncated : `numpy.ndarray`
        The aperture extends beyond the image border.
    """
    w = np.where(usable, weights, np.float32(0))
    flux = np.einsum("nij,nij->n", w, np.where(usable, image, 0), dtype=float)
    flux_err = np.sqrt(np.einsum("nij,nij,nij->n", w, w, np.where(usable, variance, 0), dtype=float))
    in_aperture = weights > 0
    incomplete = np.any(in_aperture & ~usable, axis=(1, 2))
    truncated = np.any(in_aperture & ~inside, axis=(1, 2))
    return flux, flux_err, incomplete, truncated
