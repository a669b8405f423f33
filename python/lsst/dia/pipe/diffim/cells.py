"""Overlapping cells with linear blending weights, for algorithms that follow a spatially varying PSF by
processing the image in pieces (ZOGY, decorrelation)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["Cell", "cell_layout", "process_in_cells"]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell.

    Attributes
    ----------
    region : `tuple` [`slice`, `slice`]
        Rows and columns of the image processed for this cell (core + blend zone + padding).
    centre : `tuple` [`float`, `float`]
        ``(x, y)`` of the cell core's centre [pixels].
    weight_y, weight_x : `numpy.ndarray`
        Separable blending weights over the region's rows and columns; the weights of all cells sum to 1 on
        every pixel and are 0 in the padding.
    """

    region: tuple[slice, slice]
    centre: tuple[float, float]
    weight_y: np.ndarray
    weight_x: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        """Blending weight over ``region`` (float32)."""
        return np.outer(self.weight_y, self.weight_x).astype(np.float32)


def _axis_cells(n: int, size: int, overlap: int, pad: int) -> list[tuple[slice, float, np.ndarray]]:
    count = max(1, int(round(n / size))) if size > 0 else 1
    bounds = np.round(np.linspace(0, n, count + 1)).astype(int)
    out = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        start = max(0, lo - overlap - pad) if lo > 0 else 0
        stop = min(n, hi + overlap + pad) if hi < n else n
        t = np.arange(start, stop) + 0.5
        w = np.ones(stop - start)
        if lo > 0:
            w = np.minimum(w, np.clip((t - lo + overlap) / (2 * overlap), 0, 1) if overlap else (t >= lo))
        if hi < n:
            w = np.minimum(w, np.clip((hi + overlap - t) / (2 * overlap), 0, 1) if overlap else (t < hi))
        out.append((slice(start, stop), 0.5 * (lo + hi - 1), w))
    return out


def cell_layout(shape: tuple[int, int], cell_size: int, overlap: int, pad: int) -> list[Cell]:
    """Split an image into about ``cell_size``-sided cells.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)``.
    cell_size : `int`
        Approximate core side [pixels]; 0 gives one cell, the whole image, with weight 1.
    overlap : `int`
        Half width of the linear blend across each inner cell boundary [pixels].
    pad : `int`
        Extra margin processed beyond the blend zone and given weight 0 (absorbs FFT wrap-around) [pixels].

    Returns
    -------
    cells : `list` [`Cell`]
    """
    rows = _axis_cells(shape[0], cell_size, overlap, pad)
    cols = _axis_cells(shape[1], cell_size, overlap, pad)
    return [
        Cell((ys, xs), (cx, cy), wy, wx)
        for ys, cy, wy in rows
        for xs, cx, wx in cols
    ]


def process_in_cells(
    shape: tuple[int, int], cells: list[Cell], func: Callable[[Cell], tuple[np.ndarray, ...]]
) -> tuple[np.ndarray, ...]:
    """Run ``func`` on every cell and blend its output images with the cell weights.

    ``func(cell)`` returns a tuple of float arrays of the shape of ``cell.region``. With a single cell the
    arrays are returned as they are.
    """
    if len(cells) == 1:
        return tuple(np.asarray(a, dtype=np.float32) for a in func(cells[0]))
    outputs: list[np.ndarray] | None = None
    for cell in cells:
        results = func(cell)
        if outputs is None:
            outputs = [np.zeros(shape, np.float32) for _ in results]
        for out, res in zip(outputs, results):
            out[cell.region] += cell.weight * res
    return tuple(outputs)
