"""Unit vectors on the sphere: conversions and angle <-> chord lengths.

Association works on unit vectors (x, y, z) so that distances are Euclidean chords: no RA wrap at 0/360,
no pole singularity, and KD-trees apply directly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["radec_to_unit", "unit_to_radec", "arcsec_to_chord", "chord_to_arcsec", "normalize"]

_ARCSEC = np.pi / (180.0 * 3600.0)


def radec_to_unit(ra: ArrayLike, dec: ArrayLike) -> np.ndarray:
    """Unit vectors of ICRS positions.

    Parameters
    ----------
    ra, dec : array_like of `float`
        Right ascension and declination, degrees.

    Returns
    -------
    vectors : `numpy.ndarray`, shape ``(n, 3)``, float64
    """
    ra = np.deg2rad(np.asarray(ra, dtype=np.float64))
    dec = np.deg2rad(np.asarray(dec, dtype=np.float64))
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row of an ``(n, 3)`` array to unit length (the spherical mean of summed unit vectors)."""
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def unit_to_radec(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA in [0, 360) and Dec in [-90, 90] (degrees) of ``(n, 3)`` vectors (need not be normalised)."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    ra = np.rad2deg(np.arctan2(y, x)) % 360.0
    dec = np.rad2deg(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def arcsec_to_chord(angle: ArrayLike) -> np.ndarray:
    """Chord length on the unit sphere of an angular separation given in arcseconds."""
    return 2.0 * np.sin(0.5 * np.asarray(angle, dtype=np.float64) * _ARCSEC)


def chord_to_arcsec(chord: ArrayLike) -> np.ndarray:
    """Angular separation in arcseconds of a chord length on the unit sphere."""
    return 2.0 * np.arcsin(np.clip(0.5 * np.asarray(chord, dtype=np.float64), 0.0, 1.0)) / _ARCSEC
