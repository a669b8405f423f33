"""Positional matching of catalogs on the sphere, optionally restricted to equal group keys.

Groups (e.g. one visit/detector) are separated by an extra KD-tree coordinate spaced further apart than any
chord on the unit sphere, so one tree query matches every group at once without a Python loop.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from ..association.sphere import arcsec_to_chord, chord_to_arcsec, radec_to_unit

__all__ = ["SkyMatch", "ccd_key", "match_sky", "near_any"]

#: Spacing of the group coordinate: larger than the longest chord on the unit sphere (2).
_GROUP_SPACING = 4.0


@dataclasses.dataclass(frozen=True)
class SkyMatch:
    """Nearest-neighbour match of catalog 1 into catalog 2.

    Attributes
    ----------
    index : `numpy.ndarray`
        For each row of catalog 1, the row of catalog 2 nearest to it within the radius (same group), or -1.
    separation : `numpy.ndarray`
        Separation of the match [arcsec]; ``inf`` where unmatched.
    """

    index: np.ndarray
    separation: np.ndarray

    @property
    def matched(self) -> np.ndarray:
        """Boolean: the row of catalog 1 has a match."""
        return self.index >= 0


def _points(ra: ArrayLike, dec: ArrayLike, group: np.ndarray | None) -> np.ndarray:
    unit = radec_to_unit(ra, dec).reshape(-1, 3)
    if group is None:
        return unit
    return np.column_stack([unit, _GROUP_SPACING * group.astype(np.float64)])


def _dense_groups(keys1: ArrayLike, keys2: ArrayLike, n1: int, n2: int) -> tuple[np.ndarray, np.ndarray]:
    """Group keys of two catalogs renumbered 0..k-1 (small, exact coordinates in float64)."""
    keys1 = np.atleast_1d(np.asarray(keys1)).astype(np.int64)
    keys2 = np.atleast_1d(np.asarray(keys2)).astype(np.int64)
    if keys1.shape != (n1,) or keys2.shape != (n2,):
        raise ValueError("Group keys must have one entry per row.")
    _, dense = np.unique(np.concatenate([keys1, keys2]), return_inverse=True)
    return dense[:n1], dense[n1:]


def ccd_key(table) -> np.ndarray:
    """One int64 group key per row from its ``visit`` and ``detector`` columns."""
    visit = np.asarray(table["visit"], dtype=np.int64)
    detector = np.asarray(table["detector"], dtype=np.int64)
    return (visit << 20) | detector


def match_sky(
    ra1: ArrayLike,
    dec1: ArrayLike,
    ra2: ArrayLike,
    dec2: ArrayLike,
    radius_arcsec: float,
    group1: ArrayLike | None = None,
    group2: ArrayLike | None = None,
) -> SkyMatch:
    """Match each position of catalog 1 to the nearest position of catalog 2 within a radius.

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : array_like of `float`
        ICRS positions [deg]; non-finite positions never match.
    radius_arcsec : `float`
        Largest separation of a match [arcsec].
    group1, group2 : array_like of `int`, optional
        Group keys (e.g. packed visit/detector); rows only match rows with the same key.  Give both or
        neither.

    Returns
    -------
    match : `SkyMatch`
        Several rows of catalog 1 may share one match in catalog 2 (nearest-neighbour, not one-to-one).

    Raises
    ------
    ValueError
        If only one of ``group1``, ``group2`` is given, or lengths disagree.
    """
    ra1, dec1, ra2, dec2 = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (ra1, dec1, ra2, dec2))
    if ra1.shape != dec1.shape or ra2.shape != dec2.shape:
        raise ValueError(f"ra/dec lengths differ: {ra1.shape} {dec1.shape}, {ra2.shape} {dec2.shape}")
    if (group1 is None) != (group2 is None):
        raise ValueError("Give group keys for both catalogs or for neither.")
    n1 = len(ra1)
    index = np.full(n1, -1, dtype=np.int64)
    separation = np.full(n1, np.inf)
    good1 = np.isfinite(ra1) & np.isfinite(dec1)
    good2 = np.isfinite(ra2) & np.isfinite(dec2)
    if not good1.any() or not good2.any():
        return SkyMatch(index, separation)
    g1 = g2 = None
    if group1 is not None:
        g1, g2 = _dense_groups(group1, group2, n1, len(ra2))
        g1, g2 = g1[good1], g2[good2]
    rows2 = np.flatnonzero(good2)
    tree = cKDTree(_points(ra2[good2], dec2[good2], g2))
    chord, found = tree.query(_points(ra1[good1], dec1[good1], g1),
                              distance_upper_bound=float(arcsec_to_chord(radius_arcsec)))
    hit = np.isfinite(chord)
    rows1 = np.flatnonzero(good1)
    index[rows1[hit]] = rows2[found[hit]]
    separation[rows1[hit]] = chord_to_arcsec(chord[hit])
    return SkyMatch(index, separation)


def near_any(
    ra: ArrayLike,
    dec: ArrayLike,
    group: ArrayLike,
    ref_ra: ArrayLike,
    ref_dec: ArrayLike,
    ref_group: ArrayLike,
    ref_radius_arcsec: ArrayLike,
) -> np.ndarray:
    """Whether each position lies within the radius of any reference position of its group.

    Parameters
    ----------
    ra, dec : array_like of `float`
        Positions [deg].
    group : array_like of `int`
        Group key of each position (e.g. `ccd_key`).
    ref_ra, ref_dec : array_like of `float`
        Reference positions [deg].
    ref_group : array_like of `int`
        Group key of each reference.
    ref_radius_arcsec : array_like of `float`
        Radius of each reference [arcsec].

    Returns
    -------
    near : `numpy.ndarray` of `bool`
    """
    ra = np.atleast_1d(np.asarray(ra, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec, dtype=np.float64))
    ref_ra = np.atleast_1d(np.asarray(ref_ra, dtype=np.float64))
    ref_dec = np.atleast_1d(np.asarray(ref_dec, dtype=np.float64))
    out = np.zeros(len(ra), dtype=bool)
    if len(ra) == 0 or len(ref_ra) == 0:
        return out
    g, g_ref = _dense_groups(group, ref_group, len(ra), len(ref_ra))
    chord = np.broadcast_to(arcsec_to_chord(ref_radius_arcsec), ref_ra.shape)
    good = np.flatnonzero(np.isfinite(ra) & np.isfinite(dec))
    good_ref = np.flatnonzero(np.isfinite(ref_ra) & np.isfinite(ref_dec) & np.isfinite(chord))
    if len(good) == 0 or len(good_ref) == 0:
        return out
    chord = chord[good_ref]
    pairs = cKDTree(_points(ra[good], dec[good], g[good])).sparse_distance_matrix(
        cKDTree(_points(ref_ra[good_ref], ref_dec[good_ref], g_ref[good_ref])), float(chord.max()),
        output_type="ndarray")
    if len(pairs):
        close = pairs["v"] <= chord[pairs["j"]]
        out[good[np.unique(pairs["i"][close])]] = True
    return out
