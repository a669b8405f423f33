"""Celestial WCS of survey images: TAN and TAN-SIP as they are, TPV converted to TAN-SIP by a fit.

`lsst.images` projections (and the rest of dia_pipe) take TAN-SIP. Community-pipeline images (DECam, …)
carry SCAMP's TPV polynomial instead, so TPV is evaluated here from its ``PVi_k`` keywords (our own
implementation of the convention: a polynomial in the intermediate world coordinates, then the gnomonic
projection) and re-expressed as TAN-SIP by vectorised linear least squares on a pixel grid:

1. the new tangent point is the TPV sky position of the image centre, and the SIP reference pixel is that
   centre (so the fit is local and well conditioned, and needs no constant term);
2. every grid point's TPV sky position is projected (TAN) about the new tangent point;
3. a polynomial without constant term is fitted to the projected coordinates: its linear part is the new CD
   matrix, its higher orders, mapped through the inverse CD, are the SIP ``A``/``B`` coefficients; the
   inverse ``AP``/``BP`` polynomials are fitted the same way;
4. the SIP order grows from the TPV order until the largest position error on a denser check grid (sky
   separation in pixels) is below the tolerance, 0.01 px by default.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from .errors import MissingWcsError, UnsupportedProjectionError, WcsConversionError

__all__ = [
    "TPV_TERMS",
    "TpvProjection",
    "WcsSolution",
    "tan_project",
    "tan_deproject",
    "tpv_to_sip",
    "read_celestial_wcs",
    "pixel_scale_arcsec",
]


def _tpv_terms(max_degree: int = 7) -> list[tuple[int, int, int]]:
    """Exponents ``(i, j, k)`` of the TPV term ``x**i * y**j * r**k``, in ``PV`` index order."""
    terms: list[tuple[int, int, int]] = []
    for degree in range(max_degree + 1):
        terms.extend((degree - j, j, 0) for j in range(degree + 1))
        if degree % 2 == 1:
            terms.append((0, 0, degree))
    return terms


#: The 40 TPV terms: ``PVa_k`` multiplies ``x**i y**j r**k`` with ``TPV_TERMS[k] = (i, j, k)`` (for axis 2
#: the roles of x and y are swapped).
TPV_TERMS: list[tuple[int, int, int]] = _tpv_terms()


def tan_deproject(xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (TAN) deprojection of intermediate world coordinates.

    Parameters
    ----------
    xi, eta : `numpy.ndarray`
        Standard coordinates [deg], ``xi`` towards increasing RA, ``eta`` towards the north.
    ra0, dec0 : `float`
        Tangent point [deg].

    Returns
    -------
    ra, dec : `numpy.ndarray`
        Sky positions [deg], RA in [0, 360).
    """
    x = np.deg2rad(np.asarray(xi, float))
    y = np.deg2rad(np.asarray(eta, float))
    d0 = np.deg2rad(dec0)
    dec = np.arcsin((np.sin(d0) + y * np.cos(d0)) / np.sqrt(1.0 + x * x + y * y))
    ra = np.deg2rad(ra0) + np.arctan2(x, np.cos(d0) - y * np.sin(d0))
    return np.rad2deg(ra) % 360.0, np.rad2deg(dec)


