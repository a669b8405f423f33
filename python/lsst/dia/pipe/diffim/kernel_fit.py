"""Alard-Lupton kernel fitting: per-stamp least squares, stamp rejection, and the joint spatial solution.

Model of each kernel stamp (fit region ``F`` around a star): ``target ≈ convolved ⊗ K + b``, with
``K = Σ_i a_i B_i`` over the normalised basis ``B_i`` and a constant background ``b`` per stamp. Every stamp's
normal equations ``(AᵀWA, AᵀWy)`` are built at once (separable convolutions of the stamps by the raw basis as
batched matrix products; ``W = 1 / (V_target + V_convolved)``). The spatial solution makes ``a_0`` (the
kernel sum: the basis is normalised so only ``B_0`` has a non-zero sum) constant, every other ``a_i`` a
Chebyshev polynomial of the kernel spatial order, and the background a Chebyshev polynomial of the background
order; its normal matrix is ``Σ_n E_nᵀ (A_nᵀWA_n) E_n`` with ``E_n`` the map from global to stamp-local
coefficients, so no pixel data are revisited. Residual statistics of any coefficient set are exact functions
of the same sums.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import os

import numpy as np
from astropy.table import Table
from threadpoolctl import threadpool_limits

from ..exposure import Exposure
from .basis import AlardLuptonBasis
from .candidates import KernelCandidates
from .config import AlardLuptonConfig
from .errors import InsufficientKernelSourcesError, KernelSolveError
from .spatial import ChebyshevSpatialModel
from .stamps import extract_stamps

__all__ = ["KernelFit", "KernelSolution", "StampSystems", "build_stamp_systems", "fit_kernel"]

_log = logging.getLogger(__name__)

#: Columns of the kernel-source table: name -> description.
KERNEL_SOURCE_COLUMNS: dict[str, str] = {
    "x": "Column of the stamp centre (star peak) [pixel].",
    "y": "Row of the stamp centre (star peak) [pixel].",
    "scienceFlux": "PSF flux of the star on the science image [nJy].",
    "snr": "PSF-flux S/N of the star on the science image.",
    "templateSnr": "PSF-flux S/N of the star on the template.",
    "kernelSum": "Sum of the kernel fitted to this stamp alone.",
    "kernelSumErr": "Standard error of kernelSum from that fit's normal matrix (inf if singular).",
    "stampResidualMean": "Mean of residual/sigma over the fit region with the single-stamp kernel.",
    "stampResidualStd": "Standard deviation of residual/sigma with the single-stamp kernel.",
    "residualMean": "Mean of residual/sigma over the fit region with the final spatial kernel.",
    "residualStd": "Standard deviation of residual/sigma with the final spatial kernel.",
    "used": "The stamp constrains the final spatial solution.",
    "rejectedBy": "Why the stamp was dropped: singular, stampResidual, kernelSum, spatialResidual (or empty).",
}

_CHUNK = 64


@dataclasses.dataclass
class StampSystems:
    """Weighted least-squares sums of every kernel stamp (``A``: ``(m, P)`` design, ``y``: data, ``w``: weights).

    Attributes
    ----------
    normal : `numpy.ndarray`
        ``(n, m, m)`` ``A W Aᵀ``.
    rhs : `numpy.ndarray`
        ``(n, m)`` ``A W y``.
    design_sqrt_w : `numpy.ndarray`
        ``(n, m)`` ``A √w``.
    y_w_y : `numpy.ndarray`
        ``(n,)`` ``Σ w y²``.
    sqrt_w_y : `numpy.ndarray`
        ``(n,)`` ``Σ √w y``.
    n_pixels : `int`
        Pixels ``P`` per fit region.
    """

    normal: np.ndarray
    rhs: np.ndarray
    design_sqrt_w: np.ndarray
    y_w_y: np.ndarray
    sqrt_w_y: np.ndarray
    n_pixels: int

    def chi2(self, coefficients: np.ndarray) -> np.ndarray:
        """``Σ w (y - Aᵀa)²`` over each fit region, for coefficients ``(n, m)``."""
        a = coefficients
        return self.y_w_y - 2 * np.einsum("nm,nm->n", a, self.rhs) + np.einsum("nm,nmk,nk->n", a, self.normal, a)

    def residual_stats(self, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of ``(y - Aᵀa) √w`` over each fit region, for coefficients ``(n, m)``."""
        mean = (self.sqrt_w_y - np.einsum("nm,nm->n", coefficients, self.design_sqrt_w)) / self.n_pixels
        std = np.sqrt(np.maximum(self.chi2(coefficients) / self.n_pixels - mean**2, 0.0))
        return mean, std


