"""Quality metrics of difference imaging, detection, forced photometry and association against truth.

Pure functions of numpy arrays and astropy Tables (no butler, no files).  The definitions, used by
``bench/quality.py`` and the QA report:

residual noise ratio
    Robust standard deviation (1.4826 × MAD) of ``D / sqrt(V)`` over *source-free* pixels: pixels with
    none of `SOURCE_FREE_EXCLUDED_BITS` set (detections, no data / no template, bad, saturated, cosmic
    rays, edges) and, when positions are given, outside discs around known sources.  1 means the variance
    plane describes the difference exactly; subtraction residuals and unmodelled correlated noise raise it.
true S/N on the difference image
    ``|diffFlux| / σ_PSF`` with ``σ_PSF = sqrt(Σ P² V) / Σ P²`` (meas_base PsfFlux error) computed from the
    difference image's own variance plane ``V`` and PSF ``P`` at the true position (`psf_flux_sigma`).
completeness, snr50
    Fraction of injected transients and variables (truth rows with ``diffFlux != 0``) with a DIASource of
    the same visit/detector within 1″, as a function of true S/N; ``snr50`` is where a logistic fit in
    ``ln S/N`` to the unbinned detected/missed outcomes crosses 50 % (`fit_completeness`).
artifacts
    DIASources with no injected transient or variable of the same visit/detector within 1″ — detections on
    static stars and galaxies (whose ``diffFlux`` is 0) are artifacts — counted per 4096 × 4096 pixels of
    difference image with template coverage (`artifacts_per_ccd4k`), and given a cause
    (`classify_artifacts`).
flux bias at high S/N
    Median of ``(measured − true) / true`` over measurements whose true S/N exceeds 50 (`fractional_bias`).
forced-photometry pulls
    ``(measured − true) / error``; mean and standard deviation within 5 robust sigmas of the median, with
    the clipped count reported (`pull_statistics`).
association purity and completeness
    See `association_quality`.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import expit

from ..masks import MaskBit
from ..psf import PsfModel
from .matching import ccd_key, near_any

__all__ = [
    "ARTIFACT_CAUSES",
    "CCD4K_PIXELS",
    "INJECTED_TYPES",
    "SOURCE_FREE_EXCLUDED_BITS",
    "ArtifactCriteria",
    "AssociationQuality",
    "CompletenessCurve",
    "CompletenessFitError",
    "LogisticFit",
    "PullStats",
    "artifacts_per_ccd4k",
    "association_quality",
    "binned_completeness",
    "classify_artifacts",
    "disc_mask",
    "fit_completeness",
    "fractional_bias",
    "gaussian_noise_peak_rate",
    "logistic_completeness",
    "psf_flux_sigma",
    "pull_statistics",
    "residual_noise_map",
    "residual_noise_ratio",
    "robust_std",
]

#: ``objectType`` values of injected (genuinely varying) objects: the only legitimate DIASources.
INJECTED_TYPES: tuple[str, ...] = ("transient", "variable")

#: Pixels with any of these bits are not "source-free" for the residual noise ratio.
SOURCE_FREE_EXCLUDED_BITS = (
    MaskBit.DETECTED | MaskBit.DETECTED_NEGATIVE | MaskBit.NO_DATA | MaskBit.NO_TEMPLATE | MaskBit.BAD
    | MaskBit.SATURATED | MaskBit.SAT_TEMPLATE | MaskBit.COSMIC_RAY | MaskBit.INTERPOLATED
    | MaskBit.DETECTION_EDGE | MaskBit.SUSPECT | MaskBit.STREAK
)

#: Pixels of a 4k × 4k CCD (the unit of artifact rates).
CCD4K_PIXELS = 4096 * 4096

#: Artifact causes, in order of precedence (an artifact gets the first that applies).
ARTIFACT_CAUSES: tuple[str, ...] = ("edge", "cosmic_ray", "bright_star", "star", "galaxy_core", "other")

_MAD_TO_SIGMA = 1.482602218505602

#: Positions per block in `psf_flux_sigma`.
_SIGMA_BLOCK = 2048


class CompletenessFitError(ValueError):
    """The completeness curve cannot be fitted or has no 50 % point.

    Parameters
    ----------
    n_points, n_detected : `int`
        Usable injected sources and how many were detected.
    reason : `str`
        Why the fit failed.
    """

    def __init__(self, n_points: int, n_detected: int, reason: str):
        self.n_points = n_points
        self.n_detected = n_detected
        self.reason = reason
        super().__init__(f"Cannot fit completeness ({n_detected}/{n_points} detected): {reason}")


# --- noise -----------------------------------------------------------------------------------------------
def robust_std(values: ArrayLike) -> float:
    """1.4826 × median absolute deviation of the finite values (NaN when there are none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan")
    return float(_MAD_TO_SIGMA * np.median(np.abs(v - np.median(v))))


def disc_mask(shape: tuple[int, int], x: ArrayLike, y: ArrayLike, radius: ArrayLike) -> np.ndarray:
    """Boolean image, true within ``radius`` pixels of any of the positions.

    Parameters
    ----------
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)``.
    x, y : array_like of `float`
        Array-pixel positions (column, row); positions off the image may still cover its border.
    radius : `float` or array_like of `float`
        Disc radius [pixels], one for all or one per position.
    """
    ny, nx = shape
    out = np.zeros(shape, dtype=bool)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), x.shape)
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(radius) & (radius > 0)
    x, y, radius = x[keep], y[keep], radius[keep]
    size = np.ceil(radius).astype(np.int64)
    for r in np.unique(size):  # one vectorised stamp per distinct integer radius (a handful)
        sel = size == r
        dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
        d2 = (dx**2 + dy**2).ravel()
        inside = d2[None, :] <= radius[sel, None] ** 2
        xx = np.rint(x[sel])[:, None].astype(np.int64) + dx.ravel()[None, :]
        yy = np.rint(y[sel])[:, None].astype(np.int64) + dy.ravel()[None, :]
        on = inside & (xx >= 0) & (xx < nx) & (yy >= 0) & (yy < ny)
        out[yy[on], xx[on]] = True
    return out


