"""FFT convolution of whole images by small kernels, spatially varying kernels, and mask dilation.

Images are convolved circularly on their own grid (no padding, so a 4096² image uses 4096² FFTs): only
pixels within a kernel half-width of the border see wrapped-around data, and callers flag those
``DETECTION_EDGE``. ``⊗`` is true convolution: ``(I ⊗ K)[y, x] = Σ K[j + h, i + h] I[y - j, x - i]`` for a
``(2h+1)²`` kernel ``K`` centred on ``[h, h]``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..masks import MaskBit
from .spatial import ChebyshevSpatialModel

__all__ = [
    "convolve",
    "convolve_spatial",
    "dilate",
    "dilate_bits",
    "flag_edges",
    "footprint_radius",
    "kernel_rfft2",
]


def kernel_rfft2(kernel: np.ndarray, shape: tuple[int, int], workers: int = 1) -> np.ndarray:
    """``rfft2`` of a small centred kernel zero-padded to ``shape``, with its centre moved to pixel ``[0, 0]``.

    Parameters
    ----------
    kernel : `numpy.ndarray`
        ``(ky, kx)`` kernel with odd sides, centred on ``[ky // 2, kx // 2]``.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image grid (each at least the kernel side).
    workers : `int`
        Threads for `scipy.fft`.

    Returns
    -------
    spectrum : `numpy.ndarray`
        ``(ny, nx // 2 + 1)`` complex64, ready to multiply ``scipy.fft.rfft2(image)``.

    Notes
    -----
    Costs about half an image ``rfft2``: the row transforms only run over the kernel's ``ky`` rows, and the
    centring is a phase ramp rather than a wrapped full-size copy.
    """
    ny, nx = shape
    ky, kx = kernel.shape
    if ky % 2 != 1 or kx % 2 != 1:
        raise ValueError(f"Kernel sides must be odd, got {kernel.shape}.")
    if ky > ny or kx > nx:
        raise ValueError(f"Kernel {kernel.shape} is larger than the image {shape}.")
    hy, hx = ky // 2, kx // 2
    rows = np.zeros((ky, nx), dtype=np.float32)
    rows[:, : hx + 1] = kernel[:, hx:]
    if hx:
        rows[:, -hx:] = kernel[:, :hx]
    spectrum = scipy.fft.fft(scipy.fft.rfft(rows, axis=1, workers=workers), n=ny, axis=0, workers=workers)
    phase = np.exp(2j * np.pi * hy * np.arange(ny) / ny).astype(np.complex64)
    spectrum *= phase[:, None]
    return spectrum.astype(np.complex64, copy=False)


def convolve(image: np.ndarray, kernel: np.ndarray, workers: int = 1) -> np.ndarray:
    """Circular convolution of an image by a small kernel (float32 FFTs).

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` image (any units).
    kernel : `numpy.ndarray`
        Small odd kernel, centred.
    workers : `int`
        Threads for `scipy.fft`.

    Returns
    -------
    convolved : `numpy.ndarray`
        ``(ny, nx)`` float32; pixels within the kernel half-width of the border are wrapped around.
    """
    shape = image.shape
    spectrum = kernel_rfft2(kernel, shape, workers)
    spectrum *= scipy.fft.rfft2(image.astype(np.float32, copy=False), workers=workers)
    return scipy.fft.irfft2(spectrum, s=shape, workers=workers)


def convolve_spatial(
    image: np.ndarray, spatial_kernels: np.ndarray, model: ChebyshevSpatialModel, workers: int = 1
) -> np.ndarray:
    """Convolve by ``K(x, y) = Σ_s p_s(x, y) K_s``: ``Σ_s p_s(x, y) (image ⊗ K_s)``.

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` image.
    spatial_kernels : `numpy.ndarray`
        ``(n_terms, k, k)`` kernels ``K_s``, one per term of ``model``.
    model : `ChebyshevSpatialModel`
        Spatial polynomials ``p_s`` over the image.
    workers : `int`
        Threads for `scipy.fft`.

    Returns
    -------
    convolved : `numpy.ndarray`
        ``(ny, nx)`` float32.

    Notes
    -----
    One forward ``rfft2`` of the image and one inverse per spatial term; the kernel is evaluated exactly at
    every pixel (the polynomial weights multiply the convolved images, which is exact because the kernel is
    linear in the ``p_s``).
    """
    if spatial_kernels.shape[0] != model.n_terms:
        raise ValueError(f"{spatial_kernels.shape[0]} spatial kernels for {model.n_terms} spatial terms.")
    shape = image.shape
    image_fft = scipy.fft.rfft2(image.astype(np.float32, copy=False), workers=workers)
    fy, fx = model.axis_factors()
    out = None
    for s, (p, q) in enumerate(model.terms):
        spectrum = kernel_rfft2(spatial_kernels[s], shape, workers)
        spectrum *= image_fft
        term = scipy.fft.irfft2(spectrum, s=shape, workers=workers)
        if q:
            term *= fx[s][None, :]
        if p:
            term *= fy[s][:, None]
        if out is None:
            out = term
        else:
            out += term
    return out


def _or_window(a: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Bitwise OR over the window ``[i - radius, i + radius]`` along ``axis`` (shifted ORs for small radii,
    doubling windows otherwise)."""
    if radius <= 2:
        out = a.copy()
        view = np.moveaxis(out, axis, 0)
        src = np.moveaxis(a, axis, 0)
        for shift in range(1, radius + 1):
            view[shift:] |= src[:-shift]
            view[:-shift] |= src[shift:]
        return out
    width = 2 * radius + 1
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius, radius)
    table = np.pad(a, pad)
    n = a.shape[axis]
    length = 1
    while 2 * length <= width:
        size = table.shape[axis] - length
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis] = slice(0, size)
        hi[axis] = slice(length, length + size)
        table = table[tuple(lo)] | table[tuple(hi)]
        length *= 2
    lo = [slice(None), slice(None)]
    hi = [slice(None), slice(None)]
    lo[axis] = slice(0, n)
    hi[axis] = slice(width - length, width - length + n)
    return table[tuple(lo)] | table[tuple(hi)]