def tan_project(ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (TAN) projection about ``(ra0, dec0)``: sky [deg] -> standard coordinates [deg]."""
    a = np.deg2rad(np.asarray(ra, float) - ra0)
    d = np.deg2rad(np.asarray(dec, float))
    d0 = np.deg2rad(dec0)
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cos_c
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a)) / cos_c
    return np.rad2deg(xi), np.rad2deg(eta)


@dataclasses.dataclass(frozen=True)
class TpvProjection:
    """A TPV world coordinate system, evaluated exactly from its header keywords.

    Attributes
    ----------
    crpix : `numpy.ndarray`
        Reference pixel (FITS, 1-based) ``[x, y]``.
    crval : `numpy.ndarray`
        Tangent point ``[ra, dec]`` [deg].
    cd : `numpy.ndarray`
        2×2 linear transform, pixel offsets -> intermediate coordinates [deg/pixel].
    pv1, pv2 : `numpy.ndarray`
        The 40 polynomial coefficients of each axis (missing keywords are zero).
    """

    crpix: np.ndarray
    crval: np.ndarray
    cd: np.ndarray
    pv1: np.ndarray
    pv2: np.ndarray

    @classmethod
    def from_header(cls, header: fits.Header) -> TpvProjection:
        """Read CRPIX, CRVAL, CD (or PC × CDELT) and the PV coefficients of a TPV (or SCAMP TAN+PV) header."""
        linear = _linear_wcs(header)
        pv = np.zeros((2, len(TPV_TERMS)))
        for axis in (1, 2):
            for k in range(len(TPV_TERMS)):
                value = header.get(f"PV{axis}_{k}")
                if value is not None:
                    pv[axis - 1, k] = float(value)
        if not np.any(pv[0]):
            pv[0, 1] = 1.0
        if not np.any(pv[1]):
            pv[1, 1] = 1.0
        return cls(
            crpix=np.array(linear.wcs.crpix, float),
            crval=np.array(linear.wcs.crval, float),
            cd=np.array(linear.pixel_scale_matrix, float),
            pv1=pv[0],
            pv2=pv[1],
        )

    @property
    def degree(self) -> int:
        """Highest polynomial degree with a non-zero coefficient."""
        used = np.flatnonzero((self.pv1 != 0) | (self.pv2 != 0))
        return max((sum(TPV_TERMS[k]) if TPV_TERMS[k][2] == 0 else TPV_TERMS[k][2]) for k in used)

    def intermediate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Array pixel (0-based) -> distorted standard coordinates ``(xi, eta)`` [deg]."""
        dx = np.asarray(x, float) + 1.0 - self.crpix[0]
        dy = np.asarray(y, float) + 1.0 - self.crpix[1]
        u = self.cd[0, 0] * dx + self.cd[0, 1] * dy
        v = self.cd[1, 0] * dx + self.cd[1, 1] * dy
        r = np.hypot(u, v)
        xi = np.zeros_like(u)
        eta = np.zeros_like(u)
        for k, (i, j, p) in enumerate(TPV_TERMS):
            if self.pv1[k]:
                xi += self.pv1[k] * u**i * v**j * r**p
            if self.pv2[k]:
                eta += self.pv2[k] * v**i * u**j * r**p
        return xi, eta

    def pixel_to_sky(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Array pixel (0-based) -> ``(ra, dec)`` [deg]."""
        xi, eta = self.intermediate(x, y)
        return tan_deproject(xi, eta, float(self.crval[0]), float(self.crval[1]))


@dataclasses.dataclass(frozen=True)
class WcsSolution:
    """The WCS ingest attaches to an image.

    Attributes
    ----------
    wcs : `astropy.wcs.WCS`
        TAN or TAN-SIP, array pixel (0-based) -> ICRS [deg].
    projection : `str`
        Projection found in the header: ``"TAN"``, ``"TAN-SIP"`` or ``"TPV"``.
    sip_order : `int` or `None`
        Order of the SIP polynomial fitted to a TPV header.
    max_residual_px : `float`
        Largest position difference between the header WCS and ``wcs`` on the check grid [pixels]
        (0 when the header WCS is used as it is).
    """

    wcs: WCS
    projection: str
    sip_order: int | None = None
    max_residual_px: float = 0.0


def _linear_wcs(header: fits.Header) -> WCS:
    """Astropy WCS of the header's linear part and tangent point only (PV and SIP keywords dropped)."""
    h = fits.Header()
    for key in ("CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2", "CD1_1", "CD1_2", "CD2_1", "CD2_2",
                "PC1_1", "PC1_2", "PC2_1", "PC2_2", "CDELT1", "CDELT2", "CUNIT1", "CUNIT2"):
        if key in header:
            h[key] = header[key]
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(h, naxis=2)


def _monomials(u: np.ndarray, v: np.ndarray, order: int, min_degree: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Design matrix of ``u**i v**j`` for ``min_degree <= i + j <= order`` and the exponent list."""
    exps = [(i, d - i) for d in range(min_degree, order + 1) for i in range(d, -1, -1)]
    return np.stack([u**i * v**j for i, j in exps], axis=-1), exps


def _sip_wcs(crval: tuple[float, float], crpix: tuple[float, float], cd: np.ndarray, order: int,
             a: dict[tuple[int, int], float], b: dict[tuple[int, int], float], inv_order: int,
             ap: dict[tuple[int, int], float], bp: dict[tuple[int, int], float], shape: tuple[int, int]) -> WCS:
    h = fits.Header()
    h["NAXIS"] = 2
    h["NAXIS1"], h["NAXIS2"] = shape[1], shape[0]
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
    h["CRVAL1"], h["CRVAL2"] = crval
    h["CRPIX1"], h["CRPIX2"] = crpix
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = cd[0, 0], cd[0, 1], cd[1, 0], cd[1, 1]
    h["RADESYS"] = "ICRS"
    h["A_ORDER"] = h["B_ORDER"] = order
    h["AP_ORDER"] = h["BP_ORDER"] = inv_order
    for name, coeffs in (("A", a), ("B", b), ("AP", ap), ("BP", bp)):
        for (i, j), value in coeffs.items():
            h[f"{name}_{i}_{j}"] = value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(h)


def _max_separation_px(wcs: WCS, tpv: TpvProjection, x: np.ndarray, y: np.ndarray, scale_deg: float) -> float:
    """Largest forward (pixel -> sky) and inverse (sky -> pixel) error of ``wcs`` against ``tpv`` [pixels]."""
    ra_t, dec_t = tpv.pixel_to_sky(x, y)
    ra_w, dec_w = wcs.pixel_to_world_values(x, y)
    dra = ((ra_w - ra_t + 180.0) % 360.0 - 180.0) * np.cos(np.deg2rad(dec_t))
    forward = np.hypot(dra, dec_w - dec_t) / scale_deg
    xb, yb = wcs.world_to_pixel_values(ra_t, dec_t)
    inverse = np.hypot(xb - x, yb - y)
    return float(max(forward.max(), inverse.max()))


def tpv_to_sip(tpv: TpvProjection, shape: tuple[int, int], tolerance_px: float = 0.01, max_order: int = 7,
               n_grid: int = 25) -> WcsSolution:
    """Fit a TAN-SIP WCS to a TPV projection over an image.

    Parameters
    ----------
    tpv : `TpvProjection`
        The header's TPV projection.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image; the fit covers it with a 5% margin.
    tolerance_px : `float`
        Largest accepted position error on the check grid [pixels].
    max_order : `int`
        Highest SIP order tried.
    n_grid : `int`
        Fit grid points per axis (the check grid is offset by half a grid step and twice as dense).

    Returns
    -------
    solution : `WcsSolution`
        The TAN-SIP WCS with its order and largest residual.

    Raises
    ------
    WcsConversionError
        If no order up to ``max_order`` meets the tolerance.
    """
    ny, nx = shape
    mx, my = 0.05 * nx + 2, 0.05 * ny + 2
    gx, gy = np.meshgrid(np.linspace(-mx, nx - 1 + mx, n_grid), np.linspace(-my, ny - 1 + my, n_grid))
    x, y = gx.ravel(), gy.ravel()
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    ra_c, dec_c = tpv.pixel_to_sky(np.array([cx]), np.array([cy]))
    crval = (float(ra_c[0]), float(dec_c[0]))
    ra, dec = tpv.pixel_to_sky(x, y)
    xi, eta = tan_project(ra, dec, *crval)
    scale = max(nx, ny) / 2.0
    u, v = (x - cx) / scale, (y - cy) / scale
    check_x, check_y = np.meshgrid(np.linspace(-mx / 2, nx - 1 + mx / 2, 2 * n_grid + 1),
                                   np.linspace(-my / 2, ny - 1 + my / 2, 2 * n_grid + 1))
    pixel_deg = float(np.sqrt(abs(np.linalg.det(tpv.cd))))
    worst = np.inf
    for order in range(max(2, tpv.degree), max_order + 1):
        design, exps = _monomials(u, v, order, 1)
        coeffs, *_ = np.linalg.lstsq(design, np.stack([xi, eta], axis=-1), rcond=None)
        coeffs /= np.array([scale ** (i + j) for i, j in exps])[:, None]  # back to pixel units
        cd = coeffs[:2].T  # rows: xi, eta; columns: d/du, d/dv  (exps[0] = (1, 0), exps[1] = (0, 1))
        cd_inv = np.linalg.inv(cd)
        nonlinear = coeffs[2:] @ cd_inv.T  # SIP A, B: pixel-unit corrections
        a = {e: float(c) for e, c in zip(exps[2:], nonlinear[:, 0])}
        b = {e: float(c) for e, c in zip(exps[2:], nonlinear[:, 1])}
        # inverse: with U, V the undistorted offsets, fit u - U, v - V as polynomials in U, V
        du, dv = x - cx, y - cy
        big_u = cd_inv[0, 0] * xi + cd_inv[0, 1] * eta
        big_v = cd_inv[1, 0] * xi + cd_inv[1, 1] * eta
        inv_order = order + 1
        inv_design, inv_exps = _monomials(big_u / scale, big_v / scale, inv_order, 1)
        inv_coeffs, *_ = np.linalg.lstsq(inv_design, np.stack([du - big_u, dv - big_v], axis=-1), rcond=None)
        inv_coeffs /= np.array([scale ** (i + j) for i, j in inv_exps])[:, None]
        ap = {e: float(c) for e, c in zip(inv_exps, inv_coeffs[:, 0])}
        bp = {e: float(c) for e, c in zip(inv_exps, inv_coeffs[:, 1])}
        wcs = _sip_wcs(crval, (cx + 1.0, cy + 1.0), cd, order, a, b, inv_order, ap, bp, shape)
        worst = _max_separation_px(wcs, tpv, check_x.ravel(), check_y.ravel(), pixel_deg)
        if worst < tolerance_px:
            return WcsSolution(wcs=wcs, projection="TPV", sip_order=order, max_residual_px=worst)
    raise WcsConversionError(worst, tolerance_px, max_order)


def _projection_kind(header: fits.Header, source: str) -> str:
    ctype = (str(header.get("CTYPE1", "")).strip().upper(), str(header.get("CTYPE2", "")).strip().upper())
    if not ctype[0] or not ctype[1]:
        raise MissingWcsError(source)
    if not (ctype[0].startswith("RA--") and ctype[1].startswith("DEC-")):
        raise UnsupportedProjectionError(source, ctype)
    kinds = (ctype[0][4:].lstrip("-"), ctype[1][4:].lstrip("-"))
    if kinds[0] != kinds[1]:
        raise UnsupportedProjectionError(source, ctype)
    kind = kinds[0]
    has_distortion_pv = any(f"PV{a}_{k}" in header for a in (1, 2) for k in range(1, len(TPV_TERMS)))
    if kind == "TAN" and has_distortion_pv:
        return "TPV"  # SCAMP's older TAN + PV convention
    if kind not in ("TAN", "TAN-SIP", "TPV"):
        raise UnsupportedProjectionError(source, ctype)
    return kind


def read_celestial_wcs(header: fits.Header, shape: tuple[int, int], source: str = "image",
                       tolerance_px: float = 0.01) -> WcsSolution:
    """Return the array-pixel -> ICRS WCS of an image header, converting TPV to TAN-SIP.

    Parameters
    ----------
    header : `astropy.io.fits.Header`
        Image header (extension keywords, with the primary header's where the extension lacks them).
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image.
    source : `str`
        Name used in error messages.
    tolerance_px : `float`
        Largest accepted TPV -> SIP position error [pixels].

    Raises
    ------
    MissingWcsError
        If the header has no CTYPE1/CTYPE2.
    UnsupportedProjectionError
        For projections other than TAN, TAN-SIP and TPV (and non-equatorial axes).
    WcsConversionError
        If a TPV header cannot be fitted within ``tolerance_px``.
    """
    kind = _projection_kind(header, source)
    if kind == "TPV":
        return tpv_to_sip(TpvProjection.from_header(header), shape, tolerance_px=tolerance_px)
    h = header.copy()
    for key in [k for k in h if k.startswith("PV")]:
        del h[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(h, naxis=2)
    if not wcs.has_celestial:
        raise MissingWcsError(source)
    return WcsSolution(wcs=wcs, projection=kind)


def pixel_scale_arcsec(wcs: WCS, shape: tuple[int, int]) -> float:
    """Mean pixel scale at the image centre [arcsec/pixel] (square root of the local pixel area)."""
    cx, cy = (shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0
    ra, dec = wcs.pixel_to_world_values(np.array([cx, cx + 1.0, cx]), np.array([cy, cy, cy + 1.0]))
    cosd = np.cos(np.deg2rad(dec[0]))
    jx = np.array([((ra[1] - ra[0] + 180) % 360 - 180) * cosd, dec[1] - dec[0]])
    jy = np.array([((ra[2] - ra[0] + 180) % 360 - 180) * cosd, dec[2] - dec[0]])
    return float(np.sqrt(abs(jx[0] * jy[1] - jx[1] * jy[0])) * 3600.0)