def _normalized_residuals(image, variance, mask, excluded_bits, exclude) -> np.ndarray:
    """``D / sqrt(V)`` with NaN on pixels that are not source-free."""
    image = np.asarray(image, dtype=np.float64)
    variance = np.asarray(variance, dtype=np.float64)
    if image.shape != variance.shape or image.shape != np.shape(mask):
        raise ValueError(f"image {image.shape}, variance {variance.shape} and mask {np.shape(mask)} differ")
    bad = (np.asarray(mask) & np.uint32(int(excluded_bits))) != 0
    bad |= ~np.isfinite(image) | ~(variance > 0)
    if exclude is not None:
        bad |= exclude
    with np.errstate(invalid="ignore", divide="ignore"):
        z = image / np.sqrt(variance)
    z[bad] = np.nan
    return z


def residual_noise_ratio(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    excluded_bits: int = SOURCE_FREE_EXCLUDED_BITS,
    exclude: np.ndarray | None = None,
) -> float:
    """Robust standard deviation of ``image / sqrt(variance)`` over source-free pixels.

    Parameters
    ----------
    image, variance : `numpy.ndarray`
        Difference image [nJy] and its variance [nJy²].
    mask : `numpy.ndarray`
        `~lsst.dia.pipe.masks.MaskBit` bits.
    excluded_bits : `int`
        Pixels with any of these bits are left out.
    exclude : `numpy.ndarray` of `bool`, optional
        Further pixels to leave out (e.g. `disc_mask` around known sources).

    Returns
    -------
    ratio : `float`
        1.4826 × MAD of the normalised residuals; NaN when no pixel is usable.
    """
    return robust_std(_normalized_residuals(image, variance, mask, excluded_bits, exclude))


