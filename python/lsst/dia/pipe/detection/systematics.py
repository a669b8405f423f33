"""Systematic noise of a difference image near bright sources: flux mismatch and misregistration.

PSF matching is never perfect: a residual fraction ``ε`` of every source's flux survives the subtraction
(kernel or PSF-model errors, interpolation of the template), and a registration error ``σ_r`` between the two
images leaves a dipole whose amplitude is the local gradient of the scene. Neither is in the per-pixel variance
plane, so near bright stars and galaxy cores they are detected as sources. Following the astrometric-noise term
of ZOGY (Zackay, Ofek & Gal-Yam 2016, §3.3), their variance in the matched-filter numerator is modelled from the
PSF-filtered template ``M_f = M ⋆ P``:

    V_sys = (ε M_f)² + σ_r² (∂_x M_f² + ∂_y M_f²)

and the detection significance becomes ``(D ⋆ P) / sqrt(V ⋆ P² + V_sys)``. Far from sources ``V_sys`` vanishes
and the significance is unchanged.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["measure_systematics", "systematic_variance"]


def systematic_variance(model_filtered: np.ndarray, flux_fraction: float, registration_sigma: float) -> np.ndarray:
    """Variance of the matched-filter numerator due to flux mismatch and misregistration of the scene.

    Parameters
    ----------
    model_filtered : `numpy.ndarray`
        ``(ny, nx)`` PSF-correlated template as subtracted, ``M ⋆ P`` [nJy × PSF sum].
    flux_fraction : `float`
        ``ε``: fractional flux mismatch left by PSF matching (dimensionless, e.g. 0.01).
    registration_sigma : `float`
        ``σ_r``: per-axis registration error between science and template [pixels].

    Returns
    -------
    variance : `numpy.ndarray`
        ``(ny, nx)`` float32 systematic variance, in the units of ``model_filtered`` squared.
    """
    model = np.asarray(model_filtered, np.float32)
    out = np.square(np.float32(flux_fraction) * model)
    if registration_sigma > 0:
        grad_y, grad_x = np.gradient(model)
        out += np.float32(registration_sigma) ** 2 * (grad_x * grad_x + grad_y * grad_y)
    return out


def measure_systematics(
    numerator: np.ndarray,
    noise_var: np.ndarray,
    model_filtered: np.ndarray,
    min_snr: float = 100.0,
    half_width: int = 3,
) -> tuple[float, float, int]:
    """Flux mismatch and registration error measured on the residuals of bright template sources.

    Around every isolated local maximum of the PSF-filtered template ``M_f`` with ``M_f / sqrt(V_f) > min_snr``,
    the filtered difference is fitted (weighted least squares, all sources at once) as
    ``a M_f + δx ∂_x M_f + δy ∂_y M_f``: ``a`` is that source's fractional flux residual and ``(δx, δy)`` its
    misregistration [pixels], whatever their causes (kernel errors, astrometry, interpolation). Genuine variable
    stars are among these sources, so both spreads are robust: a first estimate from the median of the squared
    per-source values (``median(a²) = 0.455 ε²`` for Gaussian ``a``; ``median((δx² + δy²) / 2) = ln 2 σ_r²``),
    then the mean square of the sources within 4 of those sigmas (iterated), with the fits' own noise subtracted.

    Parameters
    ----------
    numerator : `numpy.ndarray`
        ``(ny, nx)`` PSF-filtered difference ``D ⋆ P``.
    noise_var : `numpy.ndarray`
        ``(ny, nx)`` its variance ``V ⋆ P²`` (0 where unusable).
    model_filtered : `numpy.ndarray`
        ``(ny, nx)`` PSF-filtered template ``M ⋆ P``.
    min_snr : `float`
        Only sources this significant in the template are used.
    half_width : `int`
        Half-side of the fitted window [pixels].

    Returns
    -------
    flux_fraction : `float`
        RMS fractional flux residual ``ε`` (NaN without sources).
    registration_sigma : `float`
        Per-axis RMS misregistration ``σ_r`` [pixels] (NaN without sources).
    n_sources : `int`
        Number of sources fitted.
    """
    size = 2 * half_width + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(noise_var > 0, model_filtered / np.sqrt(noise_var), 0)
    is_peak = (model_filtered == ndimage.maximum_filter(model_filtered, size=2 * size + 1)) & (snr > min_snr)
    is_peak[:size, :] = is_peak[-size:, :] = False
    is_peak[:, :size] = is_peak[:, -size:] = False
    ys, xs = np.nonzero(is_peak)
    offsets = np.arange(-half_width, half_width + 1)
    yy = ys[:, None, None] + offsets[None, :, None]
    xx = xs[:, None, None] + offsets[None, None, :]
    var = noise_var[yy, xx].astype(np.float64)
    usable = np.all(var > 0, axis=(1, 2))
    if not usable.any():
        return float("nan"), float("nan"), 0
    yy, xx, var = yy[usable], xx[usable], var[usable]
    grad_y, grad_x = np.gradient(np.asarray(model_filtered, np.float64))
    n = yy.shape[0]
    design = np.stack([model_filtered[yy, xx], grad_x[yy, xx], grad_y[yy, xx]], axis=1).reshape(n, 3, -1)
    data = numerator[yy, xx].reshape(n, -1).astype(np.float64)
    weight = 1.0 / var.reshape(n, -1)
    normal = np.einsum("nip,njp,np->nij", design, design, weight)
    rhs = np.einsum("nip,np,np->ni", design, data, weight)
    good = np.linalg.cond(normal) < 1e12
    if not good.any():
        return float("nan"), float("nan"), 0
    solution = np.linalg.solve(normal[good], rhs[good][..., None])[..., 0]
    covariance = np.linalg.inv(normal[good])

    def robust_rms(values: np.ndarray, noise: np.ndarray, median_over_variance: float) -> float:
        # start from the median (robust to the variables), then drop sources beyond 4 sigma and use the mean
        # square of the rest, minus their fit noise
        keep = np.ones(values.size, dtype=bool)
        variance = np.median(values) / median_over_variance
        for _ in range(5):
            new_keep = values <= 16.0 * variance
            if not new_keep.any():
                break
            variance = float(np.mean(values[new_keep]))  # each value estimates the variance
            if np.array_equal(new_keep, keep):
                break
            keep = new_keep
        return float(np.sqrt(max(variance - np.mean(noise[keep]), 0.0)))

    # medians of χ²₁ and χ²₂/2 in units of the variance: 0.455 and ln 2
    flux_fraction = robust_rms(solution[:, 0] ** 2, covariance[:, 0, 0], 0.455)
    shift2 = 0.5 * (solution[:, 1] ** 2 + solution[:, 2] ** 2)
    registration = robust_rms(shift2, 0.5 * (covariance[:, 1, 1] + covariance[:, 2, 2]), np.log(2.0))
    return flux_fraction, registration, int(good.sum())
