"""ZOGY proper image subtraction (Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27).

With science ``N`` (PSF ``P_n``, per-pixel noise ``σ_n²``, flux scale ``F_n``) and template ``R`` (``P_r``,
``σ_r²``, ``F_r``)::

    den    = sqrt(σ_n² F_r² |P̂_r|² + σ_r² F_n² |P̂_n|²)
    F_D    = F_r F_n / sqrt(σ_n² F_r² + σ_r² F_n²)
    D̂      = (F_r P̂_r N̂ - F_n P̂_n R̂) / (F_D den)          difference in calibrated flux units
    P̂_D    = F_r F_n P̂_r P̂_n / (F_D den)                  its PSF (sums to 1)
    S      = D ⋆ P_D (correlation),  S_corr = S / sqrt(V(S))  score, in sigma

i.e. ``D = k_n ⊗ N - k_r ⊗ R`` with ``k̂_n = F_r P̂_r / (F_D den)``, ``k̂_r = F_n P̂_n / (F_D den)``. Variances
are propagated pixel by pixel, ``V(D) = V_n ⊗ k_n² + V_r ⊗ k_r²`` and likewise for ``S`` with the score kernels
``ŝ = k̂ conj(P̂_D)``, so ``S_corr`` follows a variance that changes over the image (the astrometric-noise terms
of the paper are not included). The small kernels are computed with FFTs on a grid of four PSF widths and
cropped to twice the PSF stamp; the images are convolved by them with full-size FFTs (one forward transform
per input plane, one inverse per output plane).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.fft

from ..exposure import Exposure
from ..psf import GridPsf
from .cells import Cell, cell_layout, process_in_cells
from .config import SubtractionConfig, dilated_bits
from .convolution import dilate_bits, flag_edges, footprint_radius, kernel_rfft2
from .metrics import typical_variance
from .stamps import embed_centred

__all__ = ["ZogyKernels", "zogy_kernels", "zogy_subtract"]


@dataclasses.dataclass(frozen=True)
class ZogyKernels:
    """Real-space ZOGY kernels for one pair of PSFs (odd squares, centred).

    Attributes
    ----------
    science, template : `numpy.ndarray`
        ``k_n`` and ``k_r``: ``D = k_n ⊗ N - k_r ⊗ R``.
    score_science, score_template : `numpy.ndarray`
        ``s_n``, ``s_r``: ``S = s_n ⊗ N - s_r ⊗ R``.
    psf : `numpy.ndarray`
        ``P_D``, the difference PSF (sum 1).
    flux_scale : `float`
        ``F_D``.
    """

    science: np.ndarray
    template: np.ndarray
    score_science: np.ndarray
    score_template: np.ndarray
    psf: np.ndarray
    flux_scale: float


def zogy_kernels(
    psf_science: np.ndarray, psf_template: np.ndarray, var_science: float, var_template: float,
    flux_science: float = 1.0, flux_template: float = 1.0, kernel_side: int | None = None,
) -> ZogyKernels:
    """The ZOGY kernels for two PSF stamps and noise levels.

    Parameters
    ----------
    psf_science, psf_template : `numpy.ndarray`
        Odd, centred PSF stamps (``P_n``, ``P_r``), each summing to 1.
    var_science, var_template : `float`
        Per-pixel noise variances ``σ_n²``, ``σ_r²`` [image units²].
    flux_science, flux_template : `float`
        ``F_n``, ``F_r``.
    kernel_side : `int`, optional
        Side of ``k_n`` and ``k_r`` (odd) [pixels]; default ``2 × (largest PSF side) + 1``. Where a PSF's
        Fourier transform has near-zeros (any PSF model cut off at its stamp edge) these kernels ring far
        out, and cutting them short leaves D with correlated noise and rings around bright stars that ``P_D``
        does not describe; the score kernels do not ring and keep the default side.

    Returns
    -------
    kernels : `ZogyKernels`
        ``k_n``, ``k_r`` of side ``kernel_side``, score kernels of side ``2 × (largest PSF side) + 1``;
        ``psf`` has the largest PSF side.
    """
    if not (var_science > 0 and var_template > 0 and np.isfinite(var_science) and np.isfinite(var_template)):
        raise ValueError(f"ZOGY needs positive finite variances, got {var_science!r} and {var_template!r}.")
    size = max(psf_science.shape[0], psf_template.shape[0])
    side = 2 * size + 1
    kernel_side = side if kernel_side is None else int(kernel_side)
    if kernel_side % 2 != 1:
        raise ValueError(f"kernel_side must be odd, got {kernel_side}.")
    grid = max(4 * size + 1, kernel_side)
    p_n = scipy.fft.rfft2(np.fft.ifftshift(embed_centred(psf_science, grid)))
    p_r = scipy.fft.rfft2(np.fft.ifftshift(embed_centred(psf_template, grid)))
    den = np.sqrt(var_science * flux_template**2 * np.abs(p_r) ** 2 + var_template * flux_science**2 * np.abs(p_n) ** 2)
    den = np.maximum(den, 1e-12 * den.max())
    f_d = flux_template * flux_science / np.sqrt(var_science * flux_template**2 + var_template * flux_science**2)
    k_n = flux_template * p_r / (f_d * den)
    k_r = flux_science * p_n / (f_d * den)
    p_d = flux_template * flux_science * p_r * p_n / (f_d * den)

    def real(spectrum: np.ndarray, side: int) -> np.ndarray:
        image = np.fft.fftshift(scipy.fft.irfft2(spectrum, s=(grid, grid)))
        c, h = grid // 2, side // 2
        return image[c - h : c + h + 1, c - h : c + h + 1]

    psf_d = real(p_d, size)
    return ZogyKernels(
        science=real(k_n, kernel_side), template=real(k_r, kernel_side), score_science=real(k_n * np.conj(p_d), side),
        score_template=real(k_r * np.conj(p_d), side), psf=psf_d / psf_d.sum(), flux_scale=float(f_d),
    )


def _filtered(terms: list[tuple[np.ndarray, np.ndarray, float]], shape: tuple[int, int], workers: int) -> np.ndarray:
    """``Σ sign × kernel ⊗ image`` over ``(image_spectrum, kernel, sign)`` terms, with one inverse FFT."""
    total = None
    for image_fft, kernel, sign in terms:
        spectrum = kernel_rfft2(kernel, shape, workers)
        spectrum *= image_fft
        if total is None:
            total = spectrum if sign > 0 else -spectrum
        elif sign > 0:
            total += spectrum
        else:
            total -= spectrum
    return scipy.fft.irfft2(total, s=shape, workers=workers)


def zogy_subtract(
    science: Exposure, template: Exposure, usable: np.ndarray, config: SubtractionConfig
) -> tuple[Exposure, Exposure, np.ndarray, dict]:
    """ZOGY difference, filtered template and score image of two images on the same grid.

    Parameters
    ----------
    science, template : `~lsst.dia.pipe.exposure.Exposure`
        Images [nJy] with unusable pixels already set to 0 (and finite, positive variance everywhere).
    usable : `numpy.ndarray`
        ``(ny, nx)`` bool, pixels usable in both images (for the noise levels).
    config : `SubtractionConfig`
        ``zogy`` (flux scales, cells), ``psfGridSize``, ``fftWorkers``.

    Returns
    -------
    difference : `~lsst.dia.pipe.exposure.Exposure`
        ``D`` [nJy] with variance ``V(D)``, combined mask (bits dilated by the kernel footprints,
        ``DETECTION_EDGE`` on the border) and PSF ``P_D`` (`GridPsf`).
    matched_template : `~lsst.dia.pipe.exposure.Exposure`
        ``k_r ⊗ R`` [nJy] (PSF ``P_D``, variance ``V_r ⊗ k_r²``).
    score : `numpy.ndarray`
        ``S_corr`` [sigma], float32.
    metadata : `dict`
        ``zogy_flux_scale`` (F_D at the centre), ``zogy_n_cells``.
    """
    zc = config.zogy
    workers = config.fftWorkers
    shape = science.shape
    ny, nx = shape
    var_n = typical_variance(science.variance, usable)
    var_r = typical_variance(template.variance, usable)

    def psfs_at(x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(science.psf.kernel_image(x, y), float), np.asarray(template.psf.kernel_image(x, y), float)

    def kernels_at(x: float, y: float, vn: float, vr: float, kernel_side: int | None = None) -> ZogyKernels:
        return zogy_kernels(*psfs_at(x, y), vn, vr, zc.fluxScaleScience, zc.fluxScaleTemplate, kernel_side)

    centre_psfs = psfs_at(0.5 * (nx - 1), 0.5 * (ny - 1))
    stamp = max(p.shape[0] for p in centre_psfs)
    kernel_side = min(zc.kernelSideFactor * stamp + 1, ny, nx, zc.cellSize or nx)
    kernel_side -= 1 - kernel_side % 2
    centre = zogy_kernels(*centre_psfs, var_n, var_r, zc.fluxScaleScience, zc.fluxScaleTemplate, kernel_side)
    half = centre.score_science.shape[0] // 2
    cells = cell_layout(shape, zc.cellSize, zc.cellOverlap, half)

    def run(cell: Cell) -> tuple[np.ndarray, ...]:
        rows, cols = cell.region
        sub_usable = usable[rows, cols]
        if len(cells) == 1:
            kern = centre
        else:
            kern = kernels_at(*cell.centre, typical_variance(science.variance[rows, cols], sub_usable),
                              typical_variance(template.variance[rows, cols], sub_usable), kernel_side)
        n_img, r_img = science.image[rows, cols], template.image[rows, cols]
        sub_shape = n_img.shape
        n_fft = scipy.fft.rfft2(n_img, workers=workers)
        r_fft = scipy.fft.rfft2(r_img, workers=workers)
        filtered_n = _filtered([(n_fft, kern.science, 1)], sub_shape, workers)
        matched = _filtered([(r_fft, kern.template, 1)], sub_shape, workers)
        score = _filtered([(n_fft, kern.score_science, 1), (r_fft, kern.score_template, -1)], sub_shape, workers)
        del n_fft, r_fft
        vn_fft = scipy.fft.rfft2(science.variance[rows, cols], workers=workers)
        vr_fft = scipy.fft.rfft2(template.variance[rows, cols], workers=workers)
        var_filtered_n = _filtered([(vn_fft, kern.science**2, 1)], sub_shape, workers)
        var_matched = _filtered([(vr_fft, kern.template**2, 1)], sub_shape, workers)
        var_s = _filtered([(vn_fft, kern.score_science**2, 1), (vr_fft, kern.score_template**2, 1)], sub_shape, workers)
        tiny = np.float32(1e-12 * max(var_n, var_r))
        for var in (var_filtered_n, var_matched, var_s):
            np.maximum(var, tiny, out=var)
        score /= np.sqrt(var_s)
        filtered_n -= matched
        var_filtered_n += var_matched
        return filtered_n, var_filtered_n, matched, var_matched, score

    difference, var_d, matched, var_matched, score = process_in_cells(shape, cells, run)

    # Masks spread by the score kernels, on which detection runs: D's own kernels ring far out at a low level
    # whenever a PSF's Fourier transform has near-zeros (their 1e-3 footprint can be the whole stamp, which
    # would blank wide bands around every masked region and a wide border for nothing). Interpolated pixels
    # (bad columns) hold approximate data and are not spread.
    radius_n = max(footprint_radius(centre.score_science), 1)
    radius_r = max(footprint_radius(centre.score_template), 1)
    spread = dilated_bits(config)
    template_mask = dilate_bits(template.mask, radius_r, spread)
    mask = dilate_bits(science.mask, radius_n, spread) | template_mask
    # The border only has to cover where sources cut by the image edge leave residuals, i.e. where the score
    # kernels are significant: 1e-2 of their peak (7-11 px on the demo survey instead of 11-17 at 1e-3; the
    # completeness plateau rose from 0.867 to 0.887 with no edge artifact).
    border = max(footprint_radius(centre.score_science, 1e-2), footprint_radius(centre.score_template, 1e-2), 1)
    flag_edges(mask, border)
    flag_edges(template_mask, border)

    xs = np.linspace(0, nx - 1, config.psfGridSize)
    ys = np.linspace(0, ny - 1, config.psfGridSize)
    psf = GridPsf(xs, ys, np.array([[kernels_at(x, y, var_n, var_r).psf for x in xs] for y in ys]))
    common = dict(wcs=science.wcs, x0=science.x0, y0=science.y0, band=science.band)
    diff_exp = Exposure(image=difference, variance=var_d, mask=mask, psf=psf, mjd=science.mjd, **common)
    matched_exp = Exposure(image=matched, variance=var_matched, mask=template_mask, psf=psf, mjd=template.mjd, **common)
    metadata = {"zogy_flux_scale": centre.flux_scale, "zogy_n_cells": len(cells)}
    return diff_exp, matched_exp, score, metadata
