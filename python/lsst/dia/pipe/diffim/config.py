"""Configuration of template warping and image subtraction (pex_config).

The image-difference task nests `WarpConfig` as ``config.warp`` and `SubtractionConfig` as
``config.subtraction``, so override files say e.g. ``config.subtraction.algorithm = "zogy"``.
"""

from __future__ import annotations

import lsst.pex.config as pexConfig

from ..masks import MaskBit, mask_bits

__all__ = [
    "AlardLuptonConfig",
    "DecorrelationConfig",
    "KernelSourceConfig",
    "SubtractionConfig",
    "WarpConfig",
    "ZogyConfig",
    "mask_bits",
    "dilated_bits",
]


def _is_mask_plane(name: str) -> bool:
    return name in MaskBit.__members__


def dilated_bits(config: SubtractionConfig) -> int:
    """Mask bits that PSF matching dilates by the kernel footprint: all but those of interpolated pixels
    (``interpolateMaskPlanes`` and ``INTERPOLATED``), which hold approximate data, not zeros."""
    return ~(mask_bits(config.interpolateMaskPlanes) | int(MaskBit.INTERPOLATED)) & 0xFFFFFFFF


def _fail(config: pexConfig.Config, field: str, message: str) -> None:
    raise pexConfig.FieldValidationError(type(config)._fields[field], config, message)


class WarpConfig(pexConfig.Config):
    """Resampling of template coadd patches onto a detector's pixel grid (nested as ``config.warp``)."""

    gridSpacing = pexConfig.Field[int](
        doc="Spacing (target pixels) of the coarse grid on which the target->source pixel map is computed "
        "through the two WCSs; between nodes the map is interpolated with a cubic spline (error ~1e-9 px for "
        "TAN pairs of different tangent points and rotations at 64 px).",
        default=64,
        check=lambda v: 4 <= v <= 256,
    )
    psfGridSize = pexConfig.Field[int](
        doc="The warped PSF is a GridPsf with psfGridSize x psfGridSize nodes over the target image.",
        default=5,
        check=lambda v: v >= 1,
    )
    minCoverage = pexConfig.Field[float](
        doc="Minimum fraction of target pixels with template data; below it assemble_template raises "
        "NoTemplateCoverageError (ip_diffim's requiredTemplateFraction is 0.1).",
        default=0.1,
        check=lambda v: 0.0 <= v <= 1.0,
    )
    rowsPerBlock = pexConfig.Field[int](
        doc="Target rows resampled at once (bounds the memory of coordinate arrays).",
        default=512,
        check=lambda v: v >= 16,
    )


class KernelSourceConfig(pexConfig.Config):
    """Selection of the stars on which the Alard-Lupton kernel is fitted."""

    cellSize = pexConfig.Field[int](
        doc="Side (pixels) of the cells over which candidates are spread.",
        default=256,
        check=lambda v: v >= 32,
    )
    nStarPerCell = pexConfig.Field[int](
        doc="Highest-S/N candidates kept per cell.",
        default=3,
        check=lambda v: v >= 1,
    )
    minSnr = pexConfig.Field[float](
        doc="Minimum PSF-flux S/N of a candidate on the science image.", default=10.0, check=lambda v: v > 0
    )
    maxSnr = pexConfig.Field[float](
        doc="Maximum PSF-flux S/N of a candidate (brighter stars risk non-linearity).",
        default=500.0,
        check=lambda v: v > 0,
    )
    minTemplateSnr = pexConfig.Field[float](
        doc="Minimum PSF-flux S/N of the candidate on the template (it must be present in both images).",
        default=5.0,
        check=lambda v: v >= 0,
    )
    peakThreshold = pexConfig.Field[float](
        doc="Peaks of the smoothed science image above this S/N are candidates and count as neighbours in the "
        "isolation test.",
        default=5.0,
        check=lambda v: v > 0,
    )
    isolationRadius = pexConfig.Field[float](
        doc="A candidate is rejected when another peak lies within this distance (pixels).",
        default=10.0,
        check=lambda v: v >= 0,
    )
    maxSizeDeviation = pexConfig.Field[float](
        doc="Point-like test: the PSF-weighted second moment of the star may differ from the PSF's by at most "
        "this fraction (galaxies are wider).",
        default=0.3,
        check=lambda v: v > 0,
    )
    badMaskPlanes = pexConfig.ListField[str](
        doc="Candidates with any of these mask planes (MaskBit names) in their science or template stamp are "
        "rejected.",
        default=[
            "BAD", "SATURATED", "INTERPOLATED", "COSMIC_RAY", "SUSPECT", "NO_DATA", "NO_TEMPLATE",
            "DETECTION_EDGE", "SAT_TEMPLATE", "STREAK",
        ],
        itemCheck=_is_mask_plane,
    )

    def validate(self) -> None:
        super().validate()
        if self.minSnr >= self.maxSnr:
            _fail(self, "maxSnr", f"maxSnr ({self.maxSnr}) must exceed minSnr ({self.minSnr}).")