def _band_matrices(factors: np.ndarray, side: int) -> np.ndarray:
    """``(n_factors, side + k - 1, side)`` matrices ``C`` with ``(stamp @ C)[:, x] = Σ_u f(u) stamp[:, x + h - u]``.

    Right-multiplying a stamp of side ``side + 2h`` by ``C`` convolves its rows by the 1-d factor and keeps
    the ``side`` central (fully overlapped) columns.
    """
    n, k = factors.shape
    out = np.zeros((n, side + k - 1, side))
    for x in range(side):
        out[:, x : x + k, x] = factors[:, ::-1]
    return out


def build_stamp_systems(
    target: Exposure,
    convolved: Exposure,
    x: np.ndarray,
    y: np.ndarray,
    basis: AlardLuptonBasis,
    half_fit: int,
    fit_background: bool,
    workers: int = 1,
) -> StampSystems:
    """Normal equations of every kernel stamp.

    Parameters
    ----------
    target : `~lsst.dia.pipe.exposure.Exposure`
        Image to be matched (the one not convolved) [nJy].
    convolved : `~lsst.dia.pipe.exposure.Exposure`
        Image convolved by the kernel [nJy], same grid.
    x, y : `numpy.ndarray`
        Integer stamp centres; stamps of half side ``half_fit + basis.half_size`` must be inside the image.
    basis : `AlardLuptonBasis`
        Kernel basis.
    half_fit : `int`
        Half side of the fit region [pixels].
    fit_background : `bool`
        Add a constant-background column.
    workers : `int`
        Threads over chunks of stamps (each chunk's products are single-threaded BLAS calls; -1: all cores).

    Returns
    -------
    systems : `StampSystems`
    """
    h = basis.half_size
    side = 2 * half_fit + 1
    # The separable convolutions run in float32 (kernel sums change by ~1e-6); the normal equations in float64.
    bands = _band_matrices(basis.factors, side).astype(np.float32)
    n_factors = len(basis.factors)
    by_column: dict[int, list[tuple[int, int]]] = {}
    for r, (col, row) in enumerate(basis.raw_terms):
        by_column.setdefault(col, []).append((r, row))
    n_basis = len(basis)
    m = n_basis + int(fit_background)
    transform = np.eye(m)
    transform[:n_basis, :n_basis] = basis.transform
    n = int(np.size(x))
    out = StampSystems(
        normal=np.zeros((n, m, m)), rhs=np.zeros((n, m)), design_sqrt_w=np.zeros((n, m)), y_w_y=np.zeros(n),
        sqrt_w_y=np.zeros(n), n_pixels=side * side,
    )

    def chunk(start: int) -> None:
        sl = slice(start, min(start + _CHUNK, n))
        cx, cy = x[sl], y[sl]
        c = len(cx)
        stamps = extract_stamps(convolved.image, cx, cy, half_fit + h).astype(np.float32)
        # Rows convolved by every column factor: (c, rows, side, n_factors); then columns by the row factors.
        rows_done = (stamps @ bands.transpose(1, 0, 2).reshape(bands.shape[1], -1)).reshape(
            c, bands.shape[1], n_factors, side)
        raw = np.empty((c, n_basis, side, side), np.float32)
        for col, terms in by_column.items():
            row_bands = bands[[row for _, row in terms]]
            raw[:, [r for r, _ in terms]] = np.einsum("pyb,cpx->cbyx", row_bands.transpose(1, 2, 0),
                                                      rows_done[:, :, col, :], optimize=True)
        # Normal equations in the raw (separable) basis, then transformed: T (R W Rᵀ) Tᵀ costs m³ per stamp where
        # forming the transformed design T R first would cost m² P.
        design = np.empty((c, m, side * side))
        design[:, :n_basis] = raw.reshape(c, n_basis, -1)
        if fit_background:
            design[:, -1] = 1.0
        data = extract_stamps(target.image, cx, cy, half_fit).reshape(len(cx), -1).astype(float)
        var = (
            extract_stamps(target.variance, cx, cy, half_fit).astype(float)
            + extract_stamps(convolved.variance, cx, cy, half_fit).astype(float)
        ).reshape(len(cx), -1)
        w = 1.0 / var
        sqrt_w = np.sqrt(w)
        weighted = design * w[:, None, :]
        out.normal[sl] = transform @ (weighted @ design.transpose(0, 2, 1)) @ transform.T
        out.rhs[sl] = np.einsum("nmp,np->nm", weighted, data) @ transform.T
        out.design_sqrt_w[sl] = np.einsum("nmp,np->nm", design, sqrt_w) @ transform.T
        out.y_w_y[sl] = np.einsum("np,np->n", w * data, data)
        out.sqrt_w_y[sl] = np.einsum("np,np->n", sqrt_w, data)

    starts = range(0, n, _CHUNK)
    threads = (os.cpu_count() or 1) if workers < 0 else workers
    if threads > 1 and len(starts) > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(chunk, starts))  # chunks write disjoint rows of ``out``
    else:
        for start in starts:
            chunk(start)
    return out


