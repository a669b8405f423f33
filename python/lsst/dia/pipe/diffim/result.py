"""`SubtractionResult`: what `subtract_images` returns."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from astropy.table import Table

from ..exposure import Exposure
from .kernel_fit import KERNEL_SOURCE_COLUMNS, KernelSolution

__all__ = ["SubtractionResult", "empty_kernel_sources"]


@dataclasses.dataclass
class SubtractionResult:
    """A difference image and what went into it.

    Attributes
    ----------
    difference : `~lsst.dia.pipe.exposure.Exposure`
        Science minus PSF-matched template [nJy], variance [nJy²], mask, and the difference PSF (a
        `~lsst.dia.pipe.psf.GridPsf` or the science PSF). Pixels without template data are 0 with
        ``NO_DATA | NO_TEMPLATE``; pixels within a kernel half-width of the border carry ``DETECTION_EDGE``.
    matched_template : `~lsst.dia.pipe.exposure.Exposure`
        The template as subtracted (Alard-Lupton convolveTemplate: ``K ⊗ T + background``; convolveScience:
        ``T - background``; ZOGY: the template filtered by its ZOGY kernel) [nJy], with its PSF.
    score : `numpy.ndarray` or `None`
        ZOGY's ``S_corr`` [sigma]; `None` for Alard-Lupton (detection computes the matched filter itself).
    kernel_sources : `astropy.table.Table`
        Kernel stamps (columns `~lsst.dia.pipe.diffim.kernel_fit.KERNEL_SOURCE_COLUMNS`); empty for ZOGY.
    metadata : `dict` [`str`, `Any`]
        ``algorithm``, ``mode``, ``kernel_sum``, ``n_kernel_candidates``, ``n_kernel_used``,
        ``spatial_order_used``, ``residual_noise_ratio``, ``template_coverage``, ``time_*_s`` per stage, ...
    kernel_solution : `~lsst.dia.pipe.diffim.kernel_fit.KernelSolution` or `None`
        The Alard-Lupton kernel: ``basis`` ``(n, h, w)`` and ``spatial_coefficients`` ``(n, o+1, o+1)``
        (lsst-images ``ChebyshevField`` convention); `None` for ZOGY.
    """

    difference: Exposure
    matched_template: Exposure
    score: np.ndarray | None
    kernel_sources: Table
    metadata: dict[str, Any]
    kernel_solution: KernelSolution | None = None


def empty_kernel_sources() -> Table:
    """A kernel-source table with no rows (the columns of `KERNEL_SOURCE_COLUMNS`)."""
    dtypes = {"x": np.int64, "y": np.int64, "used": bool, "rejectedBy": "U16"}
    table = Table()
    for name, doc in KERNEL_SOURCE_COLUMNS.items():
        table[name] = np.zeros(0, dtype=dtypes.get(name, np.float64))
        table[name].description = doc
    return table
