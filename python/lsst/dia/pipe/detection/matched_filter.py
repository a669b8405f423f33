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

__all__ = [
    "PsfCorrelator",
    "filtered_noise_variance",
    "matched_filter_significance",
    "robust_sigma",
    "significance_from",
    "usable_planes",
]


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


class PsfCorrelator:
    """Correlates image planes with the (tile-wise) PSF of one image: the building block of the matched filter.

    Parameters
    ----------
    psf : `~lsst.dia.pipe.psf.PsfModel`
        PSF of the image.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the planes to filter.
    tile_size : `int`
        Approximate side of the FFT tiles [pixels]; each tile is filtered with the PSF at its centre.
    workers : `int`
        Threads for `scipy.fft`.
    """

    def __init__(self, psf: PsfModel, shape: tuple[int, int], tile_size: int = 1024, workers: int = 1) -> None:
        ny, nx = shape
        k = psf.size
        self.shape = (ny, nx)
        self.size = scipy.fft.next_fast_len(min(tile_size, max(ny, nx)) + k - 1, real=True)
        step = self.size - (k - 1)
        centres_x = np.minimum(np.arange(0, nx, step) + 0.5 * (step - 1), nx - 1)
        centres_y = np.minimum(np.arange(0, ny, step) + 0.5 * (step - 1), ny - 1)
        self.kernels = _tile_kernels(psf, centres_x, centres_y)
        self.workers = workers

    def correlate(self, plane: np.ndarray, squared: bool = False) -> np.ndarray:
        """``plane ⋆ P`` (or ``plane ⋆ P²`` with ``squared``, for a variance plane); zero outside the array."""
        kernels = self.kernels * self.kernels if squared else self.kernels
        return _correlate_tiles(plane, kernels, self.size, self.workers)


def filtered_noise_variance(correlator: PsfCorrelator, variance: np.ndarray) -> np.ndarray:
    """``V ⋆ P²``: the variance of the matched-filter numerator [image units² × PSF sum²].

    Zero (exactly) where no usable pixel contributes: FFT round-off there (~1e-7 of the scale) is cut at
    1e-5 of the maximum.
    """
    noise_var = correlator.correlate(variance, squared=True)
    floor = np.float32(1e-5 * float(noise_var.max(initial=0.0)))
    noise_var[noise_var <= floor] = 0
    return noise_var


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
    img, var = usable_planes(image, variance, usable)
    correlator = PsfCorrelator(psf, img.shape, tile_size, workers)
    return significance_from(correlator.correlate(img), filtered_noise_variance(correlator, var))


def usable_planes(
    image: np.ndarray, variance: np.ndarray, usable: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Image and variance with unusable pixels (masked, non-finite, negative variance) set to 0."""
    image = np.asarray(image)
    variance = np.asarray(variance)
    ok = np.isfinite(image) & np.isfinite(variance) & (variance >= 0)
    if usable is not None:
        ok &= usable
    return np.where(ok, image, np.float32(0)), np.where(ok, variance, np.float32(0))


def significance_from(numerator: np.ndarray, total_variance: np.ndarray) -> np.ndarray:
    """``numerator / sqrt(total_variance)`` as float32, 0 where the variance is 0."""
    significance = np.zeros(numerator.shape, np.float32)
    np.divide(numerator, np.sqrt(total_variance), out=significance, where=total_variance > 0)
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
