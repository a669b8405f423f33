"""The Alard-Lupton kernel basis: Gaussians times 2-d polynomials, sized from the two PSF widths."""

from __future__ import annotations

import dataclasses

import numpy as np

from .config import AlardLuptonConfig

__all__ = ["AlardLuptonBasis", "make_alard_lupton_basis"]


@dataclasses.dataclass(frozen=True)
class AlardLuptonBasis:
    """A normalised Alard-Lupton basis.

    Attributes
    ----------
    kernels : `numpy.ndarray`
        ``(n, k, k)`` float64 kernel images centred on pixel ``[k // 2, k // 2]``. Kernel 0 sums to 1, the
        others sum to 0 and are orthonormal to each other, so the sum of ``Σ a_i kernels[i]`` is ``a_0``.
    sigmas : `tuple` [`float`, ...]
        Sigma of each Gaussian [pixels].
    degrees : `tuple` [`int`, ...]
        Polynomial degree of each Gaussian.
    sigma_kernel : `float`
        ``σ_K = sqrt(σ_wide² - σ_narrow²)`` after the floor [pixels].
    factors : `numpy.ndarray`
        ``(n_factors, k)`` 1-d factors ``f_(j,p)(t) = exp(-t²/2σ_j²) (t/h)^p`` of the raw (separable) kernels.
    raw_terms : `tuple` [`tuple` [`int`, `int`], ...]
        ``(column factor, row factor)`` indices into ``factors`` of each raw kernel
        ``raw_r[v, u] = factors[row][v] × factors[col][u]``.
    transform : `numpy.ndarray`
        ``(n, n)`` matrix with ``kernels[i] = Σ_r transform[i, r] raw_r``.
    """

    kernels: np.ndarray
    sigmas: tuple[float, ...]
    degrees: tuple[int, ...]
    sigma_kernel: float
    factors: np.ndarray
    raw_terms: tuple[tuple[int, int], ...]
    transform: np.ndarray

    @property
    def size(self) -> int:
        """Kernel side [pixels]."""
        return int(self.kernels.shape[-1])

    @property
    def half_size(self) -> int:
        """Kernel half side [pixels]."""
        return self.size // 2

    def __len__(self) -> int:
        return int(self.kernels.shape[0])


def make_alard_lupton_basis(sigma_narrow: float, sigma_wide: float, config: AlardLuptonConfig) -> AlardLuptonBasis:
    """Build the Alard-Lupton basis that matches a PSF of width ``sigma_narrow`` to one of ``sigma_wide``.

    Parameters
    ----------
    sigma_narrow, sigma_wide : `float`
        Gaussian-equivalent sigmas [pixels] of the PSF of the image to convolve and of the target image.
        If ``sigma_wide <= sigma_narrow`` the kernel width falls to the floor ``config.minBasisSigma``.
    config : `AlardLuptonConfig`
        Basis degrees, sigma ratios, floor and kernel-size rules.

    Returns
    -------
    basis : `AlardLuptonBasis`

    Notes
    -----
    ``σ_K = max(sqrt(σ_wide² - σ_narrow²), minBasisSigma)``; the Gaussians have sigmas
    ``basisSigmaRatios × σ_K``, doubled once if the smallest is below ``minBasisSigma`` (ip_diffim's
    ``{σ_K/2, σ_K, 2σ_K} -> {σ_K, 2σ_K, 4σ_K}``). The side is ``int(kernelSizeFactor × largest sigma)``, made
    odd and clipped to ``[minKernelSize, maxKernelSize]``. Each Gaussian ``j`` is multiplied by the monomials
    ``u^a v^b`` (``a + b <= degree_j``, ``u, v`` pixel offsets over the half size). Kernel 0 (the first
    Gaussian) is normalised to sum 1; every other kernel has ``sum × kernel 0`` subtracted and the set is
    orthonormalised (QR), which keeps their sums at 0 and conditions the least-squares fits. The raw kernels
    are separable, which `~lsst.dia.pipe.diffim.kernel_fit.build_stamp_systems` uses to convolve stamps.
    """
    if not (np.isfinite(sigma_narrow) and np.isfinite(sigma_wide) and sigma_narrow > 0 and sigma_wide > 0):
        raise ValueError(f"PSF sigmas must be positive and finite, got {sigma_narrow!r} and {sigma_wide!r}.")
    floor = config.minBasisSigma
    sigma_k = max(float(np.sqrt(max(sigma_wide**2 - sigma_narrow**2, 0.0))), floor)
    ratios = np.asarray(config.basisSigmaRatios, dtype=float)
    if ratios[0] * sigma_k < floor:
        ratios = 2.0 * ratios
    sigmas = tuple(float(s) for s in ratios * sigma_k)
    size = int(config.kernelSizeFactor * max(sigmas))
    size += 1 - size % 2
    size = int(np.clip(size, config.minKernelSize, config.maxKernelSize))
    half = size // 2
    t = np.arange(-half, half + 1, dtype=float)
    factors, raw_terms, index = [], [], {}
    for j, (sigma, degree) in enumerate(zip(sigmas, config.basisDegrees)):
        for p in range(degree + 1):
            index[j, p] = len(factors)
            factors.append(np.exp(-0.5 * t**2 / sigma**2) * (t / half) ** p)
        raw_terms += [(index[j, total - b], index[j, b]) for total in range(degree + 1) for b in range(total + 1)]
    factors = np.asarray(factors)
    raw = np.array([np.outer(factors[row], factors[col]) for col, row in raw_terms]).reshape(len(raw_terms), -1)
    # kernels = transform @ raw: kernel 0 = raw_0 / sum; the others have sum × kernel 0 removed and are
    # orthonormalised (Gram-Schmidt through QR: rest = A raw, restᵀ = Q R  =>  Qᵀ = R⁻ᵀ A raw).
    sums = raw.sum(axis=1)
    n = len(raw_terms)
    first = np.zeros(n)
    first[0] = 1.0 / sums[0]
    remove = np.eye(n)[1:] - np.outer(sums[1:], first)
    _, r = np.linalg.qr((remove @ raw).T)
    if np.any(np.abs(np.diag(r)) < 1e-10 * np.abs(r).max()):
        raise ValueError(f"Alard-Lupton basis is degenerate for kernel size {size} and sigmas {sigmas}.")
    transform = np.vstack([first, np.linalg.solve(r.T, remove)])
    kernels = (transform @ raw).reshape(n, size, size)
    return AlardLuptonBasis(
        kernels=kernels, sigmas=sigmas, degrees=tuple(int(d) for d in config.basisDegrees), sigma_kernel=sigma_k,
        factors=factors, raw_terms=tuple(raw_terms), transform=transform,
    )
