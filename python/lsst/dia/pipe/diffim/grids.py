"""Smooth functions sampled on a coarse grid of nodes, interpolated to every pixel with matrix products."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import make_interp_spline

__all__ = ["grid_nodes", "interpolation_matrix", "upsample"]


def grid_nodes(n: int, spacing: int) -> np.ndarray:
    """Node positions ``0, spacing, 2 spacing, …`` plus the last pixel ``n - 1`` [pixels]."""
    return np.unique(np.r_[np.arange(0, n, max(int(spacing), 1)), n - 1]).astype(float)


def interpolation_matrix(nodes: np.ndarray, positions: np.ndarray, degree: int) -> np.ndarray:
    """Matrix ``M`` such that ``M @ values`` interpolates node values at ``positions``.

    Parameters
    ----------
    nodes : `numpy.ndarray`
        Increasing node positions.
    positions : `numpy.ndarray`
        Where to interpolate.
    degree : `int`
        1 (piecewise linear) or 3 (not-a-knot cubic spline); lowered when there are too few nodes.

    Returns
    -------
    matrix : `numpy.ndarray`
        ``(len(positions), len(nodes))`` float64.
    """
    nodes = np.asarray(nodes, dtype=float)
    positions = np.asarray(positions, dtype=float)
    if nodes.size == 1:
        return np.ones((positions.size, 1))
    k = min(degree, nodes.size - 1)
    return make_interp_spline(nodes, np.eye(nodes.size), k=k)(positions)


def upsample(
    values: np.ndarray, nodes_y: np.ndarray, nodes_x: np.ndarray, shape: tuple[int, int], degree: int = 1
) -> np.ndarray:
    """Interpolate ``values[len(nodes_y), len(nodes_x)]`` to every pixel of ``shape`` (float32 result)."""
    my = interpolation_matrix(nodes_y, np.arange(shape[0]), degree)
    mx = interpolation_matrix(nodes_x, np.arange(shape[1]), degree)
    return (my.astype(np.float32) @ np.asarray(values, np.float32)) @ mx.T.astype(np.float32)
