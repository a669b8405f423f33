"""Survey presets and visit plans of the simulated survey.

A `SurveyPreset` fixes the camera, the field, the bands and cadence, observing conditions (seeing, sky,
transparency), detector artifacts, the template depth and the sky model; `plan_survey` turns it into one
`VisitPlan` per visit (pointing with dithers and rotations, seeing and PSF variation, sky, calibration).
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Mapping

import numpy as np
from astropy.table import Table

from .camera import SimCam
from .catalog import SkyModelConfig, flux_from_mag, make_sky_catalog, offset_positions
from .psf import monomial_exponents

__all__ = [
    "FieldTooSmallError",
    "SurveyPreset",
    "VisitPlan",
    "PRESETS",
    "get_preset",
    "plan_survey",
    "make_catalog",
    "PSF_VARIATION_ORDER",
]

#: Polynomial order of the PSF variation over the focal plane.
PSF_VARIATION_ORDER = 2

#: Sky surface brightness [AB mag/arcsec²] (dark time, LSST-like).
_SKY_MAG = MappingProxyType({"u": 22.9, "g": 22.3, "r": 21.2, "i": 20.5, "z": 19.6, "y": 18.6})
#: Magnitude giving 1 electron per second (LSST-like system throughput).
_ZERO_POINT = MappingProxyType({"u": 26.5, "g": 28.3, "r": 28.1, "i": 27.8, "z": 27.4, "y": 26.6})


class FieldTooSmallError(ValueError):
    """Visits would reach beyond the simulated field, where there are no objects.

    Parameters
    ----------
    required_deg : `float`
        Camera radius plus the largest dither [deg].
    radius_deg : `float`
        Field radius of the preset [deg].
    """

    def __init__(self, required_deg: float, radius_deg: float):
        self.required_deg = required_deg
        self.radius_deg = radius_deg
        super().__init__(
            f"Visits reach {required_deg:.4f} deg from the field centre but the field radius is "
            f"{radius_deg:.4f} deg: increase field_radius_deg or reduce dither_arcmin."
        )


@dataclasses.dataclass(frozen=True)
class SurveyPreset:
    """Everything that defines a simulated survey (apart from the random seed).

    Attributes
    ----------
    name : `str`
        Preset name.
    detector_grid : `tuple` [`int`, `int`]
        ``(n_x, n_y)`` detectors in the focal plane.
    detector_shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` pixels per detector.
    detector_gap : `int`
        Gap between detectors [pixels].
    pixel_scale : `float`
        [arcsec/pixel].
    field_ra, field_dec, field_radius_deg : `float`
        Field centre and radius [deg]; objects exist only inside it.
    bands : `tuple` [`str`, ...]
        Bands observed.
    visits_per_band : `int`
        Visits per band.
    mjd_start, mjd_span : `float`
        Survey start (MJD, TAI) and length [days].
    exposure_time : `float`
        [s].
    seeing_range : `tuple` [`float`, `float`]
        Range of the per-visit FWHM at the field centre [arcsec].
    psf_beta : `float`
        Moffat index.
    psf_trunc : `float`
        Moffat truncation radius in units of the FWHM.
    psf_size_variation : `float`
        Largest fractional FWHM change over the focal plane.
    psf_shear_max : `float`
        Largest PSF shear |g| over the focal plane.
    sky_mag, zero_point : `Mapping` [`str`, `float`]
        Dark sky [mag/arcsec²] and magnitude of 1 e-/s per band.
    sky_brightening_max : `float`
        Per-visit sky brightening (moon) up to this many magnitudes.
    extinction_max : `float`
        Per-visit transparency loss up to this many magnitudes.
    sky_gradient_max : `float`
        Largest fractional sky change from the centre to the edge of the focal plane.
    sky_residual : `float`
        RMS of the smooth sky residual left after sky subtraction, as a fraction of the sky.
    read_noise : `float`
        [electrons].
    saturation : `float`
        Full well [electrons].
    cosmic_rays_per_megapixel : `float`
        Mean number of cosmic-ray tracks per exposure per 10⁶ pixels.
    cosmic_ray_unmasked_fraction : `float`
        Fraction of cosmic rays left unflagged in the calexp.
    bad_columns_per_detector : `int`
        Bad columns per detector.
    dither_arcmin : `float`
        Pointings are uniform in a disk of this radius around the field centre [arcmin].
    rotation_range_deg : `tuple` [`float`, `float`]
        Range of sky rotation angles [deg].
    template_seeing : `float`
        FWHM of the template coadds at the field centre [arcsec].
    template_psf_variation : `float`
        Largest fractional FWHM change of the template PSF over the field.
    template_depth_visits : `float`
        Template noise equals that of this many average visits combined.
    sky : `~lsst.dia.pipe.sim.catalog.SkyModelConfig`
        Object densities and distributions.
    """

    name: str
    detector_grid: tuple[int, int] = (2, 2)
    detector_shape: tuple[int, int] = (1024, 1024)
    detector_gap: int = 40
    pixel_scale: float = 0.2
    field_ra: float = 56.0
    field_dec: float = -30.0
    field_radius_deg: float = 0.12
    bands: tuple[str, ...] = ("g", "r", "i")
    visits_per_band: int = 10
    mjd_start: float = 60000.0
    mjd_span: float = 60.0
    exposure_time: float = 30.0
    seeing_range: tuple[float, float] = (0.6, 1.2)
    psf_beta: float = 3.0
    psf_trunc: float = 3.0
    psf_size_variation: float = 0.05
    psf_shear_max: float = 0.05
    sky_mag: Mapping[str, float] = _SKY_MAG
    zero_point: Mapping[str, float] = _ZERO_POINT
    sky_brightening_max: float = 0.5
    extinction_max: float = 0.15
    sky_gradient_max: float = 0.02
    sky_residual: float = 0.002
    read_noise: float = 5.0
    saturation: float = 100_000.0
    cosmic_rays_per_megapixel: float = 5.0
    cosmic_ray_unmasked_fraction: float = 0.1
    bad_columns_per_detector: int = 2
    dither_arcmin: float = 1.5
    rotation_range_deg: tuple[float, float] = (-30.0, 30.0)
    template_seeing: float = 0.8
    template_psf_variation: float = 0.03
    template_depth_visits: float = 25.0
    sky: SkyModelConfig = SkyModelConfig()

    def camera(self) -> SimCam:
        """The `SimCam` of this preset."""
        return SimCam.grid(*self.detector_grid, self.detector_shape, self.detector_gap,
                           pixel_scale=self.pixel_scale)

    def nominal_nJy_per_electron(self, band: str) -> float:
        """Calibration of an exposure with no extinction [nJy per electron]."""
        return float(flux_from_mag(self.zero_point[band] + 2.5 * np.log10(self.exposure_time)))

    def nominal_sky_electrons(self, band: str) -> float:
        """Dark sky per pixel in one exposure [electrons]."""
        sky_nJy = flux_from_mag(self.sky_mag[band]) * self.pixel_scale**2
        return float(sky_nJy / self.nominal_nJy_per_electron(band))


#: Built-in presets: ``demo`` (4 small detectors, 3 bands × 10 visits; renders in well under a minute) and
#: ``dc2`` (3 × 3 4k detectors, six bands, a DC2-like field of ~1 deg²).
PRESETS: Mapping[str, SurveyPreset] = MappingProxyType({
    "demo": SurveyPreset(name="demo"),
    "dc2": SurveyPreset(
        name="dc2",
        detector_grid=(3, 3),
        detector_shape=(4096, 4096),
        detector_gap=100,
        field_radius_deg=0.6,
        bands=("u", "g", "r", "i", "z", "y"),
        visits_per_band=10,
        cosmic_rays_per_megapixel=5.0,
        dither_arcmin=5.0,
        rotation_range_deg=(-90.0, 90.0),
    ),
})


def get_preset(name: str, **overrides) -> SurveyPreset:
    """Return a built-in preset, optionally with some attributes replaced (e.g. ``field_ra=0.05``)."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise KeyError(f"Unknown survey preset {name!r} (available: {sorted(PRESETS)}).") from None
    return dataclasses.replace(preset, **overrides) if overrides else preset


@dataclasses.dataclass(frozen=True)
class VisitPlan:
    """One planned visit.

    Attributes
    ----------
    visit : `int`
        Visit id (1, 2, … in time order).
    band, physical_filter : `str`
        Band (``"r"``) and filter (``"SIM-r"``).
    mjd : `float`
        Mid-exposure time (MJD, TAI).
    exposure_time : `float`
        [s].
    ra, dec : `float`
        Pointing of the optical axis [deg].
    rotation : `float`
        Position angle of the focal-plane +y axis, east of north [deg].
    seeing : `float`
        PSF FWHM at the optical axis [arcsec].
    sky : `float`
        Mean sky level per pixel [electrons].
    sky_gradient : `tuple` [`float`, `float`]
        Fractional sky change per unit of normalised focal-plane x and y (see `focal_plane_unit`).
    nJy_per_electron : `float`
        Photometric calibration [nJy per electron].
    psf_terms : `numpy.ndarray`
        ``(3, n_terms)`` coefficients of the PSF dilation, shear g1, shear g2 on the monomials of the
        normalised focal-plane coordinates (`~lsst.dia.pipe.sim.psf.monomial_exponents` order
        `PSF_VARIATION_ORDER`).
    focal_plane_unit : `float`
        Focal-plane distance [mm] that normalised coordinates divide by (the camera radius).
    """

    visit: int
    band: str
    physical_filter: str
    mjd: float
    exposure_time: float
    ra: float
    dec: float
    rotation: float
    seeing: float
    sky: float
    sky_gradient: tuple[float, float]
    nJy_per_electron: float
    psf_terms: np.ndarray
    focal_plane_unit: float

    @property
    def zero_point(self) -> float:
        """AB magnitude of a source giving 1 electron in this exposure."""
        return float(31.4 - 2.5 * np.log10(self.nJy_per_electron))


def _bounded_polynomial(rng: np.random.Generator, n_terms: int, constant: float, bound: float) -> np.ndarray:
    """Coefficients whose non-constant part is at most ``bound`` in absolute value on [-1, 1]²."""
    terms = rng.uniform(-1.0, 1.0, n_terms)
    terms[0] = 0.0
    total = np.abs(terms).sum()
    if total > 0:
        terms *= bound / total
    terms[0] = constant
    return terms


def plan_survey(preset: SurveyPreset, seed: int) -> list[VisitPlan]:
    """Plan every visit of a survey.

    Visits of each band fall on distinct nights spread over ``mjd_span``; all visits are numbered 1, 2, …
    in time order.

    Parameters
    ----------
    preset : `SurveyPreset`
        The survey.
    seed : `int`
        Random seed.

    Returns
    -------
    visits : `list` [`VisitPlan`]
        Sorted by time.

    Raises
    ------
    FieldTooSmallError
        If a dithered focal plane could reach beyond the field radius.
    """
    camera = preset.camera()
    reach_deg = camera.field_radius_arcsec / 3600.0 + preset.dither_arcmin / 60.0
    if reach_deg > preset.field_radius_deg:
        raise FieldTooSmallError(reach_deg, preset.field_radius_deg)
    n_nights = int(np.floor(preset.mjd_span))
    if preset.visits_per_band > n_nights:
        raise ValueError(f"{preset.visits_per_band} visits per band do not fit in {n_nights} nights.")
    rng = np.random.default_rng([seed, 0x5E7])
    n_terms = len(monomial_exponents(PSF_VARIATION_ORDER))
    focal_plane_unit = camera.field_radius_arcsec / camera.plate_scale_arcsec_per_mm
    drafts = []
    for band in preset.bands:
        if band not in preset.zero_point or band not in preset.sky_mag:
            raise KeyError(f"Preset {preset.name!r} has no zero point or sky brightness for band {band!r}.")
        nights = np.sort(rng.choice(n_nights, size=preset.visits_per_band, replace=False))
        for night in nights:
            extinction = rng.uniform(0.0, preset.extinction_max)
            nJy_per_electron = preset.nominal_nJy_per_electron(band) * 10.0 ** (0.4 * extinction)
            # the sky glows above the clouds: its electrons do not suffer the extinction
            sky_nJy = flux_from_mag(preset.sky_mag[band] - rng.uniform(0.0, preset.sky_brightening_max))
            sky_electrons = sky_nJy * preset.pixel_scale**2 / preset.nominal_nJy_per_electron(band)
            ra, dec = offset_positions(
                preset.field_ra, preset.field_dec,
                preset.dither_arcmin / 60.0 * np.sqrt(rng.uniform()), rng.uniform(0.0, 360.0),
            )
            g_amp = rng.uniform(0.0, preset.sky_gradient_max)
            g_dir = rng.uniform(0.0, 2 * np.pi)
            # |g| <= |constant shear| + hypot of the two varying parts <= psf_shear_max
            g_const = 0.5 * preset.psf_shear_max * np.sqrt(rng.uniform())
            g_angle = rng.uniform(0.0, 2 * np.pi)
            g_var = (preset.psf_shear_max - g_const) / np.sqrt(2)
            psf_terms = np.stack([
                _bounded_polynomial(rng, n_terms, 1.0, preset.psf_size_variation),
                _bounded_polynomial(rng, n_terms, g_const * np.cos(g_angle), g_var),
                _bounded_polynomial(rng, n_terms, g_const * np.sin(g_angle), g_var),
            ])
            drafts.append(dict(
                band=band,
                physical_filter=f"SIM-{band}",
                mjd=float(preset.mjd_start + night + rng.uniform(0.05, 0.35)),
                exposure_time=float(preset.exposure_time),
                ra=float(ra),
                dec=float(dec),
                rotation=float(rng.uniform(*preset.rotation_range_deg)),
                seeing=float(rng.uniform(*preset.seeing_range)),
                sky=float(sky_electrons),
                sky_gradient=(float(g_amp * np.cos(g_dir)), float(g_amp * np.sin(g_dir))),
                nJy_per_electron=float(nJy_per_electron),
                psf_terms=psf_terms,
                focal_plane_unit=focal_plane_unit,
            ))
    drafts.sort(key=lambda d: d["mjd"])
    return [VisitPlan(visit=i + 1, **d) for i, d in enumerate(drafts)]


def make_catalog(preset: SurveyPreset, seed: int) -> Table:
    """The sky model of a preset's field (see `~lsst.dia.pipe.sim.catalog.make_sky_catalog`)."""
    return make_sky_catalog(
        preset.sky,
        ra=preset.field_ra,
        dec=preset.field_dec,
        radius_deg=preset.field_radius_deg,
        bands=preset.bands,
        mjd_range=(preset.mjd_start, preset.mjd_start + preset.mjd_span),
        seed=seed,
    )
