"""Configuration of cosmic-ray repair."""

from __future__ import annotations

import lsst.pex.config as pexConfig

from ..masks import MaskBit

__all__ = ["CosmicRayConfig"]


class CosmicRayConfig(pexConfig.Config):
    """Finding cosmic rays missed by single-frame processing (nested by the image-difference task as ``repair``).

    A pixel seeds a cosmic ray when it is ``minSigma`` above zero and, along at least one of the four axes
    through it, exceeds the mean of its two neighbours by more than a PSF can: ``(I - k σ) > r (Ī_nb + k σ_nb)``
    with ``r`` ``contrastFactor`` times the largest such ratio of the PSF model itself (`~lsst.dia.pipe.repair.cosmic_rays.psf_contrast`)
    and ``k = neighbourSigma``. Tracks are then grown into adjacent pixels above ``growSigma``.
    """

    minSigma = pexConfig.Field[float](
        doc="A seed pixel is at least this many sigma (its own variance) above zero.", default=6.0, check=lambda v: v > 0
    )
    neighbourSigma = pexConfig.Field[float](
        doc="Noise allowance (sigma) on the centre and on its neighbours in the sharpness test (LSST's cond3_fac "
        "is 2.5; 4 keeps noise spikes on the ~10^5 star pixels of a CCD from seeding, while real tracks are tens "
        "of sigma sharp).",
        default=4.0,
        check=lambda v: v >= 0,
    )
    contrastFactor = pexConfig.Field[float](
        doc="The PSF contrast r is multiplied by this safety factor: the PSF model is interpolated between "
        "nodes and bright stars' cores test it at the per-mille level, while a cosmic-ray track's pixels are "
        "several times brighter than their neighbours across the track.",
        default=1.5,
        check=lambda v: v >= 1,
    )
    growSigma = pexConfig.Field[float](
        doc="Pixels adjacent to a cosmic ray, above this many sigma and not in ignoreMaskPlanes join it.", default=3.0, check=lambda v: v > 0
    )
    saturationGrow = pexConfig.Field[int](
        doc="No seed within this many pixels of a SATURATED pixel (the rim of a saturated star is not PSF-shaped).",
        default=3,
        check=lambda v: v >= 1,
    )
    nGrowSteps = pexConfig.Field[int](
        doc="Steps of conditional growth along the track (pixels).", default=3, check=lambda v: v >= 0
    )
    nGrowFinal = pexConfig.Field[int](
        doc="Unconditional growth of the final cosmic-ray mask (pixels).", default=1, check=lambda v: v >= 0
    )
    interpolationWidth = pexConfig.Field[int](
        doc="Side of the box whose usable pixels' mean replaces a cosmic-ray pixel (pixels).",
        default=7,
        check=lambda v: v >= 3 and v % 2 == 1,
    )
    ignoreMaskPlanes = pexConfig.ListField[str](
        doc="Pixels with these mask planes never seed a cosmic ray (saturated cores are flat, not sharp, but "
        "their edges can be; already-repaired pixels need nothing).",
        default=["BAD", "SATURATED", "NO_DATA", "COSMIC_RAY", "INTERPOLATED"],
        itemCheck=lambda name: name in MaskBit.__members__,
    )
