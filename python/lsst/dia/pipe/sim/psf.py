"""Spatially varying truncated-Moffat PSFs: exact GalSim profiles, fast vectorised stamps, and Piff twins.

The simulated PSF is an *effective* PSF: atmosphere, optics and pixel response together are a truncated
Moffat profile that is sampled at pixel centres (GalSim ``method="no_pixel"``). Across an image it is
``Moffat(beta, fwhm, trunc).dilate(s(x, y)).shear(g1(x, y), g2(x, y))`` with ``s``, ``g1``, ``g2``
polynomials in the pixel coordinates: exactly the parameterisation of Piff's ``GSObjectModel`` interpolated
by ``BasisPolynomial``, so `MoffatPsfField.to_piff` gives a serialisable Piff PSF that draws the same images.

The truncation (default 3 FWHM) keeps all of the flux inside the kernel stamp, so a stamp normalised to 1
describes a point source of the same total flux: PSF fluxes measured with the stored PSF are unbiased.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import galsim
import numpy as np
import piff

from ..psf import psf_moments_sigma

__all__ = ["MoffatPsfField", "monomial_exponents", "monomials"]

#: Number of sources whose stamps are evaluated in one vectorised block (bounds temporary memory).
_STAMP_BLOCK = 1024


def monomial_exponents(order: int) -> np.ndarray:
    """Exponents ``(i, j)`` of the monomials ``x**i * y**j`` with ``i + j <= order``, in Piff's order.

    Piff's ``BasisPolynomial`` orders its basis row-major over the powers of its first key (``u``) and then
    the second (``v``); this returns the same order so coefficient arrays can be copied across.

    Returns
    -------
    exponents : `numpy.ndarray`
        ``(n_terms, 2)`` integer array.
    """
    if order < 0:
        raise ValueError(f"Polynomial order must be >= 0, got {order}.")
    return np.array([(i, j) for i in range(order + 1) for j in range(order + 1) if i + j <= order], dtype=int)


def monomials(x: np.ndarray, y: np.ndarray, order: int) -> np.ndarray:
    """Values of the monomials of `monomial_exponents` at points, ``(n_points, n_terms)``."""
    return _monomials(x, y, monomial_exponents(order))


def _monomials(x: np.ndarray, y: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    x = np.asarray(x, float).reshape(-1, 1)
    y = np.asarray(y, float).reshape(-1, 1)
    return x ** exponents[:, 0] * y ** exponents[:, 1]


@functools.cache
def _unit_moffat(beta: float, trunc: float) -> galsim.Moffat:
    """Moffat of unit FWHM truncated at ``trunc`` (shared, so GalSim computes its k-space extent once)."""
    return galsim.Moffat(beta=beta, fwhm=1.0, trunc=trunc)


class MoffatPsfField:
    """A truncated Moffat PSF whose size and shear vary as polynomials of the pixel position.

    Implements the `lsst.dia.pipe.psf.PsfModel` protocol.

    Parameters
    ----------
    beta : `float`
        Moffat index.
    fwhm : `float`
        FWHM of the undilated profile [pixels].
    trunc : `float`
        Truncation radius of the undilated profile, in units of ``fwhm``.
    coefficients : `numpy.ndarray`
        ``(3, n_terms)`` coefficients of the dilation ``s``, and shears ``g1``, ``g2`` on the monomials
        ``x**i * y**j`` of `monomial_exponents` (``x``, ``y`` in pixels of this image).
    order : `int`
        Polynomial order of ``coefficients``.
    width, height : `int`
        Size of the image the PSF describes [pixels] (sets the validity region and the stamp size).
    pixel_scale : `float`
        Pixel scale [arcsec/pixel], used for the Piff representation.

    Notes
    -----
    Shears follow GalSim: ``shear(g1, g2)`` is an area-preserving stretch along x for ``g1 > 0``.
    """

    def __init__(
        self,
        beta: float,
        fwhm: float,
        trunc: float,
        coefficients: np.ndarray,
        order: int,
        width: int,
        height: int,
        pixel_scale: float,
    ) -> None:
        self._exponents = monomial_exponents(order)
        coefficients = np.asarray(coefficients, dtype=float)
        if coefficients.shape != (3, len(self._exponents)):
            raise ValueError(
                f"PSF coefficients must have shape (3, {len(self._exponents)}) for order {order}, "
                f"got {coefficients.shape}."
            )
        if not (beta > 1 and fwhm > 0 and trunc > 0):
            raise ValueError(f"Invalid Moffat parameters beta={beta}, fwhm={fwhm}, trunc={trunc}.")
        self.beta = float(beta)
        self.fwhm = float(fwhm)
        self.trunc = float(trunc)
        self.order = int(order)
        self.coefficients = coefficients
        self.width = int(width)
        self.height = int(height)
        self.pixel_scale = float(pixel_scale)
        # Moffat scale radius from the FWHM (independent of truncation, as in GalSim)
        self._r_d = self.fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / self.beta) - 1.0))
        xs = np.linspace(-0.5, self.width - 0.5, 9)
        ys = np.linspace(-0.5, self.height - 0.5, 9)
        gx, gy = np.meshgrid(xs, ys)
        s, g1, g2 = self.parameters(gx.ravel(), gy.ravel())
        g = np.hypot(g1, g2)
        if np.any(s <= 0) or np.any(g >= 1):
            raise ValueError("PSF polynomials give a non-positive dilation or |g| >= 1 inside the image.")
        # largest semi-axis of the sheared, dilated truncation circle, plus half a pixel of sub-pixel offset
        radius = float(np.max(self.trunc * self.fwhm * s * (1 + g) / np.sqrt(1 - g**2))) + 0.5
        self._size = 2 * int(np.ceil(radius)) + 1

    @classmethod
    def from_function(
        cls,
        func: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
        width: int,
        height: int,
        *,
        beta: float,
        fwhm: float,
        trunc: float = 3.0,
        order: int = 2,
        pixel_scale: float = 0.2,
    ) -> MoffatPsfField:
        """Fit the polynomials to ``func(x, y) -> (s, g1, g2)`` sampled over the image.

        Exact when ``func`` is itself a polynomial of degree <= ``order`` in ``x`` and ``y`` (e.g. a
        polynomial of focal-plane or tangent-plane coordinates, which are linear in pixels).

        Parameters
        ----------
        func : callable
            Vectorised; pixel coordinates -> dilation, shear g1, shear g2.
        width, height : `int`
            Image size [pixels].
        beta, fwhm, trunc, order, pixel_scale
            As for the constructor.
        """
        exponents = monomial_exponents(order)
        n = order + 3
        gx, gy = np.meshgrid(np.linspace(0, width - 1, n), np.linspace(0, height - 1, n))
        design = _monomials(gx.ravel(), gy.ravel(), exponents)
        norm = np.abs(design).max(axis=0)
        values = np.stack([np.asarray(v, float).ravel() for v in func(gx.ravel(), gy.ravel())])
        solution, *_ = np.linalg.lstsq(design / norm, values.T, rcond=None)
        return cls(beta, fwhm, trunc, (solution / norm[:, None]).T, order, width, height, pixel_scale)

    @property
    def size(self) -> int:
        """Side of the kernel stamps [pixels]; holds the whole truncated profile anywhere in the image."""
        return self._size

    def parameters(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dilation ``s`` and shears ``g1``, ``g2`` at pixel positions (vectorised, 1-d results)."""
        values = _monomials(x, y, self._exponents) @ self.coefficients.T
        return values[:, 0], values[:, 1], values[:, 2]

    def fwhm_at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """FWHM of the (circularised) profile at pixel positions [pixels]."""
        return self.fwhm * self.parameters(x, y)[0]

    def profile(self, x: float, y: float) -> galsim.GSObject:
        """Exact GalSim profile at pixel ``(x, y)``, in pixel units, unit flux.

        It already includes the pixel response: draw it (or its convolution with a galaxy) with
        ``method="no_pixel"`` on an image of pixel scale 1.
        """
        s, g1, g2 = (float(v[0]) for v in self.parameters(x, y))
        return _unit_moffat(self.beta, self.trunc).dilate(self.fwhm * s).shear(g1=g1, g2=g2)

    def _evaluate(
        self, s: np.ndarray, g1: np.ndarray, g2: np.ndarray, dx: np.ndarray, dy: np.ndarray
    ) -> np.ndarray:
        """Normalised stamps for profile parameters and sub-pixel centre offsets (all 1-d, length n)."""
        r = np.arange(self._size, dtype=float) - self._size // 2
        xx = r[None, None, :] - dx[:, None, None]
        yy = r[None, :, None] - dy[:, None, None]
        # undo the shear (GalSim matrix [[1+g1, g2], [g2, 1-g1]] / sqrt(1-g^2)) and the dilation
        f = (1.0 / (np.sqrt(1.0 - g1**2 - g2**2) * s))[:, None, None]
        g1 = g1[:, None, None]
        g2 = g2[:, None, None]
        u = f * ((1.0 - g1) * xx - g2 * yy)
        v = f * (-g2 * xx + (1.0 + g1) * yy)
        rsq = u**2 + v**2
        stamps = np.where(rsq <= (self.trunc * self.fwhm) ** 2, (1.0 + rsq / self._r_d**2) ** (-self.beta), 0.0)
        return stamps / stamps.sum(axis=(1, 2), keepdims=True)

    def draw_stamps(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unit-flux point-source stamps at sub-pixel positions (vectorised).

        Parameters
        ----------
        x, y : `numpy.ndarray`
            Pixel positions of the sources.

        Returns
        -------
        stamps : `numpy.ndarray`
            ``(n, size, size)`` float64 stamps, each summing to 1.
        x_center, y_center : `numpy.ndarray`
            Integer pixel on which each stamp's central pixel lies (``floor(x + 0.5)``).
        """
        x = np.atleast_1d(np.asarray(x, float))
        y = np.atleast_1d(np.asarray(y, float))
        xc = np.floor(x + 0.5).astype(np.int64)
        yc = np.floor(y + 0.5).astype(np.int64)
        stamps = np.empty((len(x), self._size, self._size))
        for start in range(0, len(x), _STAMP_BLOCK):
            sl = slice(start, start + _STAMP_BLOCK)
            s, g1, g2 = self.parameters(x[sl], y[sl])
            stamps[sl] = self._evaluate(s, g1, g2, x[sl] - xc[sl], y[sl] - yc[sl])
        return stamps, xc, yc

    def kernel_image(self, x: float, y: float) -> np.ndarray:
        """PSF at ``(x, y)`` as a ``(size, size)`` stamp summing to 1, centred on its central pixel."""
        s, g1, g2 = self.parameters(x, y)
        zero = np.zeros(1)
        return self._evaluate(s, g1, g2, zero, zero)[0]

    def sigma(self, x: float, y: float) -> float:
        """Gaussian-equivalent sigma at ``(x, y)`` [pixels], from the stamp's second moments."""
        return psf_moments_sigma(self.kernel_image(x, y))

    def grid_stamps(self, x_nodes: np.ndarray, y_nodes: np.ndarray) -> np.ndarray:
        """Kernel stamps on a grid, ``(len(y_nodes), len(x_nodes), size, size)``, e.g. one per coadd cell."""
        gx, gy = np.meshgrid(np.asarray(x_nodes, float), np.asarray(y_nodes, float))
        s, g1, g2 = self.parameters(gx.ravel(), gy.ravel())
        zero = np.zeros(gx.size)
        return self._evaluate(s, g1, g2, zero, zero).reshape(gx.shape + (self._size, self._size))

    def to_piff(self) -> piff.SimplePSF:
        """A Piff PSF drawing the same images (``GSObjectModel`` + ``BasisPolynomial``, coefficients set).

        The Piff model works in arcsec (WCS ``{0: galsim.PixelScale(pixel_scale)}``, no pointing, no stars),
        as lsst-images' ``PiffWrapper`` requires; wrap it with ``stamp_size=self.size``.
        """
        scale = self.pixel_scale
        gsobj = galsim.Moffat(beta=self.beta, fwhm=self.fwhm * scale, trunc=self.trunc * self.fwhm * scale)
        model = piff.GSObjectModel(gsobj, include_pixel=False)
        interp = piff.BasisPolynomial(self.order)
        # Piff interpolates in u = x * scale, v = y * scale [arcsec]
        interp.q = self.coefficients / scale ** self._exponents.sum(axis=1)[None, :]
        psf = piff.SimplePSF(model, interp)
        psf.wcs = {0: galsim.PixelScale(scale)}
        psf.pointing = None
        psf.stars = []
        psf.chisq = 0.0
        psf.last_delta_chisq = 0.0
        psf.dof = 0
        psf.nremoved = 0
        psf.niter = 0
        psf.set_num(None)
        return psf
