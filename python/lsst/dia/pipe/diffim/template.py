"""Template assembly: every overlapping coadd patch (any tract) warped onto a detector and combined."""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.wcs import WCS

from ..exposure import Exposure
from ..masks import MaskBit
from ..psf import GridPsf
from .config import WarpConfig
from .errors import NoTemplateCoverageError
from .stamps import embed_centred
from .warp import warp_blocks, warp_psf_stamps

__all__ = ["TemplateResult", "assemble_template"]


@dataclasses.dataclass
class TemplateResult:
    """Result of `assemble_template`.

    Attributes
    ----------
    exposure : `~lsst.dia.pipe.exposure.Exposure`
        The template on the target grid [nJy]; uncovered pixels: NaN, ``NO_DATA | NO_TEMPLATE``.
    coverage_fraction : `float`
        Fraction of target pixels with template data.
    """

    exposure: Exposure
    coverage_fraction: float


def _edge_depth(sx: np.ndarray, sy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Signed distance of source positions from the nearest source edge [pixels] (negative outside)."""
    ny, nx = shape
    return np.minimum(np.minimum(sx, nx - 1 - sx), np.minimum(sy, ny - 1 - sy))


def assemble_template(
    patches: list[Exposure], target_wcs: WCS, target_shape: tuple[int, int], config: WarpConfig | None = None
) -> TemplateResult:
    """Warp template patches onto a target grid and combine them into one template.

    Parameters
    ----------
    patches : `list` [`~lsst.dia.pipe.exposure.Exposure`]
        Coadd patches (each with its own WCS: patches of different tracts are fine) [nJy].
    target_wcs : `astropy.wcs.WCS`
        WCS of the target (detector) array pixels.
    target_shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the target.
    config : `WarpConfig`, optional
        Warping options and ``minCoverage``.

    Returns
    -------
    result : `TemplateResult`

    Raises
    ------
    NoTemplateCoverageError
        If the patches cover less than ``config.minCoverage`` of the target (or there are none).

    Notes
    -----
    Where patches overlap, each pixel comes from the one patch in which it lies deepest (farthest from that
    patch's edge) among those with data there, not from an average: overlapping patches of one tract share
    their input pixels, and tracts are built from the same visits, so a weighted mean would understate the
    variance and mix PSFs. The PSF at each node of a ``psfGridSize²`` grid is the warped PSF of the
    contributing patch that is deepest at that node (patches that supply no pixel are ignored).
    """
    config = config if config is not None else WarpConfig()
    config.validate()
    if not patches:
        raise NoTemplateCoverageError(0.0, config.minCoverage)
    ny, nx = target_shape
    image = np.full(target_shape, np.nan, np.float32)
    variance = np.full(target_shape, np.nan, np.float32)
    mask = np.full(target_shape, np.uint32(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE), np.uint32)
    best = np.full(target_shape, -np.inf, np.float32)
    contributors: list[Exposure] = []
    for patch in patches:
        for block in warp_blocks(patch, target_wcs, target_shape, config):
            box = (block.rows, block.cols)
            wins = block.depth > best[box][block.covered]
            if wins.any() and (not contributors or contributors[-1] is not patch):
                contributors.append(patch)
            better = block.covered.copy()
            better[block.covered] = wins
            best[box][better] = block.depth[wins]
            image[box][better] = block.image[wins]
            variance[box][better] = block.variance[wins]
            mask[box][better] = block.mask[wins]
    coverage = float(np.count_nonzero(np.isfinite(best))) / best.size
    if coverage < config.minCoverage or coverage == 0.0:
        raise NoTemplateCoverageError(coverage, config.minCoverage)

    xs, ys = np.linspace(0, nx - 1, config.psfGridSize), np.linspace(0, ny - 1, config.psfGridSize)
    grids, depths = [], []
    for patch in contributors:
        stamps, sx, sy = warp_psf_stamps(patch.psf, patch.wcs, target_wcs, xs, ys)
        grids.append(stamps)
        depths.append(_edge_depth(sx, sy, patch.shape))
    size = max(g.shape[-1] for g in grids)
    choice = np.argmax(np.array(depths), axis=0)
    stamps = np.array([[embed_centred(grids[choice[i, j]][i, j], size) for j in range(len(xs))]
                       for i in range(len(ys))])
    exposure = Exposure(image=image, variance=variance, mask=mask, psf=GridPsf(xs, ys, stamps), wcs=target_wcs,
                        band=contributors[0].band)
    return TemplateResult(exposure=exposure, coverage_fraction=coverage)
