"""`subtract_images`: the one entry point of PSF matching and subtraction (Alard-Lupton or ZOGY)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from threadpoolctl import threadpool_limits

from ..exposure import Exposure
from ..masks import MaskBit, planes_set
from ..repair import interpolate_along_rows
from .alard_lupton import alard_lupton_subtract
from .background import fit_differential_background
from .config import SubtractionConfig, mask_bits
from .convolution import dilate
from .errors import EmptyImageError
from .metrics import residual_noise_ratio, typical_variance
from .result import SubtractionResult, empty_kernel_sources
from .zogy import zogy_subtract

__all__ = ["subtract_images"]

_UNDEFINED = int(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE)
_DETECTIONS = np.uint32(MaskBit.DETECTED | MaskBit.DETECTED_NEGATIVE)


def _copy_bit(mask: np.ndarray, source: MaskBit, destination: MaskBit) -> np.ndarray:
    """``destination`` set wherever ``source`` is (bit arithmetic, no boolean indexing)."""
    shift = int(destination).bit_length() - int(source).bit_length()
    bit = mask & np.uint32(source)
    return bit << np.uint32(shift) if shift >= 0 else bit >> np.uint32(-shift)


def _template_mask(mask: np.ndarray) -> np.ndarray:
    """A template mask in difference-image terms: SATURATED -> SAT_TEMPLATE, NO_DATA -> NO_DATA|NO_TEMPLATE."""
    out = mask & ~np.uint32(MaskBit.SATURATED)
    out |= _copy_bit(mask, MaskBit.SATURATED, MaskBit.SAT_TEMPLATE)
    out |= _copy_bit(mask, MaskBit.NO_DATA, MaskBit.NO_TEMPLATE)
    out |= _copy_bit(mask, MaskBit.NO_TEMPLATE, MaskBit.NO_DATA)
    return out


def _prepare(exposure: Exposure, fill_bits: int, interpolate_bits: int, which: str) -> tuple[Exposure, np.ndarray]:
    """Exposure ready for FFTs: pixels with ``interpolate_bits`` interpolated along rows (flagged INTERPOLATED),
    other unusable pixels filled (image 0, variance its median; non-finite ones flagged NO_DATA), and DETECTED
    bits (which describe the input, not the difference) cleared.

    The input arrays are shared (not copied) when every pixel is usable: callers must not modify them.

    Returns the copy and the boolean map of usable pixels (data pixels: neither filled nor interpolated).

    Raises
    ------
    EmptyImageError
        If no pixel is usable.
    """
    finite = np.isfinite(exposure.image)
    finite &= np.isfinite(exposure.variance)
    finite &= exposure.variance > 0
    mask = exposure.mask & ~_DETECTIONS
    to_interpolate = planes_set(mask, interpolate_bits)
    any_interpolate = bool(to_interpolate.any())
    if not finite.all():
        mask[~finite & ~to_interpolate] |= np.uint32(MaskBit.NO_DATA)
    if which == "template":
        mask = _template_mask(mask)
    fill = planes_set(mask, fill_bits)
    usable = finite & ~fill
    if any_interpolate:
        to_interpolate &= ~fill
        usable &= ~to_interpolate
    n_good = int(np.count_nonzero(usable))
    if n_good == 0:
        raise EmptyImageError(which, 0)
    image, variance = exposure.image.astype(np.float32, copy=False), exposure.variance.astype(np.float32, copy=False)
    if n_good < usable.size:
        image = np.where(usable, image, np.float32(0.0))
        variance = np.where(usable, variance, np.float32(typical_variance(variance, usable)))
        if any_interpolate:
            rows, cols = np.nonzero(to_interpolate)
            replaced = interpolate_along_rows(image, rows, cols, usable)
            mask[rows[replaced], cols[replaced]] |= np.uint32(MaskBit.INTERPOLATED)
            mask[rows[~replaced], cols[~replaced]] |= np.uint32(MaskBit.NO_DATA)
    clean = Exposure(image=image, variance=variance, mask=mask, psf=exposure.psf, wcs=exposure.wcs, x0=exposure.x0,
                     y0=exposure.y0, band=exposure.band, mjd=exposure.mjd)
    return clean, usable


def _resolve_mode(mode: str, science: Exposure, template: Exposure) -> str:
    """``auto`` -> convolve the image with the narrower PSF (at the image centre)."""
    if mode != "auto":
        return mode
    return "convolveTemplate" if template.psf_sigma <= science.psf_sigma else "convolveScience"


def _source_pixels(science: Exposure, template: Exposure) -> np.ndarray:
    """Pixels near sources: any pixel above 5 sigma in either image, grown by 4 PSF sigmas."""
    sigma = max(science.psf_sigma, template.psf_sigma)
    bright = science.image > 5 * np.sqrt(science.variance)
    bright |= template.image > 5 * np.sqrt(template.variance)
    return dilate(bright, int(np.ceil(4 * sigma)))


def _subtract_background(
    science: Exposure, template: Exposure, good: np.ndarray, filled: np.ndarray, order: int
) -> tuple[Exposure, dict]:
    """Science with the differential background (fitted on ``good`` pixels) subtracted, except from the
    ``filled`` pixels (which stay 0)."""
    background = fit_differential_background(science.image, template.image, science.variance, template.variance,
                                             good, order)
    metadata = {"background_rms": background.rms(), "background_n_pixels": background.n_pixels}
    if background.n_pixels == 0:
        return science, metadata
    image = science.image - background.image()
    image[filled] = 0.0
    return dataclasses.replace(science, image=image), metadata


def subtract_images(
    science: Exposure, template: Exposure, config: SubtractionConfig | None = None
) -> SubtractionResult:
    """PSF-match and subtract a template from a science image on the same pixel grid.

    Parameters
    ----------
    science : `~lsst.dia.pipe.exposure.Exposure`
        Calibrated science image [nJy], variance [nJy²], mask, PSF.
    template : `~lsst.dia.pipe.exposure.Exposure`
        Template warped onto the science grid [nJy] (e.g. from `assemble_template`); pixels without template
        data carry ``NO_DATA`` (or ``NO_TEMPLATE``).
    config : `SubtractionConfig`, optional
        Algorithm (``"al"`` or ``"zogy"``), mode, decorrelation, ...; defaults if omitted. Validated here.

    Returns
    -------
    result : `SubtractionResult`
        Difference (science minus template, [nJy]) with its PSF, matched template, score image (ZOGY),
        kernel-source table and kernel solution (AL), metadata.

    Raises
    ------
    ValueError
        If the images have different shapes.
    lsst.pex.config.FieldValidationError
        If the configuration is invalid.
    EmptyImageError
        If either image, or their overlap, has no usable pixel.
    InsufficientKernelSourcesError
        (AL) If too few kernel stars are found or survive rejection and ``alardLupton.usePsfModelFallback``
        is off (by default the kernel is then fitted to the PSF models, see ``metadata["kernel_source"]``).
    KernelSolveError
        (AL) If the kernel fit is singular at every spatial order.

    Notes
    -----
    Pixels with ``config.interpolateMaskPlanes`` bits (bad columns) are interpolated along their rows and
    flagged ``INTERPOLATED``; these bits are not dilated. Non-finite pixels and pixels with
    ``config.fillMaskPlanes`` bits are set to 0 before any FFT (variance: the median) and flagged; their bits
    are dilated by the kernel footprint. With ``config.doSubtractBackground`` a smooth science-minus-template
    background (`~lsst.dia.pipe.diffim.background.fit_differential_background`, over pixels away from sources)
    is subtracted from the science image first. In the difference, pixels without
    template data (dilated) are 0 with ``NO_DATA | NO_TEMPLATE``, pixels without science data 0 with
    ``NO_DATA``, both with a finite variance (the value propagated from the filled inputs): never NaN or inf,
    and excluded from detection by their mask bits. The template mask enters the difference with
    ``SATURATED`` renamed ``SAT_TEMPLATE``; ``DETECTED``/``DETECTED_NEGATIVE`` bits of either input are
    dropped. ``metadata["residual_noise_ratio"]`` is `residual_noise_ratio` over pixels farther than 4 PSF
    sigmas from any 5-sigma pixel of either input.
    BLAS runs single-threaded inside (many small products); ``config.fftWorkers`` threads the FFTs.
    """
    config = config if config is not None else SubtractionConfig()
    config.validate()
    if science.shape != template.shape:
        raise ValueError(f"Science {science.shape} and template {template.shape} must share one pixel grid.")
    # The linear algebra here is many small products: threaded BLAS only adds synchronisation (up to 10x
    # slower on busy cores). The FFTs are threaded separately (config.fftWorkers).
    with threadpool_limits(limits=1, user_api="blas"):
        return _subtract(science, template, config)


def _subtract(science: Exposure, template: Exposure, config: SubtractionConfig) -> SubtractionResult:
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    fill_bits = mask_bits(config.fillMaskPlanes) | int(MaskBit.NO_DATA)
    interpolate_bits = mask_bits(config.interpolateMaskPlanes)
    sci, sci_usable = _prepare(science, fill_bits, interpolate_bits, "science")
    tmpl, tmpl_usable = _prepare(template, fill_bits, interpolate_bits, "template")
    usable = sci_usable & tmpl_usable
    if not usable.any():
        raise EmptyImageError("science/template overlap", 0)
    mode = _resolve_mode(config.mode, sci, tmpl)
    sources = _source_pixels(sci, tmpl)
    background_metadata = {}
    if config.doSubtractBackground:
        sci, background_metadata = _subtract_background(sci, tmpl, usable & ~sources, planes_set(sci.mask, fill_bits),
                                                        config.backgroundOrder)
    timings["time_prepare_s"] = time.perf_counter() - t_start

    if config.algorithm == "al":
        difference, matched, fit, metadata = alard_lupton_subtract(sci, tmpl, usable, config, mode, timings)
        score, kernel_sources, solution = None, fit.stamps, fit.solution
    else:
        t0 = time.perf_counter()
        difference, matched, score, metadata = zogy_subtract(sci, tmpl, usable, config)
        kernel_sources, solution = empty_kernel_sources(), None
        mode = "symmetric"
        # The photometric ratio science/template, what the AL kernel sum measures.
        kernel_sum = config.zogy.fluxScaleScience / config.zogy.fluxScaleTemplate
        metadata.update(kernel_sum=kernel_sum, n_kernel_candidates=0, n_kernel_used=0, spatial_order_used=0)
        timings["time_zogy_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    undefined = planes_set(difference.mask, _UNDEFINED)
    difference.image[undefined] = 0.0
    if score is not None:
        score[undefined] = 0.0
    ratio = residual_noise_ratio(difference, exclude=sources)
    timings["time_metrics_s"] = time.perf_counter() - t0
    timings["time_total_s"] = time.perf_counter() - t_start
    metadata = {
        "algorithm": config.algorithm,
        "mode": mode,
        **metadata,
        **background_metadata,
        "residual_noise_ratio": ratio,
        "template_coverage": 1.0 - float(np.count_nonzero(planes_set(tmpl.mask, _UNDEFINED))) / tmpl.mask.size,
        **timings,
    }
    return SubtractionResult(
        difference=difference, matched_template=matched, score=score, kernel_sources=kernel_sources,
        metadata=metadata, kernel_solution=solution,
    )
