"""Configuration of DIASource measurement and forced PSF photometry."""

from __future__ import annotations

import numpy as np

import lsst.pex.config as pexConfig

from ..masks import MaskBit

__all__ = ["ForcedPhotometryConfig", "MeasurementConfig"]


def _is_mask_plane(name: str) -> bool:
    return name in MaskBit.__members__


class ForcedPhotometryConfig(pexConfig.Config):
    """PSF photometry at fixed positions, with simultaneous fits of overlapping neighbours.

    Nested by tasks as ``config.forced``, and inside `MeasurementConfig` as ``psfFlux`` (for ``psfFlux``,
    ``scienceFlux`` and ``templateFlux`` of DIASources).
    """

    badMaskPlanes = pexConfig.ListField[str](
        doc="Pixels with any of these mask planes (MaskBit names) are left out of the fit (non-finite pixels "
        "and pixels with non-positive variance always are).",
        default=["BAD", "SATURATED", "NO_DATA", "NO_TEMPLATE"],
        itemCheck=_is_mask_plane,
    )
    psfStampRadius = pexConfig.Field[float](
        doc="Half-side of the fitted stamp in units of the largest PSF Gaussian-equivalent sigma; the stamp is "
        "never larger than the PSF model's own. The PSF is not renormalised after cropping, so the flux stays "
        "unbiased.",
        default=4.0,
        check=lambda v: v >= 1.0,
    )
    psfGridSize = pexConfig.Field[int](
        doc="PSF models other than GridPsf are sampled on psfGridSize x psfGridSize nodes over the image and "
        "interpolated bilinearly.",
        default=5,
        check=lambda v: v >= 1,
    )
    fitBackground = pexConfig.Field[bool](
        doc="Fit a constant local background together with the fluxes: one per isolated object, one shared by "
        "each group of blended objects (over the union of their stamps). Adds localBackground columns.",
        default=False,
    )
    blendCoupling = pexConfig.Field[float](
        doc="Objects are fitted simultaneously when the normalised overlap of their PSF stamps, "
        "sum(P_i P_j) / sqrt(sum(P_i^2) sum(P_j^2)), reaches this value (connected groups); with fitBackground "
        "also when this fraction of one object's PSF flux falls on the other's stamp.",
        default=1e-3,
        check=lambda v: 0 < v < 1,
    )
    maxBlendSize = pexConfig.Field[int](
        doc="Largest group fitted simultaneously; members of larger groups are fitted one by one and get "
        "psfFlux_flag.",
        default=256,
        check=lambda v: v >= 1,
    )
    blendMinEigenvalue = pexConfig.Field[float](
        doc="A blend group whose normalised normal matrix has a smaller eigenvalue (objects nearly on top of "
        "each other) is fitted one by one instead, with psfFlux_flag set.",
        default=1e-2,
        check=lambda v: 0 < v < 1,
    )


class MeasurementConfig(pexConfig.Config):
    """Measurement of DIASources on a difference image.

    Nested by the image-difference task as ``config.measurement``.
    """

    psfFlux = pexConfig.ConfigField[ForcedPhotometryConfig](
        doc="PSF photometry at the centroid: psfFlux (difference), scienceFlux (science), templateFlux.",
    )
    badMaskPlanes = pexConfig.ListField[str](
        doc="Pixels with any of these mask planes are ignored by the centroid, dipole and shape fits and by the "
        "aperture (which then sets apFlux_flag).",
        default=["BAD", "SATURATED", "NO_DATA", "NO_TEMPLATE"],
        itemCheck=_is_mask_plane,
    )
    psfGridSize = pexConfig.Field[int](
        doc="PSF models other than GridPsf are sampled on psfGridSize x psfGridSize nodes.",
        default=5,
        check=lambda v: v >= 1,
    )
    fitStampRadius = pexConfig.Field[float](
        doc="Half-side of the centroid and dipole fit stamps, in units of the largest PSF sigma.",
        default=3.0,
        check=lambda v: v >= 1.0,
    )
    centroidMaxIter = pexConfig.Field[int](
        doc="Gauss-Newton iterations of the PSF-fit centroid.", default=8, check=lambda v: v >= 1
    )
    centroidMaxShift = pexConfig.Field[float](
        doc="A centroid further than this from the detection peak (pixels) is a failure (centroid_flag); the "
        "peak position is reported instead.",
        default=2.0,
        check=lambda v: v > 0,
    )
    apertureRadius = pexConfig.Field[float](
        doc="Radius of the circular aperture for apFlux (pixels; the SDM column is defined for 12).",
        default=12.0,
        check=lambda v: v > 0,
    )
    apertureSubsample = pexConfig.Field[int](
        doc="Pixels crossed by the aperture edge are split into this many sub-pixels per axis to compute the "
        "overlap fraction.",
        default=8,
        check=lambda v: v >= 1,
    )
    shapeMaxIter = pexConfig.Field[int](
        doc="Iterations of the adaptive-moment fit.", default=40, check=lambda v: v >= 1
    )
    shapeTolerance = pexConfig.Field[float](
        doc="Adaptive moments converge when the relative change of the weight moments is below this.",
        default=1e-4,
        check=lambda v: v > 0,
    )
    doDipoleFit = pexConfig.Field[bool](
        doc="Fit a joint positive + negative PSF model to dipole candidates.", default=True
    )
    dipoleMaxIter = pexConfig.Field[int](
        doc="Levenberg-Marquardt iterations of the dipole fit.", default=30, check=lambda v: v >= 1
    )
    dipoleMinSn = pexConfig.Field[float](
        doc="isDipole requires the quadrature sum of the lobe S/N to reach this (ip_diffim: 5 sqrt(2)).",
        default=float(5 * np.sqrt(2)),
        check=lambda v: v >= 0,
    )
    dipoleMaxFluxRatio = pexConfig.Field[float](
        doc="isDipole requires each lobe's share of the total absolute lobe flux to be at most this (ip_diffim: "
        "0.65).",
        default=0.65,
        check=lambda v: 0.5 <= v <= 1,
    )
