"""Measurement on difference images and forced PSF photometry."""

from .config import ForcedPhotometryConfig, MeasurementConfig
from .forced import PositionShapeError, forced_psf_photometry

__all__ = ["ForcedPhotometryConfig", "MeasurementConfig", "PositionShapeError", "forced_psf_photometry"]
