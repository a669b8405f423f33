"""Output columns of DIASource measurement and forced photometry.

Names, types and units follow the Rubin SDM (``lsst-sdm-schemas`` ``apdb.yaml``, tables ``DiaSource`` and
``DiaForcedSource``) wherever the schema has the quantity; columns marked ``sdm=False`` are dia_pipe extras in
the same style. Schema ``float`` is float32, ``double`` float64, ``int`` int32, ``boolean`` bool.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.table import Table

from .pixel_flags import PIXEL_FLAG_COLUMNS

__all__ = ["Column", "dia_source_columns", "forced_columns", "empty_table"]


@dataclasses.dataclass(frozen=True)
class Column:
    """One output column."""

    name: str
    dtype: str
    unit: str | None
    description: str
    sdm: bool = True


def _pixel_flag_columns() -> list[Column]:
    doc = "SDM pixel flag, from the mask bits in lsst.dia.pipe.measurement.pixel_flags.PIXEL_FLAG_BITS."
    return [Column(name, "bool", None, doc) for name in PIXEL_FLAG_COLUMNS]


_PSF_FIT = [
    Column("psfFlux", "float32", "nJy", "PSF-model flux at the position (ΣPD/ΣP², neighbours fitted jointly)."),
    Column("psfFluxErr", "float32", "nJy", "Uncertainty of psfFlux."),
    Column("psfChi2", "float32", None, "Chi² of the PSF model over the usable pixels of the stamp."),
    Column("psfNdata", "int32", None, "Number of usable pixels in the PSF fit."),
    Column("psfFlux_flag", "bool", None, "PSF flux failed or is suspect (any psfFlux_flag_*, or blend fallback)."),
    Column("psfFlux_flag_edge", "bool", None, "PSF stamp clipped by the image border (or position off image)."),
    Column("psfFlux_flag_noGoodPixels", "bool", None, "No usable pixel under the PSF."),
]


def forced_columns(fit_background: bool = False) -> list[Column]:
    """Columns of `~lsst.dia.pipe.measurement.forced_psf_photometry` output."""
    cols = [
        Column("x", "float32", "pixel", "Forced position, array column.", sdm=False),
        Column("y", "float32", "pixel", "Forced position, array row.", sdm=False),
        *_PSF_FIT[:2],
        *[dataclasses.replace(c, sdm=False) for c in _PSF_FIT[2:]],
        Column("blendSize", "int32", None, "Objects fitted jointly with this one, itself included.", sdm=False),
    ]
    if fit_background:
        cols += [
            Column("localBackground", "float32", "nJy", "Fitted constant background per pixel.", sdm=False),
            Column("localBackgroundErr", "float32", "nJy", "Uncertainty of localBackground.", sdm=False),
        ]
    return cols + [dataclasses.replace(c, sdm=False) for c in _pixel_flag_columns()]


def dia_source_columns() -> list[Column]:
    """Columns of `~lsst.dia.pipe.measurement.measure_dia_sources` output, in SDM order."""
    return [
        Column("ra", "float64", "deg", "Right ascension of the centroid."),
        Column("raErr", "float32", "deg", "Uncertainty of ra (dRA cos(dec))."),
        Column("dec", "float64", "deg", "Declination of the centroid."),
        Column("decErr", "float32", "deg", "Uncertainty of dec."),
        Column("ra_dec_Cov", "float32", "deg**2", "Covariance of ra (dRA cos(dec)) and dec."),
        Column("x", "float32", "pixel", "Centroid column (array pixel frame of the difference image)."),
        Column("xErr", "float32", "pixel", "Uncertainty of x."),
        Column("y", "float32", "pixel", "Centroid row."),
        Column("yErr", "float32", "pixel", "Uncertainty of y."),
        Column("centroid_flag", "bool", None, "Centroid fit failed; the detection peak is reported."),
        Column("apFlux", "float32", "nJy", "Flux in a circular aperture (radius config.apertureRadius)."),
        Column("apFluxErr", "float32", "nJy", "Uncertainty of apFlux."),
        Column("apFlux_flag", "bool", None, "Aperture contains unusable pixels or is truncated."),
        Column("apFlux_flag_apertureTruncated", "bool", None, "Aperture extends beyond the image border."),
        Column("isNegative", "bool", None, "Detection peak was negative."),
        Column("snr", "float32", None, "|Significance| of the detection peak."),
        *_PSF_FIT[:2],
        *_PSF_FIT[2:],
        Column("dipoleMeanFlux", "float32", "nJy", "Mean absolute flux of the two dipole lobes."),
        Column("dipoleMeanFluxErr", "float32", "nJy", "Uncertainty of dipoleMeanFlux."),
        Column("dipoleFluxDiff", "float32", "nJy", "Positive minus negative lobe absolute flux."),
        Column("dipoleFluxDiffErr", "float32", "nJy", "Uncertainty of dipoleFluxDiff."),
        Column("dipoleLength", "float32", "arcsec", "Separation of the dipole lobes."),
        Column("dipoleAngle", "float32", "deg", "Position angle (east of north) from negative to positive lobe."),
        Column("dipoleChi2", "float32", None, "Chi² of the dipole model."),
        Column("dipoleNdata", "int32", None, "Pixels in the dipole fit (0 when not fitted)."),
        Column("scienceFlux", "float32", "nJy", "PSF flux on the science image at the centroid."),
        Column("scienceFluxErr", "float32", "nJy", "Uncertainty of scienceFlux."),
        Column("forced_PsfFlux_flag", "bool", None, "scienceFlux failed or is suspect."),
        Column("forced_PsfFlux_flag_edge", "bool", None, "scienceFlux PSF stamp clipped by the image border."),
        Column("forced_PsfFlux_flag_noGoodPixels", "bool", None, "No usable science pixel under the PSF."),
        Column("templateFlux", "float32", "nJy", "PSF flux on the matched template at the centroid."),
        Column("templateFluxErr", "float32", "nJy", "Uncertainty of templateFlux."),
        Column("templateFlux_flag", "bool", None, "templateFlux failed, is suspect, or no template.", sdm=False),
        Column("ixx", "float32", "arcsec**2", "Adaptive second moment along east (local tangent plane)."),
        Column("iyy", "float32", "arcsec**2", "Adaptive second moment along north."),
        Column("ixy", "float32", "arcsec**2", "Adaptive second moment, east-north."),
        Column("ixxPSF", "float32", "arcsec**2", "Adaptive second moment of the PSF, east."),
        Column("iyyPSF", "float32", "arcsec**2", "Adaptive second moment of the PSF, north."),
        Column("ixyPSF", "float32", "arcsec**2", "Adaptive second moment of the PSF, east-north."),
        Column("shape_flag", "bool", None, "Adaptive moments failed (no convergence, no pixels, flux <= 0)."),
        Column("shape_flag_no_pixels", "bool", None, "No usable pixels for the moments."),
        Column("shape_flag_not_contained", "bool", None, "Centroid outside the footprint bounding box."),
        Column("isDipole", "bool", None, "Dipole fit passes the S/N and lobe flux-ratio cuts."),
        Column("dipoleFitAttempted", "bool", None, "Source is a dipole candidate and was fitted."),
        Column("bboxSize", "int32", "pixel", "Side of the square box containing the footprint."),
        *_pixel_flag_columns(),
    ]


def empty_table(columns: list[Column], n: int = 0) -> Table:
    """A table of ``n`` rows with ``columns``: NaN floats, False flags, zero integers."""
    table = Table()
    for col in columns:
        dtype = np.dtype(col.dtype)
        fill = np.nan if dtype.kind == "f" else 0
        table[col.name] = np.full(n, fill, dtype=dtype)
        table[col.name].unit = col.unit
        table[col.name].description = col.description
    return table
