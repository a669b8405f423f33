"""Replace masked pixels by a local mean of their usable neighbours."""

from __future__ import annotations

import numpy as np

__all__ = ["interpolate_along_rows", "interpolate_masked"]


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


def interpolate_along_rows(
    image: np.ndarray, rows: np.ndarray, cols: np.ndarray, usable: np.ndarray, max_gap: int = 8
) -> np.ndarray:
    """Replace pixels by linear interpolation along their row between the nearest usable pixels (in place).

    Meant for column-like defects (bad columns, narrow vertical runs), which this interpolates across their
    narrow direction: a point source on a one-pixel column keeps most of its peak, where a box mean would
    spread it. Only the pixels to fill are visited (cost proportional to their number).

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` pixel values.
    rows, cols : `numpy.ndarray`
        Integer coordinates of the pixels to replace (e.g. ``np.nonzero(defects)``).
    usable : `numpy.ndarray`
        ``(ny, nx)`` bool, pixels that may serve as interpolation ends; must be false on the pixels to replace.
    max_gap : `int`
        The usable ends are searched at most this many pixels to either side [pixels].

    Returns
    -------
    replaced : `numpy.ndarray`
        Bool per pixel of ``rows, cols``: replaced, i.e. a usable end lies within ``max_gap`` on at least one
        side (with one end only, its value is copied); the others keep their value.
    """
    nx = image.shape[1]
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    ends = []
    for direction in (-1, 1):
        end = np.full(cols.size, -1)
        for step in range(1, max_gap + 1):
            candidate = cols + direction * step
            open_ = (candidate >= 0) & (candidate < nx) & (end < 0)
            found = np.zeros(cols.size, bool)
            found[open_] = usable[rows[open_], candidate[open_]]
            end[found] = candidate[found]
        ends.append(end)
    left, right = ends
    has_left, has_right = left >= 0, right >= 0
    value_left = np.where(has_left, image[rows, np.maximum(left, 0)], 0.0)
    value_right = np.where(has_right, image[rows, np.maximum(right, 0)], 0.0)
    span = np.where(has_left & has_right, right - left, 1)
    t = np.where(has_left & has_right, (cols - left) / span, np.where(has_left, 0.0, 1.0))
    replaced = has_left | has_right
    image[rows[replaced], cols[replaced]] = ((1.0 - t) * value_left + t * value_right)[replaced]
    return replaced
