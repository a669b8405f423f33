"""Ingest survey images into a dia_pipe repository: science images as ``calexp``, templates as
``deepCoadd_calexp`` patches of a local sky map, in RUN collections appended to the default input chain.

Order of work, so that nothing is half-written:

1. every file is read and checked, and its in-memory products are built (metadata, WCS, mask, variance,
   sky subtraction, zero point, PSF; template coadds; calexps); a file that fails any check is reported
   and dropped, the others go on;
2. dimension records are registered (instrument, detectors, filters, visits, sky map tracts and patches);
3. datasets are written, each science file's calexps in one butler transaction and each band's template
   patches in another: a failure rolls back everything that file (or band) wrote.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import lsst.images as li
import numpy as np
from lsst.daf.butler import Butler, DatasetNotFoundError

from ..imaging.camera import DetectorLayout
from ..imaging.visit import array_wcs, visit_image_to_exposure
from ..repo.create import add_to_input_chain, create_repo, register_dataset_types
from ..repo.collections import DEFAULT_INPUT_COLLECTION
from ..repo.dimensions import VisitDefinition, register_instrument, register_skymap, register_visits
from ..skymap import RingsSkyMap
from ..skymap.storage import skymap_from_dict, skymap_to_dict
from .calibration import psf_corrected_fluxes, relative_calibration, stars_radec
from .errors import IngestError, NoTemplateOverlapError
from .fits_input import InputSpec, PlaneNaming, is_lsst_visit_image, read_raw_images, resolve_planes
from .metadata import DECAM_CCD_IDS
from .options import IngestOptions
from .prepare import PreparedImage, prepare_image, psfex_candidates
from .products import build_calexp, build_coadd, detector_layout, template_from_prepared
from .psf_estimation import stamp_fwhm
from .stars import find_psf_stars
from .templates import TemplateImage, coadd_patch, image_corners, make_local_skymap, template_patches
from .wcs import pixel_scale_arcsec

__all__ = ["ImageRecord", "FileResult", "CoaddRecord", "IngestReport", "ingest_images"]

_log = logging.getLogger(__name__)

#: Size of a full DECam CCD, registered for the CCDs an ingest does not see.
_DECAM_CCD_SHAPE = (4096, 2048)


@dataclasses.dataclass(frozen=True)
class ImageRecord:
    """What was measured and stored for one detector image.

    Attributes
    ----------
    source : `str`
        ``file[EXTNAME]``.
    instrument : `str`
    visit, detector : `int`
    band : `str`
    zeropoint : `float`
        Magnitude zero point (31.4 for images already in nJy).
    zeropoint_source : `str`
    psf_source : `str`
    psf_fwhm_px : `float`
        Gaussian-equivalent FWHM at the image centre [pixels].
    wcs_projection : `str`
        Header projection (``TPV``: fitted as TAN-SIP).
    wcs_residual_px : `float`
        Largest TPV -> SIP residual [pixels].
    """

    source: str
    instrument: str
    visit: int
    detector: int
    band: str
    zeropoint: float
    zeropoint_source: str
    psf_source: str
    psf_fwhm_px: float
    wcs_projection: str
    wcs_residual_px: float


@dataclasses.dataclass
class FileResult:
    """Outcome of one input file.

    Attributes
    ----------
    path : `str`
    role : `str`
        ``science`` or ``template``.
    error : `str` or `None`
        One-line reason when the file failed.
    images : `list` [`ImageRecord`]
        Its detector images.
    """

    path: str
    role: str
    error: str | None = None
    images: list[ImageRecord] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if the file was ingested."""
        return self.error is None

    def fail(self, err: Exception | str) -> None:
        """Record the first failure of the file (as one line that names the file)."""
        if self.error is None:
            text = " ".join(str(err).split())
            self.error = text if text.startswith(self.path) else f"{self.path}: {text}"


