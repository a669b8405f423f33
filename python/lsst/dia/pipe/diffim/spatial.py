"""2-d Chebyshev polynomials over an image: the spatial model of kernels and backgrounds.

The convention is that of `lsst.images.fields.ChebyshevField`, so fitted coefficients can be stored as such
a field directly: the image box ``[0, nx) x [0, ny)`` grown by half a pixel maps to ``[-1, 1]²``, i.e.
``x' = (x - (nx - 1) / 2) * 2 / nx``, and coefficient ``[p, q]`` multiplies ``T_p(y') T_q(x')``.
Only the triangular set ``p + q <= order`` is used.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev

__all__ = ["ChebyshevSpatialModel"]


class ChebyshevSpatialModel:
    """Triangular 2-d Chebyshev basis of a given order over an image.

    Parameters
    ----------
    order : `int`
        Maximum total order ``p + q``.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image [pixels].
    """

    def __init__(self, order: int, shape: tuple[int, int]) -> None:
        if order < 0:
            raise ValueError(f"Chebyshev order must be >= 0, got {order}.")
        self.order = int(order)
        self.shape = (int(shape[0]), int(shape[1]))
        #: ``(p, q)`` of each term, by increasing total order; term 0 is the constant.
        self.terms: list[tuple[int, int]] = [
            (p, total - p) for total in range(order + 1) for p in range(total + 1)
        ]

    @property
    def n_terms(self) -> int:
        """Number of terms, ``(order + 1)(order + 2) / 2``."""
        return len(self.terms)

    def _scaled(self, v: np.ndarray, n: int) -> np.ndarray:
        return (np.asarray(v, dtype=float) - 0.5 * (n - 1)) * (2.0 / n)

    def design(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Values of every term at points ``(x, y)`` [pixels]: array ``(n_points, n_terms)``."""
        ny, nx = self.shape
        tx = chebyshev.chebvander(self._scaled(np.ravel(x), nx), self.order)
        ty = chebyshev.chebvander(self._scaled(np.ravel(y), ny), self.order)
        return np.stack([ty[:, p] * tx[:, q] for p, q in self.terms], axis=1)

    def axis_factors(self, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
        """Separable factors over the whole image: ``fy[s, y] * fx[s, x]`` is term ``s`` at pixel ``(x, y)``.

        Returns
        -------
        fy : `numpy.ndarray`
            ``(n_terms, ny)``.
        fx : `numpy.ndarray`
            ``(n_terms, nx)``.
        """
        ny, nx = self.shape
        tx = chebyshev.chebvander(self._scaled(np.arange(nx), nx), self.order)
        ty = chebyshev.chebvander(self._scaled(np.arange(ny), ny), self.order)
        fy = np.stack([ty[:, p] for p, _ in self.terms]).astype(dtype)
        fx = np.stack([tx[:, q] for _, q in self.terms]).astype(dtype)
        return fy, fx

    def coefficient_matrix(self, coefficients: np.ndarray) -> np.ndarray:
        """Pack per-term coefficients into the ``(order + 1, order + 1)`` ChebyshevField matrix ``[p, q]``."""
        coefficients = np.asarray(coefficients, dtype=float)
        if coefficients.shape != (self.n_terms,):
            raise ValueError(f"Expected {self.n_terms} coefficients, got shape {coefficients.shape}.")
        matrix = np.zeros((self.order + 1, self.order + 1))
        for (p, q), c in zip(self.terms, coefficients):
            matrix[p, q] = c
        return matrix

    def image(self, coefficients: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The polynomial with these per-term coefficients evaluated on every pixel, ``(ny, nx)``."""
        ny, nx = self.shape
        return self.grid(coefficients, np.arange(nx), np.arange(ny), dtype)

    def grid(self, coefficients: np.ndarray, x: np.ndarray, y: np.ndarray, dtype=np.float32) -> np.ndarray:
        """The polynomial on the grid of columns ``x`` and rows ``y`` [pixels], ``(len(y), len(x))``."""
        ny, nx = self.shape
        matrix = self.coefficient_matrix(coefficients)
        tx = chebyshev.chebvander(self._scaled(x, nx), self.order)
        ty = chebyshev.chebvander(self._scaled(y, ny), self.order)
        return (ty @ matrix).astype(dtype) @ tx.T.astype(dtype)

    def evaluate(self, coefficients: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The polynomial at points ``(x, y)`` [pixels] (flattened)."""
        return self.design(x, y) @ np.asarray(coefficients, dtype=float)
