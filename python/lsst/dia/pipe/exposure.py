"""`Exposure`: the plain in-memory image that algorithm code works on.

Tasks convert butler datasets (``lsst.images`` `VisitImage`, `CellCoadd`, `DifferenceImage`) into an
`Exposure` and back (see `lsst.dia.pipe.imaging`); algorithms never see the butler or FITS files.

Conventions
-----------
- Arrays are indexed ``[y, x]``; pixel ``(x, y)`` is the centre of array element ``[y, x]``.
- ``image`` is calibrated, in nJy per pixel; ``variance`` in nJy²; ``mask`` is ``uint32`` with
  `lsst.dia.pipe.masks.MaskBit` bits.
- ``wcs`` maps *array* pixel coordinates (0-based, as above) to ICRS degrees:
  ``ra, dec = wcs.pixel_to_world_values(x, y)``.
- ``x0, y0`` give the array origin in its parent frame (detector or tract pixels).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.wcs import WCS

from .psf import PsfModel

__all__ = ["FWHM_PER_SIGMA", "Exposure"]

#: FWHM of a Gaussian in units of its sigma, ``2 sqrt(2 ln 2)``.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


@dataclasses.dataclass
class Exposure:
    """A calibrated image with variance, mask, PSF and WCS.

    Attributes
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` float32 pixel values [nJy].
    variance : `numpy.ndarray`
        ``(ny, nx)`` float32 variance [nJy²].
    mask : `numpy.ndarray`
        ``(ny, nx)`` uint32 `~lsst.dia.pipe.masks.MaskBit` bits.
    psf : `~lsst.dia.pipe.psf.PsfModel`
        PSF in this array's pixel frame.
    wcs : `astropy.wcs.WCS`
        Array pixel -> ICRS sky (degrees).
    x0, y0 : `int`
        Origin of the array in its parent pixel frame.
    band : `str` or `None`
        Abstract filter name (``g``, ``r``, …).
    mjd : `float` or `None`
        Mid-exposure time (MJD, TAI).
    """

    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    psf: PsfModel
    wcs: WCS
    x0: int = 0
    y0: int = 0
    band: str | None = None
    mjd: float | None = None

    def __post_init__(self) -> None:
        shape = self.image.shape
        if self.image.ndim != 2:
            raise ValueError(f"Exposure image must be 2-d, got shape {shape}.")
        if self.variance.shape != shape or self.mask.shape != shape:
            raise ValueError(
                f"Exposure planes disagree: image {shape}, variance {self.variance.shape}, "
                f"mask {self.mask.shape}."
            )
        if self.mask.dtype != np.uint32:
            self.mask = self.mask.astype(np.uint32)

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the arrays."""
        return self.image.shape  # type: ignore[return-value]

    @property
    def psf_sigma(self) -> float:
        """Gaussian-equivalent width of the PSF at the image centre [pixels]."""
        ny, nx = self.shape
        return float(self.psf.sigma(0.5 * (nx - 1), 0.5 * (ny - 1)))

    @property
    def psf_fwhm(self) -> float:
        """Gaussian-equivalent FWHM of the PSF at the image centre [pixels]."""
        return FWHM_PER_SIGMA * self.psf_sigma

    @property
    def pixel_scale_arcsec(self) -> float:
        """Mean pixel scale of the WCS's linear part [arcsec/pixel]."""
        from astropy.wcs.utils import proj_plane_pixel_scales

        return float(np.mean(proj_plane_pixel_scales(self.wcs)) * 3600.0)

    def pixel_to_sky(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Array pixel coordinates -> (ra, dec) in degrees (vectorised)."""
        ra, dec = self.wcs.pixel_to_world_values(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(ra) % 360.0, np.asarray(dec)

    def sky_to_pixel(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ra, dec) in degrees -> array pixel coordinates (vectorised)."""
        x, y = self.wcs.world_to_pixel_values(np.asarray(ra, float), np.asarray(dec, float))
        return np.asarray(x), np.asarray(y)