@dataclasses.dataclass(frozen=True)
class CoaddRecord:
    """One stored template patch.

    Attributes
    ----------
    tract, patch : `int`
    band : `str`
    inputs : `tuple` [`str`, ...]
        Template images it combines.
    covered_fraction : `float`
        Fraction of the patch's outer box with data.
    psf_fwhm_px : `float`
        Coadd PSF FWHM at the centre of the covered area [pixels].
    """

    tract: int
    patch: int
    band: str
    inputs: tuple[str, ...]
    covered_fraction: float
    psf_fwhm_px: float


@dataclasses.dataclass
class IngestReport:
    """What an ingest did.

    Attributes
    ----------
    repo : `str`
        Repository root.
    runs : `dict` [`str`, `str`]
        RUN collections written (``calexp``, ``templates``, ``skymap``), appended to the input chain.
    skymap : `str` or `None`
        Sky map name of the templates.
    files : `list` [`FileResult`]
        One per input file, science first.
    coadds : `list` [`CoaddRecord`]
        Template patches stored.
    """

    repo: str
    runs: dict[str, str] = dataclasses.field(default_factory=dict)
    skymap: str | None = None
    files: list[FileResult] = dataclasses.field(default_factory=list)
    coadds: list[CoaddRecord] = dataclasses.field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        """Files that were not ingested."""
        return [f for f in self.files if not f.ok]

    @property
    def n_failed(self) -> int:
        """Number of files that were not ingested."""
        return len(self.failed)

    def lines(self) -> list[str]:
        """A human-readable summary: one line per file and per template patch."""
        out = []
        for f in self.files:
            if not f.ok:
                out.append(f"FAILED {f.role}: {f.error}")
                continue
            for r in f.images:
                out.append(
                    f"ok     {f.role}: {r.source} -> {r.instrument} visit {r.visit} detector {r.detector} "
                    f"band {r.band}; zp {r.zeropoint:.3f} ({r.zeropoint_source}); PSF {r.psf_source} "
                    f"FWHM {r.psf_fwhm_px:.2f} px; WCS {r.wcs_projection}"
                    + (f" (SIP fit {r.wcs_residual_px:.1e} px)" if r.wcs_projection == "TPV" else "")
                )
        for c in self.coadds:
            out.append(f"ok     deepCoadd_calexp {self.skymap} tract {c.tract} patch {c.patch} band {c.band}: "
                       f"{len(c.inputs)} input(s), {100 * c.covered_fraction:.0f}% covered, "
                       f"PSF FWHM {c.psf_fwhm_px:.2f} px")
        out.append(f"{len(self.files) - self.n_failed} of {len(self.files)} files ingested into {self.repo}"
                   + (f" (runs: {', '.join(self.runs.values())})" if self.runs else ""))
        return out


@dataclasses.dataclass
class _ScienceItem:
    """A science detector ready to store."""

    file: FileResult
    visit_image: li.VisitImage
    instrument: str
    visit: int
    detector: int
    detector_name: str
    physical_filter: str
    band: str
    mjd: float
    exposure_time: float
    corners: tuple[np.ndarray, np.ndarray]
    target: str
    layout: DetectorLayout


def _as_spec(item: str | Path | InputSpec) -> InputSpec:
    if isinstance(item, InputSpec):
        return item
    return InputSpec.parse(str(item)) if isinstance(item, str) else InputSpec(Path(item))


def _record(prepared: PreparedImage) -> ImageRecord:
    m = prepared.meta
    return ImageRecord(prepared.source, m.instrument, m.visit, m.detector_id, m.band, float(prepared.zeropoint),
                       prepared.zeropoint_source, prepared.psf_source, prepared.psf_fwhm, prepared.wcs.projection,
                       prepared.wcs.max_residual_px)


