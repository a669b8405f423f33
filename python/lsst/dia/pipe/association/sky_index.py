"""A growing, slowly moving set of points on the sphere with exact fixed-radius neighbour queries.

Association adds DIAObjects epoch by epoch and moves their positions a little each time a DIASource joins.
Rebuilding one KD-tree per epoch would cost O(N log N) per epoch; this index instead keeps a few KD-trees of
geometrically increasing capacity (the "logarithmic method"): new points go into the smallest level, and a
level that overflows is merged into the next one. Each point is therefore re-indexed O(log N) times in
total and each query visits O(log N) trees.

Moves are handled without touching the trees: each level remembers the largest distance (``margin``) between
a member's current position and its *anchor*, the position stored in the tree. A query of radius ``r`` asks
each level for anchors within ``r + margin`` (a superset, by the triangle inequality of chords in R³) and
keeps the pairs whose *current* chord is within ``r``, so results are exact however far points move; a level
is re-built from current positions once its margin exceeds ``max_margin``, keeping candidate sets small.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["SkyIndex"]

_K_NEAREST = 4
"""Neighbours fetched per query point and level; rows that fill all of them are re-queried without limit."""

_MAX_LEVELS = 40


class SkyIndex:
    """Points on the unit sphere supporting `add`, `move` and exact `pairs_within` queries.

    Parameters
    ----------
    capacity : `int`
        Maximum number of points that will ever be added (arrays are allocated once: memory is linear).
    max_margin : `float`
        Chord length a level's members may drift from their anchors before that level is re-built.
    base_size : `int`
        Capacity of the smallest level; level ``k`` holds up to ``base_size * growth**k`` points.
    growth : `int`
        Capacity ratio between consecutive levels.
    """

    def __init__(self, capacity: int, max_margin: float, base_size: int = 1024, growth: int = 4):
        self._positions = np.empty((capacity, 3), dtype=np.float64)
        self._anchors = np.empty((capacity, 3), dtype=np.float64)
        self._level_of = np.full(capacity, -1, dtype=np.int64)
        self._trees: list[cKDTree | None] = [None] * _MAX_LEVELS
        self._members: list[np.ndarray | None] = [None] * _MAX_LEVELS
        self._margins = np.zeros(_MAX_LEVELS, dtype=np.float64)
        self._size = 0
        self._max_margin = float(max_margin)
        self._capacities = int(base_size) * int(growth) ** np.arange(_MAX_LEVELS, dtype=object)

    @property
    def size(self) -> int:
        """Number of points added so far."""
        return self._size

    @property
    def positions(self) -> np.ndarray:
        """Current positions, ``(size, 3)`` view (do not modify: use `move`)."""
        return self._positions[: self._size]

    def add(self, vectors: np.ndarray) -> np.ndarray:
        """Add unit vectors ``(m, 3)``; return their ids ``size .. size + m - 1``."""
        m = len(vectors)
        ids = np.arange(self._size, self._size + m, dtype=np.int64)
        if m == 0:
            return ids
        if self._size + m > len(self._positions):
            raise ValueError(f"SkyIndex capacity {len(self._positions)} exceeded by {self._size + m} points")
        self._positions[ids] = vectors
        self._size += m
        self._insert(ids)
        return ids

    def move(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Set the current positions of points ``ids`` (distinct) to unit ``vectors``."""
        if len(ids) == 0:
            return
        self._positions[ids] = vectors
        drift = np.sqrt(np.sum((vectors - self._anchors[ids]) ** 2, axis=1))
        np.maximum.at(self._margins, self._level_of[ids], drift)
        for k in np.flatnonzero(self._margins > self._max_margin):
            self._rebuild(k, self._members[k])

    def pairs_within(self, vectors: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (query, point) pairs whose current chord is at most ``radius``.

        Parameters
        ----------
        vectors : `numpy.ndarray`, shape ``(q, 3)``
            Query unit vectors.
        radius : `float`
            Chord length.

        Returns
        -------
        query : `numpy.ndarray` of `int64`
            Row of ``vectors`` of each pair.
        point : `numpy.ndarray` of `int64`
            Id of the indexed point of each pair.
        chord : `numpy.ndarray` of `float64`
            Current chord length of each pair.
        """
        queries, points = [], []
        for k, tree in enumerate(self._trees):
            if tree is not None:
                q, p = _candidates(tree, vectors, radius + self._margins[k])
                queries.append(q)
                points.append(self._members[k][p])
        if not queries:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, np.empty(0, dtype=np.float64)
        query = np.concatenate(queries)
        point = np.concatenate(points)
        chord = np.sqrt(np.sum((vectors[query] - self._positions[point]) ** 2, axis=1))
        keep = chord <= radius
        return query[keep], point[keep], chord[keep]

    def _insert(self, ids: np.ndarray) -> None:
        """Put new points into level 0; a level that overflows is emptied into the next one."""
        carry = ids
        for k in range(_MAX_LEVELS):
            if self._members[k] is not None:
                carry = np.concatenate([self._members[k], carry])
            if len(carry) <= self._capacities[k]:
                self._rebuild(k, carry)
                return
            self._trees[k] = self._members[k] = None
            self._margins[k] = 0.0
        raise AssertionError("unreachable: level capacities grow geometrically")

    def _rebuild(self, k: int, members: np.ndarray) -> None:
        anchors = self._positions[members]
        self._anchors[members] = anchors
        self._trees[k] = cKDTree(anchors, balanced_tree=False, compact_nodes=False)
        self._members[k] = members
        self._level_of[members] = k
        self._margins[k] = 0.0


def _candidates(tree: cKDTree, vectors: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """(query row, tree row) pairs whose anchor is within ``radius`` (a superset of the exact pairs)."""
    n = tree.n
    k = min(_K_NEAREST, n)
    _, idx = tree.query(vectors, k=k, distance_upper_bound=radius)
    idx = idx.reshape(len(vectors), k)
    found = idx < n
    rows, cols = np.nonzero(found)
    point = idx[rows, cols]
    if k == _K_NEAREST and found[:, -1].any():
        # Rows with k neighbours may have more: take them all.
        full = np.flatnonzero(found[:, -1])
        lists = tree.query_ball_point(vectors[full], radius)
        counts = np.fromiter((len(lst) for lst in lists), dtype=np.int64, count=len(lists))
        keep = ~found[rows, -1]
        rows = np.concatenate([rows[keep], np.repeat(full, counts)])
        point = np.concatenate([point[keep], np.concatenate(lists).astype(np.int64)])
    return rows.astype(np.int64), point
