"""Configuration of detection on difference images."""

from __future__ import annotations

import lsst.pex.config as pexConfig

from ..masks import MaskBit, mask_bits

__all__ = ["DetectionConfig", "mask_bits"]


class DetectionConfig(pexConfig.Config):
    """Matched-filter detection, footprint growth and dipole merging.

    Nested by the image-difference task as ``config.detection``.
    """

    thresholdValue = pexConfig.Field[float](
        doc="Detection threshold on the matched-filter significance (or on the score image), in sigma.",
        default=5.0,
        check=lambda v: v > 0,
    )
    thresholdPolarity = pexConfig.ChoiceField[str](
        doc="Which signs of significance to detect.",
        default="both",
        allowed={
            "both": "positive and negative sources",
            "positive": "positive sources only",
            "negative": "negative sources only",
        },
    )
    badMaskPlanes = pexConfig.ListField[str](
        doc="Mask planes (MaskBit names) on which nothing is detected; they also carry no weight in the "
        "matched filter.",
        default=["NO_DATA", "NO_TEMPLATE", "DETECTION_EDGE", "BAD"],
        itemCheck=lambda name: name in MaskBit.__members__,
    )
    nGrow = pexConfig.Field[int](
        doc="Grow footprints by this many pixels (square structuring element) after thresholding.",
        default=2,
        check=lambda v: v >= 0,
    )
    doRemoveTruncatedPeaks = pexConfig.Field[bool](
        doc="Drop footprints whose peak touches the DETECTION_EDGE border while the significance keeps rising "
        "into it: the source lies in the border, where nothing is detected, and only its wing was found, off "
        "its position (ZOGY's score, computed into its wide border, gave 7 such detections in 120 demo CCDs).",
        default=True,
    )
    dipoleMergeDistance = pexConfig.Field[float](
        doc="Positive and negative (grown) footprints whose pixels come within this distance (pixels) are "
        "merged into a dipole candidate.",
        default=2.0,
        check=lambda v: v >= 0,
    )
    systematicFluxFraction = pexConfig.Field[float](
        doc="Fractional flux mismatch of PSF matching (dimensionless): near a template source of PSF-filtered flux "
        "M_f, (fraction * M_f)^2 is added to the matched-filter variance, so subtraction residuals of bright "
        "stars and galaxy cores are not detected (see lsst.dia.pipe.detection.systematics). 0 disables.",
        default=0.0,
        check=lambda v: 0 <= v < 1,
    )
    registrationSigma = pexConfig.Field[float](
        doc="Per-axis registration error between science and template [arcsec]: adds sigma^2 |grad M_f|^2 to the "
        "matched-filter variance (ZOGY's astrometric noise), suppressing misregistration dipoles. 0 disables.",
        default=0.0,
        check=lambda v: v >= 0,
    )
    doMeasureSystematics = pexConfig.Field[bool](
        doc="Measure the flux mismatch and registration error on the residuals of bright template sources of this "
        "difference image (lsst.dia.pipe.detection.systematics.measure_systematics) and use them where larger "
        "than systematicFluxFraction / registrationSigma (which then act as floors).",
        default=True,
    )
    systematicsMinSnr = pexConfig.Field[float](
        doc="Template sources used to measure the systematics have at least this matched-filter S/N.",
        default=100.0,
        check=lambda v: v > 0,
    )
    systematicsMinSources = pexConfig.Field[int](
        doc="With fewer measured sources than this, the configured floors are used alone.",
        default=5,
        check=lambda v: v >= 1,
    )
    tileSize = pexConfig.Field[int](
        doc="The matched filter runs as FFTs on tiles of about this side (pixels), each filtered with the PSF at "
        "its centre; this also follows a spatially varying PSF at the tile scale.",
        default=1024,
        check=lambda v: v >= 64,
    )
    doRescaleSignificance = pexConfig.Field[bool](
        doc="Divide the significance by its robust (1.4826 MAD) standard deviation over usable pixels. Use when "
        "the variance plane does not describe the noise of the filtered image (e.g. a difference image that "
        "was not decorrelated).",
        default=False,
    )
    fftWorkers = pexConfig.Field[int](
        doc="Threads for scipy.fft (-1: all cores).",
        default=1,
        check=lambda v: v == -1 or v >= 1,
    )
