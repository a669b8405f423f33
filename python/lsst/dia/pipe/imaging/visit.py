"""Build `lsst.images.VisitImage` / `DifferenceImage` objects from arrays, and read them as `Exposure`."""

from __future__ import annotations

import astropy.units as u
import lsst.images as li
import lsst.images.cells  # noqa: F401  (li.cells in annotations)
import numpy as np
from astro_metadata_translator import ObservationInfo
from astropy.time import Time
from astropy.wcs import WCS
from lsst.images.cameras import Detector
from lsst.images.psfs import PointSpreadFunction

from ..exposure import Exposure
from ..psf import GridPsf
from .masks import bits_to_mask, mask_to_bits

__all__ = [
    "make_visit_image",
    "make_difference_image",
    "visit_image_to_exposure",
    "nJy_per_count",
    "array_wcs",
    "template_info",
]


def _scaling_field(bbox: li.Box, nJy_per_count: float) -> li.fields.ChebyshevField:
    return li.fields.ChebyshevField(bbox, np.array([[float(nJy_per_count)]]), unit=u.nJy / u.electron)


def _projection(wcs: WCS, detector: Detector, bbox: li.Box) -> li.SkyProjection:
    frame = li.DetectorFrame(
        instrument=detector.instrument, visit=detector.visit, detector=detector.id, bbox=bbox
    )
    return li.SkyProjection.from_fits_wcs(wcs, frame, pixel_bounds=bbox, x0=bbox.x.start, y0=bbox.y.start)


def _obs_info(physical_filter: str, mjd: float | None, exposure_time: float | None, visit: int | None,
              detector: Detector) -> ObservationInfo:
    kwargs: dict = {"physical_filter": physical_filter, "instrument": detector.instrument,
                    "detector_num": detector.id, "detector_name": detector.name}
    if visit is not None:
        kwargs["visit_id"] = int(visit)
        kwargs["exposure_id"] = int(visit)
    if mjd is not None and exposure_time is not None:
        mid = Time(mjd, format="mjd", scale="tai")
        half = 0.5 * exposure_time * u.s
        kwargs["datetime_begin"] = mid - half
        kwargs["datetime_end"] = mid + half
        kwargs["exposure_time"] = exposure_time * u.s
    return ObservationInfo(**kwargs)


def make_visit_image(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    *,
    wcs: WCS,
    psf: PointSpreadFunction,
    detector: Detector,
    band: str,
    physical_filter: str,
    nJy_per_count: float,
    mjd: float | None = None,
    exposure_time: float | None = None,
    image_unit: u.UnitBase = u.electron,
    metadata: dict | None = None,
) -> li.VisitImage:
    """Assemble an `lsst.images.VisitImage` (a ``calexp``) from arrays.

    Parameters
    ----------
    image, variance : `numpy.ndarray`
        ``(ny, nx)`` pixel values and variance in ``image_unit`` and its square (electrons by default).
    mask : `numpy.ndarray`
        ``(ny, nx)`` `~lsst.dia.pipe.masks.MaskBit` values.
    wcs : `astropy.wcs.WCS`
        Array pixel -> sky.
    psf : `lsst.images.psfs.PointSpreadFunction`
        Serialisable PSF (Piff, PSFEx or Gaussian).
    detector : `lsst.images.cameras.Detector`
        Detector (with its visit).
    band, physical_filter : `str`
        Filter names.
    nJy_per_count : `float`
        Photometric calibration [nJy per ``image_unit``].
    mjd : `float`, optional
        Mid-exposure MJD (TAI).
    exposure_time : `float`, optional
        Exposure time [s].
    """
    ny, nx = image.shape
    bbox = li.Box.factory[0:ny, 0:nx]
    projection = _projection(wcs, detector, bbox)
    return li.VisitImage(
        li.Image(np.asarray(image, dtype=np.float32), unit=image_unit, bbox=bbox),
        mask=bits_to_mask(mask, bbox),
        variance=li.Image(np.asarray(variance, dtype=np.float32), unit=image_unit**2, bbox=bbox),
        sky_projection=projection,
        obs_info=_obs_info(physical_filter, mjd, exposure_time, detector.visit, detector),
        photometric_scaling=_scaling_field(bbox, nJy_per_count) if image_unit != u.nJy else None,
        psf=psf,
        detector=detector,
        band=band,
        metadata=metadata,
    )


