"""Measurement of DIASources on difference images, and forced PSF photometry.

Public API
----------
- `measure_dia_sources` (difference, science, template or None, `DetectionResult`, `MeasurementConfig`)
  -> `astropy.table.Table` with SDM ``DiaSource`` columns (`dia_source_columns`)
- `forced_psf_photometry` (exposure, x, y, `ForcedPhotometryConfig`) -> `astropy.table.Table` with SDM
  ``DiaForcedSource`` flux columns plus flags (`forced_columns`)
- `MeasurementConfig`, `ForcedPhotometryConfig`: pex_config fields (tasks nest them as ``config.measurement``
  and ``config.forced``)
- Building blocks, usable on their own: `PsfStampSampler`, `cut_stamps`, `fit_psf_centroids`, `fit_dipoles`,
  `aperture_weights`, `aperture_flux`, `adaptive_moments`, `pixel_flag_columns`, `render_point_sources`
- `science_neighbours`: static sources next to forced-photometry targets, to fit with them on the science image
- `poor_psf_fit`: DIASources whose PSF fit is worse than noise and model errors allow (not point sources)
- `unreliable_sources` (`RejectionSettings`): bad flags, poor PSF fits and rings around bright template stars
- `with_systematic_error`: a difference flux error with the subtraction's systematic term added
- Errors: `MissingWcsError`, `GridMismatchError`, `PositionShapeError`
"""

from .aperture import aperture_flux, aperture_weights
from .centroid import CentroidResult, fit_psf_centroids
from .config import ForcedPhotometryConfig, MeasurementConfig
from .dipole import DipoleResult, fit_dipoles
from .forced import PositionShapeError, forced_psf_photometry
from .measure import GridMismatchError, MissingWcsError, measure_dia_sources
from .moments import AdaptiveMoments, adaptive_moments
from .neighbours import science_neighbours
from .pixel_flags import PIXEL_FLAG_BITS, PIXEL_FLAG_COLUMNS, pixel_flag_columns
from .psf_fit_quality import poor_psf_fit
from .psf_stamps import PsfStampSampler
from .rejection import RejectionSettings, unreliable_sources
from .render import render_point_sources
from .schema import Column, dia_source_columns, empty_table, forced_columns
from .stamps import Stamps, cut_stamps
from .systematic_errors import with_systematic_error

__all__ = [
    "AdaptiveMoments",
    "CentroidResult",
    "Column",
    "DipoleResult",
    "ForcedPhotometryConfig",
    "GridMismatchError",
    "MeasurementConfig",
    "MissingWcsError",
    "PIXEL_FLAG_BITS",
    "PIXEL_FLAG_COLUMNS",
    "PositionShapeError",
    "PsfStampSampler",
    "RejectionSettings",
    "Stamps",
    "adaptive_moments",
    "aperture_flux",
    "aperture_weights",
    "cut_stamps",
    "dia_source_columns",
    "empty_table",
    "fit_dipoles",
    "fit_psf_centroids",
    "forced_columns",
    "forced_psf_photometry",
    "measure_dia_sources",
    "pixel_flag_columns",
    "poor_psf_fit",
    "render_point_sources",
    "science_neighbours",
    "unreliable_sources",
    "with_systematic_error",
]
