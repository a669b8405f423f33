"""Smooth sky background of an image: sigma-clipped medians on a mesh, 3×3 median-filtered, spline-interpolated.

Community-pipeline images keep their sky (DECam CP ``ooi`` images do); calexps and templates of dia_pipe
are background-subtracted, so ingest subtracts this estimate.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from scipy import interpolate, ndimage

__all__ = ["BackgroundEstimate", "estimate_background"]


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
        Sigma-clipping threshold (robust sigma from the median absolute deviation).
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
    sigma = np.full((nby, nbx), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells are handled below
        for _ in range(n_iter):
            med = np.nanmedian(cells, axis=-1)
            sigma = 1.4826 * np.nanmedian(np.abs(cells - med[..., None]), axis=-1)
            cells = np.where(np.abs(cells - med[..., None]) <= clip * sigma[..., None], cells, np.nan)
        med = np.nanmedian(cells, axis=-1)
        # sparse or empty cells (mostly masked) take the median of the others
        counts = np.sum(np.isfinite(cells), axis=-1)
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