def make_difference_image(
    difference: Exposure,
    science: li.VisitImage,
    *,
    psf: PointSpreadFunction,
    templates: list[li.DifferenceImageTemplateInfo] | None = None,
    metadata: dict | None = None,
) -> li.DifferenceImage:
    """Assemble an `lsst.images.DifferenceImage` (``deepDiff_differenceExp``) in nJy.

    The projection, detector, observation info and band are those of the science image.
    """
    bbox = science.bbox
    return li.DifferenceImage(
        li.Image(np.asarray(difference.image, dtype=np.float32), unit=u.nJy, bbox=bbox),
        mask=bits_to_mask(difference.mask, bbox),
        variance=li.Image(np.asarray(difference.variance, dtype=np.float32), unit=u.nJy**2, bbox=bbox),
        sky_projection=science.sky_projection,
        obs_info=science.obs_info,
        psf=psf,
        detector=science.detector,
        band=science.band,
        templates=templates,
        metadata=metadata,
    )


def nJy_per_count(visit_image: li.VisitImage) -> float | np.ndarray:
    """Return the calibration of a VisitImage in nJy per pixel unit.

    A scalar when the photometric scaling is constant (or the image is already in nJy), otherwise the
    ``(ny, nx)`` rendered scaling field.
    """
    if visit_image.image.unit == u.nJy:
        return 1.0
    scaling = getattr(visit_image, "photometric_scaling", None)
    if scaling is None:
        raise ValueError("VisitImage has no photometric scaling and is not in nJy: cannot calibrate it.")
    if scaling.is_constant:
        return float(scaling(x=0.0, y=0.0))
    return np.asarray(scaling.render(visit_image.bbox).array, dtype=np.float32)


def array_wcs(image: li.VisitImage | li.MaskedImage) -> WCS:
    """Astropy WCS of a lsst-images image in the ARRAY pixel convention (its bbox start at 0)."""
    wcs = image.sky_projection.as_fits_wcs(image.bbox, allow_approximation=True)
    if wcs is None:
        raise ValueError("The image's sky projection has no FITS representation.")
    return wcs


def visit_image_to_exposure(visit_image: li.VisitImage | li.cells.CellCoadd, psf: GridPsf | None = None,
                            psf_grid: int = 5) -> Exposure:
    """Convert a VisitImage or CellCoadd to a calibrated `Exposure` (nJy, nJy², MaskBit, GridPsf, array WCS).

    Parameters
    ----------
    visit_image : `lsst.images.VisitImage` or `lsst.images.cells.CellCoadd`
        A ``calexp``, ``deepDiff_differenceExp`` or ``deepCoadd_calexp``.
    psf : `~lsst.dia.pipe.psf.GridPsf`, optional
        Precomputed PSF grid; by default the image PSF is sampled on ``psf_grid`` × ``psf_grid`` nodes.
    """
    scale = nJy_per_count(visit_image)
    image = np.asarray(visit_image.image.array, dtype=np.float32) * np.asarray(scale, dtype=np.float32)
    variance = np.asarray(visit_image.variance.array, dtype=np.float32) * np.asarray(scale, dtype=np.float32) ** 2
    mask = mask_to_bits(visit_image.mask)
    bad = ~np.isfinite(image) | ~np.isfinite(variance)
    if bad.any():
        from ..masks import MaskBit

        # finite placeholders keep FFT-based algorithms well defined; the mask excludes these pixels
        mask[bad] |= np.uint32(MaskBit.NO_DATA | MaskBit.BAD)
        image[bad] = 0.0
        good_var = variance[~bad]
        variance[bad] = np.median(good_var) if good_var.size else 1.0
    if psf is None:
        from ..psf.conversion import lsst_psf_to_grid

        psf = lsst_psf_to_grid(visit_image.psf, visit_image.bbox, n_x=psf_grid, n_y=psf_grid)
    obs = getattr(visit_image, "obs_info", None)
    mjd = None
    if obs is not None and obs.datetime_begin is not None and obs.datetime_end is not None:
        mjd = float((obs.datetime_begin.tai.mjd + obs.datetime_end.tai.mjd) / 2)
    return Exposure(
        image=image,
        variance=variance,
        mask=mask,
        psf=psf,
        wcs=array_wcs(visit_image),
        x0=int(visit_image.bbox.x.start),
        y0=int(visit_image.bbox.y.start),
        band=visit_image.band,
        mjd=mjd,
    )


