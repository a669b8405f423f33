"""Cosmic rays missed by single-frame processing: pixels sharper than the PSF, found and interpolated.

Calibrated visit images arrive with most cosmic rays repaired, but not all; an unrepaired track survives
subtraction intact and becomes a bright DIASource. The test is the one of LSST's ``findCosmicRays``
("condition 3"): a star's pixel cannot exceed the mean of its two neighbours along any axis by more than the
PSF's own contrast ``exp(d² / 2 s²)``, so a pixel that does, with noise allowances on both, is a cosmic ray.
Everything is whole-image array arithmetic (shifts, one conditional dilation), no per-pixel loops.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

from ..detection.config import mask_bits
from ..exposure import Exposure
from ..masks import MaskBit, planes_set
from ..psf import PsfModel
from .config import CosmicRayConfig
from .interpolate import interpolate_masked

__all__ = ["find_cosmic_rays", "psf_contrast", "repair_cosmic_rays"]

_log = logging.getLogger(__name__)

#: (dy, dx) of one neighbour per axis (the other is the opposite pixel).
_AXES: tuple[tuple[int, int], ...] = ((0, 1), (1, 0), (1, 1), (1, -1))


def _shifted(padded: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """View of an edge-padded (by 1) plane shifted so that ``out[y, x] = plane[y + dy, x + dx]``."""
    ny, nx = padded.shape[0] - 2, padded.shape[1] - 2
    return padded[1 + dy : 1 + dy + ny, 1 + dx : 1 + dx + nx]


def psf_contrast(psf: PsfModel, shape: tuple[int, int], n_grid: int = 3) -> np.ndarray:
    """Largest ratio of a PSF's central pixel to the mean of its two neighbours, per axis of `_AXES`.

    Taken from the PSF model images (pixel-integrated, centred) on an ``n_grid`` × ``n_grid`` grid over the
    image, the maximum over the grid: no star can be sharper than this, whatever its profile (a Moffat core is
    sharper than the Gaussian of the same second moments).

    Returns
    -------
    contrast : `numpy.ndarray`
        ``(4,)`` ratios, in the order of `_AXES`.
    """
    ny, nx = shape
    best = np.zeros(len(_AXES))
    for x in np.linspace(0, nx - 1, n_grid):
        for y in np.linspace(0, ny - 1, n_grid):
            stamp = np.asarray(psf.kernel_image(float(x), float(y)), float)
            cy, cx = np.unravel_index(np.argmax(stamp), stamp.shape)
            for i, (dy, dx) in enumerate(_AXES):
                neighbours = 0.5 * (stamp[cy + dy, cx + dx] + stamp[cy - dy, cx - dx])
                best[i] = max(best[i], stamp[cy, cx] / max(neighbours, 1e-12))
    return best


def find_cosmic_rays(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    contrast: np.ndarray,
    config: CosmicRayConfig | None = None,
) -> np.ndarray:
    """Pixels of cosmic rays: sharper than the PSF allows.

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` background-subtracted image [nJy].
    variance : `numpy.ndarray`
        ``(ny, nx)`` variance [nJy²].
    mask : `numpy.ndarray`
        ``(ny, nx)`` uint32 `~lsst.dia.pipe.masks.MaskBit` mask; ``config.ignoreMaskPlanes`` pixels never seed.
    contrast : `numpy.ndarray`
        ``(4,)`` largest centre-to-neighbour-mean ratio a star can have along each axis (`psf_contrast`).
    config : `CosmicRayConfig`, optional
        Thresholds (defaults if omitted).

    Returns
    -------
    cosmic_rays : `numpy.ndarray`
        ``(ny, nx)`` bool, grown cosmic-ray pixels.

    Raises
    ------
    ValueError
        If ``contrast`` does not hold four finite ratios >= 1.
    """
    contrast = np.asarray(contrast, float)
    if contrast.shape != (len(_AXES),) or not np.all(np.isfinite(contrast) & (contrast >= 1)):
        raise ValueError(f"find_cosmic_rays: contrast must be {len(_AXES)} finite ratios >= 1, got {contrast!r}.")
    config = config if config is not None else CosmicRayConfig()
    img = np.where(np.isfinite(image), image, 0).astype(np.float32, copy=False)
    var = np.where(np.isfinite(variance) & (variance > 0), variance, np.inf).astype(np.float32)
    sigma = np.sqrt(var)
    k = np.float32(config.neighbourSigma)
    centre = img - k * sigma
    ignored = planes_set(mask, mask_bits(config.ignoreMaskPlanes)) | ~np.isfinite(image)
    # the unflagged rim of a saturated core is not PSF-shaped either: no seeds within saturationGrow of it
    near_saturation = ndimage.binary_dilation(planes_set(mask, MaskBit.SATURATED), iterations=config.saturationGrow)
    seeds = (img > np.float32(config.minSigma) * sigma) & ~ignored & ~near_saturation
    sharp = np.zeros(img.shape, bool)
    padded_img, padded_var, padded_ignored = (np.pad(p, 1, mode="edge") for p in (img, var, ignored))
    for (dy, dx), axis_contrast in zip(_AXES, contrast):
        ratio = np.float32(axis_contrast * config.contrastFactor)
        mean_nb = 0.5 * (_shifted(padded_img, dy, dx) + _shifted(padded_img, -dy, -dx))
        sigma_nb = 0.5 * np.sqrt(_shifted(padded_var, dy, dx) + _shifted(padded_var, -dy, -dx))
        # an axis with an ignored neighbour (bad column, saturated core) says nothing about sharpness
        trusted = ~(_shifted(padded_ignored, dy, dx) | _shifted(padded_ignored, -dy, -dx))
        sharp |= trusted & (centre > ratio * (mean_nb + k * sigma_nb))
    cosmic = seeds & sharp
    if not cosmic.any():
        return cosmic
    bright = (img > np.float32(config.growSigma) * sigma) & ~ignored
    for _ in range(config.nGrowSteps):
        cosmic = ndimage.binary_dilation(cosmic, structure=np.ones((3, 3), bool)) & bright
    if config.nGrowFinal:
        cosmic = ndimage.binary_dilation(cosmic, structure=np.ones((3, 3), bool), iterations=config.nGrowFinal)
    return cosmic


def repair_cosmic_rays(exposure: Exposure, config: CosmicRayConfig | None = None) -> int:
    """Find cosmic rays on ``exposure`` and interpolate over them, in place.

    The pixels get ``COSMIC_RAY | INTERPOLATED`` and the mean of the usable pixels in a
    ``config.interpolationWidth`` box; the variance is left as it was.

    Returns
    -------
    n_pixels : `int`
        Number of repaired pixels.
    """
    config = config if config is not None else CosmicRayConfig()
    contrast = psf_contrast(exposure.psf, exposure.shape)
    cosmic = find_cosmic_rays(exposure.image, exposure.variance, exposure.mask, contrast, config)
    n = int(cosmic.sum())
    if n:
        usable = ~planes_set(exposure.mask, MaskBit.BAD | MaskBit.SATURATED | MaskBit.NO_DATA)
        interpolate_masked(exposure.image, cosmic, usable, width=config.interpolationWidth)
        exposure.mask[cosmic] |= np.uint32(MaskBit.COSMIC_RAY | MaskBit.INTERPOLATED)
    _log.debug("Repaired %d cosmic-ray pixels (PSF contrast <= %s).", n, np.round(contrast, 2))
    return n
