"""Pixel -> sky conversions of positions, errors, second moments and separations (vectorised).

The local tangent-plane frame is (east, north) = (ΔRA cos δ, Δδ) in arcseconds; the local Jacobian of the WCS
maps pixel offsets into it.
"""

from __future__ import annotations

import numpy as np

from ..exposure import Exposure

__all__ = ["local_jacobian", "to_sky_frame", "position_angle"]

_ARCSEC = 3600.0


def local_jacobian(exposure: Exposure, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(n, 2, 2)`` Jacobian ``d(east, north) / d(x, y)`` [arcsec/pixel] at pixel positions ``(x, y)``.

    Central differences over ±0.5 pixel.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    n = len(x)
    px = np.concatenate([x + 0.5, x - 0.5, x, x])
    py = np.concatenate([y, y, y + 0.5, y - 0.5])
    ra, dec = exposure.pixel_to_sky(px, py)
    ra = ra.reshape(4, n)
    dec = dec.reshape(4, n)
    cos_dec = np.cos(np.deg2rad(dec.mean(axis=0)))
    d_ra_x = ((ra[0] - ra[1] + 180.0) % 360.0 - 180.0) * cos_dec * _ARCSEC
    d_ra_y = ((ra[2] - ra[3] + 180.0) % 360.0 - 180.0) * cos_dec * _ARCSEC
    jac = np.empty((n, 2, 2))
    jac[:, 0, 0] = d_ra_x
    jac[:, 0, 1] = d_ra_y
    jac[:, 1, 0] = (dec[0] - dec[1]) * _ARCSEC
    jac[:, 1, 1] = (dec[2] - dec[3]) * _ARCSEC
    return jac


def to_sky_frame(jacobian: np.ndarray, xx: np.ndarray, yy: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, ...]:
    """Transform symmetric 2×2 tensors (covariances, second moments) from pixel² to arcsec² (east, north).

    Returns
    -------
    ee, nn, en : `numpy.ndarray`
        East-east, north-north and east-north components [arcsec²].
    """
    m = np.empty((len(xx), 2, 2))
    m[:, 0, 0] = xx
    m[:, 1, 1] = yy
    m[:, 0, 1] = m[:, 1, 0] = xy
    sky = jacobian @ m @ np.swapaxes(jacobian, 1, 2)
    return sky[:, 0, 0], sky[:, 1, 1], sky[:, 0, 1]


def position_angle(jacobian: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length [arcsec] and position angle [deg, east of north, in [0, 360)] of pixel offsets ``(dx, dy)``."""
    east = jacobian[:, 0, 0] * dx + jacobian[:, 0, 1] * dy
    north = jacobian[:, 1, 0] * dx + jacobian[:, 1, 1] * dy
    return np.hypot(east, north), np.rad2deg(np.arctan2(east, north)) % 360.0
