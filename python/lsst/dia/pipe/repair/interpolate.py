"""Replace masked pixels by a local mean of their usable neighbours."""

from __future__ import annotations

import numpy as np

__all__ = ["interpolate_masked"]


def interpolate_masked(image: np.ndarray, fill: np.ndarray, usable: np.ndarray, width: int = 7) -> None:
    """Replace pixels by the mean of the usable pixels in a ``width`` × ``width`` box (in place).

    Only the boxes around the pixels to fill are read (cost proportional to their number, not to the image
    size). Pixels with no usable neighbour in the box keep their value.

    Parameters
    ----------
    image : `numpy.ndarray`
        Pixel values; those where ``fill`` is true are replaced.
    fill : `numpy.ndarray`
        Boolean array of the pixels to replace.
    usable : `numpy.ndarray`
        Boolean array of the pixels that may be averaged (``fill`` pixels are excluded automatically).
    width : `int`
        Side of the averaging box [pixels].
    """
    ny, nx = image.shape
    ys, xs = np.nonzero(fill)
    offsets = np.arange(width) - width // 2
    yy = ys[:, None, None] + offsets[None, :, None]
    xx = xs[:, None, None] + offsets[None, None, :]
    inside = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
    yy = np.clip(yy, 0, ny - 1)
    xx = np.clip(xx, 0, nx - 1)
    weight = inside & usable[yy, xx] & ~fill[yy, xx]
    total = np.where(weight, image[yy, xx], 0.0).sum(axis=(1, 2))
    count = weight.sum(axis=(1, 2))
    ok = count > 0
    image[ys[ok], xs[ok]] = total[ok] / count[ok]