def _visit_image_item(path: Path, file: FileResult) -> _ScienceItem:
    """Registration facts of an lsst-images VisitImage ingested as it is."""
    vi = li.VisitImage.read(path)
    obs = vi.obs_info
    det = vi.detector
    visit = det.visit if det.visit is not None else getattr(obs, "visit_id", None)
    if visit is None or obs is None or obs.physical_filter is None or obs.datetime_begin is None:
        raise IngestError(f"{path}: VisitImage lacks a visit id, physical filter or exposure times.")
    begin, end = obs.datetime_begin.tai.mjd, obs.datetime_end.tai.mjd
    wcs = array_wcs(vi)
    shape = (vi.bbox.y.size, vi.bbox.x.size)
    return _ScienceItem(file, vi, det.instrument, int(visit), int(det.id), det.name, obs.physical_filter, vi.band,
                        0.5 * (begin + end), (end - begin) * 86400.0, image_corners(wcs, shape),
                        str(getattr(obs, "object", None) or "field"),
                        DetectorLayout(int(det.id), det.name, shape[1], shape[0], 0.0, 0.0))


def _visit_image_template(path: Path) -> TemplateImage:
    """A calibrated template from an lsst-images VisitImage."""
    exposure = visit_image_to_exposure(li.VisitImage.read(path))
    return TemplateImage(str(path), exposure.band, exposure.image, exposure.variance, exposure.mask, exposure.wcs,
                         exposure.psf)


def _prepare(raw, options: IngestOptions, candidates: list[Path]) -> PreparedImage:
    """`prepare_image`, with the detector named in the error message."""
    try:
        return prepare_image(raw, options, candidates)
    except (IngestError, ValueError) as err:
        text = str(err)
        if text.startswith(raw.source):
            raise
        raise IngestError(f"{raw.source}: {text}") from err


