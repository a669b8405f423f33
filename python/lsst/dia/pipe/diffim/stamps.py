"""Vectorised cut-outs of square stamps around many pixel positions."""

from __future__ import annotations

import numpy as np

__all__ = ["embed_centred", "extract_stamps"]


def extract_stamps(image: np.ndarray, x: np.ndarray, y: np.ndarray, half: int) -> np.ndarray:
    """Square stamps of side ``2 half + 1`` centred on integer pixels ``(x, y)``.

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` array.
    x, y : `numpy.ndarray`
        Integer centre columns and rows; every stamp must lie inside the image.
    half : `int`
        Half side [pixels].

    Returns
    -------
    stamps : `numpy.ndarray`
        ``(n, 2 half + 1, 2 half + 1)`` copies, same dtype as ``image``.

    Raises
    ------
    ValueError
        If a stamp would leave the image.
    """
    x = np.asarray(x, dtype=np.intp)
    y = np.asarray(y, dtype=np.intp)
    ny, nx = image.shape
    if x.size and (x.min() < half or y.min() < half or x.max() >= nx - half or y.max() >= ny - half):
        raise ValueError(f"Stamps of half side {half} leave the {image.shape} image.")
    offsets = np.arange(-half, half + 1)
    rows = (y[:, None] + offsets)[:, :, None]
    cols = (x[:, None] + offsets)[:, None, :]
    return image[rows, cols]


def embed_centred(stamp: np.ndarray, size: int) -> np.ndarray:
    """Centre an odd square stamp in a ``size × size`` float64 array of zeros (cropping it if larger)."""
    out = np.zeros((size, size))
    half_in, half_out = stamp.shape[0] // 2, size // 2
    h = min(half_in, half_out)
    out[half_out - h : half_out + h + 1, half_out - h : half_out + h + 1] = stamp[
        half_in - h : half_in + h + 1, half_in - h : half_in + h + 1
    ]
    return out