def residual_noise_map(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    block: int = 128,
    excluded_bits: int = SOURCE_FREE_EXCLUDED_BITS,
    exclude: np.ndarray | None = None,
    min_pixels: int = 100,
) -> np.ndarray:
    """Residual noise ratio in square blocks of the image.

    Parameters
    ----------
    image, variance, mask, excluded_bits, exclude
        As in `residual_noise_ratio`.
    block : `int`
        Block side [pixels]; partial blocks at the upper edges are included.
    min_pixels : `int`
        Blocks with fewer source-free pixels are NaN.

    Returns
    -------
    ratios : `numpy.ndarray`
        ``(ceil(ny / block), ceil(nx / block))`` robust standard deviations of the normalised residuals.
    """
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    z = _normalized_residuals(image, variance, mask, excluded_bits, exclude)
    ny, nx = z.shape
    by, bx = -(-ny // block), -(-nx // block)
    padded = np.full((by * block, bx * block), np.nan)
    padded[:ny, :nx] = z
    blocks = padded.reshape(by, block, bx, block).transpose(0, 2, 1, 3).reshape(by, bx, block * block)
    count = np.isfinite(blocks).sum(axis=-1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        med = np.nanmedian(blocks, axis=-1, keepdims=True)
        ratio = _MAD_TO_SIGMA * np.nanmedian(np.abs(blocks - med), axis=-1)
    ratio[count < min_pixels] = np.nan
    return ratio


def psf_flux_sigma(
    variance: np.ndarray, psf: PsfModel, x: ArrayLike, y: ArrayLike, n_grid: int = 5
) -> np.ndarray:
    """PSF-flux uncertainty ``sqrt(Σ P² V) / Σ P²`` at positions on an image (meas_base PsfFlux error).

    The PSF is evaluated on an ``n_grid`` × ``n_grid`` grid of nodes over the image and each position uses
    its nearest node's stamp; the sums run over the stamp pixels that lie on the image.

    Parameters
    ----------
    variance : `numpy.ndarray`
        ``(ny, nx)`` variance plane [nJy²].
    psf : `~lsst.dia.pipe.psf.PsfModel`
        The image's PSF.
    x, y : array_like of `float`
        Array-pixel positions.
    n_grid : `int`
        PSF nodes per axis.

    Returns
    -------
    sigma : `numpy.ndarray`
        Uncertainty of a PSF flux measured at each position [nJy]; NaN for positions off the image or
        with no finite positive variance under the PSF.
    """
    variance = np.asarray(variance, dtype=np.float64)
    ny, nx = variance.shape
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    sigma = np.full(x.shape, np.nan)
    on = np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    if not on.any():
        return sigma
    xs = np.linspace(0.0, nx - 1.0, n_grid)
    ys = np.linspace(0.0, ny - 1.0, n_grid)
    stamps = np.array([[psf.kernel_image(xn, yn) for xn in xs] for yn in ys])  # (n_grid, n_grid, k, k)
    k = stamps.shape[-1]
    r = np.arange(k) - k // 2
    rows = np.flatnonzero(on)
    for start in range(0, rows.size, _SIGMA_BLOCK):  # bounded memory: (block, k, k) temporaries
        block = rows[start:start + _SIGMA_BLOCK]
        xo, yo = x[block], y[block]
        ix = np.rint(xo / max(nx - 1.0, 1.0) * (n_grid - 1)).astype(np.int64)
        iy = np.rint(yo / max(ny - 1.0, 1.0) * (n_grid - 1)).astype(np.int64)
        p = stamps[iy, ix]  # (n, k, k)
        xx = np.rint(xo).astype(np.int64)[:, None, None] + r[None, None, :]
        yy = np.rint(yo).astype(np.int64)[:, None, None] + r[None, :, None]
        inside = (xx >= 0) & (xx < nx) & (yy >= 0) & (yy < ny)
        v = variance[np.clip(yy, 0, ny - 1), np.clip(xx, 0, nx - 1)]
        usable = inside & np.isfinite(v) & (v > 0)
        p2 = np.where(usable, p, 0.0) ** 2
        sum_p2 = p2.sum(axis=(1, 2))
        sum_p2v = (p2 * np.where(usable, v, 0.0)).sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma[block] = np.where(sum_p2 > 0, np.sqrt(sum_p2v) / sum_p2, np.nan)
    return sigma


# --- completeness ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CompletenessCurve:
    """Binned detection completeness.

    Attributes
    ----------
    edges : `numpy.ndarray`
        Bin edges (``n + 1``), in the units of the binned quantity.
    centers : `numpy.ndarray`
        Bin centres (geometric for logarithmic bins, i.e. positive edges with constant ratio).
    n, n_detected : `numpy.ndarray`
        Sources and detected sources per bin.
    completeness : `numpy.ndarray`
        ``n_detected / n`` (NaN for empty bins).
    error : `numpy.ndarray`
        Binomial standard error ``sqrt(c (1 - c) / n)``, floored at ``1 / (2 n)`` so that 0 and 1 have an
        error bar.
    """

    edges: np.ndarray
    centers: np.ndarray
    n: np.ndarray
    n_detected: np.ndarray
    completeness: np.ndarray
    error: np.ndarray


def binned_completeness(values: ArrayLike, detected: ArrayLike, edges: ArrayLike) -> CompletenessCurve:
    """Completeness in bins of a quantity (true S/N, magnitude...).

    Parameters
    ----------
    values : array_like of `float`
        The quantity per injected source; non-finite values are ignored.
    detected : array_like of `bool`
        Whether each source was detected.
    edges : array_like of `float`
        Increasing bin edges.

    Returns
    -------
    curve : `CompletenessCurve`
    """
    values = np.asarray(values, dtype=np.float64)
    detected = np.asarray(detected, dtype=bool)
    edges = np.asarray(edges, dtype=np.float64)
    if values.shape != detected.shape:
        raise ValueError(f"values {values.shape} and detected {detected.shape} differ")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be at least two increasing values")
    keep = np.isfinite(values)
    n, _ = np.histogram(values[keep], edges)
    n_det, _ = np.histogram(values[keep & detected], edges)
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n > 0, n_det / n, np.nan)
        error = np.where(n > 0, np.maximum(np.sqrt(frac * (1 - frac) / n), 0.5 / n), np.nan)
    ratio = edges[1:] / edges[:-1] if np.all(edges > 0) else None
    geometric = ratio is not None and np.allclose(ratio, ratio[0])
    centers = np.sqrt(edges[1:] * edges[:-1]) if geometric else 0.5 * (edges[1:] + edges[:-1])
    return CompletenessCurve(edges, centers, n, n_det, frac, error)


@dataclasses.dataclass(frozen=True)
class LogisticFit:
    """Logistic completeness model ``c(s) = plateau / (1 + exp(-(ln s - ln s0) / width))``.

    Attributes
    ----------
    snr50 : `float`
        S/N at which the model completeness is 0.5.
    s0 : `float`
        S/N of the model's mid-point (``plateau / 2``).
    width : `float`
        Width of the transition in ``ln S/N``.
    plateau : `float`
        Completeness at high S/N.
    n, n_detected : `int`
        Sources fitted and how many were detected.
    """

    snr50: float
    s0: float
    width: float
    plateau: float
    n: int
    n_detected: int

    def __call__(self, snr: ArrayLike) -> np.ndarray:
        """Model completeness at ``snr``."""
        return logistic_completeness(snr, self.s0, self.width, self.plateau)


def logistic_completeness(snr: ArrayLike, s0: float, width: float, plateau: float = 1.0) -> np.ndarray:
    """The logistic completeness model of `LogisticFit` (0 for S/N <= 0)."""
    snr = np.asarray(snr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        arg = (np.log(np.where(snr > 0, snr, np.nan)) - np.log(s0)) / width
    return np.where(snr > 0, plateau * expit(np.nan_to_num(arg, nan=-np.inf)), 0.0)


def fit_completeness(
    snr: ArrayLike, detected: ArrayLike, fit_plateau: bool = True, min_points: int = 10
) -> LogisticFit:
    """Maximum-likelihood logistic fit of detection outcomes versus true S/N.

    Each source contributes the Bernoulli likelihood of its outcome under `logistic_completeness`; no
    binning.  Sources with non-finite or non-positive S/N are ignored.

    Parameters
    ----------
    snr : array_like of `float`
        True S/N of each injected source on the difference image.
    detected : array_like of `bool`
        Whether it was detected.
    fit_plateau : `bool`
        Fit the high-S/N completeness (≤ 1); otherwise fix it at 1.
    min_points : `int`
        Fewest usable sources.

    Returns
    -------
    fit : `LogisticFit`

    Raises
    ------
    CompletenessFitError
        Too few sources, no detected or no missed source, or a plateau below 50 %.
    """
    snr = np.asarray(snr, dtype=np.float64)
    detected = np.asarray(detected, dtype=bool)
    keep = np.isfinite(snr) & (snr > 0)
    s, d = np.log(snr[keep]), detected[keep]
    n, n_det = int(s.size), int(d.sum())
    if n < min_points:
        raise CompletenessFitError(n, n_det, f"fewer than {min_points} injected sources with S/N > 0")
    if n_det == 0 or n_det == n:
        raise CompletenessFitError(n, n_det, "need both detected and missed sources")

    def unpack(theta):
        plateau = expit(theta[2]) if fit_plateau else 1.0
        return theta[0], np.exp(theta[1]), plateau

    def nll(theta):
        ln_s0, width, plateau = unpack(theta)
        p = plateau * expit((s - ln_s0) / width)
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return -np.sum(np.where(d, np.log(p), np.log1p(-p)))

    # start at the S/N that splits detected from missed best, a transition of ~20 % in S/N
    order = np.argsort(s)
    cum_missed = np.cumsum(~d[order])
    cum_det_above = n_det - np.cumsum(d[order])
    start = s[order][np.argmax(cum_missed + cum_det_above)]
    theta0 = [start, np.log(0.2)] + ([np.log(0.97 / 0.03)] if fit_plateau else [])
    result = minimize(nll, theta0, method="Nelder-Mead",
                      options={"xatol": 1e-6, "fatol": 1e-8, "maxiter": 4000, "maxfev": 8000})
    ln_s0, width, plateau = unpack(result.x)
    if plateau <= 0.5:
        raise CompletenessFitError(n, n_det, f"fitted plateau {plateau:.2f} never reaches 50 %")
    snr50 = float(np.exp(ln_s0 - width * np.log(2 * plateau - 1)))
    return LogisticFit(snr50, float(np.exp(ln_s0)), float(width), float(plateau), n, n_det)


# --- artifacts -------------------------------------------------------------------------------------------
def artifacts_per_ccd4k(n_artifacts: float, n_pixels: int) -> float:
    """Artifact rate per 4096 × 4096 pixels of usable difference image (NaN when ``n_pixels`` is 0)."""
    return float(n_artifacts) * CCD4K_PIXELS / n_pixels if n_pixels > 0 else float("nan")


def gaussian_noise_peak_rate(psf_sigma: float, threshold: float = 5.0) -> float:
    """Rate of detections that pure white Gaussian noise gives a matched-filter detector, per pixel.

    The matched-filtered noise is a Gaussian random field with the PSF autocorrelation; at a high threshold
    ``u`` its peaks above ``u`` (or below ``-u``) are counted by the expected Euler characteristic of the
    excursion set (Adler 1981), ``λ u exp(-u²/2) / (2π)^{3/2}`` per polarity with ``λ = 1 / (2 σ²)`` for a
    Gaussian PSF of width ``σ``. A 5σ detector on a 4k × 4k CCD thus finds about 10, 5 and 3 noise peaks for
    PSF sigmas of 1.5, 2 and 2.6 pixels: the floor under the artifact rate of any difference image whose noise
    is exactly Gaussian (Monte Carlo on pixelised fields gives 10-20% fewer for sigmas of 2-3 pixels).

    Parameters
    ----------
    psf_sigma : `float`
        Gaussian-equivalent PSF width [pixels].
    threshold : `float`
        Detection threshold [sigma], both polarities.

    Returns
    -------
    rate : `float`
        Expected noise detections per pixel.
    """
    u = float(threshold)
    return 2.0 * u * np.exp(-0.5 * u * u) / (2.0 * np.pi) ** 1.5 / (2.0 * float(psf_sigma) ** 2)


@dataclasses.dataclass(frozen=True)
class ArtifactCriteria:
    """Thresholds of `classify_artifacts` (sky distances in arcsec, fluxes in nJy).

    Attributes
    ----------
    edge_pixels : `float`
        Within this many pixels of the image border is "edge".
    cr_size_ratio : `float`
        Positive sources whose adaptive second-moment trace is below this fraction of the PSF's are sharper
        than any real point source: "cosmic_ray".
    cr_elongation : `float`
        Positive, non-dipole sources with ellipticity ``|ixx - iyy, 2 ixy| / (ixx + iyy)`` above this are
        tracks: "cosmic_ray".
    bright_star_flux : `float`
        Stars brighter than this (true or template flux) are "bright" (default r = 19 mag).
    bright_star_radius : `float`
        Radius around a bright star of exactly ``bright_star_flux``; it grows as ``flux ** 0.25``
        (×1.8 per 2.5 mag) to follow halos, diffraction and saturation bleeds.
    star_radius : `float`
        Within this of any other star is "star" (subtraction residual of a static star).
    galaxy_radius : `float`
        Within ``max(galaxy_radius, halfLightRadius)`` of a galaxy centre is "galaxy_core".
    """

    edge_pixels: float = 10.0
    cr_size_ratio: float = 0.5
    cr_elongation: float = 0.8
    bright_star_flux: float = 10.0 ** (0.4 * (31.4 - 19.0))
    bright_star_radius: float = 4.0
    star_radius: float = 1.0
    galaxy_radius: float = 1.0


def _column(table, name: str, default, n: int) -> np.ndarray:
    if name in table.colnames:
        return np.asarray(table[name])
    return np.full(n, default)


def classify_artifacts(
    artifacts, truth, shape: tuple[int, int], criteria: ArtifactCriteria = ArtifactCriteria()
) -> np.ndarray:
    """Give each artifact DIASource a likely cause (one of `ARTIFACT_CAUSES`, first applicable wins).

    ``edge``: within ``edge_pixels`` of the border, or ``pixelFlags_edge``/``pixelFlags_nodata`` set;
    ``cosmic_ray``: ``pixelFlags_cr``/``pixelFlags_crCenter`` set, or a positive non-dipole source much
    sharper than the PSF or very elongated (the truth tables carry no cosmic-ray list);
    ``bright_star``: near a bright star (radius growing with its flux); ``star``: on another star;
    ``galaxy_core``: on a galaxy centre; ``other``: none of these (noise, unmodelled residuals).

    Parameters
    ----------
    artifacts : `astropy.table.Table`
        DIASources with ``ra``, ``dec``, ``x``, ``y``, ``visit``, ``detector`` and, when available,
        ``pixelFlags_*``, ``isNegative``, ``isDipole``, ``ixx``, ``iyy``, ``ixy``, ``ixxPSF``, ``iyyPSF``,
        ``shape_flag``.
    truth : `astropy.table.Table`
        Truth of the same visits/detectors: ``ra``, ``dec``, ``visit``, ``detector``, ``objectType``,
        ``trueFlux``, ``templateFlux`` [nJy], optionally ``halfLightRadius`` [arcsec].
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the difference images.
    criteria : `ArtifactCriteria`
        Thresholds.

    Returns
    -------
    causes : `numpy.ndarray` of `str`
        One cause per artifact.
    """
    n = len(artifacts)
    causes = np.full(n, "other", dtype=object)
    if n == 0:
        return causes.astype(str)
    ny, nx = shape
    x = np.asarray(artifacts["x"], dtype=np.float64)
    y = np.asarray(artifacts["y"], dtype=np.float64)
    margin = criteria.edge_pixels
    edge = ~((x >= margin) & (x <= nx - 1 - margin) & (y >= margin) & (y <= ny - 1 - margin))
    for name in ("pixelFlags_edge", "pixelFlags_nodata", "pixelFlags_offimage"):
        edge |= _column(artifacts, name, False, n).astype(bool)

    cr = _column(artifacts, "pixelFlags_cr", False, n).astype(bool)
    cr |= _column(artifacts, "pixelFlags_crCenter", False, n).astype(bool)
    ixx, iyy, ixy = (_column(artifacts, c, np.nan, n).astype(np.float64) for c in ("ixx", "iyy", "ixy"))
    psf_trace = (_column(artifacts, "ixxPSF", np.nan, n) + _column(artifacts, "iyyPSF", np.nan, n)).astype(float)
    trace = ixx + iyy
    with np.errstate(invalid="ignore", divide="ignore"):
        elongation = np.hypot(ixx - iyy, 2 * ixy) / trace
        shaped = ~_column(artifacts, "shape_flag", False, n).astype(bool) & (trace > 0)
        positive = ~_column(artifacts, "isNegative", False, n).astype(bool)
        single = ~_column(artifacts, "isDipole", False, n).astype(bool)
        cr |= shaped & positive & single & ((trace < criteria.cr_size_ratio * psf_trace)
                                            | (elongation > criteria.cr_elongation))

    group = ccd_key(artifacts)
    ra = np.asarray(artifacts["ra"], dtype=np.float64)
    dec = np.asarray(artifacts["dec"], dtype=np.float64)
    t_type = np.asarray(truth["objectType"]).astype(str)
    t_group = ccd_key(truth)
    t_ra = np.asarray(truth["ra"], dtype=np.float64)
    t_dec = np.asarray(truth["dec"], dtype=np.float64)
    flux = np.fmax(np.asarray(truth["trueFlux"], dtype=np.float64), np.asarray(truth["templateFlux"], np.float64))
    star = t_type == "star"
    bright = star & (flux > criteria.bright_star_flux)
    bright_radius = criteria.bright_star_radius * (flux[bright] / criteria.bright_star_flux) ** 0.25
    near_bright = near_any(ra, dec, group, t_ra[bright], t_dec[bright], t_group[bright], bright_radius)
    faint = star & ~bright
    on_star = near_any(ra, dec, group, t_ra[faint], t_dec[faint], t_group[faint],
                        np.full(int(faint.sum()), criteria.star_radius))
    galaxy = t_type == "galaxy"
    hlr = _column(truth, "halfLightRadius", 0.0, len(truth)).astype(np.float64)[galaxy]
    on_galaxy = near_any(ra, dec, group, t_ra[galaxy], t_dec[galaxy], t_group[galaxy],
                          np.fmax(criteria.galaxy_radius, np.nan_to_num(hlr)))
    tests = (edge, cr, near_bright, on_star, on_galaxy)
    return np.select(tests, ARTIFACT_CAUSES[:len(tests)], default="other").astype(str)


# --- photometry ------------------------------------------------------------------------------------------
def fractional_bias(measured: ArrayLike, true: ArrayLike, snr: ArrayLike, min_snr: float = 50.0) -> tuple[float, int]:
    """Median of ``(measured - true) / |true|`` over measurements with ``snr > min_snr``.

    Parameters
    ----------
    measured, true : array_like of `float`
        Measured and true fluxes [nJy].
    snr : array_like of `float`
        S/N used for the selection (use the *true* S/N to avoid selecting upward fluctuations).
    min_snr : `float`
        Selection threshold.

    Returns
    -------
    bias, n : `float`, `int`
        The median fractional bias (NaN when nothing is selected) and the number of measurements used.
    """
    measured = np.asarray(measured, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    snr = np.asarray(snr, dtype=np.float64)
    keep = np.isfinite(measured) & np.isfinite(true) & (true != 0) & np.isfinite(snr) & (snr > min_snr)
    if not keep.any():
        return float("nan"), 0
    return float(np.median((measured[keep] - true[keep]) / np.abs(true[keep]))), int(keep.sum())


@dataclasses.dataclass(frozen=True)
class PullStats:
    """Statistics of flux pulls ``(measured - true) / error``.

    Attributes
    ----------
    mean, std : `float`
        Mean and standard deviation of the pulls within ``clip`` robust sigmas (1.4826 × MAD) of the median
        (iterated until nothing changes): the core of the distribution, not its blends and outliers.
    robust_std : `float`
        1.4826 × MAD of all pulls.
    n, n_clipped : `int`
        Finite pulls and how many were clipped.
    bias_highsnr : `float`
        `fractional_bias` for true S/N ``|true| / error`` above ``high_snr``.
    n_highsnr : `int`
        Measurements in ``bias_highsnr``.
    """

    mean: float
    std: float
    robust_std: float
    n: int
    n_clipped: int
    bias_highsnr: float
    n_highsnr: int


def pull_statistics(
    measured: ArrayLike, error: ArrayLike, true: ArrayLike, clip: float = 5.0, high_snr: float = 50.0
) -> PullStats:
    """Pull statistics of measured fluxes against true fluxes.

    Parameters
    ----------
    measured, error, true : array_like of `float`
        Measured flux, its uncertainty and the true flux [nJy]; rows with any non-finite value or
        ``error <= 0`` are ignored.
    clip : `float`
        Clipping threshold in robust sigmas (1.4826 × MAD) about the median, repeated until nothing changes.
        A plain standard deviation would not converge when a few percent of the pulls are far outliers
        (e.g. blends).
    high_snr : `float`
        True-S/N threshold of the high-S/N bias.

    Returns
    -------
    stats : `PullStats`
    """
    from astropy.stats import sigma_clip

    measured = np.asarray(measured, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    keep = np.isfinite(measured) & np.isfinite(error) & np.isfinite(true) & (error > 0)
    pulls = (measured[keep] - true[keep]) / error[keep]
    bias, n_high = fractional_bias(measured[keep], true[keep], np.abs(true[keep]) / error[keep], high_snr)
    if pulls.size == 0:
        return PullStats(float("nan"), float("nan"), float("nan"), 0, 0, bias, n_high)
    clipped = sigma_clip(pulls, sigma=clip, maxiters=None, cenfunc="median", stdfunc="mad_std")
    kept = np.asarray(clipped.data[~clipped.mask])
    return PullStats(float(kept.mean()), float(kept.std()), robust_std(pulls), int(pulls.size),
                     int(pulls.size - kept.size), bias, n_high)


# --- association -----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class AssociationQuality:
    """Purity and completeness of DIAObjects against injected objects.

    Attributes
    ----------
    purity : `float`
        Fraction of the DIAObjects considered that are pure.
    completeness : `float`
        Fraction of the injected objects considered whose detections are (mostly) in one DIAObject.
    n_objects, n_pure : `int`
        DIAObjects considered and pure ones.
    n_truth, n_complete : `int`
        Injected objects considered and complete ones.
    min_fraction : `float`
        The threshold used for both.
    """

    purity: float
    completeness: float
    n_objects: int
    n_pure: int
    n_truth: int
    n_complete: int
    min_fraction: float


def association_quality(
    dia_object_id: ArrayLike, truth_id: ArrayLike, min_fraction: float = 0.8, min_sources: int = 2
) -> AssociationQuality:
    """Association purity and completeness from the DIASources' DIAObject and matched truth object.

    Definitions (one row per *associated* DIASource; ``truth_id`` is the injected object it matches, or a
    negative value for an artifact):

    - purity: a DIAObject with at least ``min_sources`` DIASources, at least one of them matched, is
      *pure* if its most frequent truth object holds ``>= min_fraction`` of all its DIASources (artifacts
      count against purity).  Artifact-only DIAObjects are not considered (they are counted as artifacts).
    - completeness: an injected object with at least ``min_sources`` matched DIASources is *complete* if
      one DIAObject holds ``>= min_fraction`` of them.

    Parameters
    ----------
    dia_object_id : array_like of `int`
        DIAObject of each DIASource.
    truth_id : array_like of `int`
        Matched injected object of each DIASource (< 0 when none).
    min_fraction : `float`
        Threshold in (0, 1].
    min_sources : `int`
        Objects with fewer sources are trivially pure/complete and are left out.

    Returns
    -------
    quality : `AssociationQuality`
        Fractions are NaN when nothing is considered.
    """
    obj = np.asarray(dia_object_id, dtype=np.int64)
    tru = np.asarray(truth_id, dtype=np.int64)
    if obj.shape != tru.shape:
        raise ValueError(f"dia_object_id {obj.shape} and truth_id {tru.shape} differ")
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    matched = tru >= 0
    # purity
    objects, n_src = np.unique(obj, return_counts=True)
    pairs, pair_counts = np.unique(np.column_stack([obj[matched], tru[matched]]), axis=0, return_counts=True)
    dominant = np.zeros(len(objects), dtype=np.int64)
    if len(pairs):
        where = np.searchsorted(objects, pairs[:, 0])
        np.maximum.at(dominant, where, pair_counts)
    considered = (n_src >= min_sources) & (dominant > 0)
    pure = considered & (dominant >= min_fraction * n_src)
    # completeness
    truths, n_det = np.unique(tru[matched], return_counts=True)
    best = np.zeros(len(truths), dtype=np.int64)
    if len(pairs):
        np.maximum.at(best, np.searchsorted(truths, pairs[:, 1]), pair_counts)
    t_considered = n_det >= min_sources
    complete = t_considered & (best >= min_fraction * n_det)
    n_obj, n_truth = int(considered.sum()), int(t_considered.sum())
    return AssociationQuality(
        purity=float(pure.sum() / n_obj) if n_obj else float("nan"),
        completeness=float(complete.sum() / n_truth) if n_truth else float("nan"),
        n_objects=n_obj, n_pure=int(pure.sum()), n_truth=n_truth, n_complete=int(complete.sum()),
        min_fraction=float(min_fraction),
    )
