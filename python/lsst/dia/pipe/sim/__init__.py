"""GalSim simulated survey: camera, sky model with transients and variables, visit plans, calexp and
template-coadd rendering, and truth tables.

Everything here is pure: numpy arrays, PSF objects and astropy Tables in and out, no butler and no files.
"""

from .camera import SimCam, UnknownDetectorError
from .catalog import (
    BAND_COLOR_SLOPES,
    OBJECT_TYPES,
    SkyModelConfig,
    UnknownBandError,
    flux_from_mag,
    mag_from_flux,
    make_sky_catalog,
    offset_positions,
    template_flux,
    true_flux,
)
from .psf import MoffatPsfField, monomial_exponents, monomials
from .render import (
    RenderedCalexp,
    RenderedCoadd,
    detector_psf,
    draw_scene,
    render_coadd,
    render_visit_detector,
    template_psf,
)
from .survey import (
    PRESETS,
    FieldTooSmallError,
    SurveyPreset,
    VisitPlan,
    get_preset,
    make_catalog,
    plan_survey,
)

__all__ = [
    "BAND_COLOR_SLOPES",
    "OBJECT_TYPES",
    "PRESETS",
    "FieldTooSmallError",
    "MoffatPsfField",
    "RenderedCalexp",
    "RenderedCoadd",
    "SimCam",
    "SkyModelConfig",
    "SurveyPreset",
    "UnknownBandError",
    "UnknownDetectorError",
    "VisitPlan",
    "detector_psf",
    "draw_scene",
    "flux_from_mag",
    "get_preset",
    "mag_from_flux",
    "make_catalog",
    "make_sky_catalog",
    "monomial_exponents",
    "monomials",
    "offset_positions",
    "plan_survey",
    "render_coadd",
    "render_visit_detector",
    "template_flux",
    "template_psf",
    "true_flux",
]
