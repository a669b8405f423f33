"""Footprints from a thresholded significance image, their peaks, and dipole pairing.

Everything here works on the (sparse) list of above-threshold pixels, so the cost scales with the number of
detected pixels rather than with the image area (apart from one connected-component labelling).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = ["Footprints", "find_footprints", "pair_dipoles", "truncated_peaks"]

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclasses.dataclass
class Footprints:
    """Footprints of one polarity.

    Attributes
    ----------
    labels : `numpy.ndarray`
        ``(ny, nx)`` int32 label image of the grown footprints (0: none, ``1..n``: footprint id).
    peak_x, peak_y : `numpy.ndarray`
        Integer pixel of the significance extremum of each footprint, indexed by ``label - 1``.
    peak_significance : `numpy.ndarray`
        Significance at the peak (sign of the polarity) [sigma].
    npix : `numpy.ndarray`
        Number of pixels in each grown footprint.
    bbox : `numpy.ndarray`
        ``(n, 4)`` int ``x_min, y_min, x_max, y_max`` (inclusive) of each grown footprint.
    """

    labels: np.ndarray
    peak_x: np.ndarray
    peak_y: np.ndarray
    peak_significance: np.ndarray
    npix: np.ndarray
    bbox: np.ndarray

    @property
    def count(self) -> int:
        """Number of footprints."""
        return len(self.peak_x)

    def select(self, keep: np.ndarray) -> Footprints:
        """The footprints where ``keep`` (bool, per footprint) is true, relabelled ``1..n`` in their order."""
        keep = np.asarray(keep, bool)
        if keep.all():
            return self
        lookup = np.zeros(self.count + 1, np.int32)
        lookup[1:][keep] = np.arange(1, np.count_nonzero(keep) + 1, dtype=np.int32)
        return Footprints(
            labels=lookup[self.labels], peak_x=self.peak_x[keep], peak_y=self.peak_y[keep],
            peak_significance=self.peak_significance[keep], npix=self.npix[keep], bbox=self.bbox[keep],
        )


def _grow(seed: np.ndarray, shape: tuple[int, int], n_grow: int) -> np.ndarray:
    """Flat indices of the pixels within ``n_grow`` (Chebyshev distance) of the ``seed`` flat indices."""
    if n_grow == 0 or seed.size == 0:
        return seed
    ny, nx = shape
    y, x = np.divmod(seed, nx)
    offsets = np.arange(-n_grow, n_grow + 1)
    gy = (y[:, None, None] + offsets[None, :, None]).clip(0, ny - 1)
    gx = (x[:, None, None] + offsets[None, None, :]).clip(0, nx - 1)
    return np.unique(gy * nx + gx)


def find_footprints(significance: np.ndarray, above: np.ndarray, n_grow: int, sign: int) -> Footprints:
    """Label grown connected components of ``above`` and find the significance extremum in each.

    Parameters
    ----------
    significance : `numpy.ndarray`
        ``(ny, nx)`` significance image [sigma].
    above : `numpy.ndarray`
        Boolean ``(ny, nx)``: pixels beyond the threshold (already restricted to usable pixels).
    n_grow : `int`
        Growth of each footprint, in pixels (square structuring element); footprints that touch after
        growth become one.
    sign : `int`
        +1 for positive footprints (peak = maximum), -1 for negative ones (peak = minimum).

    Returns
    -------
    footprints : `Footprints`
    """
    shape = significance.shape
    grown = _grow(np.flatnonzero(above), shape, n_grow)
    mask = np.zeros(shape, dtype=bool)
    mask.flat[grown] = True
    labels, _ = ndimage.label(mask, structure=_EIGHT_CONNECTED)
    labels = labels.astype(np.int32, copy=False)
    flat = grown  # sorted flat indices of all footprint pixels
    lab = labels.flat[flat]
    # The peak is sought among the above-threshold pixels only (grown pixels may be masked ones).
    value = np.where(above.flat[flat], sign * significance.flat[flat], -np.inf)
    order = np.lexsort((-value, lab))
    lab_sorted = lab[order]
    starts = np.flatnonzero(np.diff(lab_sorted, prepend=0) != 0)  # labels start at 1
    peak_flat = flat[order][starts]
    y_all, x_all = np.divmod(flat[order], shape[1])
    if starts.size:
        bbox = np.stack(
            [
                np.minimum.reduceat(x_all, starts),
                np.minimum.reduceat(y_all, starts),
                np.maximum.reduceat(x_all, starts),
                np.maximum.reduceat(y_all, starts),
            ],
            axis=1,
        )
    else:
        bbox = np.zeros((0, 4), dtype=int)
    peak_y, peak_x = np.divmod(peak_flat, shape[1])
    return Footprints(
        labels=labels,
        peak_x=peak_x.astype(np.int64),
        peak_y=peak_y.astype(np.int64),
        peak_significance=significance.flat[peak_flat].astype(np.float32),
        npix=np.diff(np.r_[starts, lab_sorted.size]).astype(np.int64),
        bbox=bbox.astype(np.int64),
    )


def truncated_peaks(footprints: Footprints, raw: np.ndarray, excluded: np.ndarray, sign: int) -> np.ndarray:
    """Footprints whose peak sits against excluded pixels where the raw significance keeps rising.

    Such a footprint is the wing of a source that lies in the excluded region (e.g. the image border), found
    at the region's boundary and measured there, off its true position.

    Parameters
    ----------
    footprints : `Footprints`
        Footprints of one polarity.
    raw : `numpy.ndarray`
        ``(ny, nx)`` significance before excluded pixels were zeroed [sigma].
    excluded : `numpy.ndarray`
        ``(ny, nx)`` bool, pixels on which nothing is detected.
    sign : `int`
        +1 for positive footprints, -1 for negative ones.

    Returns
    -------
    truncated : `numpy.ndarray`
        Bool per footprint: one of the 8 neighbours of its peak is excluded and more significant (same sign).
    """
    ny, nx = raw.shape
    offsets = np.arange(-1, 2)
    yy = (footprints.peak_y[:, None, None] + offsets[None, :, None]).clip(0, ny - 1)
    xx = (footprints.peak_x[:, None, None] + offsets[None, None, :]).clip(0, nx - 1)
    peak = sign * raw[footprints.peak_y, footprints.peak_x]
    return np.any(excluded[yy, xx] & (sign * raw[yy, xx] > peak[:, None, None]), axis=(1, 2))


def pair_dipoles(positive: Footprints, negative: Footprints, max_distance: float) -> tuple[np.ndarray, np.ndarray]:
    """Pair positive with negative footprints whose pixels come within ``max_distance``.

    Each footprint joins at most one pair: a positive and a negative footprint are paired when each is the
    other's nearest (by closest pixel distance, ties broken by peak significance) among the footprints within
    ``max_distance``.

    Returns
    -------
    pos_index, neg_index : `numpy.ndarray`
        Indices (``label - 1``) of the paired positive and negative footprints.
    """
    empty = np.array([], dtype=np.int64)
    if positive.count == 0 or negative.count == 0:
        return empty, empty
    pos_flat = np.flatnonzero(positive.labels)
    neg_flat = np.flatnonzero(negative.labels)
    nx = positive.labels.shape[1]
    pos_xy = np.column_stack(np.divmod(pos_flat, nx)[::-1])
    neg_xy = np.column_stack(np.divmod(neg_flat, nx)[::-1])
    dist, nearest = cKDTree(neg_xy).query(pos_xy, k=1, distance_upper_bound=max_distance + 1e-9)
    close = np.isfinite(dist)
    if not close.any():
        return empty, empty
    p = positive.labels.flat[pos_flat[close]] - 1
    q = negative.labels.flat[neg_flat[nearest[close]]] - 1
    d = dist[close]
    strength = np.abs(positive.peak_significance[p]) + np.abs(negative.peak_significance[q])
    # For every (p, q) candidate: smallest pixel distance first, then strongest pair.
    order = np.lexsort((-strength, d))
    p, q = p[order], q[order]
    _, first_p = np.unique(p, return_index=True)  # best q for each p
    best_q_of_p = np.full(positive.count, -1, dtype=np.int64)
    best_q_of_p[p[first_p]] = q[first_p]
    _, first_q = np.unique(q, return_index=True)  # best p for each q
    pairs_p = p[first_q]
    pairs_q = q[first_q]
    mutual = best_q_of_p[pairs_p] == pairs_q
    return pairs_p[mutual].astype(np.int64), pairs_q[mutual].astype(np.int64)