class AlardLuptonConfig(pexConfig.Config):
    """Alard-Lupton PSF matching (ip_diffim defaults)."""

    basisDegrees = pexConfig.ListField[int](
        doc="Degree of the 2-d polynomial multiplying each basis Gaussian (one entry per Gaussian).",
        default=[4, 2, 2],
        itemCheck=lambda v: 0 <= v <= 8,
        minLength=1,
    )
    basisSigmaRatios = pexConfig.ListField[float](
        doc="Basis Gaussian sigmas in units of sigma_K = sqrt(sigma_wide^2 - sigma_narrow^2); if the smallest "
        "falls below minBasisSigma the ratios are doubled once (ip_diffim: {s/2, s, 2s} -> {s, 2s, 4s}).",
        default=[0.5, 1.0, 2.0],
        itemCheck=lambda v: v > 0,
        minLength=1,
    )
    minBasisSigma = pexConfig.Field[float](
        doc="Floor (pixels) of sigma_K and of the smallest basis Gaussian.", default=0.7, check=lambda v: v > 0
    )
    kernelSizeFactor = pexConfig.Field[float](
        doc="Kernel side = int(kernelSizeFactor * largest basis sigma), made odd and clipped to "
        "[minKernelSize, maxKernelSize].",
        default=6.0,
        check=lambda v: v > 0,
    )
    minKernelSize = pexConfig.Field[int](doc="Smallest kernel side (odd, pixels).", default=21, check=lambda v: v >= 3)
    maxKernelSize = pexConfig.Field[int](doc="Largest kernel side (odd, pixels).", default=35, check=lambda v: v >= 3)
    spatialKernelOrder = pexConfig.Field[int](
        doc="Order of the Chebyshev polynomials of the kernel's spatial variation (the kernel sum is constant); "
        "the largest order tried when doSelectSpatialOrder.",
        default=2,
        check=lambda v: 0 <= v <= 4,
    )
    doSelectSpatialOrder = pexConfig.Field[bool](
        doc="Choose the spatial order in 0..spatialKernelOrder by cross-validation on the kernel stamps (the "
        "order that best predicts stamps left out of the fit) instead of always using spatialKernelOrder.",
        default=True,
    )
    crossValidationFolds = pexConfig.Field[int](
        doc="Folds of the spatial-order cross-validation.", default=5, check=lambda v: v >= 2
    )
    spatialBackgroundOrder = pexConfig.Field[int](
        doc="Order of the Chebyshev polynomial of the differential background, fitted jointly with the kernel.",
        default=1,
        check=lambda v: 0 <= v <= 3,
    )
    fitBackground = pexConfig.Field[bool](doc="Fit the differential background.", default=True)
    maxSpatialIterations = pexConfig.Field[int](
        doc="Spatial fits, each followed by rejection of stamps whose residuals fail the cuts.",
        default=3,
        check=lambda v: v >= 1,
    )
    candidateResidualMeanMax = pexConfig.Field[float](
        doc="Reject a stamp when |mean(residual / sigma)| over its fit region exceeds this.",
        default=0.25,
        check=lambda v: v > 0,
    )
    candidateResidualStdMax = pexConfig.Field[float](
        doc="Reject a stamp when std(residual / sigma) over its fit region exceeds this.",
        default=1.5,
        check=lambda v: v > 0,
    )
    kernelSumClip = pexConfig.Field[float](
        doc="Reject stamps whose single-stamp kernel sum differs from the consensus by more than this many of its "
        "own standard errors (scaled up by the robust scatter of those deviations when it exceeds 1; "
        "see lsst.dia.pipe.diffim.kernel_fit.clip_kernel_sums).",
        default=3.0,
        check=lambda v: v > 0,
    )
    minKernelSources = pexConfig.Field[int](
        doc="Fewest usable kernel stamps (after rejection) for a fit; fewer raise InsufficientKernelSourcesError.",
        default=5,
        check=lambda v: v >= 1,
    )
    usePsfModelFallback = pexConfig.Field[bool](
        doc="When too few kernel stars survive, fit the kernel to the PSF models of the two images instead "
        "(noise-free PSF stamps on a psfFallbackGrid x psfFallbackGrid grid, no background term; logged). "
        "The kernel sum is then 1: the images must share a photometric scale, as calibrated images do.",
        default=True,
    )
    psfFallbackGrid = pexConfig.Field[int](
        doc="Nodes per side of the grid of PSF stamps used by the PSF-model fallback.",
        default=3,
        check=lambda v: v >= 1,
    )
    minSourcesPerSpatialTerm = pexConfig.Field[int](
        doc="The spatial kernel order is lowered until there are at least this many stamps per spatial term.",
        default=3,
        check=lambda v: v >= 1,
    )
    maxConditionNumber = pexConfig.Field[float](
        doc="A (Jacobi-scaled) normal matrix with a larger condition number counts as singular: a stamp is "
        "dropped, a spatial fit falls back to a lower order.",
        default=1e10,
        check=lambda v: v > 1,
    )
    kernelSources = pexConfig.ConfigField(dtype=KernelSourceConfig, doc="Kernel-candidate selection.")

    def validate(self) -> None:
        super().validate()
        for name in ("minKernelSize", "maxKernelSize"):
            if getattr(self, name) % 2 != 1:
                _fail(self, name, f"{name} must be odd, got {getattr(self, name)}.")
        if self.minKernelSize > self.maxKernelSize:
            _fail(self, "maxKernelSize",
                  f"maxKernelSize ({self.maxKernelSize}) < minKernelSize ({self.minKernelSize}).")
        if len(self.basisDegrees) != len(self.basisSigmaRatios):
            _fail(self, "basisSigmaRatios", f"{len(self.basisSigmaRatios)} sigma ratios for "
                  f"{len(self.basisDegrees)} basis degrees; give one per Gaussian.")
        ratios = list(self.basisSigmaRatios)
        if any(b <= a for a, b in zip(ratios, ratios[1:])):
            _fail(self, "basisSigmaRatios", f"basisSigmaRatios must increase strictly, got {ratios}.")


