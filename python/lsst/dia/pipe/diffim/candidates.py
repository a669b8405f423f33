"""Selection of kernel-candidate stars from the images themselves (no input catalog).

Bright, isolated, unsaturated, point-like sources with S/N in ``[minSnr, maxSnr]`` on the science image and
present on the template, with clean pixels over the whole kernel-fit stamp, at most ``nStarPerCell`` (the
highest S/N) per ``cellSize`` cell so the spatial kernel variation is constrained everywhere.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial import cKDTree

from ..exposure import Exposure
from .config import KernelSourceConfig
from .convolution import convolve
from .stamps import extract_stamps

__all__ = ["KernelCandidates", "find_kernel_candidates"]


@dataclasses.dataclass
class KernelCandidates:
    """Kernel-candidate stars.

    Attributes
    ----------
    x, y : `numpy.ndarray`
        Integer pixel of each candidate's peak.
    flux : `numpy.ndarray`
        PSF flux on the science image [image units, nJy].
    snr : `numpy.ndarray`
        PSF-flux S/N on the science image.
    template_snr : `numpy.ndarray`
        PSF-flux S/N on the template.
    n_peaks : `int`
        Peaks of the PSF-smoothed science image above ``peakThreshold``.
    n_eligible : `int`
        Candidates that passed every cut before the per-cell limit.
    """

    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    snr: np.ndarray
    template_snr: np.ndarray
    n_peaks: int
    n_eligible: int

    def __len__(self) -> int:
        return int(self.x.size)


def _local_peaks(smoothed: np.ndarray, above: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of ``above`` (not on the outer row/column) that are maxima of their 3×3 neighbourhood."""
    ny, nx = smoothed.shape
    inner = np.zeros_like(above)
    inner[1:-1, 1:-1] = above[1:-1, 1:-1]
    idx = np.flatnonzero(inner)
    flat = smoothed.ravel()
    values = flat[idx]
    keep = np.ones(idx.size, dtype=bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            off = dy * nx + dx
            if off < 0:
                keep &= values >= flat[idx + off]
            elif off > 0:
                keep &= values > flat[idx + off]
    idx = idx[keep]
    return idx % nx, idx // nx


def _psf_photometry(
    image: np.ndarray, variance: np.ndarray, psf: np.ndarray, x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """PSF flux and its error at integer pixels (meas_base PsfFlux estimator, vectorised)."""
    half = psf.shape[0] // 2
    data = extract_stamps(image, x, y, half).astype(float)
    var = extract_stamps(variance, x, y, half).astype(float)
    p2 = float((psf**2).sum())
    flux = np.einsum("nij,ij->n", data, psf) / p2
    err = np.sqrt(np.einsum("nij,ij->n", var, psf**2)) / p2
    return flux, err


def _centre_crop(stamp: np.ndarray, half: int) -> np.ndarray:
    """The central ``(2 half + 1)²`` of an odd square stamp (the stamp itself if it is smaller)."""
    c = stamp.shape[0] // 2
    half = min(half, c)
    return stamp[c - half : c + half + 1, c - half : c + half + 1]


def _weighted_size(stamps: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted (weight sigma) central second moment ``<r²>`` of each stamp [pixels²]."""
    half = stamps.shape[-1] // 2
    v, u = np.mgrid[-half : half + 1, -half : half + 1].astype(float)
    w = np.exp(-0.5 * (u**2 + v**2) / sigma**2)
    wi = stamps * w
    total = wi.sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = (wi * u).sum(axis=(-2, -1)) / total
        yc = (wi * v).sum(axis=(-2, -1)) / total
        r2 = (wi * (u**2 + v**2)).sum(axis=(-2, -1)) / total
        return np.where(total > 0, r2 - xc**2 - yc**2, np.nan)


def find_kernel_candidates(
    science: Exposure, template: Exposure, bad: np.ndarray, border: int, config: KernelSourceConfig,
    workers: int = 1,
) -> KernelCandidates:
    """Find kernel-candidate stars on a science/template pair on the same pixel grid.

    Parameters
    ----------
    science, template : `~lsst.dia.pipe.exposure.Exposure`
        Images [nJy] with finite pixels (bad pixels already filled).
    bad : `numpy.ndarray`
        ``(ny, nx)`` bool, true where either image has a ``config.badMaskPlanes`` bit or a non-finite value.
    border : `int`
        Half side of the stamp that must be clean and inside the image (kernel-fit stamp of the convolved
        image) [pixels].
    config : `KernelSourceConfig`
        Selection cuts.
    workers : `int`
        Threads for `scipy.fft` (smoothing).

    Returns
    -------
    candidates : `KernelCandidates`
        Sorted by cell, then decreasing S/N.

    Notes
    -----
    Peaks are the 3×3 maxima of the science image smoothed by a Gaussian of the PSF sigma (tiled FFTs) whose
    smoothed S/N (white-noise approximation, per-pixel variance) exceeds ``peakThreshold``; every such peak
    is a potential neighbour in the isolation test. PSF fluxes use the PSF at the image centre (meas_base
    estimator ``ΣPI/ΣP²``, error ``sqrt(ΣP²V)/ΣP²``). The point-like test compares the Gaussian-weighted
    central second moment of the star to that of the PSF image.
    """
    ny, nx = science.shape
    xc, yc = 0.5 * (nx - 1), 0.5 * (ny - 1)
    sigma = science.psf_sigma
    r = np.arange(-int(np.ceil(3 * sigma)), int(np.ceil(3 * sigma)) + 1)
    gauss = np.exp(-0.5 * (r[:, None] ** 2 + r[None, :] ** 2) / sigma**2)
    gauss /= gauss.sum()
    smoothed = convolve(science.image, gauss, workers)
    noise_factor = np.float32(np.sqrt((gauss**2).sum()))
    above = smoothed > np.float32(config.peakThreshold) * noise_factor * np.sqrt(science.variance)
    px, py = _local_peaks(smoothed, above)
    n_peaks = int(px.size)

    keep = (px >= border) & (px < nx - border) & (py >= border) & (py < ny - border)
    x, y = px[keep], py[keep]
    psf_s = np.asarray(science.psf.kernel_image(xc, yc), dtype=float)
    psf_t = np.asarray(template.psf.kernel_image(xc, yc), dtype=float)
    psf_s = _centre_crop(psf_s, border)
    psf_t = _centre_crop(psf_t, border)
    half_psf = psf_s.shape[0] // 2

    flux, err = _psf_photometry(science.image, science.variance, psf_s, x, y)
    snr = flux / err
    keep = np.isfinite(snr) & (snr >= config.minSnr) & (snr <= config.maxSnr)
    x, y, flux, snr = x[keep], y[keep], flux[keep], snr[keep]

    if config.isolationRadius > 0 and x.size:
        tree = cKDTree(np.column_stack([px, py]))
        n_near = tree.query_ball_point(np.column_stack([x, y]), config.isolationRadius, return_length=True)
        keep = n_near <= 1
        x, y, flux, snr = x[keep], y[keep], flux[keep], snr[keep]

    star_size = _weighted_size(extract_stamps(science.image, x, y, half_psf).astype(float), sigma)
    psf_size = _weighted_size(psf_s[None], sigma)[0]
    with np.errstate(invalid="ignore"):
        keep = np.abs(np.sqrt(star_size / psf_size) - 1.0) <= config.maxSizeDeviation
    x, y, flux, snr = x[keep], y[keep], flux[keep], snr[keep]

    t_flux, t_err = _psf_photometry(template.image, template.variance, psf_t, x, y)
    template_snr = t_flux / t_err
    keep = np.isfinite(template_snr) & (template_snr >= config.minTemplateSnr)
    if x[keep].size:
        clean = ~extract_stamps(bad, x[keep], y[keep], border).any(axis=(1, 2))
        keep[np.flatnonzero(keep)[~clean]] = False
    x, y, flux, snr, template_snr = x[keep], y[keep], flux[keep], snr[keep], template_snr[keep]
    n_eligible = int(x.size)

    cell = (y // config.cellSize) * (nx // config.cellSize + 1) + x // config.cellSize
    order = np.lexsort((-snr, cell))
    cell = cell[order]
    first = np.searchsorted(cell, cell, side="left")
    rank = np.arange(cell.size) - first
    order = order[rank < config.nStarPerCell]
    return KernelCandidates(
        x=x[order], y=y[order], flux=flux[order], snr=snr[order], template_snr=template_snr[order],
        n_peaks=n_peaks, n_eligible=n_eligible,
    )
