"""Find isolated, bright, unsaturated stars in a background-subtracted image (for PSF estimation).

Method (vectorised over all candidates):

1. matched-filter detection: the image smoothed by a Gaussian of the guessed PSF width, divided by the noise
   of the smoothed image; local maxima above ``detect_snr`` are *sources*, those above ``star_snr`` are
   *candidates*;
2. a candidate is dropped when its stamp touches the image edge or a masked pixel (bad, saturated, cosmic
   ray, no data, streak), when a pixel of its core exceeds ``saturation_fraction`` of the saturation level,
   or when another source within the stamp radius is brighter than ``neighbour_fraction`` of it;
3. Gaussian-weighted adaptive moments give the centroid, width (``sigma``) and ellipticity of each
   candidate;
4. stars are the compact, round objects on the *stellar locus*: the mode of ``log(sigma)`` (kernel
   density) among the candidates, followed across the image by a plane fitted in ``(x, y)``, within
   ``locus_width`` of it; smaller objects (cosmic rays) and larger ones (galaxies, blends) are dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage, spatial

from ..masks import MaskBit

__all__ = ["STAR_REJECT_BITS", "StarSelection", "cut_stamps", "adaptive_moments", "find_psf_stars"]

#: Mask bits that disqualify a star stamp.
STAR_REJECT_BITS = (
    MaskBit.BAD | MaskBit.SATURATED | MaskBit.COSMIC_RAY | MaskBit.NO_DATA | MaskBit.STREAK
    | MaskBit.INTERPOLATED | MaskBit.SUSPECT
)


@dataclasses.dataclass(frozen=True)
class StarSelection:
    """Stars chosen for the PSF.

    Attributes
    ----------
    x, y : `numpy.ndarray`
        Centroids [array pixels].
    flux : `numpy.ndarray`
        Flux in the stamp [image unit].
    snr : `numpy.ndarray`
        Matched-filter signal-to-noise ratio.
    sigma : `numpy.ndarray`
        Adaptive-moment Gaussian width [pixels].
    ellipticity : `numpy.ndarray`
        ``|e|`` from the adaptive moments.
    n_candidates : `int`
        Bright peaks considered before the cuts.
    """

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    snr: np.ndarray
    sigma: np.ndarray
    ellipticity: np.ndarray
    n_candidates: int

    def __len__(self) -> int:
        return len(self.x)


def cut_stamps(image: np.ndarray, x: np.ndarray, y: np.ndarray, half: int, fill: float = 0.0) -> np.ndarray:
    """Cut ``(N, 2 half + 1, 2 half + 1)`` stamps centred on integer pixels ``(x, y)`` (outside: ``fill``)."""
    offsets = np.arange(-half, half + 1)
    yy = np.asarray(y, int)[:, None, None] + offsets[None, :, None]
    xx = np.asarray(x, int)[:, None, None] + offsets[None, None, :]
    inside = (yy >= 0) & (yy < image.shape[0]) & (xx >= 0) & (xx < image.shape[1])
    out = image[np.clip(yy, 0, image.shape[0] - 1), np.clip(xx, 0, image.shape[1] - 1)]
    return np.where(inside, out, fill)


def adaptive_moments(stamps: np.ndarray, sigma0: float, n_iter: int = 8) -> tuple[np.ndarray, ...]:
    """Gaussian-weighted adaptive moments of centred stamps.

    Parameters
    ----------
    stamps : `numpy.ndarray`
        ``(N, k, k)`` background-subtracted stamps, the object near the central pixel.
    sigma0 : `float`
        Starting weight width [pixels].
    n_iter : `int`
        Iterations (the weight follows the measured shape).

    Returns
    -------
    dx, dy : `numpy.ndarray`
        Centroid offsets from the central pixel [pixels].
    sigma : `numpy.ndarray`
        Gaussian-equivalent width ``sqrt((Ixx + Iyy) / 2)`` of the object [pixels] (NaN if it fails).
    ellipticity : `numpy.ndarray`
        ``sqrt((Ixx - Iyy)² + 4 Ixy²) / (Ixx + Iyy)``.
    """
    n, k, _ = stamps.shape
    c = np.arange(k) - k // 2
    yy, xx = np.meshgrid(c, c, indexing="ij")
    dx = np.zeros(n)
    dy = np.zeros(n)
    ixx = np.full(n, sigma0**2)
    iyy = np.full(n, sigma0**2)
    ixy = np.zeros(n)
    for _ in range(n_iter):
        det = ixx * iyy - ixy**2
        ok = det > 0
        det = np.where(ok, det, 1.0)
        ax = xx[None] - dx[:, None, None]
        ay = yy[None] - dy[:, None, None]
        a, b, c = (m[:, None, None] for m in (iyy / det, ixy / det, ixx / det))
        q = a * ax**2 - 2 * b * ax * ay + c * ay**2
        w = np.exp(-0.5 * np.minimum(q, 50.0)) * stamps
        s = w.sum(axis=(1, 2))
        s = np.where(s > 0, s, np.nan)
        mx = (w * ax).sum(axis=(1, 2)) / s
        my = (w * ay).sum(axis=(1, 2)) / s
        mxx = (w * (ax - mx[:, None, None]) ** 2).sum(axis=(1, 2)) / s
        myy = (w * (ay - my[:, None, None]) ** 2).sum(axis=(1, 2)) / s
        mxy = (w * (ax - mx[:, None, None]) * (ay - my[:, None, None])).sum(axis=(1, 2)) / s
        # Gaussian source x Gaussian weight of the same shape: measured moments are half the true ones
        dx = np.clip(np.nan_to_num(dx + 2 * mx), -k / 4, k / 4)
        dy = np.clip(np.nan_to_num(dy + 2 * my), -k / 4, k / 4)
        ixx, iyy, ixy = 2 * mxx, 2 * myy, 2 * mxy
        bad = ~(np.isfinite(ixx) & np.isfinite(iyy) & (ixx > 0.04) & (iyy > 0.04))
        ixx = np.where(bad, sigma0**2, ixx)
        iyy = np.where(bad, sigma0**2, iyy)
        ixy = np.where(bad, 0.0, ixy)
    trace = ixx + iyy
    sigma = np.where(bad, np.nan, np.sqrt(0.5 * trace))
    ellipticity = np.sqrt((ixx - iyy) ** 2 + 4 * ixy**2) / trace
    return dx, dy, sigma, ellipticity


def _locus(sigma: np.ndarray, x: np.ndarray, y: np.ndarray, width: float) -> np.ndarray:
    """Boolean selection of the objects on the stellar locus.

    The mode of ``log sigma`` (kernel density) seeds the locus; a plane in ``(x, y)`` fitted to the objects
    near the mode lets the locus follow a PSF that varies across the image; objects within ``width``
    (relative) of the plane are kept.
    """
    good = np.isfinite(sigma) & (sigma > 0.5)
    out = np.zeros(sigma.shape, dtype=bool)
    if not good.any():
        return out
    log_sigma = np.log(np.where(good, sigma, 1.0))
    grid = np.linspace(log_sigma[good].min() - 0.1, log_sigma[good].max() + 0.1, 400)
    density = np.exp(-0.5 * ((grid[:, None] - log_sigma[good][None, :]) / 0.04) ** 2).sum(axis=1)
    model = np.full(sigma.shape, grid[np.argmax(density)])
    near = good & (np.abs(log_sigma - model) < np.log1p(3 * width))
    if near.sum() >= 6:
        design = np.column_stack([np.ones(len(x)), x - x.mean(), y - y.mean()])
        for _ in range(2):
            coeffs, *_ = np.linalg.lstsq(design[near], log_sigma[near], rcond=None)
            model = design @ coeffs
            tighter = near & (np.abs(log_sigma - model) < np.log1p(width))
            if tighter.sum() < 6:
                break
            near = tighter
    out[good] = np.abs(log_sigma[good] - model[good]) < np.log1p(width)
    return out


def find_psf_stars(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    *,
    stamp_half: int,
    fwhm_guess: float = 4.0,
    saturation: float | None = None,
    star_snr: float = 30.0,
    detect_snr: float = 5.0,
    neighbour_fraction: float = 0.05,
    saturation_fraction: float = 0.8,
    max_ellipticity: float = 0.25,
    locus_width: float = 0.15,
    max_stars: int = 400,
) -> StarSelection:
    """Select PSF stars (see the module docstring).

    Parameters
    ----------
    image : `numpy.ndarray`
        ``(ny, nx)`` background-subtracted image.
    variance : `numpy.ndarray`
        ``(ny, nx)`` variance (non-finite where unknown).
    mask : `numpy.ndarray`
        ``(ny, nx)`` uint32 `MaskBit` mask.
    stamp_half : `int`
        Half side of the PSF stamp [pixels]: stars need this much clean room and isolation.
    fwhm_guess : `float`
        Guessed PSF FWHM [pixels] for the detection filter and the first moment weight.
    saturation : `float`, optional
        Saturation level in the units of ``image`` (background already subtracted).
    star_snr, detect_snr : `float`
        Matched-filter S/N of PSF-star candidates and of any source (for isolation).
    neighbour_fraction : `float`
        A neighbour within the stamp radius brighter than this fraction of the candidate rejects it.
    saturation_fraction : `float`
        Core pixels above this fraction of ``saturation`` reject a candidate (non-linearity).
    max_ellipticity : `float`
        Largest accepted adaptive-moment ellipticity.
    locus_width : `float`
        Relative half-width of the stellar locus in ``sigma``.
    max_stars : `int`
        Keep at most this many (the brightest).

    Returns
    -------
    stars : `StarSelection`
        Possibly empty: the caller decides how many it needs.
    """
    ny, nx = image.shape
    bad = (mask & np.uint32(int(STAR_REJECT_BITS))) != 0
    finite = np.isfinite(image) & np.isfinite(variance)
    bad |= ~finite
    filled = np.where(bad, 0.0, image)
    var = np.where(finite & (variance > 0), variance, np.nan)
    sky_var = np.nanmedian(var) if np.isfinite(var).any() else 1.0
    var = np.where(np.isfinite(var), var, sky_var)
    s = fwhm_guess / 2.3548
    smoothed = ndimage.gaussian_filter(filled, s, mode="constant")
    smoothed_var = ndimage.gaussian_filter(var, s, mode="nearest") / (4 * np.pi * s * s)
    snr = smoothed / np.sqrt(smoothed_var)
    peaks = (smoothed == ndimage.maximum_filter(smoothed, size=3, mode="nearest")) & (snr > detect_snr)
    py, px = np.nonzero(peaks)
    peak_snr = snr[py, px]
    cand = np.flatnonzero(peak_snr > star_snr)
    n_candidates = int(cand.size)
    empty = StarSelection(*(np.zeros(0) for _ in range(6)), n_candidates=n_candidates)
    if cand.size == 0:
        return empty
    # room for the stamp
    h = stamp_half
    inside = (px[cand] >= h) & (px[cand] < nx - h) & (py[cand] >= h) & (py[cand] < ny - h)
    cand = cand[inside]
    # no masked pixel in the stamp's inner region, no saturated core
    core = max(2, int(np.ceil(1.5 * fwhm_guess)))
    if cand.size:
        inner = max(core, h // 2)
        masked = cut_stamps(bad.astype(np.uint8), px[cand], py[cand], inner, fill=1).reshape(cand.size, -1).any(axis=1)
        cand = cand[~masked]
    if cand.size and saturation is not None:
        peak_vals = cut_stamps(filled, px[cand], py[cand], core).reshape(cand.size, -1).max(axis=1)
        cand = cand[peak_vals < saturation_fraction * saturation]
    # isolation: no comparably bright source within the stamp radius
    if cand.size and px.size > 1:
        tree_all = spatial.cKDTree(np.column_stack([px, py]))
        tree_c = spatial.cKDTree(np.column_stack([px[cand], py[cand]]))
        pairs = tree_c.sparse_distance_matrix(tree_all, max_distance=np.hypot(h, h), output_type="ndarray")
        i, j = pairs["i"], pairs["j"]
        other = j != cand[i]
        ratio = np.zeros(cand.size)
        neighbour = smoothed[py[j[other]], px[j[other]]]
        np.maximum.at(ratio, i[other], neighbour / smoothed[py[cand[i[other]]], px[cand[i[other]]]])
        cand = cand[ratio < neighbour_fraction]
    if cand.size == 0:
        return empty
    cand = cand[np.argsort(-peak_snr[cand])][:max_stars]
    stamps = cut_stamps(filled, px[cand], py[cand], h)
    dx, dy, sigma, ellipticity = adaptive_moments(stamps, s)
    keep = np.isfinite(sigma) & (ellipticity < max_ellipticity) & (np.hypot(dx, dy) < 1.5)
    keep &= _locus(np.where(keep, sigma, np.nan), px[cand] + dx, py[cand] + dy, locus_width)
    cand, dx, dy, sigma, ellipticity = cand[keep], dx[keep], dy[keep], sigma[keep], ellipticity[keep]
    stamps = stamps[keep]
    return StarSelection(
        x=px[cand] + dx,
        y=py[cand] + dy,
        flux=stamps.sum(axis=(1, 2)),
        snr=peak_snr[cand],
        sigma=sigma,
        ellipticity=ellipticity,
        n_candidates=n_candidates,
    )
