"""Measurement of DIASources detected on a difference image."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from ..detection.config import mask_bits
from ..detection.detect import DetectionResult
from ..exposure import Exposure
from .aperture import aperture_flux, aperture_weights
from .centroid import fit_psf_centroids
from .config import MeasurementConfig
from .dipole import fit_dipoles
from .forced import forced_psf_photometry
from .moments import adaptive_moments
from .pixel_flags import center_bits, pixel_flag_columns
from .psf_stamps import PsfStampSampler
from .schema import dia_source_columns, empty_table
from .sky import local_jacobian, position_angle, to_sky_frame
from .stamps import cut_stamps, pixel_centres, usable_pixels

__all__ = ["measure_dia_sources", "MissingWcsError", "GridMismatchError"]


class MissingWcsError(ValueError):
    """The difference exposure has no WCS, so sky positions cannot be measured."""

    def __init__(self) -> None:
        super().__init__("measure_dia_sources needs difference.wcs to compute ra/dec; the exposure has none.")


class GridMismatchError(ValueError):
    """The science or template exposure is not on the difference image's pixel grid."""

    def __init__(self, name: str, shape: tuple[int, int], expected: tuple[int, int]) -> None:
        self.name = name
        self.shape = shape
        self.expected = expected
        super().__init__(f"The {name} exposure has shape {shape}; it must share the difference grid {expected}.")


