"""Photometric calibration of ingested images: zero points and their conversion to nJy.

A zero point ``ZP`` (AB magnitude of one count in the whole exposure) gives ``nJy per count =
10**((31.4 - ZP) / 2.5)`` (31.4 is the AB magnitude of 1 nJy). Images without one can be calibrated
*relative to a calibrated template* of the same band: isolated stars are matched on the sky and the median
ratio of their PSF-corrected aperture fluxes is the calibration.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from astropy.wcs import WCS
from scipy import spatial

from ..psf import PsfModel
from .stars import StarSelection, cut_stamps

__all__ = [
    "AB_NJY_ZEROPOINT",
    "njy_per_count",
    "zeropoint_from_njy_per_count",
    "aperture_flux",
    "enclosed_fraction",
    "psf_corrected_fluxes",
    "RelativeCalibration",
    "relative_calibration",
    "stars_radec",
]

#: AB magnitude of a source of 1 nJy.
AB_NJY_ZEROPOINT = 31.4


def njy_per_count(zeropoint: float) -> float:
    """Calibration [nJy per count] of an image whose magnitude zero point is ``zeropoint``."""
    return float(10.0 ** ((AB_NJY_ZEROPOINT - zeropoint) / 2.5))


def zeropoint_from_njy_per_count(scale: float) -> float:
    """Inverse of `njy_per_count`."""
    return float(AB_NJY_ZEROPOINT - 2.5 * np.log10(scale))


def _disk(radius: float) -> np.ndarray:
    half = int(np.ceil(radius))
    c = np.arange(-half, half + 1)
    return (np.hypot(*np.meshgrid(c, c, indexing="ij")) <= radius).astype(float)


def aperture_flux(image: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    """Sum of the pixels whose centres lie within ``radius`` of the nearest pixel to ``(x, y)`` (vectorised).

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` background-subtracted image.
    x, y : `numpy.ndarray`
        Positions [array pixels].
    radius : `float`
        Aperture radius [pixels].
    """
    disk = _disk(radius)
    stamps = cut_stamps(np.nan_to_num(image), np.rint(x).astype(int), np.rint(y).astype(int), disk.shape[0] // 2)
    return (stamps * disk).sum(axis=(1, 2))


def enclosed_fraction(psf_stamp: np.ndarray, radius: float) -> float:
    """Fraction of a centred, unit-sum PSF stamp inside the `aperture_flux` aperture of ``radius``."""
    stamp = np.asarray(psf_stamp, dtype=float)
    disk = _disk(radius)
    h, k = disk.shape[0] // 2, stamp.shape[0] // 2
    if h > k:
        return float(stamp.sum())
    return float((stamp[k - h : k + h + 1, k - h : k + h + 1] * disk).sum() / stamp.sum())


def psf_corrected_fluxes(image: np.ndarray, stars: StarSelection, psf: PsfModel, radius: float) -> np.ndarray:
    """Aperture fluxes of stars divided by the PSF's enclosed fraction at each star (total fluxes)."""
    flux = aperture_flux(image, stars.x, stars.y, radius)
    fractions = np.array([enclosed_fraction(psf.kernel_image(float(x), float(y)), radius)
                          for x, y in zip(stars.x, stars.y)])
    return flux / fractions


@dataclasses.dataclass(frozen=True)
class RelativeCalibration:
    """The calibration of an image relative to reference images.

    Attributes
    ----------
    njy_per_count : `float`
        Median of the matched flux ratios [nJy per count].
    zeropoint : `float`
        The equivalent magnitude zero point.
    n_matched : `int`
        Stars matched.
    scatter_mag : `float`
        Robust scatter of the per-star zero points [mag] (1.4826 MAD).
    """

    njy_per_count: float
    zeropoint: float
    n_matched: int
    scatter_mag: float


def relative_calibration(
    counts_flux: np.ndarray,
    counts_ra: np.ndarray,
    counts_dec: np.ndarray,
    references: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    match_radius_arcsec: float = 1.0,
    min_matches: int = 3,
) -> RelativeCalibration | None:
    """Calibrate star fluxes in counts against reference fluxes in nJy by sky matching.

    Parameters
    ----------
    counts_flux, counts_ra, counts_dec : `numpy.ndarray`
        Total fluxes [counts] and positions [deg] of stars in the image to calibrate.
    references : sequence of (flux [nJy], ra [deg], dec [deg])
        Stars of calibrated reference images.
    match_radius_arcsec : `float`
        Largest match distance [arcsec].
    min_matches : `int`
        Fewest matched stars accepted.

    Returns
    -------
    calibration : `RelativeCalibration` or `None`
        `None` when fewer than ``min_matches`` stars match.
    """
    if len(counts_flux) == 0 or not references:
        return None
    ref_flux = np.concatenate([r[0] for r in references])
    ref_ra = np.concatenate([r[1] for r in references])
    ref_dec = np.concatenate([r[2] for r in references])

    def unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        ra, dec = np.deg2rad(ra), np.deg2rad(dec)
        return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])

    chord = 2 * np.sin(np.deg2rad(match_radius_arcsec / 3600.0) / 2)
    distance, index = spatial.cKDTree(unit(ref_ra, ref_dec)).query(unit(counts_ra, counts_dec),
                                                                    distance_upper_bound=chord)
    matched = np.isfinite(distance) & (counts_flux > 0)
    matched[matched] &= ref_flux[index[matched]] > 0
    if matched.sum() < min_matches:
        return None
    ratios = ref_flux[index[matched]] / counts_flux[matched]
    zps = 2.5 * np.log10(ratios)
    scale = float(np.median(ratios))
    return RelativeCalibration(
        njy_per_count=scale,
        zeropoint=zeropoint_from_njy_per_count(scale),
        n_matched=int(matched.sum()),
        scatter_mag=float(1.4826 * np.median(np.abs(zps - np.median(zps)))),
    )


def stars_radec(stars: StarSelection, wcs: WCS) -> tuple[np.ndarray, np.ndarray]:
    """Sky positions [deg] of selected stars."""
    ra, dec = wcs.pixel_to_world_values(stars.x, stars.y)
    return np.asarray(ra) % 360.0, np.asarray(dec)