class CellGridConfig(pexConfig.Config):
    """Processing in overlapping square cells, each with the PSFs/kernel at its centre (shared by the
    decorrelation and ZOGY configs)."""

    cellSize = pexConfig.Field[int](
        doc="0: one PSF pair / kernel (at the image centre) for the whole image; otherwise the image is processed "
        "in overlapping cells of this side (pixels), each with the PSFs or kernel at its centre, blended "
        "linearly across the overlaps (for spatially varying PSFs).",
        default=0,
        check=lambda v: v == 0 or v >= 128,
    )
    cellOverlap = pexConfig.Field[int](
        doc="Overlap (pixels) of neighbouring cells when cellSize > 0.", default=64, check=lambda v: v >= 0
    )

    def validate(self) -> None:
        super().validate()
        if self.cellSize and 2 * self.cellOverlap >= self.cellSize:
            _fail(self, "cellOverlap", f"cellOverlap ({self.cellOverlap}) must be < cellSize/2 ({self.cellSize}).")


class DecorrelationConfig(CellGridConfig):
    """The DMTN-021 decorrelation afterburner of Alard-Lupton differences (cells: decorrelation kernels)."""


class ZogyConfig(CellGridConfig):
    """ZOGY subtraction (Zackay, Ofek & Gal-Yam 2016)."""

    fluxScaleScience = pexConfig.Field[float](
        doc="F_n: flux-zero-point ratio of the science image (1 for images calibrated to nJy).",
        default=1.0,
        check=lambda v: v > 0,
    )
    fluxScaleTemplate = pexConfig.Field[float](
        doc="F_r: flux-zero-point ratio of the template (1 for images calibrated to nJy).",
        default=1.0,
        check=lambda v: v > 0,
    )
    kernelSideFactor = pexConfig.Field[int](
        doc="Side of the difference kernels k_n and k_r in units of the PSF stamp side (capped at the image or "
        "cell side). They ring far out where a PSF's Fourier transform has near-zeros; on the demo survey a "
        "side of 2 stamps left D with 1.9x the matched-filter noise its variance plane predicts around bright "
        "stars, 16 stamps 1.01x. The cost does not grow with it (the kernels are applied by full-image FFTs).",
        default=16,
        check=lambda v: v >= 2,
    )