def _footprint_bits(labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OR of ``mask`` over each footprint of a label image, indexed by label (entry 0 is 0)."""
    flat = np.flatnonzero(labels)
    lab = labels.flat[flat]
    out = np.zeros(int(labels.max(initial=0)) + 1, np.uint32)
    if flat.size:
        order = np.argsort(lab, kind="stable")
        lab = lab[order]
        starts = np.flatnonzero(np.diff(lab, prepend=0))
        out[lab[starts]] = np.bitwise_or.reduceat(mask.flat[flat[order]], starts)
    return out


def _rename_forced(table: Table, mapping: dict[str, str]) -> dict[str, np.ndarray]:
    return {new: np.asarray(table[old]) for old, new in mapping.items()}


def measure_dia_sources(
    difference: Exposure,
    science: Exposure,
    template: Exposure | None,
    detections: DetectionResult,
    config: MeasurementConfig | None = None,
) -> Table:
    """Measure DIASources: centroids, PSF/aperture/science/template fluxes, shapes, dipoles, pixel flags.

    Parameters
    ----------
    difference : `~lsst.dia.pipe.exposure.Exposure`
        Difference image [nJy] with variance, mask, PSF and WCS.
    science : `~lsst.dia.pipe.exposure.Exposure`
        Calibrated science image on the same pixel grid (for ``scienceFlux``).
    template : `~lsst.dia.pipe.exposure.Exposure` or `None`
        PSF-matched template on the same grid (for ``templateFlux``; NaN and ``templateFlux_flag`` if `None`).
    detections : `~lsst.dia.pipe.detection.DetectionResult`
        Output of `~lsst.dia.pipe.detection.detect_sources` on ``difference``.
    config : `MeasurementConfig`, optional
        Defaults if omitted.

    Returns
    -------
    sources : `astropy.table.Table`
        One row per DIASource, columns `dia_source_columns` (SDM ``DiaSource`` names, types and units). A dipole
        candidate (a merged positive + negative footprint pair) is one source. The identity and context columns
        ``diaSourceId``, ``visit``, ``detector``, ``band``, ``midpointMjdTai``, ``diaObjectId`` are left for the
        calling task to add. Rows follow the order of the positive-or-unpaired peaks in ``detections.peaks``.

    Raises
    ------
    MissingWcsError
        If ``difference.wcs`` is `None`.
    GridMismatchError
        If ``science`` or ``template`` does not have the difference image's shape.

    Notes
    -----
    - ``x``, ``y``: PSF-fit centroid (for a fitted dipole: midpoint of the two lobes), in the array pixel frame.
    - ``psfFlux``, ``scienceFlux``, ``templateFlux``: `forced_psf_photometry` at the centroid (meas_base
      PsfFlux; neighbouring DIASources fitted jointly).
    - ``ixx`` … in arcsec² along (east, north); ``dipoleLength`` in arcsec; ``dipoleAngle`` is the position angle
      of the negative → positive lobe vector, east of north.
    - ``isDipole``: fitted dipole with quadrature lobe S/N ≥ ``dipoleMinSn`` and each lobe's share of the total
      absolute flux ≤ ``dipoleMaxFluxRatio`` (ip_diffim classification).
    """
    config = config if config is not None else MeasurementConfig()
    if difference.wcs is None:
        raise MissingWcsError()
    for name, other_exposure in (("science", science), ("template", template)):
        if other_exposure is not None and other_exposure.shape != difference.shape:
            raise GridMismatchError(name, other_exposure.shape, difference.shape)
    peaks = detections.peaks
    is_pos = np.asarray(peaks["polarity"]) > 0
    partner_all = np.asarray(peaks["dipole_partner"])
    src = np.flatnonzero(is_pos | (partner_all < 0))  # the positive lobe stands for a dipole pair
    n = len(src)
    table = empty_table(dia_source_columns(), n)
    if n == 0:
        return table

    ny, nx = difference.shape
    bad = mask_bits(config.badMaskPlanes)
    partner = partner_all[src]
    dipole = partner >= 0
    sig = np.asarray(peaks["significance"], float)
    other = np.where(dipole, partner, src)
    primary = np.where(np.abs(sig[other]) > np.abs(sig[src]), other, src)
    px = np.asarray(peaks["x"], float)
    py = np.asarray(peaks["y"], float)

    sampler = PsfStampSampler(difference.psf, difference.shape, config.psfGridSize)
    fit_size = sampler.stamp_size(config.fitStampRadius)

    # Centroids: PSF fit from the strongest peak; fitted dipoles use the lobe midpoint.
    cen = fit_psf_centroids(
        difference,
        px[primary],
        py[primary],
        sampler,
        fit_size,
        bad,
        max_iter=config.centroidMaxIter,
        max_shift=config.centroidMaxShift,
    )
    x, y = cen.x.copy(), cen.y.copy()
    x_err, y_err, xy_cov = cen.x_err.copy(), cen.y_err.copy(), cen.xy_cov.copy()
    centroid_flag = cen.flag.copy()
    table["dipoleFitAttempted"][:] = dipole & config.doDipoleFit
    didx = np.flatnonzero(dipole) if config.doDipoleFit else np.zeros(0, np.int64)
    if didx.size:
        pos, neg = src[didx], partner[didx]
        fit = fit_dipoles(
            difference, px[pos], py[pos], px[neg], py[neg], sampler, fit_size, bad, max_iter=config.dipoleMaxIter
        )
        p, cov = fit.params, fit.cov
        ok = fit.success
        mid_x = 0.5 * (p[:, 1] + p[:, 4])
        mid_y = 0.5 * (p[:, 2] + p[:, 5])
        mid_var_x = 0.25 * (cov[:, 1, 1] + cov[:, 4, 4] + 2 * cov[:, 1, 4])
        mid_var_y = 0.25 * (cov[:, 2, 2] + cov[:, 5, 5] + 2 * cov[:, 2, 5])
        mid_cov = 0.25 * (cov[:, 1, 2] + cov[:, 4, 5] + cov[:, 1, 5] + cov[:, 4, 2])
        sel = didx[ok]
        x[sel], y[sel] = mid_x[ok], mid_y[ok]
        x_err[sel], y_err[sel], xy_cov[sel] = np.sqrt(mid_var_x[ok]), np.sqrt(mid_var_y[ok]), mid_cov[ok]
        centroid_flag[sel] = False
        fp, fn = p[:, 0], p[:, 3]
        var_p, var_n, cov_pn = cov[:, 0, 0], cov[:, 3, 3], cov[:, 0, 3]
        jac_d = local_jacobian(difference, np.where(ok, mid_x, px[pos]), np.where(ok, mid_y, py[pos]))
        length, angle = position_angle(jac_d, p[:, 1] - p[:, 4], p[:, 2] - p[:, 5])
        with np.errstate(divide="ignore", invalid="ignore"):
            sn = np.hypot(fp / np.sqrt(var_p), fn / np.sqrt(var_n))
            share = np.maximum(np.abs(fp), np.abs(fn)) / (np.abs(fp) + np.abs(fn))
        values = {
            "dipoleMeanFlux": 0.5 * (fp + fn),
            "dipoleMeanFluxErr": 0.5 * np.sqrt(var_p + var_n + 2 * cov_pn),
            "dipoleFluxDiff": fp - fn,
            "dipoleFluxDiffErr": np.sqrt(var_p + var_n - 2 * cov_pn),
            "dipoleLength": length,
            "dipoleAngle": angle,
            "dipoleChi2": fit.chi2,
        }
        for name, v in values.items():
            table[name][sel] = v[ok]
        table["dipoleNdata"][didx] = fit.ndata
        table["isDipole"][didx] = (
            ok & (fp > 0) & (fn > 0) & (sn >= config.dipoleMinSn) & (share <= config.dipoleMaxFluxRatio)
        )

    # Fluxes at the centroid: difference (psfFlux), science (scienceFlux), template (templateFlux).
    diff_phot = forced_psf_photometry(difference, x, y, config.psfFlux)
    for name in ("psfFlux", "psfFluxErr", "psfChi2", "psfNdata", "psfFlux_flag", "psfFlux_flag_edge",
                 "psfFlux_flag_noGoodPixels"):
        table[name][:] = diff_phot[name]
    sci = _rename_forced(
        forced_psf_photometry(science, x, y, config.psfFlux),
        {
            "psfFlux": "scienceFlux",
            "psfFluxErr": "scienceFluxErr",
            "psfFlux_flag": "forced_PsfFlux_flag",
            "psfFlux_flag_edge": "forced_PsfFlux_flag_edge",
            "psfFlux_flag_noGoodPixels": "forced_PsfFlux_flag_noGoodPixels",
        },
    )
    if template is not None:
        sci.update(
            _rename_forced(
                forced_psf_photometry(template, x, y, config.psfFlux),
                {"psfFlux": "templateFlux", "psfFluxErr": "templateFluxErr", "psfFlux_flag": "templateFlux_flag"},
            )
        )
    else:
        sci["templateFlux_flag"] = np.ones(n, bool)
    for name, values in sci.items():
        table[name][:] = values

    # Aperture flux and adaptive moments on one stamp per source at the centroid.
    cx, cy = pixel_centres(x, y)
    dx, dy = x - cx, y - cy
    sigma = sampler.sigma_max
    size = 2 * int(np.ceil(max(config.apertureRadius + 1, 6 * sigma))) + 1
    stamps = cut_stamps(difference, cx, cy, size)
    usable = usable_pixels(stamps, bad)
    weights = aperture_weights(dx, dy, size, config.apertureRadius, config.apertureSubsample)
    ap, ap_err, incomplete, truncated = aperture_flux(
        stamps.image, stamps.variance, usable, stamps.inside, weights
    )
    table["apFlux"][:] = ap
    table["apFluxErr"][:] = ap_err
    table["apFlux_flag"][:] = incomplete | truncated
    table["apFlux_flag_apertureTruncated"][:] = truncated

    sign = np.where(np.isfinite(diff_phot["psfFlux"]), np.sign(diff_phot["psfFlux"]), np.sign(sig[primary]))
    shape = adaptive_moments(
        stamps.image * sign.astype(np.float32)[:, None, None], usable, dx, dy, sigma, config.shapeMaxIter,
        config.shapeTolerance,
    )
    psf_stamps = sampler.render(x, y, cx, cy, size)
    psf_shape = adaptive_moments(
        psf_stamps, np.ones(psf_stamps.shape, bool), dx, dy, sigma, config.shapeMaxIter, config.shapeTolerance
    )
    jac = local_jacobian(difference, x, y)
    for prefix, suffix, mom in (("i", "", shape), ("i", "PSF", psf_shape)):
        ee, nn, en = to_sky_frame(jac, mom.ixx, mom.iyy, mom.ixy)
        table[f"{prefix}xx{suffix}"][:] = ee
        table[f"{prefix}yy{suffix}"][:] = nn
        table[f"{prefix}xy{suffix}"][:] = en
    table["shape_flag"][:] = shape.flag
    table["shape_flag_no_pixels"][:] = shape.no_pixels

    # Sky position and its errors.
    ra, dec = difference.pixel_to_sky(x, y)
    ee, nn, en = to_sky_frame(jac, x_err**2, y_err**2, xy_cov)
    table["ra"][:] = ra
    table["dec"][:] = dec
    table["raErr"][:] = np.sqrt(ee) / 3600.0
    table["decErr"][:] = np.sqrt(nn) / 3600.0
    table["ra_dec_Cov"][:] = en / 3600.0**2
    table["x"][:] = x
    table["y"][:] = y
    table["xErr"][:] = x_err
    table["yErr"][:] = y_err
    table["centroid_flag"][:] = centroid_flag

    # Detection properties, footprint box and pixel flags.
    table["snr"][:] = np.abs(sig[primary])
    table["isNegative"][:] = sig[primary] < 0
    bbox = np.column_stack(
        [np.asarray(peaks[c]) for c in ("bbox_x_min", "bbox_y_min", "bbox_x_max", "bbox_y_max")]
    )
    box = bbox[src].copy()
    box[:, :2] = np.minimum(box[:, :2], bbox[other, :2])
    box[:, 2:] = np.maximum(box[:, 2:], bbox[other, 2:])
    table["bboxSize"][:] = np.maximum(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]) + 1
    inside_box = (x >= box[:, 0] - 0.5) & (x <= box[:, 2] + 0.5) & (y >= box[:, 1] - 0.5) & (y <= box[:, 3] + 0.5)
    table["shape_flag_not_contained"][:] = ~inside_box
    fid = np.asarray(peaks["footprint_id"])
    pos_bits = _footprint_bits(detections.positive_labels, difference.mask)
    neg_bits = _footprint_bits(detections.negative_labels, difference.mask)
    bits_of_peak = np.where(is_pos, pos_bits[np.where(is_pos, fid, 0)], neg_bits[np.where(is_pos, 0, fid)])
    footprint = bits_of_peak[src] | np.where(dipole, bits_of_peak[other], 0)
    touches = (box[:, 0] == 0) | (box[:, 1] == 0) | (box[:, 2] == nx - 1) | (box[:, 3] == ny - 1)
    off_image = ~((x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5))
    flags = pixel_flag_columns(footprint, center_bits(difference.mask, cx, cy), touches, off_image)
    for name, values in flags.items():
        table[name][:] = values
    return table
