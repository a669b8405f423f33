"""DMTN-021 decorrelation of Alard-Lupton difference images.

Convolving one image by the matching kernel ``κ`` colours the difference's noise: its power spectrum is
``σ_u² + σ_c² |κ̂(k)|²`` (``σ_c²``: per-pixel variance of the convolved image, ``σ_u²``: of the other). The
afterburner

    φ̂(k) = sqrt[(σ_u² + σ_c² (Σκ)²) / (σ_u² + σ_c² |κ̂(k)|²)]

whitens it. ``φ̂(0) = 1``, so fluxes are preserved, and the whitened noise has the per-pixel variance
``σ_u² + σ_c² (Σκ)²`` (larger than before decorrelation, ``σ_u² + σ_c² Σκ²``: the correlated noise's
low-frequency power is now spread over every pixel), so the variance plane becomes
``V_u + V_c (Σκ)²``. The difference PSF becomes ``φ ⊗ PSF``. ``φ`` is computed on a grid four times the
kernel side (so its wings do not alias) and applied in real space, cropped to the kernel's size (beyond
which it holds < 1e-6 of its absolute sum for Gaussian-like kernels). (science-notes' form with ``P`` and ``κ`` is the
same with a delta function for the image that is not convolved.)
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal


__all__ = ["convolve_stamp", "decorrelation_kernel"]


def _phi(kernel_power: np.ndarray, kernel_sum: float, var_convolved: float, var_other: float) -> np.ndarray:
    return np.sqrt((var_other + var_convolved * kernel_sum**2) / (var_other + var_convolved * kernel_power))


def _check_variances(var_convolved: float, var_other: float) -> None:
    if not (var_convolved >= 0 and var_other > 0 and np.isfinite(var_convolved) and np.isfinite(var_other)):
        raise ValueError(
            f"Decorrelation needs finite variances (convolved >= 0, other > 0), got {var_convolved!r}, {var_other!r}."
        )


def decorrelation_kernel(kernel: np.ndarray, var_convolved: float, var_other: float, size: int) -> np.ndarray:
    """The real-space decorrelation kernel ``φ`` as a centred ``size × size`` stamp (``size`` odd).

    Computed on a grid of side ``max(4 × kernel side, size)`` (so its wings do not alias) and cropped.
    """
    _check_variances(var_convolved, var_other)
    k = kernel.shape[0]
    grid = max(4 * k, size) | 1
    padded = np.zeros((grid, grid))
    padded[:k, :k] = kernel
    padded = np.roll(padded, (-(k // 2), -(k // 2)), axis=(0, 1))
    spectrum = scipy.fft.rfft2(padded)
    phi_hat = _phi(np.abs(spectrum) ** 2, float(kernel.sum()), var_convolved, var_other)
    phi = np.fft.fftshift(scipy.fft.irfft2(phi_hat, s=(grid, grid)))
    c, h = grid // 2, size // 2
    return phi[c - h : c + h + 1, c - h : c + h + 1]


def convolve_stamp(stamp: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``stamp ⊗ kernel`` cropped to the stamp's size (both centred, odd)."""
    return scipy.signal.fftconvolve(stamp, kernel, mode="same")
