"""Synthetic star-field image pairs with known PSFs, kernels and transients (for tests and benchmarks).

Stars are sampled circular Gaussians drawn per star, so a science PSF of width ``σ_s(x, y)`` and a template
PSF ``σ_t`` are related by the known kernel: a Gaussian of width ``sqrt(σ_s² - σ_t²)`` and sum
``science_scale / template_scale``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from astropy.wcs import WCS

from ..exposure import Exposure
from ..psf import GaussianPsf, GridPsf

__all__ = ["SyntheticPair", "render_gaussian_sources", "star_field_pair", "tan_wcs"]


def tan_wcs(shape: tuple[int, int], scale_arcsec: float = 0.2, ra: float = 150.0, dec: float = 2.0,
            rotation_deg: float = 0.0, crpix: tuple[float, float] | None = None) -> WCS:
    """A TAN WCS of array pixels (0-based) with the given pixel scale and rotation, centred on the image."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    theta = np.deg2rad(rotation_deg)
    s = scale_arcsec / 3600.0
    wcs.wcs.cd = s * np.array([[-np.cos(theta), np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    wcs.wcs.crpix = list(crpix) if crpix is not None else [0.5 * (nx - 1) + 1, 0.5 * (ny - 1) + 1]
    wcs.wcs.crval = [ra, dec]
    return wcs


def render_gaussian_sources(shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray,
                            sigma: np.ndarray | float, half: int | None = None) -> np.ndarray:
    """Image of sampled circular Gaussians (each summing to its flux over its stamp), float32.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)``.
    x, y : `numpy.ndarray`
        Source centres [pixels].
    flux : `numpy.ndarray`
        Fluxes [image units].
    sigma : `numpy.ndarray` or `float`
        Gaussian sigma per source (or one for all) [pixels].
    half : `int`, optional
        Stamp half side; default ``ceil(6 × max sigma)``.
    """
    x, y, flux = (np.atleast_1d(np.asarray(a, float)) for a in (x, y, flux))
    sigma = np.broadcast_to(np.asarray(sigma, float), x.shape)
    if half is None:
        half = int(np.ceil(6 * sigma.max())) if sigma.size else 1
    ny, nx = shape
    cx, cy = np.rint(x).astype(int), np.rint(y).astype(int)
    offsets = np.arange(-half, half + 1)
    dx = (cx[:, None] + offsets - x[:, None])[:, None, :]
    dy = (cy[:, None] + offsets - y[:, None])[:, :, None]
    stamps = np.exp(-0.5 * (dx**2 + dy**2) / sigma[:, None, None] ** 2)
    stamps *= (flux / stamps.sum(axis=(1, 2)))[:, None, None]
    rows = np.broadcast_to((cy[:, None] + offsets)[:, :, None], stamps.shape)
    cols = np.broadcast_to((cx[:, None] + offsets)[:, None, :], stamps.shape)
    on = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    image = np.bincount(rows[on] * nx + cols[on], weights=stamps[on], minlength=ny * nx)
    return image.reshape(shape).astype(np.float32)


@dataclasses.dataclass
class SyntheticPair:
    """A science/template pair and its truth.

    Attributes
    ----------
    science, template : `~lsst.dia.pipe.exposure.Exposure`
        Images [nJy] with constant variance planes and zero masks.
    star_x, star_y, star_flux : `numpy.ndarray`
        Static stars [pixels, nJy] (template flux = star_flux × template_scale).
    transient_x, transient_y, transient_flux : `numpy.ndarray`
        Sources in the science image only [pixels, nJy].
    sigma_science : `Callable`
        ``sigma(x, y)`` of the science PSF [pixels].
    sigma_template : `float`
        Template PSF sigma [pixels].
    template_scale : `float`
        Template flux scale (the true kernel sum is ``1 / template_scale``).
    """

    science: Exposure
    template: Exposure
    star_x: np.ndarray
    star_y: np.ndarray
    star_flux: np.ndarray
    transient_x: np.ndarray
    transient_y: np.ndarray
    transient_flux: np.ndarray
    sigma_science: Callable[[np.ndarray, np.ndarray], np.ndarray]
    sigma_template: float
    template_scale: float

    def true_kernel(self, x: float, y: float, half: int) -> np.ndarray:
        """The kernel matching the template to the science image at ``(x, y)`` (``(2 half + 1)²``)."""
        sigma_k = float(np.sqrt(self.sigma_science(x, y) ** 2 - self.sigma_template**2))
        offsets = np.arange(-half, half + 1)
        g = np.exp(-0.5 * (offsets[:, None] ** 2 + offsets[None, :] ** 2) / sigma_k**2)
        return g / g.sum() / self.template_scale


def star_field_pair(
    shape: tuple[int, int] = (1024, 1024),
    n_stars: int = 400,
    sigma_science: float | Callable[[np.ndarray, np.ndarray], np.ndarray] = 2.1,
    sigma_template: float = 1.7,
    noise_science: float = 10.0,
    noise_template: float = 5.0,
    snr_range: tuple[float, float] = (15.0, 600.0),
    template_scale: float = 1.0,
    transients: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    seed: int = 1,
) -> SyntheticPair:
    """Simulate an aligned science/template star-field pair with white noise.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)``.
    n_stars : `int`
        Static stars, uniformly placed, fluxes log-uniform in S/N on the science image.
    sigma_science : `float` or `Callable`
        Science PSF sigma [pixels], constant or ``sigma(x, y)`` (then the PSF is a 5×5 `GridPsf`).
    sigma_template : `float`
        Template PSF sigma [pixels].
    noise_science, noise_template : `float`
        Per-pixel noise [nJy].
    snr_range : `tuple` [`float`, `float`]
        Range of star S/N on the science image (PSF-flux S/N with sky noise only).
    template_scale : `float`
        The template's stars are ``template_scale`` times brighter.
    transients : `tuple` of three `numpy.ndarray`, optional
        ``(x, y, flux)`` of sources added to the science image only.
    seed : `int`
        Random seed.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    if callable(sigma_science):
        sig_fn = sigma_science
    else:
        def sig_fn(x, y, s=float(sigma_science)):
            return np.full_like(np.asarray(x, float), s)

    x = rng.uniform(8, nx - 9, n_stars)
    y = rng.uniform(8, ny - 9, n_stars)
    sig = sig_fn(x, y)
    snr = np.exp(rng.uniform(np.log(snr_range[0]), np.log(snr_range[1]), n_stars))
    flux = snr * noise_science * np.sqrt(4 * np.pi * sig**2)
    tx, ty, tf = (np.asarray(a, float) for a in (transients or (np.zeros(0), np.zeros(0), np.zeros(0))))
    science = render_gaussian_sources(shape, np.r_[x, tx], np.r_[y, ty], np.r_[flux, tf], np.r_[sig, sig_fn(tx, ty)])
    science += rng.normal(0, noise_science, shape).astype(np.float32)
    template = render_gaussian_sources(shape, x, y, flux * template_scale, sigma_template)
    template += rng.normal(0, noise_template, shape).astype(np.float32)
    if callable(sigma_science):
        psf_s = GridPsf.from_function(lambda a, b: GaussianPsf(float(sig_fn(a, b)), size=31).kernel_image(a, b),
                                      (0, nx - 1), (0, ny - 1), 5, 5)
    else:
        psf_s = GaussianPsf(float(sigma_science))
    wcs = tan_wcs(shape)

    def exposure(image: np.ndarray, noise: float, psf) -> Exposure:
        return Exposure(image=image, variance=np.full(shape, noise**2, np.float32), mask=np.zeros(shape, np.uint32),
                        psf=psf, wcs=wcs, band="r")

    return SyntheticPair(
        science=exposure(science, noise_science, psf_s),
        template=exposure(template, noise_template, GaussianPsf(sigma_template)),
        star_x=x, star_y=y, star_flux=flux, transient_x=tx, transient_y=ty, transient_flux=tf,
        sigma_science=sig_fn, sigma_template=sigma_template, template_scale=template_scale,
    )