def _calibration_stars(image: np.ndarray, variance: np.ndarray, mask: np.ndarray, wcs, psf, fwhm: float,
                       snr: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSF-corrected aperture fluxes (image units) and sky positions of isolated stars."""
    radius = 1.5 * fwhm  # aperture radius; stars need only this much clean room (not a whole PSF stamp)
    stars = find_psf_stars(image, variance, mask, stamp_half=int(np.ceil(radius)) + 2, fwhm_guess=fwhm,
                           star_snr=snr)
    if len(stars) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    flux = psf_corrected_fluxes(image, stars, psf, radius=radius)
    ra, dec = stars_radec(stars, wcs)
    return flux, ra, dec


def _calibrate_pending(pending: list[tuple[FileResult, PreparedImage]], references: list[TemplateImage],
                       options: IngestOptions) -> None:
    """Give each image without a zero point the calibration of the calibrated same-band templates."""
    ref_stars: dict[str, list] = defaultdict(list)
    for t in references:
        fwhm = stamp_fwhm(t.psf.kernel_image((t.image.shape[1] - 1) / 2, (t.image.shape[0] - 1) / 2))
        ref_stars[t.band].append((t.name, _calibration_stars(t.image, t.variance, t.mask, t.wcs, t.psf, fwhm,
                                                             options.psf_star_snr)))
    for file, p in pending:
        if not file.ok:
            continue
        refs = [stars for name, stars in ref_stars.get(p.meta.band, []) if name != p.source]
        if not refs:
            file.fail(NoTemplateOverlapError(p.source, p.meta.band))
            continue
        flux, ra, dec = _calibration_stars(p.image, p.variance, p.mask, p.wcs.wcs, p.psf, p.psf_fwhm,
                                           options.psf_star_snr)
        cal = relative_calibration(flux, ra, dec, refs, min_matches=options.min_calibration_stars)
        if cal is None:
            file.fail(NoTemplateOverlapError(p.source, p.meta.band, n_matched=0 if len(flux) == 0 else
                                             _count_matches(flux, ra, dec, refs),
                                             n_required=options.min_calibration_stars))
            continue
        p.zeropoint = cal.zeropoint
        p.zeropoint_source = f"template stars ({cal.n_matched}, scatter {cal.scatter_mag:.3f} mag)"


def _count_matches(flux, ra, dec, refs) -> int:
    cal = relative_calibration(flux, ra, dec, refs, min_matches=1)
    return 0 if cal is None else cal.n_matched


def _open_repo(repo: Path) -> Butler:
    if (repo / "butler.yaml").exists():
        butler = Butler.from_config(str(repo), writeable=True)
        register_dataset_types(butler)
        return butler
    return create_repo(repo)


def _existing_skymap(butler: Butler, name: str) -> RingsSkyMap | None:
    try:
        content = butler.get("skyMap", skymap=name, collections=[DEFAULT_INPUT_COLLECTION])
    except (DatasetNotFoundError, LookupError):
        return None
    return skymap_from_dict(content)


def _detector_layouts(butler: Butler, instrument: str, new: list[DetectorLayout]) -> list[DetectorLayout]:
    """Layouts to register: the new detectors plus those already in the registry (and, for DECam, all
    62 CCDs), so that the instrument's ``detector_max`` stays the same from one ingest to the next."""
    layouts = {d.id: d for d in new}
    if instrument.upper() == "DECAM":
        for name, ccd in DECAM_CCD_IDS.items():
            layouts.setdefault(ccd, DetectorLayout(ccd, name, _DECAM_CCD_SHAPE[1], _DECAM_CCD_SHAPE[0], 0.0, 0.0))
    if _has_instrument(butler, instrument):
        for record in butler.registry.queryDimensionRecords("detector", instrument=instrument):
            layouts.setdefault(int(record.id), DetectorLayout(int(record.id), str(record.full_name), 1, 1, 0.0, 0.0))
    return [layouts[k] for k in sorted(layouts)]


def _has_instrument(butler: Butler, instrument: str) -> bool:
    return any(r.name == instrument for r in butler.registry.queryDimensionRecords("instrument"))


def _register_science(butler: Butler, items: list[_ScienceItem]) -> None:
    """Register instruments, detectors, filters and visits; items whose registration fails fail their file."""
    by_instrument: dict[str, list[_ScienceItem]] = defaultdict(list)
    for item in items:
        by_instrument[item.instrument].append(item)
    for instrument, group in by_instrument.items():
        try:
            register_instrument(butler, instrument, _detector_layouts(butler, instrument, [i.layout for i in group]),
                                {i.physical_filter: i.band for i in group})
        except Exception as err:  # registry conflicts: the instrument's files cannot be ingested
            for i in group:
                i.file.fail(f"cannot register instrument {instrument}: {err}")
            continue
        by_visit: dict[int, list[_ScienceItem]] = defaultdict(list)
        for i in group:
            by_visit[i.visit].append(i)
        for visit, members in by_visit.items():
            first = members[0]
            definition = VisitDefinition(visit, first.physical_filter, first.mjd, first.exposure_time,
                                         {i.detector: i.corners for i in members}, target_name=first.target)
            try:
                register_visits(butler, instrument, [definition])
            except Exception as err:
                for i in members:
                    i.file.fail(f"cannot register visit {visit} (already registered with other detectors? "
                                f"ingest all CCDs of a visit together): {err}")


def _put_science(butler: Butler, items: list[_ScienceItem], run: str) -> bool:
    """Store calexps, one transaction per file. Returns True if anything was written."""
    by_file: dict[int, list[_ScienceItem]] = defaultdict(list)
    for item in items:
        by_file[id(item.file)].append(item)
    wrote = False
    for group in by_file.values():
        file = group[0].file
        if not file.ok:
            continue
        try:
            with butler.transaction():
                for i in group:
                    butler.put(i.visit_image, "calexp", instrument=i.instrument, visit=i.visit, detector=i.detector,
                               run=run)
            wrote = True
        except Exception as err:  # the transaction removed what this file wrote
            file.fail(f"could not store calexp: {err}")
    return wrote


def _unique_ids(items: list[_ScienceItem]) -> None:
    """Fail the later of two science detectors with the same data ID."""
    seen: dict[tuple[str, int, int], str] = {}
    for i in items:
        key = (i.instrument, i.visit, i.detector)
        if key in seen and i.file.ok:
            i.file.fail(f"duplicate data ID instrument={key[0]} visit={key[1]} detector={key[2]} "
                        f"(also in {seen[key]})")
        seen.setdefault(key, i.file.path)


def ingest_images(
    repo: str | Path,
    science_files: Sequence[str | Path | InputSpec],
    template_files: Sequence[str | Path | InputSpec],
    options: IngestOptions | None = None,
) -> IngestReport:
    """Ingest science images (as ``calexp``) and template images (as ``deepCoadd_calexp`` patches).

    Parameters
    ----------
    repo : `str` or `pathlib.Path`
        Repository root; created (from ``policy/``) if it does not exist.
    science_files, template_files : sequence of `str`, `pathlib.Path` or `InputSpec`
        Inputs; strings may carry per-file options, ``IMAGE[,weight=F][,variance=F][,mask=F][,psf=F][,zp=M]``.
        lsst-images ``VisitImage`` files are ingested as they are.
    options : `IngestOptions`, optional
        Ingest options.

    Returns
    -------
    report : `IngestReport`
        Per-file results; ``report.n_failed`` files were not ingested (the others were).
    """
    options = options or IngestOptions()
    repo = Path(repo)
    report = IngestReport(repo=str(repo))
    naming = PlaneNaming(options.weight_suffix, options.variance_suffix, options.mask_suffix,
                         options.community_pipeline_names)
    candidates = psfex_candidates(options)

    # 1. read, check and prepare every file (nothing written yet)
    science: list[tuple[FileResult, list[PreparedImage]]] = []
    passthrough: list[_ScienceItem] = []
    templates: list[tuple[FileResult, list[PreparedImage]]] = []
    ready_templates: list[tuple[FileResult, TemplateImage]] = []
    for role, inputs in (("science", science_files), ("template", template_files)):
        for entry in inputs:
            try:
                spec = _as_spec(entry)
            except ValueError as err:
                file = FileResult(str(entry), role)
                file.fail(err)
                report.files.append(file)
                continue
            file = FileResult(spec.name, role)
            report.files.append(file)
            try:
                if is_lsst_visit_image(spec.image):
                    if role == "science":
                        passthrough.append(_visit_image_item(spec.image, file))
                    else:
                        ready_templates.append((file, _visit_image_template(spec.image)))
                    continue
                prepared = [_prepare(raw, options, candidates) for raw in read_raw_images(resolve_planes(spec, naming))]
            except (IngestError, ValueError, OSError) as err:
                file.fail(err)
                continue
            (science if role == "science" else templates).append((file, prepared))

    # relative calibration of images without a zero point, against calibrated templates
    calibrated_templates = [(f, template_from_prepared(p)) for f, ps in templates if f.ok for p in ps
                            if p.zeropoint is not None] + ready_templates
    pending = [(f, p) for f, ps in science + templates for p in ps if p.zeropoint is None]
    if pending:
        _calibrate_pending(pending, [t for _, t in calibrated_templates], options)
        calibrated_templates += [(f, template_from_prepared(p)) for f, p in pending
                                 if f.ok and f.role == "template"]
    for f, ps in science + templates:
        if f.ok:
            f.images = [_record(p) for p in ps]

    # 2. in-memory products: template coadds per band, calexps
    butler = _open_repo(repo)
    coadds_by_band: dict[str, list] = defaultdict(list)
    skymap = None
    usable_templates = [(f, t) for f, t in calibrated_templates if f.ok]
    if usable_templates:
        skymap = _existing_skymap(butler, options.skymap_name)
        if skymap is None:
            scale = options.pixel_scale or float(np.median([pixel_scale_arcsec(t.wcs, t.image.shape)
                                                            for _, t in usable_templates]))
            skymap = make_local_skymap(options.skymap_name, round(scale, 4), options.patch_size, options.patch_border,
                                       options.num_rings)
        report.skymap = skymap.name
        images = [t for _, t in usable_templates]
        owners = [f for f, _ in usable_templates]
        for (tract_id, patch_id, band), indices in sorted(template_patches(skymap, images).items()):
            tract = skymap.tract(tract_id)
            patch = tract.patch(patch_id)
            try:
                coadd = coadd_patch(tract, patch, band, [images[i] for i in indices], options.psf_grid)
                if coadd is None:
                    continue
                cell_coadd = build_coadd(coadd, skymap.name, options.cell_size)
            except (IngestError, ValueError) as err:
                for i in indices:
                    owners[i].fail(f"template patch tract {tract_id} patch {patch_id}: {err}")
                continue
            coadds_by_band[band].append((coadd, cell_coadd, {owners[i].path: owners[i] for i in indices}))
    items: list[_ScienceItem] = list(passthrough)
    for file, prepared in science:
        if not file.ok:
            continue
        try:
            for p in prepared:
                m = p.meta
                items.append(_ScienceItem(file, build_calexp(p), m.instrument, m.visit, m.detector_id,
                                          m.detector_name, m.physical_filter, m.band, m.mjd, m.exposure_time,
                                          image_corners(p.wcs.wcs, p.image.shape), m.target,
                                          detector_layout(p)))
        except (IngestError, ValueError) as err:
            file.fail(err)
    for item in passthrough:
        item.file.images = [ImageRecord(item.file.path, item.instrument, item.visit, item.detector, item.band, 31.4,
                                        "VisitImage (nJy)", type(item.visit_image.psf).__name__, float("nan"),
                                        "VisitImage", 0.0)]
    _unique_ids(items)

    # 3. registration, then writes
    run = options.run or "ingest/" + datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")
    _register_science(butler, [i for i in items if i.file.ok])
    if any(i.file.ok for i in items):
        report.runs["calexp"] = f"{run}/calexp"
        butler.registry.registerRun(report.runs["calexp"])
        if _put_science(butler, [i for i in items if i.file.ok], report.runs["calexp"]):
            add_to_input_chain(butler, report.runs["calexp"])
    if any(coadds_by_band.values()):
        tract_patches: dict[int, set[int]] = defaultdict(set)
        for entries in coadds_by_band.values():
            for coadd, _, _ in entries:
                tract_patches[coadd.tract.id].add(coadd.patch.id)
        register_skymap(butler, skymap, {t: sorted(p) for t, p in tract_patches.items()})
        if _existing_skymap(butler, skymap.name) is None:
            report.runs["skymap"] = f"{run}/skymap"
            butler.registry.registerRun(report.runs["skymap"])
            butler.put(skymap_to_dict(skymap), "skyMap", skymap=skymap.name, run=report.runs["skymap"])
            add_to_input_chain(butler, report.runs["skymap"])
        report.runs["templates"] = f"{run}/templates"
        butler.registry.registerRun(report.runs["templates"])
        wrote = False
        for band, entries in sorted(coadds_by_band.items()):
            owners = {path: f for _, _, o in entries for path, f in o.items()}
            if not all(f.ok for f in owners.values()):
                for f in owners.values():
                    f.fail(f"template band {band} not stored: another template of the band failed")
                continue
            try:
                with butler.transaction():
                    for coadd, cell_coadd, _ in entries:
                        butler.put(cell_coadd, "deepCoadd_calexp", skymap=skymap.name, tract=coadd.tract.id,
                                   patch=coadd.patch.id, band=band, run=report.runs["templates"])
            except Exception as err:  # the transaction removed this band's patches
                for f in owners.values():
                    f.fail(f"could not store {band}-band template patches: {err}")
                continue
            wrote = True
            for coadd, _, _ in entries:
                report.coadds.append(CoaddRecord(coadd.tract.id, coadd.patch.id, band, coadd.inputs,
                                                 float(np.mean(np.isfinite(coadd.variance))),
                                                 _centre_fwhm(coadd)))
        if wrote:
            add_to_input_chain(butler, report.runs["templates"])
    for line in report.lines():
        (_log.warning if line.startswith("FAILED") else _log.info)(line)
    return report


def _centre_fwhm(coadd) -> float:
    xs, ys = coadd.psf.x_nodes, coadd.psf.y_nodes
    return stamp_fwhm(coadd.psf.kernel_image(float(np.mean(xs)), float(np.mean(ys))))
