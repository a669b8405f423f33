"""Resample an image cutout onto another cutout's pixel grid (e.g. a coadd template onto a science cutout)."""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

from ..exposure import Exposure

__all__ = ["resample_onto"]


def resample_onto(source: Exposure, target: Exposure, order: int = 3) -> np.ndarray:
    """The image of ``source`` sampled at the sky positions of ``target``'s pixel centres.

    Parameters
    ----------
    source : `~lsst.dia.pipe.exposure.Exposure`
        Image to resample (its array WCS).
    target : `~lsst.dia.pipe.exposure.Exposure`
        Image whose pixel grid (array WCS and shape) is wanted.
    order : `int`
        Spline order of `scipy.ndimage.map_coordinates` (3: cubic; display quality, not flux-conserving).

    Returns
    -------
    image : `numpy.ndarray`
        ``target.image.shape`` float32 array in ``source``'s units; NaN where ``source`` has no data.
    """
    ny, nx = target.image.shape
    yy, xx = np.mgrid[0:ny, 0:nx].astype(np.float64)
    ra, dec = target.pixel_to_sky(xx.ravel(), yy.ravel())
    sx, sy = source.sky_to_pixel(ra, dec)
    values = map_coordinates(np.asarray(source.image, np.float64), [np.asarray(sy), np.asarray(sx)], order=order,
                             mode="constant", cval=np.nan)
    return values.reshape(ny, nx).astype(np.float32)
