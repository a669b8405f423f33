"""Typed errors of template assembly and image subtraction, each carrying its context."""

from __future__ import annotations

__all__ = [
    "DiffimError",
    "EmptyImageError",
    "InsufficientKernelSourcesError",
    "KernelSolveError",
    "NoTemplateCoverageError",
]


class DiffimError(RuntimeError):
    """Base class of the errors raised by `lsst.dia.pipe.diffim`."""


class NoTemplateCoverageError(DiffimError):
    """The template patches cover too little of the target image.

    Parameters
    ----------
    coverage_fraction : `float`
        Fraction of target pixels with template data.
    required : `float`
        Minimum fraction required (``WarpConfig.minCoverage``).
    """

    def __init__(self, coverage_fraction: float, required: float) -> None:
        self.coverage_fraction = float(coverage_fraction)
        self.required = float(required)
        super().__init__(
            f"Template covers {self.coverage_fraction:.1%} of the image; at least {self.required:.1%} is required."
        )


class InsufficientKernelSourcesError(DiffimError):
    """Too few usable kernel-candidate stars to fit a PSF-matching kernel.

    Parameters
    ----------
    n_sources : `int`
        Number of usable candidates found (or left after rejection).
    n_required : `int`
        Minimum number required (``AlardLuptonConfig.minKernelSources``).
    """

    def __init__(self, n_sources: int, n_required: int) -> None:
        self.n_sources = int(n_sources)
        self.n_required = int(n_required)
        super().__init__(
            f"Found {self.n_sources} usable kernel sources; at least {self.n_required} are required."
        )


class KernelSolveError(DiffimError):
    """The kernel least-squares system is singular even at spatial order 0.

    Parameters
    ----------
    n_sources : `int`
        Number of stamps in the fit.
    condition : `float`
        Condition number of the (Jacobi-scaled) normal matrix.
    """

    def __init__(self, n_sources: int, condition: float) -> None:
        self.n_sources = int(n_sources)
        self.condition = float(condition)
        super().__init__(
            f"Kernel fit on {self.n_sources} stamps is singular (condition number {self.condition:.3g}) even at "
            "spatial order 0."
        )


class EmptyImageError(DiffimError):
    """An input image has no usable (finite, unmasked) pixels.

    Parameters
    ----------
    which : `str`
        ``"science"`` or ``"template"``.
    n_good : `int`
        Number of usable pixels.
    """

    def __init__(self, which: str, n_good: int = 0) -> None:
        self.which = which
        self.n_good = int(n_good)
        super().__init__(f"The {which} image has {self.n_good} usable (finite, unmasked) pixels.")
