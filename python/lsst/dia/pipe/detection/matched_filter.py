"""Matched-filter (PSF-correlated) significance image.

For an image ``I`` with per-pixel variance ``V`` and PSF ``P`` (sum 1), the maximum-likelihood flux of a point
source centred on pixel ``p`` is ``(I ⋆ P)(p) / ΣP²`` with variance ``(V ⋆ P²)(p) / (ΣP²)²``; the significance

    S(p) = (I ⋆ P)(p) / sqrt((V ⋆ P²)(p))

is therefore that flux divided by its error, in units of sigma, whatever the local variance. Unusable pixels get
zero image and zero variance, so they drop out of both sums and ``S`` stays a unit-variance statistic near
masks and edges (``⋆`` is correlation; everything outside the array counts as unusable).

The correlation runs as overlap-save FFTs on a batch of tiles; each tile uses the PSF at its own centre, which
follows a spatially varying PSF at the tile scale.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numpy.lib.stride_tricks import sliding_window_view

from ..psf import PsfModel

__all__ = ["matched_filter_significance", "robust_sigma"]


def _tile_kernels(psf: PsfModel, centres_x: np.ndarray, centres_y: np.ndarray) -> np.ndarray:
    """PSF stamps at the tile centres, ``(n_ty, n_tx, k, k)``; ``(1, 1, k, k)`` if they are all equal."""
    # A loop over the tiles (tens), not over pixels or sources.
    stamps = np.array([[psf.kernel_image(float(x), float(y)) for x in centres_x] for y in centres_y], np.float32)
    if np.all(stamps == stamps[:1, :1]):
        return stamps[:1, :1]
    return stamps


def _correlate_tiles(plane: np.ndarray, kernels: np.ndarray, size: int, workers: int) -> np.ndarray:
    """Correlate ``plane`` with per-tile kernels (overlap-save, FFT length ``size``); zero outside ``plane``."""
    ny, nx = plane.shape
    k = kernels.shape[-1]
    step = size - (k - 1)  # output pixels per tile once the wrapped border is discarded
    n_ty, n_tx = -(-ny // step), -(-nx // step)
    padded = np.zeros((n_ty * step + k - 1, n_tx * step + k - 1), np.float32)
    padded[k // 2 : k // 2 + ny, k // 2 : k // 2 + nx] = plane
    tiles = sliding_window_view(padded, (size, size))[::step, ::step]
    spectra = scipy.fft.rfft2(tiles, workers=workers)
    # Correlation with K is convolution with K flipped.
    spectra *= scipy.fft.rfft2(kernels[..., ::-1, ::-1], (size, size), workers=workers)
    out = scipy.fft.irfft2(spectra, (size, size), workers=workers)[..., k - 1 :, k - 1 :]
    return out.transpose(0, 2, 1, 3).reshape(n_ty * step, n_tx * step)[:ny, :nx]


def matched_filter_significance(
    image: np.ndarray,
    variance: np.ndarray,
    psf: PsfModel,
    usable: np.ndarray | None = None,
    tile_size: int = 1024,
    workers: int = 1,
) -> np.ndarray:
    """Significance of a point source at every pixel (PSF-correlated image over its noise).

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` image [nJy]; non-finite pixels are treated as unusable.
    variance : `numpy.ndarray`
        ``(ny, nx)`` per-pixel variance [nJy²]; non-finite or negative pixels are unusable.
    psf : `~lsst.dia.pipe.psf.PsfModel`
        PSF of ``image``.
    usable : `numpy.ndarray`, optional
        Boolean ``(ny, nx)``: pixels that may contribute (default: all finite pixels).
    tile_size : `int`
        Approximate side of the FFT tiles [pixels]; each tile is filtered with the PSF at its centre.
    workers : `int`
        Threads for `scipy.fft`.

    Returns
    -------
    significance : `numpy.ndarray`
        ``(ny, nx)`` float32 significance [sigma]; 0 where no usable pixel lies within the PSF.
    """
    image = np.asarray(image)
    variance = np.asarray(variance)
    ok = np.isfinite(image) & np.isfinite(variance) & (variance >= 0)
    if usable is not None:
        ok &= usable
    img = np.where(ok, image, np.float32(0))
    var = np.where(ok, variance, np.float32(0))
    ny, nx = img.shape
    k = psf.size
    size = scipy.fft.next_fast_len(min(tile_size, max(ny, nx)) + k - 1, real=True)
    step = size - (k - 1)
    centres_x = np.minimum(np.arange(0, nx, step) + 0.5 * (step - 1), nx - 1)
    centres_y = np.minimum(np.arange(0, ny, step) + 0.5 * (step - 1), ny - 1)
    kernels = _tile_kernels(psf, centres_x, centres_y)
    numerator = _correlate_tiles(img, kernels, size, workers)
    noise_var = _correlate_tiles(var, kernels * kernels, size, workers)
    # FFT round-off leaves |noise_var| ~ 1e-7 of its scale where no usable pixel contributes.
    floor = np.float32(1e-5 * float(noise_var.max(initial=0.0)))
    significance = np.zeros((ny, nx), np.float32)
    np.divide(numerator, np.sqrt(np.maximum(noise_var, floor)), out=significance, where=noise_var > floor)
    return significance


def robust_sigma(values: np.ndarray) -> float:
    """Gaussian-equivalent standard deviation from the median absolute deviation (1.4826 MAD).

    Raises
    ------
    ValueError
        If ``values`` has no finite element.
    """
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        raise ValueError("robust_sigma: no finite values.")
    med = np.median(v)
    return float(1.4826 * np.median(np.abs(v - med)))
