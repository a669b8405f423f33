"""Build `lsst.images.cells.CellCoadd` objects (``deepCoadd_calexp`` template patches) from arrays."""

from __future__ import annotations

import astropy.units as u
import lsst.images as li
import numpy as np
from astropy.wcs import WCS
from lsst.images.cells import CellCoadd, CellPointSpreadFunction, PatchDefinition

from ..skymap.geometry import PatchInfo, TractInfo
from .masks import bits_to_mask

__all__ = ["make_cell_coadd", "patch_definition", "tract_frame"]


def tract_frame(skymap: str, tract: TractInfo) -> li.TractFrame:
    """Return the lsst-images pixel frame of a tract (its full pixel box starts at ``(0, 0)``)."""
    return li.TractFrame(skymap=skymap, tract=tract.id, bbox=li.Box.factory[0 : tract.ny, 0 : tract.nx])


def patch_definition(patch: PatchInfo, cells: li.cells.CellGrid) -> PatchDefinition:
    """Return the lsst-images `PatchDefinition` of a patch whose coadd PSF uses the cell grid ``cells``.

    Raises
    ------
    ValueError
        If the cell grid does not cover the patch's outer box.
    """
    x0, y0, nx, ny = patch.outer_bbox
    outer = li.Box.factory[y0 : y0 + ny, x0 : x0 + nx]
    if not cells.bbox.contains(outer):
        raise ValueError(f"Cell grid {cells.bbox} does not cover the outer box {outer} of patch {patch.id}.")
    ix, iy = patch.index
    ix0, iy0, inx, iny = patch.inner_bbox
    return PatchDefinition(
        id=patch.id,
        index=li.YX(y=iy, x=ix),
        inner_bbox=li.Box.factory[iy0 : iy0 + iny, ix0 : ix0 + inx],
        cells=cells,
    )


def make_cell_coadd(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    *,
    wcs: WCS,
    bbox: li.Box,
    band: str,
    psf: CellPointSpreadFunction,
    skymap: str,
    tract: TractInfo,
    patch: PatchInfo | None = None,
    metadata: dict | None = None,
) -> CellCoadd:
    """Assemble a `CellCoadd` (a ``deepCoadd_calexp`` template patch) in nJy from arrays.

    Parameters
    ----------
    image, variance : `numpy.ndarray`
        ``(ny, nx)`` coadd pixels [nJy] and their variance [nJy²].
    mask : `numpy.ndarray`
        ``(ny, nx)`` `~lsst.dia.pipe.masks.MaskBit` values.
    wcs : `astropy.wcs.WCS`
        Array pixel (0-based, origin at ``bbox`` start) -> ICRS, e.g. ``tract.patch_wcs(patch)``.
    bbox : `lsst.images.Box`
        Tract-pixel box of the arrays (a patch's outer box).
    band : `str`
        Band name.
    psf : `lsst.images.cells.CellPointSpreadFunction`
        Coadd PSF on a cell grid covering ``bbox`` (see `~lsst.dia.pipe.psf.conversion.grid_to_cell_psf`).
    skymap : `str`
        Sky map name (butler ``skymap``).
    tract : `~lsst.dia.pipe.skymap.geometry.TractInfo`
        The tract: its id and pixel extent define the `lsst.images.TractFrame`.
    patch : `~lsst.dia.pipe.skymap.geometry.PatchInfo`, optional
        The patch, recorded as a `PatchDefinition` whose cell grid is the PSF's.
    metadata : `dict`, optional
        Extra metadata stored with the coadd.

    Returns
    -------
    coadd : `lsst.images.cells.CellCoadd`
    """
    if image.shape != (bbox.y.size, bbox.x.size):
        raise ValueError(f"Image shape {image.shape} does not match bbox {bbox}.")
    projection = li.SkyProjection.from_fits_wcs(
        wcs, tract_frame(skymap, tract), pixel_bounds=bbox, x0=bbox.x.start, y0=bbox.y.start
    )
    coadd = CellCoadd(
        li.Image(np.asarray(image, dtype=np.float32), unit=u.nJy, bbox=bbox),
        mask=bits_to_mask(mask, bbox),
        variance=li.Image(np.asarray(variance, dtype=np.float32), unit=u.nJy**2, bbox=bbox),
        sky_projection=projection,
        band=band,
        psf=psf,
        patch=patch_definition(patch, psf.grid) if patch is not None else None,
    )
    if metadata:
        coadd.metadata = dict(metadata)
    return coadd
