"""Turn the planes of one detector into a prepared image: metadata, WCS, mask, sky-subtracted pixels,
variance, zero point and PSF, all checked before anything is written."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..masks import MaskBit
from ..psf import GridPsf
from ..psf.psfex import PsfexFormatError, psfex_to_grid, read_psfex
from .background import estimate_background
from .calibration import njy_per_count
from .dq import dq_to_mask, guess_dq_convention
from .errors import IngestError, MissingZeroPointError
from .fits_input import RawImage
from .metadata import ObservationMetadata, read_observation_metadata
from .options import IngestOptions
from .psf_estimation import estimate_psf, stamp_fwhm
from .stars import STAR_REJECT_BITS
from .wcs import WcsSolution, pixel_scale_arcsec, read_celestial_wcs

__all__ = ["PreparedImage", "prepare_image", "psfex_candidates", "find_psfex_file"]

_PSFEX_ENDINGS = ("psfex.fits", "psfex.fits.gz", ".psf", ".psf.fits")


@dataclasses.dataclass
class PreparedImage:
    """One detector image, checked and ready to calibrate and store.

    Attributes
    ----------
    source : `str`
        ``file[EXTNAME]``.
    file : `pathlib.Path`
        The image file.
    meta : `~lsst.dia.pipe.ingest.metadata.ObservationMetadata`
        Instrument, visit, detector, filter, time.
    wcs : `~lsst.dia.pipe.ingest.wcs.WcsSolution`
        TAN or TAN-SIP WCS (array pixels).
    pixel_scale : `float`
        Pixel scale at the image centre [arcsec].
    image : `numpy.ndarray`
        Sky-subtracted pixels [counts].
    variance : `numpy.ndarray`
        Variance [counts²], NaN where unknown.
    mask : `numpy.ndarray`
        uint32 `~lsst.dia.pipe.masks.MaskBit` mask.
    background_level : `float`
        Median subtracted sky [counts].
    psf : `~lsst.dia.pipe.psf.GridPsf`
        PSF in array pixels.
    psf_source : `str`
        ``"psfex:<file>"`` or ``"stars:<n>"``.
    psf_fwhm : `float`
        Gaussian-equivalent FWHM at the image centre [pixels].
    zeropoint : `float` or `None`
        Magnitude zero point; `None` while waiting for a relative calibration.
    zeropoint_source : `str`
        Where it came from (``header MAGZERO``, ``option``, ``input spec``, ``template stars (n)``).
    """

    source: str
    file: Path
    meta: ObservationMetadata
    wcs: WcsSolution
    pixel_scale: float
    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    background_level: float
    psf: GridPsf
    psf_source: str
    psf_fwhm: float
    zeropoint: float | None
    zeropoint_source: str

    def calibrated(self) -> tuple[np.ndarray, np.ndarray]:
        """Image [nJy] and variance [nJy²].

        Raises
        ------
        MissingZeroPointError
            If the image has no zero point yet.
        """
        if self.zeropoint is None:
            raise MissingZeroPointError(self.source, ())
        scale = njy_per_count(self.zeropoint)
        image = (self.image * np.float32(scale)).astype(np.float32)
        return image, (self.variance * np.float32(scale**2)).astype(np.float32)


def psfex_candidates(options: IngestOptions) -> list[Path]:
    """PSFEx files named by the options: the explicit files and those found under ``psfex_dir``."""
    files = list(options.psf_files)
    if options.psfex_dir is not None:
        files += sorted(p for p in Path(options.psfex_dir).rglob("*") if p.name.endswith(_PSFEX_ENDINGS))
    return files


def _exposure_stem(path: Path) -> str:
    return path.name.split(".")[0]


def find_psfex_file(image: Path, detector_name: str, candidates: Sequence[Path]) -> Path | None:
    """The PSFEx file of one detector of an image file, chosen by name.

    A candidate must contain the image's exposure stem (file name up to its first dot, e.g.
    ``c4d_170316_062107_ooi_z_ls9``); among several, the one naming the detector (``-N2-``, ``.N2.``, ``_N2``)
    wins. A single candidate without a detector name is taken as a per-exposure (merged) file.
    """
    stem = _exposure_stem(image)
    matching = [p for p in candidates if stem in p.name]
    if not matching:
        return None
    token = re.compile(rf"(^|[^A-Za-z0-9]){re.escape(detector_name)}([^A-Za-z0-9]|$)")
    named = [p for p in matching if token.search(p.name.replace(stem, ""))]
    if named:
        return named[0]
    return matching[0] if len(matching) == 1 else None


def _read_psfex_grid(path: Path, detector_name: str, shape: tuple[int, int], n_grid: int,
                     stamp_size: int | None, fwhm_guess: float) -> GridPsf:
    try:
        model = read_psfex(path, ccdname=detector_name)
    except PsfexFormatError as first:
        try:
            model = read_psfex(path)
        except PsfexFormatError:
            raise IngestError(str(first)) from None
    if stamp_size is None:
        fwhm = model.fwhm or fwhm_guess
        stamp_size = min(model.size, 2 * max(7, int(np.ceil(3.5 * fwhm))) + 1)
    return psfex_to_grid(model, shape, n_grid, n_grid, stamp_size=stamp_size)


def _fwhm_guess(header, pixel_scale: float) -> float:
    fwhm = header.get("FWHM")
    try:
        if fwhm is not None and 1.0 < float(fwhm) < 30.0:
            return float(fwhm)
        seeing = header.get("SEEING")
        if seeing is not None and 0.2 < float(seeing) < 10.0:
            return float(seeing) / pixel_scale
    except (TypeError, ValueError):
        pass
    return 4.0


def _zeropoint(raw: RawImage, options: IngestOptions) -> tuple[float | None, str]:
    if raw.spec.zeropoint is not None:
        return raw.spec.zeropoint, "input spec"
    if options.zeropoint is not None:
        return options.zeropoint, "option"
    for key in options.zeropoint_keywords:
        value = raw.header.get(key)
        try:
            if value is not None and np.isfinite(float(value)):
                return float(value), f"header {key}"
        except (TypeError, ValueError):
            continue
    if options.calibrate_to_template:
        return None, "pending"
    raise MissingZeroPointError(raw.source, options.zeropoint_keywords)


def prepare_image(raw: RawImage, options: IngestOptions, psf_candidates: Sequence[Path] = ()) -> PreparedImage:
    """Check and prepare one detector image (no butler, nothing written).

    Parameters
    ----------
    raw : `~lsst.dia.pipe.ingest.fits_input.RawImage`
        Planes as read.
    options : `~lsst.dia.pipe.ingest.options.IngestOptions`
        Ingest options.
    psf_candidates : sequence of `pathlib.Path`
        PSFEx files to choose from by name (`find_psfex_file`); the input spec's ``psf=`` wins.

    Returns
    -------
    prepared : `PreparedImage`

    Raises
    ------
    IngestError
        Any problem with this image (missing metadata, WCS, zero point, too few PSF stars, bad PSFEx file).
    """
    meta = read_observation_metadata(raw.header, raw.source, hdu_index=raw.hdu_index,
                                     keywords=options.header_keywords(), instrument=options.instrument,
                                     band_rules=options.band_rules)
    wcs = read_celestial_wcs(raw.header, raw.image.shape, raw.source, tolerance_px=options.wcs_tolerance_px)
    zeropoint, zeropoint_source = _zeropoint(raw, options)
    scale = pixel_scale_arcsec(wcs.wcs, raw.image.shape)

    convention = options.dq_convention
    if convention == "auto":
        convention = guess_dq_convention(raw.header.get("PLVER"))
    mask = dq_to_mask(raw.dq, convention) if raw.dq is not None else np.zeros(raw.image.shape, np.uint32)
    finite = np.isfinite(raw.image)
    mask[~finite] |= np.uint32(MaskBit.NO_DATA | MaskBit.BAD)
    if raw.variance is not None:
        mask[~np.isfinite(raw.variance)] |= np.uint32(MaskBit.NO_DATA)
    if meta.saturation is not None:
        mask[finite & (raw.image >= meta.saturation)] |= np.uint32(MaskBit.SATURATED)
    if not (mask & np.uint32(int(MaskBit.NO_DATA)) == 0).any():
        raise IngestError(f"{raw.source}: no valid pixel.")

    if options.background == "mesh":
        bg = estimate_background(raw.image, (mask & np.uint32(int(STAR_REJECT_BITS))) != 0, box=options.background_box)
        background, sky_sigma = bg.background, bg.sky_sigma
    else:
        background = np.zeros(raw.image.shape, np.float32)
        good = finite & ((mask & np.uint32(int(STAR_REJECT_BITS))) == 0)
        sky_sigma = float(1.4826 * np.median(np.abs(raw.image[good] - np.median(raw.image[good]))))
    image = np.where(finite, raw.image - background, np.float32(0.0)).astype(np.float32)
    if raw.variance is not None:
        variance = raw.variance
    else:  # documented fallback: sky noise, plus Poisson noise of the sources when the gain is known
        gain = raw.header.get("GAIN") or raw.header.get("ARAWGAIN")
        variance = np.full(image.shape, sky_sigma**2, np.float32)
        if gain:
            variance += np.clip(image, 0.0, None) / np.float32(gain)

    fwhm_guess = _fwhm_guess(raw.header, scale)
    psf_path = raw.spec.psf or find_psfex_file(raw.spec.image, meta.detector_name, psf_candidates)
    if psf_path is not None:
        psf = _read_psfex_grid(psf_path, meta.detector_name, image.shape, options.psf_grid,
                               options.psf_stamp_size, fwhm_guess)
        psf_source = f"psfex:{psf_path}"
    else:
        saturation = None if meta.saturation is None else meta.saturation - float(np.median(background))
        estimate = estimate_psf(image, variance, mask, fwhm_guess=fwhm_guess, stamp_size=options.psf_stamp_size,
                                saturation=saturation, n_grid=options.psf_grid, min_stars=options.psf_min_stars,
                                star_snr=options.psf_star_snr)
        psf = estimate.psf
        psf_source = f"stars:{estimate.n_used}"
    ny, nx = image.shape
    return PreparedImage(
        source=raw.source,
        file=raw.spec.image,
        meta=meta,
        wcs=wcs,
        pixel_scale=scale,
        image=image,
        variance=variance,
        mask=mask,
        background_level=float(np.median(background)),
        psf=psf,
        psf_source=psf_source,
        psf_fwhm=stamp_fwhm(psf.kernel_image((nx - 1) / 2.0, (ny - 1) / 2.0)),
        zeropoint=zeropoint,
        zeropoint_source=zeropoint_source,
    )
