"""Detector artifacts of a simulated calexp: saturation, bad columns and cosmic rays.

What a processed visit image looks like after instrument signature removal: saturated pixels clipped at
the full well (no bleed trails) and flagged SATURATED; bad columns set to 0 and flagged BAD; cosmic rays
mostly found, flagged COSMIC_RAY | INTERPOLATED and replaced by a local interpolation, with a small
fraction left in the pixels unflagged (they become difference-image artifacts, as in real data).
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table
from scipy import ndimage

from ..masks import MaskBit
from ..repair.interpolate import interpolate_masked

__all__ = ["apply_saturation", "add_bad_columns", "add_cosmic_rays", "interpolate_masked"]


def apply_saturation(image: np.ndarray, mask: np.ndarray, limit: np.ndarray | float) -> int:
    """Clip pixels at a saturation limit and flag them SATURATED (in place).

    Parameters
    ----------
    image : `numpy.ndarray`
        Pixel values (modified in place).
    mask : `numpy.ndarray`
        ``uint32`` `~lsst.dia.pipe.masks.MaskBit` mask (modified in place).
    limit : `numpy.ndarray` or `float`
        Largest value a pixel can take (full well minus the subtracted sky), same units as ``image``.

    Returns
    -------
    n_saturated : `int`
        Number of clipped pixels.
    """
    limit = np.broadcast_to(np.asarray(limit, dtype=image.dtype), image.shape)
    saturated = image >= limit
    image[saturated] = limit[saturated]
    mask[saturated] |= np.uint32(MaskBit.SATURATED)
    return int(saturated.sum())


def add_bad_columns(image: np.ndarray, mask: np.ndarray, n_columns: int, rng: np.random.Generator) -> Table:
    """Add bad columns: pixel values set to 0 and flagged BAD (in place).

    Each column runs from a random row to the top of the image (half of them cover the full column).

    Parameters
    ----------
    image, mask : `numpy.ndarray`
        Pixel values and ``uint32`` mask, modified in place.
    n_columns : `int`
        Number of bad columns.
    rng : `numpy.random.Generator`
        Random generator; seed it from the detector alone so the columns repeat in every visit.

    Returns
    -------
    columns : `astropy.table.Table`
        ``x`` (column), ``y_start`` (first bad row).
    """
    ny, nx = image.shape
    x = rng.choice(nx, size=min(n_columns, nx), replace=False)
    y_start = np.where(rng.uniform(size=len(x)) < 0.5, 0, rng.integers(0, ny, len(x)))
    rows = np.arange(ny)[:, None]
    bad = np.zeros(image.shape, dtype=bool)
    bad[:, x] = rows >= y_start[None, :]
    image[bad] = 0.0
    mask[bad] |= np.uint32(MaskBit.BAD)
    return Table({"x": x.astype(np.int64), "y_start": y_start.astype(np.int64)})


def add_cosmic_rays(
    image: np.ndarray,
    mask: np.ndarray,
    n_rays: int,
    rng: np.random.Generator,
    *,
    unmasked_fraction: float = 0.1,
    length_range: tuple[float, float] = (2.0, 40.0),
    deposit_range: tuple[float, float] = (800.0, 5000.0),
) -> Table:
    """Add cosmic-ray tracks; flag and interpolate most of them, leave a fraction as artifacts (in place).

    Parameters
    ----------
    image, mask : `numpy.ndarray`
        Pixel values [electrons] and ``uint32`` mask, modified in place.
    n_rays : `int`
        Number of tracks.
    rng : `numpy.random.Generator`
        Random generator.
    unmasked_fraction : `float`
        Expected fraction of tracks left in the image without any mask bit.
    length_range : `tuple` [`float`, `float`]
        Track lengths [pixels].
    deposit_range : `tuple` [`float`, `float`]
        Charge deposited per pixel of track length [electrons].

    Returns
    -------
    rays : `astropy.table.Table`
        ``x``, ``y`` (track midpoint), ``length`` [pixels], ``charge`` (deposited, before any interpolation
        and including what falls off the image) [electrons], ``masked`` (bool) per track.
    """
    ny, nx = image.shape
    length = rng.uniform(*length_range, n_rays)
    angle = rng.uniform(0.0, np.pi, n_rays)
    xm = rng.uniform(-0.5, nx - 0.5, n_rays)
    ym = rng.uniform(-0.5, ny - 0.5, n_rays)
    deposit = rng.uniform(*deposit_range, n_rays)
    masked = rng.uniform(size=n_rays) >= unmasked_fraction

    # sample each track every half pixel; each sample carries half a pixel's worth of charge
    n_samples = np.maximum(2 * np.ceil(length).astype(int), 1)
    ray = np.repeat(np.arange(n_rays), n_samples)
    t = (np.arange(n_samples.sum()) - np.repeat(np.cumsum(n_samples) - n_samples, n_samples)) / np.repeat(
        n_samples, n_samples
    ) - 0.5
    xs = np.floor(xm[ray] + t * length[ray] * np.cos(angle[ray]) + 0.5).astype(np.int64)
    ys = np.floor(ym[ray] + t * length[ray] * np.sin(angle[ray]) + 0.5).astype(np.int64)
    inside = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
    flat = ys[inside] * nx + xs[inside]
    charge = (deposit * length / n_samples)[ray[inside]]
    np.add.at(image.reshape(-1), flat, charge.astype(image.dtype))

    hit = np.zeros(image.size, dtype=bool)
    hit[flat[masked[ray[inside]]]] = True
    hit = ndimage.binary_dilation(hit.reshape(image.shape))
    if hit.any():
        interpolate_masked(image, hit, usable=(mask == 0))
        mask[hit] |= np.uint32(MaskBit.COSMIC_RAY | MaskBit.INTERPOLATED)
    return Table({"x": xm, "y": ym, "length": length, "charge": deposit * length, "masked": masked})