def _clip_polygon_to_box(x: np.ndarray, y: np.ndarray, x0: float, x1: float, y0: float, y1: float):
    """Sutherland-Hodgman clip of a polygon to an axis-aligned box; returns vertex arrays (maybe empty)."""
    points = list(zip(x.tolist(), y.tolist()))
    for axis, bound, keep_greater in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not points:
            break
        out = []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            cur_in = cur[axis] >= bound if keep_greater else cur[axis] <= bound
            prev_in = prev[axis] >= bound if keep_greater else prev[axis] <= bound
            if cur_in != prev_in:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                out.append(tuple(p + t * (c - p) for p, c in zip(prev, cur)))
            if cur_in:
                out.append(cur)
        points = out
    if not points:
        return np.zeros(0), np.zeros(0)
    xs, ys = zip(*points)
    return np.array(xs), np.array(ys)


def template_info(
    *, skymap: str, tract: int, patch: int, dataset_id, dataset_run: str, template: Exposure,
    science: Exposure, instrument: str = "UNKNOWN",
) -> li.DifferenceImageTemplateInfo | None:
    """Provenance of one template patch for a `DifferenceImage` (None if it does not overlap the science).

    ``bounds`` is the template patch outline mapped into science pixels and clipped to the science image;
    the PSF moments are those of the template PSF at the patch centre [pixels²].
    """
    ny, nx = template.shape
    ra, dec = template.pixel_to_sky(np.array([-0.5, nx - 0.5, nx - 0.5, -0.5]),
                                    np.array([-0.5, -0.5, ny - 0.5, ny - 0.5]))
    x, y = science.sky_to_pixel(ra, dec)
    sy, sx = science.shape
    xs, ys = _clip_polygon_to_box(x, y, -0.5, sx - 0.5, -0.5, sy - 0.5)
    if len(xs) < 3:
        return None
    stamp = template.psf.kernel_image(0.5 * (nx - 1), 0.5 * (ny - 1))
    r = np.arange(stamp.shape[0]) - stamp.shape[0] // 2
    total = stamp.sum()
    flag = not (np.isfinite(total) and total > 0)
    if flag:
        ixx = iyy = ixy = float("nan")
    else:
        xx, yy = np.meshgrid(r, r)
        ixx = float((stamp * xx**2).sum() / total)
        iyy = float((stamp * yy**2).sum() / total)
        ixy = float((stamp * xx * yy).sum() / total)
    return li.DifferenceImageTemplateInfo(
        skymap=skymap, tract=int(tract), patch=int(patch), dataset_id=dataset_id, dataset_run=dataset_run,
        bounds=li.Polygon(x_vertices=xs, y_vertices=ys), psf_shape_xx=ixx, psf_shape_yy=iyy,
        psf_shape_xy=ixy, psf_shape_flag=flag, instrument=instrument,
    )
