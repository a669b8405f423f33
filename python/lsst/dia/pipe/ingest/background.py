"""Smooth sky background of an image: sigma-clipped medians on a mesh, 3×3 median-filtered, spline-interpolated.

Community-pipeline images keep their sky (DECam CP ``ooi`` images do); calexps and templates of dia_pipe
are background-subtracted, so ingest subtracts this estimate.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import interpolate, ndimage

__all__ = ["BackgroundEstimate", "estimate_background"]

#: Pixels per mesh cell used for the statistics (a regular subsample of larger cells).
_MAX_SAMPLES = 4096


@dataclasses.dataclass(frozen=True)
class BackgroundEstimate:
    """A background model and the noise of the sky.

    Attributes
    ----------
    background : `numpy.ndarray`
        ``(ny, nx)`` float32 background, in the image unit.
    sky_sigma : `float`
        Robust standard deviation of the sky pixels (median of the per-cell values), in the image unit.
    mesh : `numpy.ndarray`
        The filtered per-cell values ``(n_cells_y, n_cells_x)``.
    """

    background: np.ndarray
    sky_sigma: float
    mesh: np.ndarray


def estimate_background(image: np.ndarray, bad: np.ndarray | None = None, box: int = 128,
                        clip: float = 3.0, n_iter: int = 3) -> BackgroundEstimate:
    """Estimate the sky background on a mesh of ``box`` × ``box`` cells.

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` pixel values.
    bad : `numpy.ndarray`, optional
        ``(ny, nx)`` boolean, pixels to ignore (masked, no data).
    box : `int`
        Cell side [pixels]; shrunk so that there are at least two cells per axis when the image allows.
    clip : `float`
        Sigma-clipping threshold (robust sigma from the interquartile range).
    n_iter : `int`
        Clipping iterations.

    Returns
    -------
    estimate : `BackgroundEstimate`

    Raises
    ------
    ValueError
        If no pixel is usable.
    """
    image = np.asarray(image, dtype=np.float64)
    ny, nx = image.shape
    valid = np.isfinite(image)
    if bad is not None:
        valid &= ~np.asarray(bad, dtype=bool)
    if not valid.any():
        raise ValueError("No usable pixel for the background estimate.")
    box = int(max(16, min(box, max(ny, nx) // 2)))
    nby, nbx = -(-ny // box), -(-nx // box)
    padded = np.full((nby * box, nbx * box), np.nan)
    padded[:ny, :nx] = np.where(valid, image, np.nan)
    cells = padded.reshape(nby, box, nbx, box).transpose(0, 2, 1, 3).reshape(nby, nbx, box * box)
    # a regular subsample of at most _MAX_SAMPLES pixels per cell, sorted once (NaN last): each clipping
    # iteration only moves the window [lo, hi) of kept values
    values = np.sort(cells[..., :: max(1, cells.shape[-1] // _MAX_SAMPLES)], axis=-1)
    lo = np.zeros((nby, nbx), dtype=np.int64)
    hi = np.isfinite(values).sum(axis=-1)

    def quantile(q: float) -> np.ndarray:
        pos = lo + q * np.maximum(hi - lo - 1, 0)
        i0 = np.clip(np.floor(pos).astype(np.int64), 0, values.shape[-1] - 1)
        i1 = np.clip(np.minimum(i0 + 1, hi - 1), 0, values.shape[-1] - 1)
        v0 = np.take_along_axis(values, i0[..., None], axis=-1)[..., 0]
        v1 = np.take_along_axis(values, i1[..., None], axis=-1)[..., 0]
        return np.where(hi > lo, v0 + (pos - i0) * (v1 - v0), np.nan)

    for _ in range(n_iter):
        med = quantile(0.5)
        sigma = (quantile(0.75) - quantile(0.25)) / 1.349
        with np.errstate(invalid="ignore"):
            lo = (values < (med - clip * sigma)[..., None]).sum(axis=-1)
            hi = (values <= (med + clip * sigma)[..., None]).sum(axis=-1)
    med = quantile(0.5)
    counts = (hi - lo) * max(1, cells.shape[-1] // _MAX_SAMPLES)
    poor = ~np.isfinite(med) | (counts < 0.1 * box * box)
    if poor.all():
        med = np.full_like(med, np.nanmedian(image[valid]))
    else:
        med[poor] = np.median(med[~poor])
    mesh = ndimage.median_filter(med, size=3, mode="nearest") if min(nby, nbx) >= 3 else med
    yc = (np.arange(nby) + 0.5) * box - 0.5
    xc = (np.arange(nbx) + 0.5) * box - 0.5
    if nby == 1 and nbx == 1:
        background = np.full((ny, nx), mesh[0, 0])
    else:
        order_y, order_x = min(3, nby - 1), min(3, nbx - 1)
        if order_y == 0 or order_x == 0:  # a single row or column of cells: interpolate along the other axis
            profile = mesh.ravel()
            centres = yc if order_x == 0 else xc
            spline = interpolate.make_interp_spline(centres, profile, k=min(3, len(profile) - 1))
            values = spline(np.clip(np.arange(ny if order_x == 0 else nx), centres[0], centres[-1]))
            if order_x == 0:
                background = np.repeat(values[:, None], nx, axis=1)
            else:
                background = np.repeat(values[None, :], ny, axis=0)
        else:
            spline = interpolate.RectBivariateSpline(yc, xc, mesh, kx=order_y, ky=order_x)
            background = spline(np.clip(np.arange(ny), yc[0], yc[-1]), np.clip(np.arange(nx), xc[0], xc[-1]))
    good_sigma = sigma[np.isfinite(sigma) & ~poor]
    sky_sigma = float(np.median(good_sigma)) if good_sigma.size else float("nan")
    return BackgroundEstimate(background=background.astype(np.float32), sky_sigma=sky_sigma, mesh=mesh)