def solve_normal(
    normal: np.ndarray, rhs: np.ndarray, max_condition: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve a stack of symmetric normal systems, flagging (near-)singular ones.

    Parameters
    ----------
    normal : `numpy.ndarray`
        ``(n, m, m)`` symmetric positive semi-definite matrices.
    rhs : `numpy.ndarray`
        ``(n, m)`` right-hand sides.
    max_condition : `float`
        Largest acceptable condition number of the Jacobi-scaled matrix.

    Returns
    -------
    solution : `numpy.ndarray`
        ``(n, m)``; zeros where not ``ok``.
    ok : `numpy.ndarray`
        ``(n,)`` bool.
    condition : `numpy.ndarray`
        ``(n,)`` condition numbers (``inf`` when not positive definite).
    """
    diag = np.einsum("nii->ni", normal)
    finite = np.all(np.isfinite(normal), axis=(1, 2)) & np.all(np.isfinite(rhs), axis=1) & np.all(diag > 0, axis=1)
    d = np.sqrt(np.where(diag > 0, diag, 1.0))
    scaled = np.where(finite[:, None, None], normal / (d[:, :, None] * d[:, None, :]), np.eye(normal.shape[1]))
    evals, evecs = np.linalg.eigh(scaled)
    with np.errstate(divide="ignore", invalid="ignore"):
        condition = np.where(evals[:, 0] > 0, evals[:, -1] / evals[:, 0], np.inf)
    ok = finite & (condition < max_condition)
    safe = np.where(ok[:, None], evals, 1.0)
    projected = np.einsum("nmk,nm->nk", evecs, np.where(ok[:, None], rhs / d, 0.0))
    solution = np.einsum("nmk,nk->nm", evecs, projected / safe) / d
    return np.where(ok[:, None], solution, 0.0), ok, np.where(finite, condition, np.inf)


@dataclasses.dataclass
class KernelSolution:
    """A spatially varying PSF-matching kernel and differential background.

    ``K(x, y) = Σ_i c_i(x, y) basis[i]`` with ``c_i(x, y) = Σ_s coefficients[i, s] p_s(x, y)`` over the terms
    of ``kernel_model`` (``c_0`` is constant: the kernel sum); background
    ``b(x, y) = Σ_t background[t] q_t(x, y)`` over ``background_model``.

    Attributes
    ----------
    basis : `numpy.ndarray`
        ``(n, k, k)`` basis kernels, centred on ``[k // 2, k // 2]``.
    coefficients : `numpy.ndarray`
        ``(n, n_terms)`` spatial coefficients of each basis kernel.
    kernel_model : `ChebyshevSpatialModel`
        Spatial polynomials of the kernel.
    background : `numpy.ndarray`
        ``(n_background_terms,)`` background coefficients [nJy].
    background_model : `ChebyshevSpatialModel`
        Spatial polynomials of the background.
    """

    basis: np.ndarray
    coefficients: np.ndarray
    kernel_model: ChebyshevSpatialModel
    background: np.ndarray
    background_model: ChebyshevSpatialModel

    @property
    def kernel_sum(self) -> float:
        """Sum of the kernel (the same everywhere): the photometric scaling between the images."""
        return float(self.coefficients[0, 0])

    @property
    def spatial_order(self) -> int:
        """Chebyshev order of the kernel's spatial variation."""
        return self.kernel_model.order

    @property
    def spatial_kernels(self) -> np.ndarray:
        """``(n_terms, k, k)`` kernels ``K_s`` with ``K(x, y) = Σ_s p_s(x, y) K_s``."""
        return np.einsum("is,ihw->shw", self.coefficients, self.basis)

    @property
    def spatial_coefficients(self) -> np.ndarray:
        """``(n, order + 1, order + 1)`` coefficient matrices ``[p, q]`` of ``T_p(y') T_q(x')`` per basis kernel,
        in the `lsst.images.fields.ChebyshevField` convention over the image box."""
        return np.array([self.kernel_model.coefficient_matrix(c) for c in self.coefficients])

    def basis_coefficients(self, x: float, y: float) -> np.ndarray:
        """``(n,)`` basis coefficients at pixel ``(x, y)``."""
        return self.coefficients @ self.kernel_model.design(np.atleast_1d(x), np.atleast_1d(y))[0]

    def kernel_image(self, x: float, y: float) -> np.ndarray:
        """The ``(k, k)`` kernel at pixel ``(x, y)``."""
        return np.tensordot(self.basis_coefficients(x, y), self.basis, axes=1)

    def background_image(self) -> np.ndarray:
        """The ``(ny, nx)`` float32 background [nJy]."""
        return self.background_model.image(self.background)


@dataclasses.dataclass
class KernelFit:
    """Result of `fit_kernel`.

    Attributes
    ----------
    solution : `KernelSolution`
    stamps : `astropy.table.Table`
        One row per candidate, columns `KERNEL_SOURCE_COLUMNS`.
    n_iterations : `int`
        Spatial fits performed.
    """

    solution: KernelSolution
    stamps: Table
    n_iterations: int


@dataclasses.dataclass(frozen=True)
class _SpatialGroup:
    """Local coefficients ``local`` that share one spatial design: global coefficient ``offset + k d + a`` is
    term ``a`` (of ``d``) of local coefficient ``local[k]``, weighted by ``weights[n, a]`` at stamp ``n``."""

    local: np.ndarray
    weights: np.ndarray
    offset: int

    @property
    def size(self) -> int:
        return self.local.size * self.weights.shape[1]


def _spatial_groups(
    x: np.ndarray, y: np.ndarray, n_basis: int, kernel_model: ChebyshevSpatialModel,
    background_model: ChebyshevSpatialModel | None,
) -> list[_SpatialGroup]:
    """How the global coefficients map onto each stamp's local ones: the first basis kernel carries the kernel
    sum and is spatially constant, the others vary as ``kernel_model``, the background as ``background_model``.
    """
    n = x.size
    groups = [_SpatialGroup(np.array([0]), np.ones((n, 1)), 0),
              _SpatialGroup(np.arange(1, n_basis), kernel_model.design(x, y), 1)]
    if background_model is not None:
        groups.append(_SpatialGroup(np.array([n_basis]), background_model.design(x, y), 1 + groups[1].size))
    return groups


def _spatial_normal(
    normal: np.ndarray, rhs: np.ndarray, groups: list[_SpatialGroup]
) -> tuple[np.ndarray, np.ndarray]:
    """``Σ_n E_nᵀ N_n E_n`` and ``Σ_n E_nᵀ r_n`` for the stamps' local systems ``N_n``, ``r_n``.

    ``E_n`` is block-sparse (each local coefficient is a polynomial of the position), so every block is one
    matrix product over stamps, ``Σ_n N_n[i, j] w_n[a] w_n[b]``: about ``m² s²`` operations per stamp for ``m``
    local coefficients and ``s`` spatial terms, where the dense ``E_n`` costs ``m² G`` (``G ≈ m s``).
    """
    n = normal.shape[0]
    total = sum(g.size for g in groups)
    out = np.zeros((total, total))
    rhs_out = np.zeros(total)
    for a in groups:
        da = a.weights.shape[1]
        rhs_out[a.offset : a.offset + a.size] = (rhs[:, a.local].T @ a.weights).ravel()
        for b in groups:
            db = b.weights.shape[1]
            pairs = (a.weights[:, :, None] * b.weights[:, None, :]).reshape(n, da * db)
            block = normal[:, a.local][:, :, b.local].reshape(n, -1).T @ pairs
            block = block.reshape(a.local.size, b.local.size, da, db).transpose(0, 2, 1, 3)
            out[a.offset : a.offset + a.size, b.offset : b.offset + b.size] = block.reshape(a.size, b.size)
    return out, rhs_out


def _local_coefficients(g: np.ndarray, groups: list[_SpatialGroup], m: int) -> np.ndarray:
    """``E_n g`` for every stamp: ``(n_stamps, m)`` local coefficients of the global solution ``g``."""
    local = np.zeros((groups[0].weights.shape[0], m))
    for group in groups:
        d = group.weights.shape[1]
        local[:, group.local] = group.weights @ g[group.offset : group.offset + group.size].reshape(-1, d).T
    return local


def _unpack(
    g: np.ndarray, basis: np.ndarray, kernel_model: ChebyshevSpatialModel,
    background_model: ChebyshevSpatialModel, fit_background: bool,
) -> KernelSolution:
    n_basis = basis.shape[0]
    s = kernel_model.n_terms
    coefficients = np.zeros((n_basis, s))
    coefficients[0, 0] = g[0]
    coefficients[1:] = g[1 : 1 + (n_basis - 1) * s].reshape(n_basis - 1, s)
    background = g[1 + (n_basis - 1) * s :] if fit_background else np.zeros(background_model.n_terms)
    return KernelSolution(basis, coefficients, kernel_model, background, background_model)


def _fit_spatial(
    systems: StampSystems, x: np.ndarray, y: np.ndarray, used: np.ndarray, basis: AlardLuptonBasis,
    shape: tuple[int, int], order: int, config: AlardLuptonConfig,
) -> tuple[KernelSolution, np.ndarray]:
    """Joint spatial fit on the used stamps, lowering the order when stars are few or the system is singular.

    Returns the solution and the ``(n_stamps, m)`` local coefficients it implies at every stamp.
    """
    background_model = ChebyshevSpatialModel(config.spatialBackgroundOrder, shape)
    bg = background_model if config.fitBackground else None
    n_used = int(used.sum())
    condition = np.inf
    while order >= 0:
        kernel_model = ChebyshevSpatialModel(order, shape)
        if order > 0 and n_used < config.minSourcesPerSpatialTerm * kernel_model.n_terms:
            _log.info("Kernel spatial order %d needs %d stamps, have %d: lowering the order.", order,
                      config.minSourcesPerSpatialTerm * kernel_model.n_terms, n_used)
            order -= 1
            continue
        groups = _spatial_groups(x, y, len(basis), kernel_model, bg)
        normal, rhs = _spatial_normal(systems.normal[used], systems.rhs[used],
                                      [dataclasses.replace(group, weights=group.weights[used]) for group in groups])
        g, ok, cond = solve_normal(normal[None], rhs[None], config.maxConditionNumber)
        condition = float(cond[0])
        if ok[0]:
            solution = _unpack(g[0], basis.kernels, kernel_model, background_model, config.fitBackground)
            return solution, _local_coefficients(g[0], groups, systems.rhs.shape[1])
        _log.warning("Kernel spatial fit at order %d on %d stamps is singular (condition %.3g): lowering the "
                     "order.", order, n_used, condition)
        order -= 1
    raise KernelSolveError(n_used, condition)


def fit_kernel(
    target: Exposure,
    convolved: Exposure,
    candidates: KernelCandidates,
    basis: AlardLuptonBasis,
    half_fit: int,
    config: AlardLuptonConfig,
    workers: int = 1,
) -> KernelFit:
    """Fit the spatially varying kernel and background with ``target ≈ convolved ⊗ K + b``.

    Parameters
    ----------
    target, convolved : `~lsst.dia.pipe.exposure.Exposure`
        Image to match and image to convolve [nJy], same grid, no non-finite pixels.
    candidates : `~lsst.dia.pipe.diffim.candidates.KernelCandidates`
        Kernel stars (stamps of half side ``half_fit + basis.half_size`` inside the image and clean).
    basis : `AlardLuptonBasis`
        Kernel basis.
    half_fit : `int`
        Half side of each stamp's fit region [pixels].
    config : `AlardLuptonConfig`
        Rejection cuts, spatial orders, iterations.
    workers : `int`
        Threads for the stamps' normal equations.

    Returns
    -------
    fit : `KernelFit`

    Raises
    ------
    InsufficientKernelSourcesError
        If fewer than ``config.minKernelSources`` stamps survive rejection.
    KernelSolveError
        If the spatial system is singular even at kernel spatial order 0.

    Notes
    -----
    1. Each stamp is fitted alone; stamps whose fit is singular or whose residuals fail
       ``|mean(r/σ)| <= candidateResidualMeanMax`` and ``std(r/σ) <= candidateResidualStdMax`` are dropped,
       then stamps whose kernel sum disagrees with the others by more than ``kernelSumClip`` times its own error
       (`clip_kernel_sums`: variable stars, transients and blends among the candidates).
    2. Up to ``maxSpatialIterations`` joint spatial fits, each followed by the same residual cuts with the
       spatial model at each stamp. The order drops (logged) when there are fewer than
       ``minSourcesPerSpatialTerm`` stamps per spatial term or the system is singular.
    """
    n = len(candidates)
    if n < config.minKernelSources:
        raise InsufficientKernelSourcesError(n, config.minKernelSources)
    # Thousands of small matrix products: threaded BLAS only adds synchronisation (10x slower on busy cores).
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit_kernel(target, convolved, candidates, basis, half_fit, config, workers)


def clip_kernel_sums(
    kernel_sum: np.ndarray, kernel_sum_err: np.ndarray, used: np.ndarray, clip: float, max_iterations: int = 10
) -> np.ndarray:
    """Stamps whose single-stamp kernel sum is inconsistent with the others, given its own error.

    A variable star or a transient among the kernel candidates has a kernel sum off by its change in flux;
    when it is bright its error is small and it would dominate the weighted spatial fit. Each stamp's
    deviation from the consensus is measured in units of its own standard error, ``z = (k - k̂) / σ_k``, with
    ``k̂`` the median of the kept stamps' sums, then their inverse-variance weighted mean; stamps with
    ``|z| > clip × max(1, 1.4826 MAD(z))`` are clipped until nothing changes. The MAD factor widens the cut
    when the stamps scatter more than their errors (an imperfect kernel model), so good stars are not lost.

    Parameters
    ----------
    kernel_sum, kernel_sum_err : `numpy.ndarray`
        ``(n,)`` single-stamp kernel sums and their standard errors (``inf`` for unusable stamps).
    used : `numpy.ndarray`
        ``(n,)`` bool, stamps still in play.
    clip : `float`
        Threshold in (scaled) standard errors.
    max_iterations : `int`
        Largest number of clipping passes.

    Returns
    -------
    clipped : `numpy.ndarray`
        ``(n,)`` bool, stamps of ``used`` to reject.
    """
    keep = used & np.isfinite(kernel_sum_err) & (kernel_sum_err > 0)
    if keep.sum() < 3:
        return np.zeros_like(used)
    centre = float(np.median(kernel_sum[keep]))
    for _ in range(max_iterations):
        z = (kernel_sum - centre) / np.where(kernel_sum_err > 0, kernel_sum_err, np.inf)
        scale = max(1.0, 1.4826 * float(np.median(np.abs(z[keep]))))
        new_keep = used & (np.abs(z) <= clip * scale)
        if new_keep.sum() < 3:
            break
        weight = 1.0 / kernel_sum_err[new_keep] ** 2
        centre = float(np.sum(weight * kernel_sum[new_keep]) / np.sum(weight))
        if np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return used & ~keep


def select_spatial_order(
    systems: StampSystems, x: np.ndarray, y: np.ndarray, used: np.ndarray, basis: AlardLuptonBasis,
    shape: tuple[int, int], config: AlardLuptonConfig,
) -> int:
    """The kernel spatial order (``0..config.spatialKernelOrder``) that best predicts stamps left out of the fit.

    The used stamps are split into ``config.crossValidationFolds`` folds; for every order the spatial solution
    fitted without a fold is scored by the χ² of that fold's stamps, and the order with the smallest total wins.
    A higher order only pays when the kernel really varies more than the stars' noise lets a fit follow (with a
    few dozen stars per CCD, order 2 mostly fits noise: each spatial term multiplies every basis coefficient).
    Everything is evaluated from the stamps' normal equations; no pixel is revisited.

    Returns
    -------
    order : `int`
        The selected order (logged at debug level with the scores).
    """
    index = np.flatnonzero(used)
    n_folds = min(config.crossValidationFolds, index.size)
    if n_folds < 2:
        return config.spatialKernelOrder
    fold_of = np.full(len(used), -1)
    fold_of[index] = np.arange(index.size) % n_folds
    scores = {}
    for order in range(config.spatialKernelOrder + 1):
        total = 0.0
        for fold in range(n_folds):
            held_out = fold_of == fold
            try:
                _, local = _fit_spatial(systems, x, y, used & ~held_out, basis, shape, order, config)
            except KernelSolveError:
                total = np.inf
                break
            total += float(np.sum(systems.chi2(local)[held_out]))
        scores[order] = total
    best = min(scores, key=lambda o: (scores[o], o))
    _log.debug("Kernel spatial order by %d-fold cross-validation: %d (held-out chi2 %s).", n_folds, best,
               {o: round(v, 1) for o, v in scores.items()})
    return best


def _fit_kernel(
    target: Exposure, convolved: Exposure, candidates: KernelCandidates, basis: AlardLuptonBasis, half_fit: int,
    config: AlardLuptonConfig, workers: int = 1,
) -> KernelFit:
    x, y = candidates.x, candidates.y
    n = len(candidates)
    systems = build_stamp_systems(target, convolved, x, y, basis, half_fit, config.fitBackground, workers)
    single, ok, _ = solve_normal(systems.normal, systems.rhs, config.maxConditionNumber)
    stamp_mean, stamp_std = systems.residual_stats(single)
    reason = np.full(n, "", dtype="U16")
    reason[~ok] = "singular"
    bad = ok & ((np.abs(stamp_mean) > config.candidateResidualMeanMax) | (stamp_std > config.candidateResidualStdMax))
    reason[bad] = "stampResidual"
    used = ok & ~bad
    kernel_sum = single[:, 0]
    kernel_sum_err = np.full(n, np.inf)
    kernel_sum_err[ok] = np.sqrt(np.maximum(np.linalg.inv(systems.normal[ok])[:, 0, 0], 0.0))
    if used.sum() >= 3:
        clipped = clip_kernel_sums(kernel_sum, kernel_sum_err, used, config.kernelSumClip)
        reason[clipped] = "kernelSum"
        used &= ~clipped
    if used.sum() < config.minKernelSources:
        raise InsufficientKernelSourcesError(int(used.sum()), config.minKernelSources)

    order = config.spatialKernelOrder
    if config.doSelectSpatialOrder and order > 0:
        order = select_spatial_order(systems, x, y, used, basis, target.shape, config)
    iterations = 0
    for iterations in range(1, config.maxSpatialIterations + 1):
        solution, local = _fit_spatial(systems, x, y, used, basis, target.shape, order, config)
        order = solution.spatial_order
        mean, std = systems.residual_stats(local)
        if iterations == config.maxSpatialIterations:
            break
        rejected = used & ((np.abs(mean) > config.candidateResidualMeanMax) | (std > config.candidateResidualStdMax))
        if not rejected.any():
            break
        reason[rejected] = "spatialResidual"
        used &= ~rejected
        if used.sum() < config.minKernelSources:
            raise InsufficientKernelSourcesError(int(used.sum()), config.minKernelSources)

    values = {
        "x": x.astype(np.int64), "y": y.astype(np.int64), "scienceFlux": candidates.flux, "snr": candidates.snr,
        "templateSnr": candidates.template_snr, "kernelSum": kernel_sum, "kernelSumErr": kernel_sum_err,
        "stampResidualMean": stamp_mean,
        "stampResidualStd": stamp_std, "residualMean": mean, "residualStd": std, "used": used, "rejectedBy": reason,
    }
    table = Table()
    for name, doc in KERNEL_SOURCE_COLUMNS.items():
        table[name] = values[name]
        table[name].description = doc
    table["scienceFlux"].unit = "nJy"
    return KernelFit(solution=solution, stamps=table, n_iterations=iterations)
