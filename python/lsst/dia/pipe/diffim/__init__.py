"""Template assembly and warping, Alard-Lupton and ZOGY image subtraction, decorrelation.

Pure algorithm code on `lsst.dia.pipe.exposure.Exposure` objects (numpy/scipy; no butler, no files).

Public API
----------
- `assemble_template` (patches, target WCS, target shape, `WarpConfig`) -> `TemplateResult`
- `warp_exposure` (source, target WCS, target shape, `WarpConfig`) -> `Exposure`
- `subtract_images` (science, template, `SubtractionConfig`) -> `SubtractionResult`
- `residual_noise_ratio` (difference, mask bits, exclude) -> `float`
- configs: `SubtractionConfig` (nested by tasks as ``config.subtraction``) with `AlardLuptonConfig`,
  `KernelSourceConfig`, `DecorrelationConfig`, `ZogyConfig`; `WarpConfig` (``config.warp``)
- results: `SubtractionResult`, `TemplateResult`, `KernelSolution` (basis + spatial coefficients)
- errors: `NoTemplateCoverageError`, `InsufficientKernelSourcesError`, `KernelSolveError`, `EmptyImageError`
  (all `DiffimError`)
- building blocks: `make_alard_lupton_basis`, `find_kernel_candidates`, `fit_kernel`, `convolve_spatial`,
  `zogy_kernels`, `decorrelation_kernel`, `ChebyshevSpatialModel`
- `lsst.dia.pipe.diffim.synthetic` (not imported here): simulated star-field pairs with known kernels and
  transients, for tests and ``bench/bench_diffim.py``
"""

from .basis import AlardLuptonBasis, make_alard_lupton_basis
from .candidates import KernelCandidates, find_kernel_candidates
from .config import (
    AlardLuptonConfig,
    DecorrelationConfig,
    KernelSourceConfig,
    SubtractionConfig,
    WarpConfig,
    ZogyConfig,
)
from .convolution import convolve_spatial
from .decorrelation import decorrelation_kernel
from .errors import (
    DiffimError,
    EmptyImageError,
    InsufficientKernelSourcesError,
    KernelSolveError,
    NoTemplateCoverageError,
)
from .kernel_fit import KERNEL_SOURCE_COLUMNS, KernelFit, KernelSolution, fit_kernel
from .metrics import residual_noise_ratio
from .result import SubtractionResult
from .spatial import ChebyshevSpatialModel
from .subtract import subtract_images
from .template import TemplateResult, assemble_template
from .warp import warp_exposure
from .zogy import ZogyKernels, zogy_kernels

__all__ = [
    "AlardLuptonBasis",
    "AlardLuptonConfig",
    "ChebyshevSpatialModel",
    "DecorrelationConfig",
    "DiffimError",
    "EmptyImageError",
    "InsufficientKernelSourcesError",
    "KERNEL_SOURCE_COLUMNS",
    "KernelCandidates",
    "KernelFit",
    "KernelSolution",
    "KernelSolveError",
    "KernelSourceConfig",
    "NoTemplateCoverageError",
    "SubtractionConfig",
    "SubtractionResult",
    "TemplateResult",
    "WarpConfig",
    "ZogyConfig",
    "ZogyKernels",
    "assemble_template",
    "convolve_spatial",
    "decorrelation_kernel",
    "find_kernel_candidates",
    "fit_kernel",
    "make_alard_lupton_basis",
    "residual_noise_ratio",
    "subtract_images",
    "warp_exposure",
    "zogy_kernels",
]
