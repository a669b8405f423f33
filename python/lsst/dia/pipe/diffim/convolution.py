"""FFT convolution of whole images by small kernels, spatially varying kernels, and mask dilation.

Whole images are convolved with overlap-save FFTs on tiles (`TiledSpectra`): one batched forward transform
per image, one small kernel transform and one batched inverse per kernel; pixels within a kernel half-width of
the border see zeros beyond the edge, and callers flag those ``DETECTION_EDGE``. `kernel_rfft2` gives a small
kernel's spectrum on any grid (also used for full-image FFTs, e.g. by ZOGY). ``⊗`` is true convolution:
``(I ⊗ K)[y, x] = Σ K[j + h, i + h] I[y - j, x - i]`` for a ``(2h+1)²`` kernel ``K`` centred on ``[h, h]``.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from ..masks import MaskBit
from .spatial import ChebyshevSpatialModel

__all__ = [
    "TiledSpectra",
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


class TiledSpectra:
    """Overlap-save FFTs of an image in tiles, for repeated convolutions by small kernels.

    The image (zero-padded beyond its edges) is cut into blocks of at most ``tile × tile`` pixels, each
    extended by ``margin`` pixels on every side to FFT sides ``next_fast_len(block + 2 margin)``, and
    transformed once. A kernel of half side ``<= margin`` then costs one small kernel transform and one
    batched inverse FFT (about 1.1× the pixels of the image), with no full-size kernel transform and
    cache-sized FFTs.

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` image.
    margin : `int`
        Largest kernel half side that will be used [pixels].
    tile : `int`
        Largest block side [pixels].
    workers : `int`
        Threads for `scipy.fft`.
    """

    def __init__(self, image: np.ndarray, margin: int, tile: int = 1024, workers: int = 1) -> None:
        self.shape = image.shape
        self.margin = int(margin)
        self.workers = workers
        #: Block sides (rows, columns), number of blocks per axis and FFT sides.
        self.block = tuple(min(int(tile), n) for n in self.shape)
        self.count = tuple(-(-n // b) for n, b in zip(self.shape, self.block))
        self.size = tuple(scipy.fft.next_fast_len(b + 2 * self.margin, real=True) for b in self.block)
        (by, bx), (cy, cx), (ly, lx) = self.block, self.count, self.size
        padded = np.zeros(((cy - 1) * by + ly, (cx - 1) * bx + lx), np.float32)
        padded[self.margin : self.margin + self.shape[0], self.margin : self.margin + self.shape[1]] = image
        rs, cs = padded.strides
        tiles = np.lib.stride_tricks.as_strided(
            padded, (cy, cx, ly, lx), (by * rs, bx * cs, rs, cs), writeable=False
        ).reshape(-1, ly, lx)
        self.spectra = scipy.fft.rfft2(tiles, workers=workers)
        self._buffer = np.empty_like(self.spectra)

    def _valid(self, kernel: np.ndarray) -> np.ndarray:
        """``(n_tiles, block_y, block_x)`` view of the valid part of every tile convolved by ``kernel``."""
        if kernel.shape[0] // 2 > self.margin or kernel.shape[1] // 2 > self.margin:
            raise ValueError(f"Kernel {kernel.shape} is wider than the tile margin {self.margin}.")
        spectrum = np.multiply(self.spectra, kernel_rfft2(kernel, self.size, self.workers), out=self._buffer)
        out = scipy.fft.irfft2(spectrum, s=self.size, workers=self.workers, overwrite_x=True)
        m, (by, bx) = self.margin, self.block
        return out[:, m : m + by, m : m + bx]

    def _untile(self, tiles: np.ndarray) -> np.ndarray:
        """Blocks ``(n_tiles, block_y, block_x)`` back to the ``(ny, nx)`` image."""
        (by, bx), (cy, cx) = self.block, self.count
        image = np.empty((cy * by, cx * bx), np.float32)
        image.reshape(cy, by, cx, bx)[...] = tiles.reshape(cy, cx, by, bx).transpose(0, 2, 1, 3)
        return np.ascontiguousarray(image[: self.shape[0], : self.shape[1]])

    def convolve(self, kernel: np.ndarray) -> np.ndarray:
        """``image ⊗ kernel``, ``(ny, nx)`` float32 (zeros assumed beyond the image edges)."""
        return self._untile(self._valid(kernel))

    def convolve_spatial(self, kernels: np.ndarray, model: ChebyshevSpatialModel) -> np.ndarray:
        """``Σ_s p_s(x, y) (image ⊗ K_s)`` for kernels ``(n_terms, k, k)`` and the terms of ``model``."""
        if kernels.shape[0] != model.n_terms:
            raise ValueError(f"{kernels.shape[0]} spatial kernels for {model.n_terms} spatial terms.")
        (by, bx), (cy, cx) = self.block, self.count
        fy, fx = model.axis_factors()
        # Per-tile weights: tile i = (iy, ix) takes rows iy*by.. and columns ix*bx.. of the factors.
        iy, ix = np.divmod(np.arange(cy * cx), cx)
        fy = np.pad(fy, ((0, 0), (0, cy * by - self.shape[0]))).reshape(len(fy), cy, by)[:, iy, :, None]
        fx = np.pad(fx, ((0, 0), (0, cx * bx - self.shape[1]))).reshape(len(fx), cx, bx)[:, ix, None, :]
        total = np.zeros((cy * cx, by, bx), np.float32)
        weighted = np.empty((by, bx), np.float32)  # one tile: stays in cache
        for s, (p, q) in enumerate(model.terms):
            term = self._valid(kernels[s])
            if not (p or q):
                total += term
                continue
            for i in range(cy * cx):
                np.multiply(term[i], fy[s, i] if p else fx[s, i], out=weighted)
                if p and q:
                    weighted *= fx[s, i]
                total[i] += weighted
        return self._untile(total)


def convolve(image: np.ndarray, kernel: np.ndarray, workers: int = 1) -> np.ndarray:
    """Convolution of an image by a small kernel (overlap-save float32 FFTs, zeros beyond the edges).

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
        ``(ny, nx)`` float32; pixels within the kernel half-width of the border saw zeros beyond the edge.
    """
    return TiledSpectra(image, max(kernel.shape) // 2, workers=workers).convolve(kernel)


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
        ``(ny, nx)`` float32 (zeros assumed beyond the image edges).

    Notes
    -----
    One forward (tiled) FFT of the image and one inverse per spatial term; the kernel is evaluated exactly at
    every pixel (the polynomial weights multiply the convolved images, which is exact because the kernel is
    linear in the ``p_s``).
    """
    margin = max(spatial_kernels.shape[1:]) // 2
    return TiledSpectra(image, margin, workers=workers).convolve_spatial(spatial_kernels, model)


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
    rows = selected.any(axis=1)
    if not rows.any():
        return mask.copy()
    # When few rows (columns) hold set bits, the horizontal (vertical) pass runs on those only.
    if rows.mean() < 0.25:
        horizontal = np.zeros_like(selected)
        horizontal[rows] = _or_window(selected[rows], radius, 1)
    else:
        horizontal = _or_window(selected, radius, 1)
    cols = horizontal.any(axis=0)
    grown = mask.copy()
    if cols.mean() < 0.25:
        grown[:, cols] |= _or_window(horizontal[:, cols], radius, 0)
    else:
        grown |= _or_window(horizontal, radius, 0)
    return grown


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
