"""Model images of point sources (PSF × flux at sub-pixel positions), e.g. for tests and injection."""

from __future__ import annotations

import numpy as np

from ..psf import PsfModel
from .psf_stamps import PsfStampSampler
from .stamps import pixel_centres

__all__ = ["render_point_sources"]


def render_point_sources(
    shape: tuple[int, int], psf: PsfModel, x: np.ndarray, y: np.ndarray, flux: np.ndarray, grid_size: int = 5
) -> np.ndarray:
    """Image of point sources: ``Σ flux_i · P(x - x_i, y - y_i)`` on the full PSF model stamp.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image.
    psf : `~lsst.dia.pipe.psf.PsfModel`
        PSF (evaluated at each source with `PsfStampSampler`, i.e. the same model the measurement fits).
    x, y : `numpy.ndarray`
        Positions [pixels]; sources partly or wholly off the image contribute only their on-image pixels.
    flux : `numpy.ndarray`
        Fluxes [image units].
    grid_size : `int`
        Sampling grid of PSF models that are not a `GridPsf`.

    Returns
    -------
    image : `numpy.ndarray`
        ``(ny, nx)`` float32.
    """
    ny, nx = shape
    sampler = PsfStampSampler(psf, shape, grid_size)
    k = sampler.model_size
    h = k // 2
    cx, cy = pixel_centres(x, y)
    stamps = sampler.render(x, y, cx, cy, k) * np.asarray(flux, np.float32)[:, None, None]
    rows = np.broadcast_to((cy[:, None] + np.arange(-h, h + 1))[:, :, None], stamps.shape)
    cols = np.broadcast_to((cx[:, None] + np.arange(-h, h + 1))[:, None, :], stamps.shape)
    on = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    image = np.bincount(rows[on] * nx + cols[on], weights=stamps[on], minlength=ny * nx)
    return image.reshape(ny, nx).astype(np.float32)