class SubtractionConfig(pexConfig.Config):
    """PSF matching and subtraction (nested as ``config.subtraction``)."""

    algorithm = pexConfig.ChoiceField[str](
        doc="Subtraction algorithm.",
        default="al",
        allowed={
            "al": "Alard-Lupton PSF matching with a spatially varying kernel (ip_diffim default)",
            "zogy": "ZOGY proper image subtraction (score image S_corr for detection)",
        },
    )
    mode = pexConfig.ChoiceField[str](
        doc="Which image Alard-Lupton convolves (ZOGY is symmetric and ignores this).",
        default="convolveTemplate",
        allowed={
            "convolveTemplate": "convolve the template to the science PSF",
            "convolveScience": "convolve the science image to the template PSF",
            "auto": "convolve the image with the narrower PSF (at the image centre)",
        },
    )
    doDecorrelation = pexConfig.Field[bool](
        doc="Apply the DMTN-021 decorrelation afterburner to Alard-Lupton differences.", default=True
    )
    alardLupton = pexConfig.ConfigField(dtype=AlardLuptonConfig, doc="Alard-Lupton kernel fitting.")
    decorrelation = pexConfig.ConfigField(dtype=DecorrelationConfig, doc="Decorrelation afterburner.")
    zogy = pexConfig.ConfigField(dtype=ZogyConfig, doc="ZOGY.")
    fillMaskPlanes = pexConfig.ListField[str](
        doc="Pixels with these mask planes (and non-finite pixels) are set to 0 before any convolution so their "
        "values cannot ring through the FFTs; their bits are dilated by the kernel footprint.",
        default=["NO_DATA", "NO_TEMPLATE"],
        itemCheck=_is_mask_plane,
    )
    interpolateMaskPlanes = pexConfig.ListField[str](
        doc="Pixels with these mask planes are interpolated along their row before any convolution "
        "(lsst.dia.pipe.repair.interpolate_along_rows, for bad columns) and flagged INTERPOLATED; their bits are "
        "not dilated, so a source next to or on a bad column is still found where it is. Pixels farther than "
        "8 pixels from usable ones are treated as fillMaskPlanes pixels (0, flagged NO_DATA).",
        default=["BAD"],
        itemCheck=_is_mask_plane,
    )
    doSubtractBackground = pexConfig.Field[bool](
        doc="Fit a smooth background to science minus template over source-free pixels and subtract it from the "
        "science image before PSF matching (lsst.dia.pipe.diffim.background): ZOGY has no background term, and "
        "Alard-Lupton's joint background is constrained only on the kernel stamps.",
        default=True,
    )
    backgroundOrder = pexConfig.Field[int](
        doc="Total order of the Chebyshev polynomial of that differential background (2 includes the x*y term "
        "of a bilinear sky-subtraction residual).",
        default=2,
        check=lambda v: 0 <= v <= 6,
    )
    psfGridSize = pexConfig.Field[int](
        doc="The difference-image PSF is sampled on psfGridSize x psfGridSize nodes (GridPsf).",
        default=5,
        check=lambda v: v >= 1,
    )
    fftWorkers = pexConfig.Field[int](
        doc="Threads for scipy.fft and for the Alard-Lupton kernel stamps' normal equations (-1: all cores).",
        default=1, check=lambda v: v == -1 or v >= 1,
    )

    def validate(self) -> None:
        super().validate()
        both = set(self.fillMaskPlanes) & set(self.interpolateMaskPlanes)
        if both:
            _fail(self, "interpolateMaskPlanes", f"Mask planes {sorted(both)} are in both fillMaskPlanes and "
                  "interpolateMaskPlanes; a plane is either filled with 0 or interpolated.")
