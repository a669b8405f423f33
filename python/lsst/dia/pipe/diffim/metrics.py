"""Quality numbers of difference images."""

from __future__ import annotations

import numpy as np

from ..exposure import Exposure
from ..masks import MaskBit

__all__ = ["DEFAULT_NOISE_MASK", "residual_noise_ratio", "robust_std", "typical_variance"]

#: Pixels with any of these bits are left out of `residual_noise_ratio`.
DEFAULT_NOISE_MASK = int(
    MaskBit.BAD | MaskBit.SATURATED | MaskBit.INTERPOLATED | MaskBit.COSMIC_RAY | MaskBit.DETECTION_EDGE
    | MaskBit.SUSPECT | MaskBit.NO_DATA | MaskBit.DETECTED | MaskBit.DETECTED_NEGATIVE | MaskBit.SAT_TEMPLATE
    | MaskBit.NO_TEMPLATE | MaskBit.STREAK
)

_MAD_TO_SIGMA = 1.482602218505602


def _stride(shape: tuple[int, ...], max_pixels: int) -> int:
    return max(1, int(np.ceil(np.sqrt(np.prod(shape) / max_pixels))))


def robust_std(values: np.ndarray) -> float:
    """``1.4826 × median(|v - median(v)|)`` of the finite values (NaN if there are none)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return float(_MAD_TO_SIGMA * np.median(np.abs(values - np.median(values))))


def typical_variance(variance: np.ndarray, usable: np.ndarray, max_pixels: int = 250_000) -> float:
    """Median variance over usable pixels (on a regular subsample of about ``max_pixels``) [image units²].

    Falls back to the median over all pixels when none is usable.
    """
    step = _stride(variance.shape, max_pixels)
    sample = variance[::step, ::step][usable[::step, ::step]]
    return float(np.median(sample)) if sample.size else float(np.median(variance))


def residual_noise_ratio(
    difference: Exposure,
    mask_bits: int = DEFAULT_NOISE_MASK,
    exclude: np.ndarray | None = None,
    max_pixels: int = 1_000_000,
) -> float:
    """Robust standard deviation of ``difference / sqrt(variance)`` over source-free pixels.

    1 when the variance plane describes the difference's noise; the quality target is 1.00-1.10.

    Parameters
    ----------
    difference : `~lsst.dia.pipe.exposure.Exposure`
        Difference image [nJy] with variance [nJy²].
    mask_bits : `int`
        Pixels with any of these bits are ignored (default: bad, edge, no-data/template and detected pixels).
    exclude : `numpy.ndarray`, optional
        ``(ny, nx)`` bool, more pixels to ignore (e.g. around sources when detection has not run).
    max_pixels : `int`
        The statistic uses a regular subgrid of about this many pixels (every k-th row and column).

    Returns
    -------
    ratio : `float`
        ``1.4826 × MAD`` of the normalised residuals; NaN if no pixel qualifies.
    """
    step = _stride(difference.shape, max_pixels)
    sl = np.s_[::step, ::step]
    image = difference.image[sl]
    variance = difference.variance[sl]
    good = ((difference.mask[sl] & np.uint32(mask_bits)) == 0) & np.isfinite(image) & (variance > 0)
    if exclude is not None:
        good &= ~exclude[sl]
    return robust_std(image[good] / np.sqrt(variance[good]))
