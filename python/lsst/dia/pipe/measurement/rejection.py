"""Which measured DIASources are not real: bad pixel flags, poor PSF fits, rings around bright template stars.

The three tests of `unreliable_sources` run on a measured DIASource catalog; each is documented where it is
defined (`poor_psf_fit`, `bright_template_stars`). The task removes the union and records how many sources each
test removed first.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.table import Table

from ..exposure import Exposure
from .bright_stars import bright_template_stars, in_bright_star_rings
from .config import ForcedPhotometryConfig
from .psf_fit_quality import poor_psf_fit

__all__ = ["RejectionSettings", "unreliable_sources"]


@dataclasses.dataclass(frozen=True)
class RejectionSettings:
    """Settings of `unreliable_sources` (the image-difference task's config fields of the same names).

    Attributes
    ----------
    bad_flags : `tuple` [`str`, ...]
        Boolean columns any of which rejects a source.
    max_reduced_chi2, model_error_fraction : `float` or `None`
        `poor_psf_fit` limits; `None` skips the test.
    bright_star_min_snr, bright_star_max_fit_residual : `float` or `None`
        `bright_template_stars` selection; `None` skips the ring test.
    ring_radii_fwhm : `tuple` [`float`, `float`]
        Inner and outer ring radii [PSF FWHM].
    """

    bad_flags: tuple[str, ...]
    max_reduced_chi2: float | None
    model_error_fraction: float
    bright_star_min_snr: float | None
    bright_star_max_fit_residual: float
    ring_radii_fwhm: tuple[float, float]


def unreliable_sources(
    sources: Table,
    template: Exposure,
    difference: Exposure,
    fwhm: float,
    systematic_fraction: float,
    settings: RejectionSettings,
    photometry: ForcedPhotometryConfig | None = None,
) -> tuple[np.ndarray, dict[str, int]]:
    """Sources to remove, and how many each test removed that the earlier ones had not.

    Parameters
    ----------
    sources : `astropy.table.Table`
        Measured DIASources (``x``, ``y``, ``psfFlux``, ``psfFluxErr``, ``psfChi2``, ``psfNdata``,
        ``templateFlux`` and the ``settings.bad_flags`` columns).
    template : `~lsst.dia.pipe.exposure.Exposure`
        Warped template on the difference image's grid (bright stars are found there).
    difference : `~lsst.dia.pipe.exposure.Exposure`
        Difference image (its noise scales the bright-star threshold).
    fwhm : `float`
        Science PSF FWHM [pixels].
    systematic_fraction : `float`
        Flux fraction ε left by the subtraction (``Systematics.flux_fraction``).
    settings : `RejectionSettings`
        Which tests, with which limits.
    photometry : `ForcedPhotometryConfig`, optional
        PSF photometry of the bright-star candidates.

    Returns
    -------
    reject : `numpy.ndarray` of `bool`
        One per source.
    counts : `dict` [`str`, `int`]
        ``badFlags``, ``poorPsfFit``, ``brightStarRing``: sources removed by each test and by no earlier one.
    """
    n = len(sources)
    reject = np.zeros(n, dtype=bool)
    counts = {"badFlags": 0, "poorPsfFit": 0, "brightStarRing": 0}
    if n == 0:
        return reject, counts
    for flag in settings.bad_flags:
        reject |= np.asarray(sources[flag], dtype=bool)
    counts["badFlags"] = int(reject.sum())
    if settings.max_reduced_chi2 is not None:
        poor = poor_psf_fit(sources["psfChi2"], sources["psfNdata"], sources["psfFlux"], sources["psfFluxErr"],
                            sources["templateFlux"], settings.max_reduced_chi2, settings.model_error_fraction,
                            systematic_fraction)
        counts["poorPsfFit"] = int(np.count_nonzero(poor & ~reject))
        reject |= poor
    if settings.bright_star_min_snr is not None:
        star_x, star_y = bright_template_stars(template, difference, settings.bright_star_min_snr,
                                               settings.bright_star_max_fit_residual, photometry)
        inner, outer = (r * fwhm for r in settings.ring_radii_fwhm)
        ring = in_bright_star_rings(sources["x"], sources["y"], star_x, star_y, inner, outer)
        counts["brightStarRing"] = int(np.count_nonzero(ring & ~reject))
        reject |= ring
    return reject, counts
