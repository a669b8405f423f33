"""Render calibrated visit images (calexps) and template coadds of the simulated sky, with truth.

Point sources (stars, variables, transients) are added as vectorised PSF stamps; galaxies are GalSim Sersic
profiles, mapped from the sky to the pixel frame with the local WCS Jacobian and convolved with the local
PSF. Both functions are pure (arrays in, arrays out) and seeded, so they can be mapped over detectors or
patches in worker processes.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Sequence

import galsim
import numpy as np
import piff
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from ..exposure import Exposure
from ..imaging.camera import DetectorLayout
from ..masks import MaskBit
from .artifacts import add_bad_columns, add_cosmic_rays, apply_saturation
from .catalog import template_flux, true_flux
from .psf import MoffatPsfField, monomials
from .survey import PSF_VARIATION_ORDER, SurveyPreset, VisitPlan

__all__ = [
    "RenderedCalexp",
    "RenderedCoadd",
    "detector_psf",
    "template_psf",
    "draw_scene",
    "render_visit_detector",
    "render_coadd",
]

#: Sersic profiles are truncated at this many half-light radii (all their flux lands in the stamp).
SERSIC_TRUNCATION = 5.0
#: Point sources drawn per vectorised block.
_POINT_BLOCK = 2048


@dataclasses.dataclass
class RenderedCalexp:
    """A simulated calibrated visit image of one detector, with its truth.

    Attributes
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` float32, sky-subtracted [electrons].
    variance : `numpy.ndarray`
        ``(ny, nx)`` float32 variance of the noise that was added [electrons²].
    mask : `numpy.ndarray`
        ``(ny, nx)`` uint32 `~lsst.dia.pipe.masks.MaskBit` bits (SATURATED, BAD, COSMIC_RAY, INTERPOLATED).
    psf : `~lsst.dia.pipe.sim.psf.MoffatPsfField`
        The exact PSF (a `~lsst.dia.pipe.psf.PsfModel`; ``psf.to_piff()`` for storage).
    wcs : `astropy.wcs.WCS`
        Array pixel -> ICRS [deg].
    nJy_per_electron : `float`
        Photometric calibration.
    plan : `~lsst.dia.pipe.sim.survey.VisitPlan`
        The visit.
    detector : `~lsst.dia.pipe.imaging.camera.DetectorLayout`
        The detector.
    truth : `astropy.table.Table`
        Objects whose centre is on the image: ``id``, ``objectType``, ``hostId``, ``ra``, ``dec`` [deg],
        ``x``, ``y`` [pixels], ``trueFlux``, ``templateFlux``, ``diffFlux`` (= true - template) [nJy],
        ``trueInstFlux`` [electrons].
    cosmic_rays : `astropy.table.Table`
        ``x``, ``y``, ``length`` [pixels], ``charge`` [electrons], ``masked`` per cosmic-ray track (unmasked
        ones are left in the pixels, unflagged).
    bad_columns : `astropy.table.Table`
        ``x``, ``y_start`` per bad column.
    """

    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    psf: MoffatPsfField
    wcs: WCS
    nJy_per_electron: float
    plan: VisitPlan
    detector: DetectorLayout
    truth: Table
    cosmic_rays: Table
    bad_columns: Table

    def piff_psf(self) -> piff.SimplePSF:
        """Serialisable Piff twin of the PSF; wrap with ``PiffWrapper(..., stamp_size=self.psf.size)``."""
        return self.psf.to_piff()

    def to_exposure(self) -> Exposure:
        """The calibrated `~lsst.dia.pipe.exposure.Exposure` (nJy, nJy²)."""
        c = np.float32(self.nJy_per_electron)
        return Exposure(self.image * c, self.variance * c**2, self.mask.copy(), self.psf, self.wcs,
                        band=self.plan.band, mjd=self.plan.mjd)


@dataclasses.dataclass
class RenderedCoadd:
    """A simulated template coadd (one patch, one band), with its truth.

    Attributes
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` float32 [nJy]; 0 where there is no data.
    variance : `numpy.ndarray`
        ``(ny, nx)`` float32 [nJy²].
    mask : `numpy.ndarray`
        ``(ny, nx)`` uint32 `~lsst.dia.pipe.masks.MaskBit` bits: NO_DATA outside the simulated field,
        SATURATED where single visits saturate.
    psf : `~lsst.dia.pipe.sim.psf.MoffatPsfField`
        Template PSF in this array's pixel frame: ``psf.kernel_image(x, y)`` is the stamp at array pixel
        ``(x, y)``; ``psf.grid_stamps(x_nodes, y_nodes)`` fills a cell PSF.
    wcs : `astropy.wcs.WCS`
        The WCS the coadd was rendered on.
    band : `str`
        Band.
    truth : `astropy.table.Table`
        Objects whose centre is on the image: ``id``, ``objectType``, ``hostId``, ``ra``, ``dec``, ``x``,
        ``y``, ``templateFlux`` [nJy].
    depth_visits : `float`
        Equivalent number of average visits.
    """

    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    psf: MoffatPsfField
    wcs: WCS
    band: str
    truth: Table
    depth_visits: float

    def to_exposure(self) -> Exposure:
        """The coadd as an `~lsst.dia.pipe.exposure.Exposure`."""
        return Exposure(self.image, self.variance, self.mask.copy(), self.psf, self.wcs, band=self.band)


def _seed_list(seed: int | Sequence[int]) -> list[int]:
    return [int(s) for s in np.atleast_1d(seed)]


def _sky_offsets_arcsec(
    ra: np.ndarray, dec: np.ndarray, ra0: np.ndarray | float, dec0: np.ndarray | float
) -> tuple[np.ndarray, np.ndarray]:
    """Local (east, north) offsets of ``(ra, dec)`` from ``(ra0, dec0)`` [arcsec] (small-offset, RA-wrap safe)."""
    dra = (np.asarray(ra) - ra0 + 180.0) % 360.0 - 180.0
    return dra * np.cos(np.deg2rad(dec0)) * 3600.0, (np.asarray(dec) - dec0) * 3600.0


def _local_jacobians(wcs: WCS, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(n, 2, 2)`` Jacobians d(east, north)/d(x, y) [arcsec/pixel] at pixel positions."""
    ra, dec = wcs.pixel_to_world_values(x, y)
    ra_x, dec_x = wcs.pixel_to_world_values(x + 1.0, y)
    ra_y, dec_y = wcs.pixel_to_world_values(x, y + 1.0)
    ex, nx_ = _sky_offsets_arcsec(ra_x, dec_x, ra, dec)
    ey, ny_ = _sky_offsets_arcsec(ra_y, dec_y, ra, dec)
    return np.stack([np.stack([ex, ey], -1), np.stack([nx_, ny_], -1)], -2)


