"""Ingest of survey FITS images (DECam Community Pipeline and similar, or lsst-images VisitImages).

``ingest_images(repo, science_files, template_files, options) -> IngestReport`` stores science images as
``calexp`` and templates as ``deepCoadd_calexp`` patches of a local sky map; ``bin/ingestImages.py`` is its
command line. The building blocks (FITS planes, TPV WCS, DQ masks, background, PSF from stars, calibration,
reprojection) are in the submodules and take plain arrays.
"""

from .errors import (
    IngestError,
    InsufficientPsfStarsError,
    MissingMetadataError,
    MissingWcsError,
    MissingZeroPointError,
    NoTemplateOverlapError,
    PlaneShapeMismatchError,
    UnsupportedProjectionError,
    WcsConversionError,
)
from .fits_input import InputSpec
from .ingest import CoaddRecord, FileResult, ImageRecord, IngestReport, ingest_images
from .options import IngestOptions

__all__ = [
    "CoaddRecord",
    "FileResult",
    "ImageRecord",
    "IngestError",
    "IngestOptions",
    "IngestReport",
    "InputSpec",
    "InsufficientPsfStarsError",
    "MissingMetadataError",
    "MissingWcsError",
    "MissingZeroPointError",
    "NoTemplateOverlapError",
    "PlaneShapeMismatchError",
    "UnsupportedProjectionError",
    "WcsConversionError",
    "ingest_images",
]
