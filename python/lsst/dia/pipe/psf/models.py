"""PSF models for algorithm code.

Every algorithm takes a `PsfModel`: something that returns the PSF kernel image (odd square stamp, sum 1,
centred on the central pixel, in the pixel frame of the image it describes) at a pixel position. Spatially
varying models from files (Piff, PSFEx, cell coadd PSFs) are sampled once on a grid into a `GridPsf`, which
interpolates bilinearly between grid stamps: evaluation is then a few microseconds, cheap enough for hot
paths that need a PSF per source.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["PsfModel", "GaussianPsf", "GridPsf", "psf_moments_sigma"]


@runtime_checkable
class PsfModel(Protocol):
    """What algorithms need from a PSF."""

    @property
    def size(self) -> int:
        """Side of the (odd, square) kernel stamp, in pixels."""
        ...

    def kernel_image(self, x: float, y: float) -> np.ndarray:
        """Return the PSF at pixel position ``(x, y)`` as a ``(size, size)`` float64 stamp.

        The stamp sums to 1 and is centred on its central pixel (no sub-pixel shift).
        """
        ...

    def sigma(self, x: float, y: float) -> float:
        """Gaussian-equivalent width (pixels) at ``(x, y)``: sqrt of the mean second moment."""
        ...


def psf_moments_sigma(stamp: np.ndarray) -> float:
    """Gaussian-equivalent sigma of a centred PSF stamp, in pixels.

    Uses the unweighted second moments of the positive part of the stamp:
    ``sigma = sqrt((Ixx + Iyy) / 2)``.
    """
    s = np.clip(np.asarray(stamp, dtype=float), 0.0, None)
    total = s.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("PSF stamp has no positive flux.")
    n_y, n_x = s.shape
    y, x = np.mgrid[0:n_y, 0:n_x]
    xc = (s * x).sum() / total
    yc = (s * y).sum() / total
    ixx = (s * (x - xc) ** 2).sum() / total
    iyy = (s * (y - yc) ** 2).sum() / total
    return float(np.sqrt(0.5 * (ixx + iyy)))


class GaussianPsf:
    """A circular Gaussian PSF, constant over the image.

    Parameters
    ----------
    sigma : `float`
        Gaussian sigma in pixels.
    size : `int`, optional
        Odd stamp side in pixels; default ``2 * ceil(5 sigma) + 1``.
    """

    def __init__(self, sigma: float, size: int | None = None) -> None:
        if not (sigma > 0 and np.isfinite(sigma)):
            raise ValueError(f"Gaussian PSF sigma must be positive and finite, got {sigma!r}.")
        if size is None:
            size = 2 * int(np.ceil(5 * sigma)) + 1
        if size % 2 != 1 or size < 3:
            raise ValueError(f"PSF stamp size must be odd and >= 3, got {size}.")
        self._sigma = float(sigma)
        self._size = int(size)
        r = np.arange(size) - size // 2
        g = np.exp(-0.5 * (r / sigma) ** 2)
        stamp = np.outer(g, g)
        self._stamp = stamp / stamp.sum()

    @property
    def size(self) -> int:
        return self._size

    def kernel_image(self, x: float, y: float) -> np.ndarray:
        return self._stamp.copy()

    def sigma(self, x: float, y: float) -> float:
        return self._sigma


class GridPsf:
    """A spatially varying PSF sampled on a regular grid, bilinearly interpolated.

    Parameters
    ----------
    x_nodes, y_nodes : `numpy.ndarray`
        Increasing pixel coordinates of the grid columns and rows (length >= 1 each).
    stamps : `numpy.ndarray`
        Array ``(len(y_nodes), len(x_nodes), size, size)`` of kernel stamps; each is normalised to sum 1.

    Notes
    -----
    Outside the grid the nearest edge stamps are used (constant extrapolation).
    """

    def __init__(self, x_nodes: np.ndarray, y_nodes: np.ndarray, stamps: np.ndarray) -> None:
        x_nodes = np.asarray(x_nodes, dtype=float)
        y_nodes = np.asarray(y_nodes, dtype=float)
        stamps = np.asarray(stamps, dtype=float)
        if stamps.ndim != 4 or stamps.shape[:2] != (len(y_nodes), len(x_nodes)):
            raise ValueError(
                f"stamps shape {stamps.shape} does not match grid ({len(y_nodes)}, {len(x_nodes)}, k, k)."
            )
        if stamps.shape[2] != stamps.shape[3] or stamps.shape[2] % 2 != 1:
            raise ValueError(f"PSF stamps must be odd squares, got {stamps.shape[2:]}.")
        sums = stamps.sum(axis=(2, 3), keepdims=True)
        if not np.all(np.isfinite(sums)) or np.any(sums <= 0):
            raise ValueError("Every PSF grid stamp must have a finite positive sum.")
        self._x = x_nodes
        self._y = y_nodes
        self._stamps = stamps / sums
        self._sigmas = np.array([[psf_moments_sigma(s) for s in row] for row in self._stamps])

    @classmethod
    def from_function(
        cls, func, x_range: tuple[float, float], y_range: tuple[float, float], n_x: int = 5, n_y: int = 5
    ) -> GridPsf:
        """Sample ``func(x, y) -> stamp`` on an ``n_y`` × ``n_x`` grid spanning the given pixel ranges."""
        xs = np.linspace(x_range[0], x_range[1], n_x)
        ys = np.linspace(y_range[0], y_range[1], n_y)
        stamps = np.array([[np.asarray(func(x, y), dtype=float) for x in xs] for y in ys])
        return cls(xs, ys, stamps)

    @property
    def size(self) -> int:
        return int(self._stamps.shape[-1])

    @property
    def x_nodes(self) -> np.ndarray:
        return self._x

    @property
    def y_nodes(self) -> np.ndarray:
        return self._y

    @property
    def stamps(self) -> np.ndarray:
        """The normalised grid stamps, ``(n_y, n_x, size, size)``."""
        return self._stamps

    def _weights(self, nodes: np.ndarray, v: float) -> tuple[int, int, float]:
        if len(nodes) == 1:
            return 0, 0, 0.0
        v = float(np.clip(v, nodes[0], nodes[-1]))
        i = int(np.clip(np.searchsorted(nodes, v) - 1, 0, len(nodes) - 2))
        t = (v - nodes[i]) / (nodes[i + 1] - nodes[i])
        return i, i + 1, t

    def kernel_image(self, x: float, y: float) -> np.ndarray:
        i0, i1, ty = self._weights(self._y, y)
        j0, j1, tx = self._weights(self._x, x)
        s = self._stamps
        out = (
            (1 - ty) * ((1 - tx) * s[i0, j0] + tx * s[i0, j1])
            + ty * ((1 - tx) * s[i1, j0] + tx * s[i1, j1])
        )
        return out / out.sum()

    def sigma(self, x: float, y: float) -> float:
        i0, i1, ty = self._weights(self._y, y)
        j0, j1, tx = self._weights(self._x, x)
        s = self._sigmas
        return float(
            (1 - ty) * ((1 - tx) * s[i0, j0] + tx * s[i0, j1]) + ty * ((1 - tx) * s[i1, j0] + tx * s[i1, j1])
        )
