"""Alard-Lupton subtraction: basis, kernel stars, spatial kernel fit, convolution, decorrelation.

One image (the template in ``convolveTemplate`` mode, the science image in ``convolveScience``) is convolved by
the fitted spatially varying kernel ``K`` to the PSF of the other (the *target*) and subtracted, with the
differential background. Sign convention: the difference is always science minus template.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np

from ..exposure import Exposure
from ..masks import MaskBit, planes_set
from ..psf import GridPsf
from .basis import AlardLuptonBasis, make_alard_lupton_basis
from .candidates import KernelCandidates, find_kernel_candidates
from .cells import Cell, cell_layout, process_in_cells
from .config import AlardLuptonConfig, DecorrelationConfig, SubtractionConfig, dilated_bits, mask_bits
from .convolution import convolve, convolve_spatial, dilate_bits, flag_edges, footprint_radius
from .decorrelation import convolve_stamp, decorrelation_kernel
from .errors import InsufficientKernelSourcesError
from .grids import upsample
from .kernel_fit import KernelFit, KernelSolution, fit_kernel
from .metrics import typical_variance
from .stamps import embed_centred

__all__ = ["alard_lupton_subtract"]

_log = logging.getLogger(__name__)

_UNDEFINED = np.uint32(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE)


def _kernel_power_ratio(solution: KernelSolution, shape: tuple[int, int]) -> np.ndarray | float:
    """``ΣK(x, y)² / ΣK(centre)²`` on every pixel (cubic spline through a 9×9 grid; 1.0 at order 0)."""
    if solution.spatial_order == 0:
        return 1.0
    ny, nx = shape
    nodes_y, nodes_x = np.linspace(0, ny - 1, 9), np.linspace(0, nx - 1, 9)
    gx, gy = np.meshgrid(nodes_x, nodes_y)
    kernels = solution.spatial_kernels
    gram = np.einsum("shw,thw->st", kernels, kernels)
    p = solution.kernel_model.design(np.r_[gx.ravel(), 0.5 * (nx - 1)], np.r_[gy.ravel(), 0.5 * (ny - 1)])
    power = np.einsum("ns,st,nt->n", p, gram, p)
    return upsample((power[:-1] / power[-1]).reshape(9, 9), nodes_y, nodes_x, shape, degree=3)


def _restore_edges(convolved: np.ndarray, unconvolved: np.ndarray, scale: float, border: int) -> None:
    """Replace the wrapped-around border of a circular convolution by ``scale × unconvolved`` (in place)."""
    for sl in (np.s_[:border], np.s_[-border:], np.s_[:, :border], np.s_[:, -border:]):
        convolved[sl] = scale * unconvolved[sl]


def _psf_grid(
    science: Exposure, template: Exposure, solution: KernelSolution, convolve_template: bool,
    phi: np.ndarray | None, var_convolved: float, var_target: float, n_grid: int, per_node_phi: bool,
) -> tuple[GridPsf, GridPsf]:
    """Difference and matched-template PSFs on an ``n_grid²`` grid of nodes.

    The difference PSF is the target PSF (``convolveTemplate``) or ``K ⊗ P_science`` (``convolveScience``),
    convolved by the decorrelation kernel ``phi`` (the centre one, or each node's when ``per_node_phi``).
    """
    ny, nx = science.shape
    xs, ys = np.linspace(0, nx - 1, n_grid), np.linspace(0, ny - 1, n_grid)
    diff_stamps, matched_stamps = [], []
    for y in ys:
        diff_row, matched_row = [], []
        for x in xs:
            kernel = solution.kernel_image(x, y)
            p_s = np.asarray(science.psf.kernel_image(x, y), float)
            p_t = np.asarray(template.psf.kernel_image(x, y), float)
            if convolve_template:
                base = p_s
                matched = convolve_stamp(embed_centred(p_t, p_s.shape[0]), kernel)
            else:
                base = convolve_stamp(embed_centred(p_s, p_t.shape[0]), kernel)
                matched = p_t
            if phi is not None:
                node_phi = phi
                if per_node_phi:
                    node_phi = decorrelation_kernel(kernel, var_convolved, var_target, phi.shape[0])
                base = convolve_stamp(base, node_phi)
            diff_row.append(base)
            matched_row.append(matched)
        diff_stamps.append(diff_row)
        matched_stamps.append(matched_row)
    return GridPsf(xs, ys, np.array(diff_stamps)), GridPsf(xs, ys, np.array(matched_stamps))


def _convolve_exposure(
    exposure: Exposure, solution: KernelSolution, workers: int, spread_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``K ⊗`` image, variance (``≈ V ⊗ K²``) and mask of an exposure; wrapped-around borders replaced.

    The variance is convolved with the centre kernel squared and scaled by the spatial change of ``ΣK²``
    (exact for a locally constant variance). Mask bits ``spread_bits`` are dilated by the centre kernel's
    footprint (``|K| ≥ 10⁻³ max|K|``). The ``half kernel`` border of image and variance is the unconvolved
    plane times ``ΣK`` (resp. ``ΣK²``), instead of the circular convolution's wrapped-around values.
    """
    ny, nx = exposure.shape
    h = solution.basis.shape[-1] // 2
    centre_kernel = solution.kernel_image(0.5 * (nx - 1), 0.5 * (ny - 1))
    image = convolve_spatial(exposure.image, solution.spatial_kernels, solution.kernel_model, workers)
    _restore_edges(image, exposure.image, solution.kernel_sum, h)
    variance = convolve(exposure.variance, centre_kernel**2, workers)
    _restore_edges(variance, exposure.variance, float((centre_kernel**2).sum()), h)
    variance *= _kernel_power_ratio(solution, exposure.shape)
    mask = dilate_bits(exposure.mask, footprint_radius(centre_kernel), spread_bits)
    return image, variance, mask


def _decorrelate(
    difference: np.ndarray, solution: KernelSolution, var_convolved: float, var_target: float,
    config: DecorrelationConfig, workers: int,
) -> np.ndarray:
    """The difference whitened by ``φ`` (cropped to the kernel's size, beyond which it holds < 1e-6 of its
    absolute sum) from the kernel at the image centre (or at each cell's centre)."""
    ny, nx = difference.shape
    h = solution.basis.shape[-1] // 2
    cells = cell_layout(difference.shape, config.cellSize, config.cellOverlap, 2 * h)

    def run(cell: Cell) -> tuple[np.ndarray]:
        centre = (0.5 * (nx - 1), 0.5 * (ny - 1)) if len(cells) == 1 else cell.centre
        phi = decorrelation_kernel(solution.kernel_image(*centre), var_convolved, var_target, 2 * h + 1)
        return (convolve(difference[cell.region], phi, workers),)

    return process_in_cells(difference.shape, cells, run)[0]


def _fit_kernel_to_psfs(
    target: Exposure, convolved: Exposure, basis: AlardLuptonBasis, half_fit: int, config: AlardLuptonConfig
) -> KernelFit:
    """Fit the kernel that maps the convolved image's PSF onto the target's (``P_c ⊗ K = P_t``).

    Noise-free unit-flux PSF stamps are laid on a ``config.psfFallbackGrid`` square grid of synthetic
    images on the science grid and fitted exactly like star stamps (unit variance, no background).
    """
    ny, nx = target.shape
    h = basis.half_size
    margin = half_fit + h + 1
    n = config.psfFallbackGrid
    xs = np.linspace(margin, nx - 1 - margin, n) if n > 1 else np.array([0.5 * (nx - 1)])
    ys = np.linspace(margin, ny - 1 - margin, n) if n > 1 else np.array([0.5 * (ny - 1)])
    gx, gy = (a.ravel().astype(np.int64) for a in np.meshgrid(np.round(xs), np.round(ys)))
    if margin >= min(nx, ny) / 2:
        raise InsufficientKernelSourcesError(0, config.minKernelSources)
    images = {}
    for name, exposure in (("target", target), ("convolved", convolved)):
        image = np.zeros((ny, nx), np.float32)
        for x, y in zip(gx, gy):
            stamp = exposure.psf.kernel_image(float(x), float(y))
            r = stamp.shape[0] // 2
            image[y - r:y + r + 1, x - r:x + r + 1] += stamp
        images[name] = Exposure(image, np.ones((ny, nx), np.float32), np.zeros((ny, nx), np.uint32), exposure.psf,
                                exposure.wcs, band=exposure.band)
    candidates = KernelCandidates(gx, gy, np.ones(len(gx)), np.full(len(gx), np.inf), np.full(len(gx), np.inf),
                                  len(gx), len(gx))
    fallback = copy.deepcopy(config)
    fallback.fitBackground = False
    fallback.minKernelSources = 1
    fallback.minSourcesPerSpatialTerm = 1
    return fit_kernel(images["target"], images["convolved"], candidates, basis, half_fit, fallback)


def alard_lupton_subtract(
    science: Exposure, template: Exposure, usable: np.ndarray, config: SubtractionConfig, mode: str,
    timings: dict[str, float],
) -> tuple[Exposure, Exposure, KernelFit, dict]:
    """Alard-Lupton difference of two images on the same grid.

    Parameters
    ----------
    science, template : `~lsst.dia.pipe.exposure.Exposure`
        Images [nJy] with unusable pixels set to 0 and finite positive variance everywhere; the template
        mask already in difference-image terms (``SAT_TEMPLATE``, ``NO_TEMPLATE``).
    usable : `numpy.ndarray`
        ``(ny, nx)`` bool, pixels usable in both images.
    config : `SubtractionConfig`
        ``alardLupton``, ``doDecorrelation``, ``decorrelation``, ``psfGridSize``, ``fftWorkers``.
    mode : `str`
        ``"convolveTemplate"`` or ``"convolveScience"``.
    timings : `dict` [`str`, `float`]
        Stage timings [s] are added to it.

    Returns
    -------
    difference, matched_template : `~lsst.dia.pipe.exposure.Exposure`
    fit : `~lsst.dia.pipe.diffim.kernel_fit.KernelFit`
    metadata : `dict`

    Raises
    ------
    lsst.dia.pipe.diffim.InsufficientKernelSourcesError
        Too few kernel stars and ``usePsfModelFallback`` is off (or the image is too small for the PSF grid).
    lsst.dia.pipe.diffim.KernelSolveError
        Singular kernel fit at every spatial order.

    Notes
    -----
    Kernel stamps: fit region of half side ``h + ceil(3 σ_target)`` (``h`` the kernel half side), so the
    convolved star and its kernel wings lie inside it; that decouples the kernel sum from the per-stamp
    background. Without decorrelation the difference variance is ``V_target + V_convolved ⊗ K²``; with it,
    ``V_target + V_convolved (ΣK)²`` (see `~lsst.dia.pipe.diffim.decorrelation`). With too few kernel stars
    the kernel is fitted to the two PSF models instead (``usePsfModelFallback``, logged as a warning,
    ``metadata["kernel_source"] = "psfModel"``; otherwise ``"stars"``).
    """
    al = config.alardLupton
    ny, nx = science.shape
    xc, yc = 0.5 * (nx - 1), 0.5 * (ny - 1)
    convolve_template = mode == "convolveTemplate"
    target, convolved = (science, template) if convolve_template else (template, science)

    t0 = time.perf_counter()
    basis = make_alard_lupton_basis(convolved.psf_sigma, target.psf_sigma, al)
    h = basis.half_size
    half_fit = h + int(np.ceil(3 * target.psf_sigma))
    bad = planes_set(science.mask | template.mask, mask_bits(al.kernelSources.badMaskPlanes)) | ~usable
    candidates = find_kernel_candidates(science, template, bad, half_fit + h, al.kernelSources, config.fftWorkers)
    timings["time_candidates_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    kernel_source = "stars"
    try:
        fit = fit_kernel(target, convolved, candidates, basis, half_fit, al, config.fftWorkers)
    except InsufficientKernelSourcesError as err:
        if not al.usePsfModelFallback:
            raise
        _log.warning("%s Fitting the kernel to the PSF models instead.", err)
        fit = _fit_kernel_to_psfs(target, convolved, basis, half_fit, al)
        kernel_source = "psfModel"
    solution = fit.solution
    timings["time_kernel_fit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    image, variance, mask = _convolve_exposure(convolved, solution, config.fftWorkers, dilated_bits(config))
    background = solution.background_image() if al.fitBackground else np.float32(0.0)
    if convolve_template:
        matched_image, matched_variance, matched_mask = image + background, variance, mask
        difference = science.image - matched_image
        diff_mask = science.mask | mask
    else:
        matched_image = template.image - background
        matched_variance, matched_mask = template.variance, template.mask.copy()
        difference = image - matched_image
        diff_mask = mask | template.mask
    flag_edges(diff_mask, h)
    flag_edges(matched_mask, h)
    undefined = (diff_mask & _UNDEFINED) != 0
    undefined = undefined if undefined.any() else None
    if undefined is not None:
        difference[undefined] = 0.0
    timings["time_convolution_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    var_convolved = typical_variance(convolved.variance, usable)
    var_target = typical_variance(target.variance, usable)
    phi = None
    if config.doDecorrelation:
        difference = _decorrelate(difference, solution, var_convolved, var_target, config.decorrelation,
                                  config.fftWorkers)
        if undefined is not None:
            difference[undefined] = 0.0
        diff_variance = convolved.variance * np.float32(solution.kernel_sum**2)
        diff_variance += target.variance
        phi = decorrelation_kernel(solution.kernel_image(xc, yc), var_convolved, var_target, 2 * h + 1)
    else:
        diff_variance = variance + target.variance
    diff_psf, matched_psf = _psf_grid(science, template, solution, convolve_template, phi, var_convolved,
                                      var_target, config.psfGridSize, config.decorrelation.cellSize > 0)
    timings["time_decorrelation_s"] = time.perf_counter() - t0

    common = dict(wcs=science.wcs, x0=science.x0, y0=science.y0, band=science.band)
    diff_exp = Exposure(image=difference, variance=diff_variance.astype(np.float32, copy=False), mask=diff_mask,
                        psf=diff_psf, mjd=science.mjd, **common)
    matched_exp = Exposure(image=matched_image.astype(np.float32, copy=False),
                           variance=matched_variance.astype(np.float32, copy=False), mask=matched_mask,
                           psf=matched_psf, mjd=template.mjd, **common)
    used = np.asarray(fit.stamps["used"])
    metadata = {
        "kernel_source": kernel_source,
        "kernel_sum": solution.kernel_sum,
        "kernel_size": basis.size,
        "kernel_basis_sigmas": ",".join(f"{s:.3f}" for s in basis.sigmas),
        "n_kernel_peaks": candidates.n_peaks,
        "n_kernel_eligible": candidates.n_eligible,
        "n_kernel_candidates": len(candidates),
        "n_kernel_used": int(used.sum()),
        "spatial_order_used": solution.spatial_order,
        "n_spatial_iterations": fit.n_iterations,
        "kernel_residual_std_median": float(np.median(np.asarray(fit.stamps["residualStd"])[used])),
        "decorrelation_var_convolved": var_convolved,
        "decorrelation_var_target": var_target,
    }
    return diff_exp, matched_exp, fit, metadata
