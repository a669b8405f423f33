"""ImageDifferenceTask: template assembly, PSF matching, subtraction, DIASource detection and measurement.

The Gen3 equivalent of the original dia_pipe's ``imageDifference`` step (ip_diffim's GetTemplateTask +
AlardLuptonSubtractTask/ZogyTask + DetectAndMeasureTask) in one quantum per visit/detector.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import astropy.units as u
import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
import numpy as np
from astropy.table import Table

from ..detection import DetectionConfig, detect_sources
from ..diffim import SubtractionConfig, WarpConfig, assemble_template, subtract_images
from ..exposure import Exposure
from ..ids import pack_dia_source_id
from ..imaging.visit import make_difference_image, make_visit_image, template_info, visit_image_to_exposure
from ..measurement import (
    MeasurementConfig,
    RejectionSettings,
    measure_dia_sources,
    unreliable_sources,
    with_systematic_error,
)
from ..measurement.pixel_flags import PIXEL_FLAG_COLUMNS
from ..psf.conversion import grid_to_lsst_psf
from ..psf.models import GridPsf
from ..repair import CosmicRayConfig, repair_cosmic_rays
from .io import load_coadds

__all__ = ["ImageDifferenceConfig", "ImageDifferenceTask"]

_log = logging.getLogger(__name__)


class ImageDifferenceConnections(
    pipeBase.PipelineTaskConnections,
    dimensions=("instrument", "visit", "detector"),
    defaultTemplates={"coaddName": "deep"},
):
    exposure = cT.Input(
        doc="Calibrated science image.", name="calexp", storageClass="VisitImage",
        dimensions=("instrument", "visit", "detector"),
    )
    templates = cT.Input(
        doc="Template coadd patches (every tract) overlapping the detector.", name="{coaddName}Coadd_calexp",
        storageClass="CellCoadd", dimensions=("skymap", "tract", "patch", "band"), multiple=True,
        deferLoad=True,
    )
    difference = cT.Output(
        doc="Difference image.", name="deepDiff_differenceExp", storageClass="DifferenceImage",
        dimensions=("instrument", "visit", "detector"),
    )
    diaSources = cT.Output(
        doc="DIASources (SDM DiaSource columns).", name="deepDiff_diaSrc", storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )
    kernelSources = cT.Output(
        doc="Kernel-fit stamps and their quality.", name="deepDiff_kernelSrc", storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
    )
    matchedExp = cT.Output(
        doc="Warped, PSF-matched template.", name="deepDiff_matchedExp", storageClass="VisitImage",
        dimensions=("instrument", "visit", "detector"),
    )

    def __init__(self, *, config=None):
        super().__init__(config=config)
        if not config.doWriteMatchedExp:
            del self.matchedExp


class ImageDifferenceConfig(pipeBase.PipelineTaskConfig, pipelineConnections=ImageDifferenceConnections):
    """Configuration of `ImageDifferenceTask`."""

    doRepairCosmicRays = pexConfig.Field[bool](
        doc="Find and interpolate cosmic rays that single-frame processing missed on the science image before "
        "subtraction (lsst.dia.pipe.repair); the input calexp is not modified.",
        default=True,
    )
    repair = pexConfig.ConfigField(dtype=CosmicRayConfig, doc="Cosmic-ray finding (doRepairCosmicRays).")
    warp = pexConfig.ConfigField(dtype=WarpConfig, doc="Template warping and assembly.")
    subtraction = pexConfig.ConfigField(
        dtype=SubtractionConfig, doc="PSF matching and subtraction (subtraction.algorithm: 'al' or 'zogy')."
    )
    detection = pexConfig.ConfigField(dtype=DetectionConfig, doc="Detection on the difference image.")
    measurement = pexConfig.ConfigField(dtype=MeasurementConfig, doc="DIASource measurement.")
    doWriteMatchedExp = pexConfig.Field[bool](
        doc="Write the warped, PSF-matched template (deepDiff_matchedExp).", default=False,
    )
    badSourceFlags = pexConfig.ListField[str](
        doc="DIASources with any of these flags are removed before the catalog is written (ip_diffim's "
        "DetectAndMeasureTask.badSourceFlags): nothing can be measured off the image, where the difference is "
        "undefined, on a saturated core, or on pixels the cosmic-ray repair replaced (on the demo survey half of "
        "the remaining cosmic-ray-like artifacts: star cores the repair took for cosmic rays; 0.1% of the "
        "detections of injected sources with AL, 0.9% with ZOGY, whose masks are dilated).",
        default=["pixelFlags_offimage", "pixelFlags_nodataCenter", "pixelFlags_saturatedCenter",
                 "pixelFlags_crCenter"],
        itemCheck=lambda name: name in PIXEL_FLAG_COLUMNS,
    )
    doRemovePoorPsfFits = pexConfig.Field[bool](
        doc="Remove DIASources whose PSF fit on the difference is worse than noise and model errors allow "
        "(lsst.dia.pipe.measurement.poor_psf_fit): rings around bright stars, sharp cosmic rays, mask edges.",
        default=True,
    )
    maxPsfReducedChi2 = pexConfig.Field[float](
        doc="doRemovePoorPsfFits: largest psfChi2/psfNdata of a faint DIASource (1 = perfect fit on average; "
        "injected sources on the demo survey: median 1.01, 99th percentile 2.5-4.9).",
        default=3.0,
        check=lambda v: v > 1.0,
    )
    psfModelErrorFraction = pexConfig.Field[float](
        doc="doRemovePoorPsfFits: fractional difference-PSF model error allowed for bright DIASources (their "
        "psfChi2 may exceed the limit by (fraction x S/N)^2).",
        default=0.05,
        check=lambda v: 0.0 <= v < 1.0,
    )
    doRemoveBrightStarRings = pexConfig.Field[bool](
        doc="Remove DIASources in rings around bright template stars (lsst.dia.pipe.measurement.bright_stars): "
        "residuals where the PSF models end and the stars' light does not.",
        default=True,
    )
    brightStarMinSnr = pexConfig.Field[float](
        doc="doRemoveBrightStarRings: template stars whose PSF flux exceeds this many difference-image PSF-flux "
        "errors have rings (demo survey: ring artifacts around stars down to 390).",
        default=300.0,
        check=lambda v: v > 0,
    )
    brightStarMaxFitResidual = pexConfig.Field[float](
        doc="doRemoveBrightStarRings: a template peak is a star if its PSF fit leaves an rms residual below this "
        "fraction of its flux signal (galaxy cores, which host supernovae, leave more).",
        default=0.1,
        check=lambda v: v > 0,
    )
    brightStarRingRadii = pexConfig.ListField[float](
        doc="doRemoveBrightStarRings: inner and outer ring radii [science PSF FWHM]; inside the inner radius a "
        "DIASource is the star itself (a variable) and is kept (demo survey: variables' DIASources lie within "
        "0.5 FWHM of their star, ring artifacts 1.0-3.5 FWHM out).",
        default=[1.0, 3.5],
        length=2,
    )
    doIncludeSystematicErrors = pexConfig.Field[bool](
        doc="Add the subtraction's systematic error (measured flux fraction x templateFlux) in quadrature to "
        "psfFluxErr (the statistical error alone is then lost; snr keeps the detection significance).",
        default=True,
    )
    ignoreCcdList = pexConfig.ListField[int](doc="Detectors to skip (Gen2 ignoreCcdList).", default=[])
    psfGridSize = pexConfig.Field[int](
        doc="PSF models are sampled on psfGridSize x psfGridSize nodes per image.", default=5,
        check=lambda v: v >= 1,
    )


class ImageDifferenceTask(pipeBase.PipelineTask):
    """Subtract the warped, PSF-matched template from a calexp and detect and measure DIASources."""

    ConfigClass = ImageDifferenceConfig
    _DefaultName = "imageDifference"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        data_id = butlerQC.quantum.dataId
        visit, detector = int(data_id["visit"]), int(data_id["detector"])
        if detector in self.config.ignoreCcdList:
            raise pipeBase.NoWorkFound(f"Detector {detector} is in ignoreCcdList.")
        inputs = butlerQC.get(inputRefs)
        calexp = inputs["exposure"]
        science = visit_image_to_exposure(calexp, psf_grid=self.config.psfGridSize)
        coadds = load_coadds(inputs["templates"], self.config.psfGridSize)
        result = self.run(science, [exposure for _, exposure in coadds], visit=visit, detector=detector)
        provenance = [
            template_info(skymap=str(handle.dataId["skymap"]), tract=handle.dataId["tract"],
                          patch=handle.dataId["patch"], dataset_id=handle.ref.id, dataset_run=handle.ref.run,
                          template=exposure, science=science, instrument=str(data_id["instrument"]))
            for handle, exposure in coadds
        ]
        templates = [info for info in provenance if info is not None]
        scale = science.pixel_scale_arcsec
        difference_psf = grid_to_lsst_psf(_as_grid(result.difference.psf, science.shape), calexp.bbox, scale)
        outputs = pipeBase.Struct(
            difference=make_difference_image(result.difference, calexp, psf=difference_psf,
                                             templates=templates, metadata=_fits_metadata(result.metadata)),
            diaSources=result.diaSources,
            kernelSources=result.kernelSources,
        )
        if self.config.doWriteMatchedExp:
            matched = result.matchedTemplate
            outputs.matchedExp = make_visit_image(
                matched.image, matched.variance, matched.mask, wcs=science.wcs,
                psf=grid_to_lsst_psf(_as_grid(matched.psf, science.shape), calexp.bbox, scale),
                detector=calexp.detector, band=calexp.band, physical_filter=calexp.obs_info.physical_filter,
                nJy_per_count=1.0, image_unit=u.nJy,
            )
        butlerQC.put(outputs, outputRefs)

    def _rejection_settings(self) -> RejectionSettings:
        c = self.config
        return RejectionSettings(
            bad_flags=tuple(c.badSourceFlags),
            max_reduced_chi2=c.maxPsfReducedChi2 if c.doRemovePoorPsfFits else None,
            model_error_fraction=c.psfModelErrorFraction,
            bright_star_min_snr=c.brightStarMinSnr if c.doRemoveBrightStarRings else None,
            bright_star_max_fit_residual=c.brightStarMaxFitResidual,
            ring_radii_fwhm=(c.brightStarRingRadii[0], c.brightStarRingRadii[1]),
        )

    def run(self, science: Exposure, template_patches: list[Exposure], visit: int, detector: int) -> pipeBase.Struct:
        """Difference one science image against the template patches and measure DIASources.

        Parameters
        ----------
        science : `~lsst.dia.pipe.exposure.Exposure`
            Calibrated science image [nJy].
        template_patches : `list` [`~lsst.dia.pipe.exposure.Exposure`]
            Template coadd patches overlapping the detector, any tracts [nJy].
        visit, detector : `int`
            Data ID (packed into ``diaSourceId``).

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``difference`` and ``matchedTemplate`` (`Exposure`), ``diaSources`` and ``kernelSources``
            (`astropy.table.Table`), ``metadata`` (`dict` of per-CCD quality numbers).

        Raises
        ------
        lsst.dia.pipe.diffim.NoTemplateCoverageError
            If the templates cover too little of the detector.
        lsst.dia.pipe.diffim.InsufficientKernelSourcesError
            If too few kernel candidates are found for PSF matching.
        """
        timings = {}
        start = time.perf_counter()
        if not template_patches:
            from ..diffim import NoTemplateCoverageError

            raise NoTemplateCoverageError(0.0, self.config.warp.minCoverage)
        template = assemble_template(template_patches, science.wcs, science.shape, self.config.warp)
        timings["templateSeconds"] = time.perf_counter() - start
        n_cosmic_ray_pixels = 0
        if self.config.doRepairCosmicRays:
            t0 = time.perf_counter()
            science = dataclasses.replace(science, image=science.image.copy(), mask=science.mask.copy())
            n_cosmic_ray_pixels = repair_cosmic_rays(science, self.config.repair)
            timings["repairSeconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        subtraction = subtract_images(science, template.exposure, self.config.subtraction)
        timings["subtractionSeconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        detections = detect_sources(subtraction.difference, self.config.detection, score=subtraction.score,
                                    model=subtraction.matched_template.image)
        subtraction.difference.mask = detections.mask
        timings["detectionSeconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        sources = measure_dia_sources(subtraction.difference, science, subtraction.matched_template, detections,
                                      self.config.measurement)
        timings["measurementSeconds"] = time.perf_counter() - t0
        bad, removed = unreliable_sources(sources, template.exposure, subtraction.difference, science.psf_fwhm,
                                          detections.systematics.flux_fraction, self._rejection_settings(),
                                          self.config.measurement.psfFlux)
        sources = sources[~bad]
        if self.config.doIncludeSystematicErrors and len(sources):
            sources["psfFluxErr"] = with_systematic_error(sources["psfFluxErr"], sources["templateFlux"],
                                                          detections.systematics.flux_fraction)
        n = len(sources)
        sources["diaSourceId"] = pack_dia_source_id(visit, detector, np.arange(n, dtype=np.int64))
        sources["visit"] = np.full(n, visit, dtype=np.int64)
        sources["detector"] = np.full(n, detector, dtype=np.int16)
        sources["band"] = np.full(n, science.band or "", dtype="U8")
        sources["midpointMjdTai"] = np.full(n, np.nan if science.mjd is None else science.mjd)
        metadata = {
            **{k: v for k, v in subtraction.metadata.items() if isinstance(v, (int, float, str, bool))},
            "templateCoverage": float(template.coverage_fraction),
            "nTemplatePatches": len(template_patches),
            "nDiaSources": n,
            "nBadFlagSourcesRemoved": removed["badFlags"],
            "nPoorPsfFitSourcesRemoved": removed["poorPsfFit"],
            "nBrightStarRingSourcesRemoved": removed["brightStarRing"],
            "nCosmicRayPixelsRepaired": n_cosmic_ray_pixels,
            "systematicFluxFraction": detections.systematics.flux_fraction,
            "registrationSigmaArcsec": detections.systematics.registration_sigma,
            "nSystematicsSources": detections.systematics.n_sources,
            "nDipoles": int(np.count_nonzero(sources["isDipole"])) if "isDipole" in sources.colnames else 0,
            **timings,
        }
        for key, value in metadata.items():
            self.metadata[key] = value
        _log.info("visit %d detector %d: %d DIASources, coverage %.2f, %s", visit, detector, n,
                  template.coverage_fraction,
                  ", ".join(f"{k}={v:.3g}" for k, v in metadata.items() if isinstance(v, float)))
        return pipeBase.Struct(
            difference=subtraction.difference,
            matchedTemplate=subtraction.matched_template,
            diaSources=sources,
            kernelSources=subtraction.kernel_sources if subtraction.kernel_sources is not None else Table(),
            metadata=metadata,
        )


def _as_grid(psf, shape: tuple[int, int]) -> GridPsf:
    """The difference/matched PSF as a `GridPsf` (sampled on a 5x5 grid if it is another model)."""
    if isinstance(psf, GridPsf):
        return psf
    ny, nx = shape
    return GridPsf.from_function(psf.kernel_image, (0, nx - 1), (0, ny - 1), 5, 5)


def _fits_metadata(metadata: dict) -> dict:
    """Per-CCD quality numbers as FITS-header-safe metadata of the difference image."""
    return {k[:60]: v for k, v in metadata.items() if isinstance(v, (int, float, str, bool))}