def _draw_points(image: np.ndarray, psf: MoffatPsfField, x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> None:
    ny, nx = image.shape
    r = np.arange(psf.size) - psf.size // 2
    flat_image = image.reshape(-1)
    for start in range(0, len(x), _POINT_BLOCK):
        sl = slice(start, start + _POINT_BLOCK)
        stamps, xc, yc = psf.draw_stamps(x[sl], y[sl])
        xx = xc[:, None, None] + r[None, None, :]
        yy = yc[:, None, None] + r[None, :, None]
        inside = (xx >= 0) & (xx < nx) & (yy >= 0) & (yy < ny)
        values = stamps * flux[sl, None, None]
        np.add.at(flat_image, (yy * nx + xx)[inside], values[inside].astype(image.dtype))


@functools.cache
def _unit_sersic(n: float) -> galsim.Sersic:
    """Sersic profile of unit half-light radius, truncated (dilating it keeps GalSim's caches warm)."""
    return galsim.Sersic(n=n, half_light_radius=1.0, trunc=SERSIC_TRUNCATION)


def _galaxy_stamp_radius(galaxies: Table, pixel_scale: float, psf_size: int) -> np.ndarray:
    """Half-side [pixels] of stamps holding the whole truncated, sheared, PSF-convolved galaxies."""
    hlr = np.asarray(galaxies["halfLightRadius"], float)
    g = np.hypot(np.asarray(galaxies["shapeG1"], float), np.asarray(galaxies["shapeG2"], float))
    major = SERSIC_TRUNCATION * hlr * (1 + g) / np.sqrt(1 - g**2)
    return np.ceil(major / pixel_scale + psf_size / 2 + 2).astype(int)


def _draw_galaxies(
    image: np.ndarray, wcs: WCS, psf: MoffatPsfField, galaxies: Table, x: np.ndarray, y: np.ndarray,
    flux: np.ndarray, radius: np.ndarray,
) -> None:
    canvas = galsim.Image(image, xmin=0, ymin=0, scale=1.0)
    inverse = np.linalg.inv(_local_jacobians(wcs, x, y))
    hlr = np.asarray(galaxies["halfLightRadius"], float)
    g1 = np.asarray(galaxies["shapeG1"], float)
    g2 = np.asarray(galaxies["shapeG2"], float)
    n_sersic = np.asarray(galaxies["sersicIndex"], float)
    xc = np.floor(x + 0.5).astype(int)
    yc = np.floor(y + 0.5).astype(int)
    with warnings.catch_warnings():
        # truncated Sersic and truncated Moffat both have hard edges; the DFT is accurate enough here
        warnings.simplefilter("ignore", galsim.GalSimWarning)
        for i in range(len(x)):
            r = radius[i]
            bounds = galsim.BoundsI(xc[i] - r, xc[i] + r, yc[i] - r, yc[i] + r) & canvas.bounds
            if not bounds.isDefined():
                continue
            # sky (east, north) profile -> pixel frame through the inverse local Jacobian
            gal = _unit_sersic(float(n_sersic[i])).dilate(hlr[i]).shear(g1=g1[i], g2=g2[i])
            gal = gal.transform(*inverse[i].ravel()).withFlux(float(flux[i]))
            profile = galsim.Convolve(gal, psf.profile(x[i], y[i]), real_space=False)
            profile.drawImage(canvas[bounds], method="no_pixel", add_to_image=True,
                              center=galsim.PositionD(x[i], y[i]))


def draw_scene(
    shape: tuple[int, int], wcs: WCS, psf: MoffatPsfField, objects: Table, flux: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noiseless image of the objects.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image.
    wcs : `astropy.wcs.WCS`
        Array pixel -> sky.
    psf : `~lsst.dia.pipe.sim.psf.MoffatPsfField`
        PSF in this image's pixel frame.
    objects : `astropy.table.Table`
        Sky model (`~lsst.dia.pipe.sim.catalog.make_sky_catalog`).
    flux : `numpy.ndarray`
        Total flux of each object in the image's units (e.g. electrons); objects with flux <= 0 are skipped.

    Returns
    -------
    image : `numpy.ndarray`
        ``shape`` float32 image; every object whose light reaches the image is drawn, including those
        centred outside it.
    x, y : `numpy.ndarray`
        Pixel positions of all objects.
    """
    ny, nx = shape
    x, y = (np.asarray(v, float) for v in wcs.world_to_pixel_values(np.asarray(objects["ra"], float),
                                                                      np.asarray(objects["dec"], float)))
    flux = np.asarray(flux, float)
    galaxy = np.asarray(objects["objectType"]) == "galaxy"
    pixel_scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    margin = np.full(len(objects), psf.size // 2 + 1)
    margin[galaxy] = _galaxy_stamp_radius(objects[galaxy], pixel_scale, psf.size)
    near = (x > -margin) & (x < nx - 1 + margin) & (y > -margin) & (y < ny - 1 + margin) & (flux > 0)
    image = np.zeros(shape, dtype=np.float32)
    points = near & ~galaxy
    _draw_points(image, psf, x[points], y[points], flux[points])
    gals = near & galaxy
    _draw_galaxies(image, wcs, psf, objects[gals], x[gals], y[gals], flux[gals], margin[gals])
    return image, x, y


def _truth(objects: Table, x: np.ndarray, y: np.ndarray, shape: tuple[int, int], **fluxes: np.ndarray) -> Table:
    ny, nx = shape
    on = (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    truth = objects[on]["id", "objectType", "hostId", "ra", "dec"]
    truth["x"] = x[on]
    truth["y"] = y[on]
    for name, values in fluxes.items():
        truth[name] = np.asarray(values)[on]
    return truth


def detector_psf(plan: VisitPlan, preset: SurveyPreset, detector: DetectorLayout) -> MoffatPsfField:
    """The PSF of one detector of a visit (the visit's focal-plane polynomial seen in detector pixels)."""
    camera = preset.camera()

    def parameters(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fx, fy = camera.pixel_to_focal_plane(detector, x, y)
        values = monomials(fx / plan.focal_plane_unit, fy / plan.focal_plane_unit, PSF_VARIATION_ORDER)
        values = values @ plan.psf_terms.T
        return values[:, 0], values[:, 1], values[:, 2]

    return MoffatPsfField.from_function(
        parameters, detector.nx, detector.ny, beta=preset.psf_beta, fwhm=plan.seeing / preset.pixel_scale,
        trunc=preset.psf_trunc, order=PSF_VARIATION_ORDER, pixel_scale=preset.pixel_scale,
    )


def template_psf(wcs: WCS, shape: tuple[int, int], band: str, preset: SurveyPreset, seed: int) -> MoffatPsfField:
    """The template PSF on a coadd pixel grid.

    Its FWHM (``preset.template_seeing`` at the field centre) and shear vary linearly with the position on
    the sky, so overlapping patches and tracts see the same PSF (up to their pixel-grid orientation).
    """
    ny, nx = shape
    scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    rng = np.random.default_rng([seed, 0x7E3, *band.encode()])
    size_slope = rng.uniform(-1.0, 1.0, 2) * preset.template_psf_variation / 2
    shear = rng.uniform(-1.0, 1.0, 4) * 0.01
    radius = preset.field_radius_deg * 3600.0

    def parameters(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ra, dec = wcs.pixel_to_world_values(x, y)
        east, north = _sky_offsets_arcsec(ra, dec, preset.field_ra, preset.field_dec)
        u, v = east / radius, north / radius
        return (1.0 + size_slope[0] * u + size_slope[1] * v,
                shear[0] + shear[1] * u, shear[2] + shear[3] * v)

    return MoffatPsfField.from_function(
        parameters, nx, ny, beta=preset.psf_beta, fwhm=preset.template_seeing / scale,
        trunc=preset.psf_trunc, order=1, pixel_scale=scale,
    )


def render_visit_detector(
    plan: VisitPlan,
    detector: DetectorLayout,
    objects: Table,
    preset: SurveyPreset,
    seed: int,
    *,
    noise: bool = True,
    artifacts: bool = True,
) -> RenderedCalexp:
    """Render the calexp of one detector of one visit.

    The image is what instrument signature removal and sky subtraction leave: objects (at their fluxes at
    the visit's time) + a small smooth sky-subtraction residual + Gaussian noise of variance
    ``signal + sky + read_noise²`` [electrons²] (exactly the variance plane), clipped at the full well
    (SATURATED), plus bad columns and cosmic rays when ``artifacts``.

    Parameters
    ----------
    plan : `~lsst.dia.pipe.sim.survey.VisitPlan`
        The visit.
    detector : `~lsst.dia.pipe.imaging.camera.DetectorLayout`
        One of ``preset.camera().detectors``.
    objects : `astropy.table.Table`
        The sky model.
    preset : `~lsst.dia.pipe.sim.survey.SurveyPreset`
        The survey.
    seed : `int`
        Survey seed; noise, residuals and cosmic rays are seeded with ``(seed, visit, detector)``, bad
        columns with ``(seed, detector)`` only (they repeat in every visit).
    noise : `bool`
        Add noise; without it the image is the noiseless model (the variance plane is unchanged).
    artifacts : `bool`
        Add bad columns and cosmic rays.
    """
    ny, nx = detector.ny, detector.nx
    camera = preset.camera()
    wcs = camera.detector_wcs(plan.ra, plan.dec, plan.rotation, detector)
    psf = detector_psf(plan, preset, detector)
    flux_nJy = true_flux(objects, plan.band, plan.mjd)
    signal, x, y = draw_scene((ny, nx), wcs, psf, objects, flux_nJy / plan.nJy_per_electron)

    fx, _ = camera.pixel_to_focal_plane(detector, np.arange(nx), 0.0)
    _, fy = camera.pixel_to_focal_plane(detector, 0.0, np.arange(ny))
    u = (fx / plan.focal_plane_unit).astype(np.float32)[None, :]
    v = (fy / plan.focal_plane_unit).astype(np.float32)[:, None]
    sky = plan.sky * (1.0 + plan.sky_gradient[0] * u + plan.sky_gradient[1] * v)

    base = [seed, plan.visit, detector.id]
    residual_terms = np.random.default_rng(base + [1]).normal(0.0, 0.5, 4) * plan.sky * preset.sky_residual
    lx = np.linspace(-1.0, 1.0, nx, dtype=np.float32)[None, :]
    ly = np.linspace(-1.0, 1.0, ny, dtype=np.float32)[:, None]
    residual = residual_terms[0] + residual_terms[1] * lx + residual_terms[2] * ly + residual_terms[3] * lx * ly

    variance = (np.maximum(signal, 0.0) + sky + np.float32(preset.read_noise**2)).astype(np.float32)
    image = (signal + residual).astype(np.float32)
    if noise:
        rng = np.random.default_rng(base + [2])
        image += np.sqrt(variance) * rng.standard_normal((ny, nx), dtype=np.float32)
    mask = np.zeros((ny, nx), dtype=np.uint32)
    apply_saturation(image, mask, np.float32(preset.saturation) - sky)

    cosmic_rays = Table({name: np.zeros(0) for name in ("x", "y", "length", "charge")})
    cosmic_rays["masked"] = np.zeros(0, bool)
    bad_columns = Table({"x": np.zeros(0, np.int64), "y_start": np.zeros(0, np.int64)})
    if artifacts:
        bad_columns = add_bad_columns(image, mask, preset.bad_columns_per_detector,
                                      np.random.default_rng([seed, detector.id, 4]))
        rng = np.random.default_rng(base + [3])
        n_rays = rng.poisson(preset.cosmic_rays_per_megapixel * nx * ny / 1e6)
        cosmic_rays = add_cosmic_rays(image, mask, n_rays, rng,
                                      unmasked_fraction=preset.cosmic_ray_unmasked_fraction)

    template = template_flux(objects, plan.band)
    truth = _truth(objects, x, y, (ny, nx), trueFlux=flux_nJy, templateFlux=template,
                   diffFlux=flux_nJy - template, trueInstFlux=flux_nJy / plan.nJy_per_electron)
    return RenderedCalexp(image=image, variance=variance, mask=mask, psf=psf, wcs=wcs,
                          nJy_per_electron=plan.nJy_per_electron, plan=plan, detector=detector, truth=truth,
                          cosmic_rays=cosmic_rays, bad_columns=bad_columns)


def render_coadd(
    wcs: WCS,
    shape: tuple[int, int],
    band: str,
    objects: Table,
    preset: SurveyPreset,
    seed: int | Sequence[int],
    *,
    noise: bool = True,
) -> RenderedCoadd:
    """Render a template coadd on a given pixel grid (e.g. one patch of one tract).

    The template holds the static sky (stars, galaxies, hosts, variables at their mean flux), no
    transients, with the noise of ``preset.template_depth_visits`` average visits and the template PSF
    (`template_psf`). Pixels outside the simulated field are NO_DATA (image 0).

    Parameters
    ----------
    wcs : `astropy.wcs.WCS`
        Array pixel -> sky of the coadd grid.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)``.
    band : `str`
        Band.
    objects : `astropy.table.Table`
        The sky model.
    preset : `~lsst.dia.pipe.sim.survey.SurveyPreset`
        The survey.
    seed : `int` or sequence of `int`
        Noise seed: pass a distinct one per patch, e.g. ``(survey_seed, tract, patch)``; the template PSF
        depends only on its first element (the survey seed) and the band.
    noise : `bool`
        Add noise.
    """
    seeds = _seed_list(seed)
    ny, nx = shape
    psf = template_psf(wcs, shape, band, preset, seeds[0])
    flux = template_flux(objects, band)
    signal, x, y = draw_scene(shape, wcs, psf, objects, flux)

    c = preset.nominal_nJy_per_electron(band)
    n_visits = preset.template_depth_visits
    sky = preset.nominal_sky_electrons(band)
    variance = ((np.maximum(signal, 0.0) * c + np.float32(c**2 * (sky + preset.read_noise**2))) / n_visits)
    variance = variance.astype(np.float32)
    image = signal.copy()
    if noise:
        rng = np.random.default_rng([*seeds, 0xC0AD, *band.encode()])
        image += np.sqrt(variance) * rng.standard_normal(shape, dtype=np.float32)
    mask = np.zeros(shape, dtype=np.uint32)
    apply_saturation(image, mask, np.float32(c * (preset.saturation - sky)))

    scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    xc, yc = (float(v) for v in wcs.world_to_pixel_values(preset.field_ra, preset.field_dec))
    radius = preset.field_radius_deg * 3600.0 / scale
    outside = (np.arange(nx)[None, :] - xc) ** 2 + (np.arange(ny)[:, None] - yc) ** 2 > radius**2
    image[outside] = 0.0
    mask[outside] |= np.uint32(MaskBit.NO_DATA)

    truth = _truth(objects, x, y, shape, templateFlux=flux)
    return RenderedCoadd(image=image, variance=variance, mask=mask, psf=psf, wcs=wcs, band=band, truth=truth,
                         depth_visits=n_visits)
