"""Build the lsst-images objects that ingest stores: ``calexp`` VisitImages and ``deepCoadd_calexp`` CellCoadds.

Pixels are stored calibrated (nJy, photometric scaling 1): the zero point, its origin, the PSF's origin and
the WCS conversion are recorded in the image metadata.
"""

from __future__ import annotations

import astropy.units as u
import lsst.images as li
import numpy as np

from ..imaging.camera import DetectorLayout, make_camera_frames, make_detector
from ..imaging.coadd import make_cell_coadd
from ..imaging.visit import make_visit_image
from ..psf.conversion import grid_to_cell_psf, grid_to_lsst_psf
from .prepare import PreparedImage
from .templates import PatchCoadd, TemplateImage

__all__ = ["detector_layout", "build_calexp", "build_coadd", "template_from_prepared", "ingest_metadata"]

#: DECam pixels are 15 µm; other cameras default to 10 µm (only the focal-plane frame depends on it).
_PIXEL_SIZE_MM = {"DECAM": 0.015}


def detector_layout(prepared: PreparedImage) -> DetectorLayout:
    """Detector layout of a prepared image: its size, and its focal-plane centre when ``DETSEC`` gives it."""
    meta = prepared.meta
    pixel_mm = _PIXEL_SIZE_MM.get(meta.instrument.upper(), 0.01)
    cx, cy = meta.detector_center_px or (0.0, 0.0)
    ny, nx = prepared.image.shape
    return DetectorLayout(meta.detector_id, meta.detector_name, nx, ny, cx * pixel_mm, cy * pixel_mm, pixel_mm)


def ingest_metadata(prepared: PreparedImage) -> dict[str, str | float | int]:
    """Provenance of an ingested image: source, zero point, PSF and WCS origin."""
    return {
        "INGEST_SOURCE": prepared.source,
        "ZEROPOINT": float(prepared.zeropoint) if prepared.zeropoint is not None else float("nan"),
        "ZEROPOINT_SOURCE": prepared.zeropoint_source,
        "PSF_SOURCE": prepared.psf_source,
        "PSF_FWHM_PX": float(prepared.psf_fwhm),
        "WCS_PROJECTION": prepared.wcs.projection,
        "WCS_SIP_ORDER": int(prepared.wcs.sip_order or 0),
        "WCS_FIT_RESIDUAL_PX": float(prepared.wcs.max_residual_px),
        "BACKGROUND_COUNTS": float(prepared.background_level),
    }


def build_calexp(prepared: PreparedImage) -> li.VisitImage:
    """The ``calexp`` of a prepared, calibrated science image (nJy)."""
    layout = detector_layout(prepared)
    frames = make_camera_frames(prepared.meta.instrument, [layout], prepared.pixel_scale / layout.pixel_size_mm)
    detector = make_detector(prepared.meta.instrument, layout, frames, visit=prepared.meta.visit)
    image, variance = prepared.calibrated()
    ny, nx = image.shape
    bbox = li.Box.factory[0:ny, 0:nx]
    return make_visit_image(
        image,
        variance,
        prepared.mask,
        wcs=prepared.wcs.wcs,
        psf=grid_to_lsst_psf(prepared.psf, bbox, prepared.pixel_scale),
        detector=detector,
        band=prepared.meta.band,
        physical_filter=prepared.meta.physical_filter,
        nJy_per_count=1.0,
        mjd=prepared.meta.mjd,
        exposure_time=prepared.meta.exposure_time,
        image_unit=u.nJy,
        metadata=ingest_metadata(prepared),
    )


def template_from_prepared(prepared: PreparedImage) -> TemplateImage:
    """The calibrated template image of a prepared image."""
    image, variance = prepared.calibrated()
    return TemplateImage(name=prepared.source, band=prepared.meta.band, image=image, variance=variance,
                         mask=prepared.mask, wcs=prepared.wcs.wcs, psf=prepared.psf)


def build_coadd(coadd: PatchCoadd, skymap_name: str, cell_size: int) -> li.cells.CellCoadd:
    """The ``deepCoadd_calexp`` CellCoadd of a patch coadd (PSF sampled at every cell centre)."""
    x0, y0, nx, ny = coadd.patch.outer_bbox
    bbox = li.Box.factory[y0 : y0 + ny, x0 : x0 + nx]
    psf = grid_to_cell_psf(coadd.psf, bbox, cell_size, coadd.psf.size)
    return make_cell_coadd(
        coadd.image,
        coadd.variance,
        coadd.mask,
        wcs=coadd.tract.patch_wcs(coadd.patch),
        bbox=bbox,
        band=coadd.band,
        psf=psf,
        skymap=skymap_name,
        tract=coadd.tract,
        patch=coadd.patch,
        metadata={"INGEST_INPUTS": ";".join(coadd.inputs), "N_INPUTS": len(coadd.inputs),
                  "COVERED_FRACTION": float(np.mean(np.isfinite(coadd.variance)))},
    )
