"""Cut square stamps around many positions at once.

Stamps that lie fully on the image are gathered through a strided window view (one fancy index per plane);
the few that cross the border use clipped indices and mark the outside pixels in ``inside``.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..exposure import Exposure

__all__ = ["Stamps", "cut_stamps", "pixel_centres", "usable_pixels"]


@dataclasses.dataclass
class Stamps:
    """Stacks of ``(n, size, size)`` stamps centred on integer pixels ``(cx, cy)``.

    Attributes
    ----------
    image, variance : `numpy.ndarray`
        float32 pixel values [nJy] and variances [nJy²]; 0 outside the image.
    mask : `numpy.ndarray`
        uint32 mask bits; 0 outside the image.
    inside : `numpy.ndarray`
        bool, pixel lies on the image.
    clipped : `numpy.ndarray`
        ``(n,)`` bool, some of the stamp lies off the image.
    cx, cy : `numpy.ndarray`
        int64 centre pixel of each stamp.
    """

    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    inside: np.ndarray
    clipped: np.ndarray
    cx: np.ndarray
    cy: np.ndarray

    @property
    def size(self) -> int:
        """Side of the stamps [pixels]."""
        return int(self.image.shape[-1])


def pixel_centres(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest integer pixel of each position (pixel ``i`` covers ``[i - 0.5, i + 0.5)``)."""
    cx = np.floor(np.asarray(x, float) + 0.5).astype(np.int64)
    cy = np.floor(np.asarray(y, float) + 0.5).astype(np.int64)
    return cx, cy


def cut_stamps(exposure: Exposure, cx: np.ndarray, cy: np.ndarray, size: int) -> Stamps:
    """Cut ``size`` × ``size`` stamps of image, variance and mask centred on pixels ``(cx, cy)``.

    Parameters
    ----------
    exposure : `~lsst.dia.pipe.exposure.Exposure`
        Image to cut from.
    cx, cy : `numpy.ndarray`
        Integer centre pixels (any value; stamps off the image are all ``inside=False``).
    size : `int`
        Odd stamp side [pixels].
    """
    if size % 2 != 1:
        raise ValueError(f"Stamp size must be odd, got {size}.")
    cx = np.asarray(cx, np.int64)
    cy = np.asarray(cy, np.int64)
    n = len(cx)
    h = size // 2
    ny, nx = exposure.shape
    planes = (exposure.image, exposure.variance, exposure.mask)
    dtypes = (np.float32, np.float32, np.uint32)
    clipped = (cx - h < 0) | (cx + h >= nx) | (cy - h < 0) | (cy + h >= ny)
    inside = np.ones((n, size, size), bool)
    if ny >= size and nx >= size:
        # One strided gather per plane for all stamps (clipped ones are gathered at a shifted centre, then
        # overwritten below).
        gx = cx.clip(h, nx - 1 - h) - h
        gy = cy.clip(h, ny - 1 - h) - h
        out = [sliding_window_view(p, (size, size))[gy, gx].astype(t, copy=False) for p, t in zip(planes, dtypes)]
    else:
        out = [np.zeros((n, size, size), t) for t in dtypes]
    idx = np.flatnonzero(clipped)
    offsets = np.arange(-h, h + 1)
    yy = cy[idx, None] + offsets
    xx = cx[idx, None] + offsets
    ok = ((yy >= 0) & (yy < ny))[:, :, None] & ((xx >= 0) & (xx < nx))[:, None, :]
    rows = yy.clip(0, ny - 1)[:, :, None]
    cols = xx.clip(0, nx - 1)[:, None, :]
    for plane, stack in zip(planes, out):
        stack[idx] = np.where(ok, plane[rows, cols], 0)
    inside[idx] = ok
    return Stamps(image=out[0], variance=out[1], mask=out[2], inside=inside, clipped=clipped, cx=cx, cy=cy)


def usable_pixels(stamps: Stamps, bad_bits: int) -> np.ndarray:
    """Pixels that may enter a fit: on the image, finite, positive variance, none of ``bad_bits`` set."""
    good = stamps.inside & np.isfinite(stamps.image) & np.isfinite(stamps.variance) & (stamps.variance > 0)
    if bad_bits:
        good &= (stamps.mask & np.uint32(bad_bits)) == 0
    return good