def dilate_bits(mask: np.ndarray, radius: int, bits: int | None = None) -> np.ndarray:
    """Dilate mask bits by a ``(2 radius + 1)²`` square: each output pixel ORs the bits of its window.

    Parameters
    ----------
    mask : `numpy.ndarray`
        ``(ny, nx)`` uint32 bit mask.
    radius : `int`
        Half side of the square [pixels]; 0 returns a copy.
    bits : `int`, optional
        Only these bits are dilated (others are kept as they are); default all.

    Returns
    -------
    dilated : `numpy.ndarray`
        ``(ny, nx)`` uint32.
    """
    mask = np.asarray(mask, dtype=np.uint32)
    if radius <= 0:
        return mask.copy()
    selected = mask if bits is None else mask & np.uint32(bits)
    if not selected.any():
        return mask.copy()
    grown = _or_window(_or_window(selected, radius, 0), radius, 1)
    return grown | mask


def dilate(pixels: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of a boolean image by a ``(2 radius + 1)²`` square."""
    if radius <= 0:
        return pixels.copy()
    grown = _or_window(_or_window(pixels.view(np.uint8), radius, 0), radius, 1)
    return grown.view(bool)


def footprint_radius(kernel: np.ndarray, threshold: float = 1e-3) -> int:
    """Chebyshev radius [pixels] of the pixels where ``|kernel| >= threshold × max|kernel|``."""
    k = np.abs(np.asarray(kernel))
    hy, hx = k.shape[0] // 2, k.shape[1] // 2
    ys, xs = np.nonzero(k >= threshold * k.max())
    if ys.size == 0:
        return 0
    return int(max(np.abs(ys - hy).max(), np.abs(xs - hx).max()))


def flag_edges(mask: np.ndarray, border: int) -> None:
    """Set ``DETECTION_EDGE`` in place on pixels within ``border`` pixels of the image edge."""
    if border <= 0:
        return
    bit = np.uint32(MaskBit.DETECTION_EDGE)
    mask[:border] |= bit
    mask[-border:] |= bit
    mask[:, :border] |= bit
    mask[:, -border:] |= bit
