"""Template coadd patches from calibrated template images: a local sky map and per-patch reprojection.

Every template image is reprojected onto each sky-map patch it overlaps (`lsst.dia.pipe.ingest.reproject`).
Several templates of one band on one patch are averaged with one weight per image (the inverse of its
median variance), so that the coadd PSF is exactly the same weighted average of the reprojected PSFs
wherever all inputs cover; pixels that are bad in one input take the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from astropy.wcs import WCS

from ..masks import MaskBit
from ..psf import GridPsf, PsfModel
from ..psf.conversion import embed_stamp
from ..skymap import RingsSkyMap, SkyMapDefinition
from ..skymap.geometry import PatchInfo, TractInfo
from .reproject import coordinate_map, footprint_box, resample, transform_psf

__all__ = ["TemplateImage", "PatchCoadd", "make_local_skymap", "image_corners", "template_patches", "coadd_patch"]

#: Input pixels with these bits do not enter a multi-input average when another input is good there.
_REJECT = MaskBit.NO_DATA | MaskBit.BAD | MaskBit.SATURATED | MaskBit.COSMIC_RAY | MaskBit.STREAK


@dataclasses.dataclass(frozen=True)
class TemplateImage:
    """A calibrated template image in its own pixels.

    Attributes
    ----------
    name : `str`
        Identifier for messages and provenance.
    band : `str`
        Band.
    image, variance : `numpy.ndarray`
        Pixels [nJy] and variance [nJy²].
    mask : `numpy.ndarray`
        uint32 `MaskBit` mask.
    wcs : `astropy.wcs.WCS`
        Array pixel -> ICRS.
    psf : `~lsst.dia.pipe.psf.PsfModel`
        PSF in array pixels.
    """

    name: str
    band: str
    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    wcs: WCS
    psf: PsfModel


@dataclasses.dataclass(frozen=True)
class PatchCoadd:
    """A template coadd of one band on one patch's outer box.

    Attributes
    ----------
    tract : `~lsst.dia.pipe.skymap.geometry.TractInfo`
    patch : `~lsst.dia.pipe.skymap.geometry.PatchInfo`
    band : `str`
    image, variance : `numpy.ndarray`
        ``(ny, nx)`` of the outer box [nJy, nJy²]; 0 and NaN where no input covers.
    mask : `numpy.ndarray`
        uint32 `MaskBit` mask (NO_DATA where no input covers).
    psf : `~lsst.dia.pipe.psf.GridPsf`
        Coadd PSF in the patch's array pixels.
    inputs : `tuple` [`str`, ...]
        Names of the templates that cover the patch.
    """

    tract: TractInfo
    patch: PatchInfo
    band: str
    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    psf: GridPsf
    inputs: tuple[str, ...]


def make_local_skymap(name: str, pixel_scale_arcsec: float, patch_size: int, patch_border: int,
                      num_rings: int = 120) -> RingsSkyMap:
    """A rings sky map with the given pixel scale and (small) patches for ingested templates."""
    return RingsSkyMap(SkyMapDefinition(name=name, num_rings=num_rings, pixel_scale_arcsec=pixel_scale_arcsec,
                                        patch_inner_nx=patch_size, patch_inner_ny=patch_size,
                                        patch_border=patch_border))


def image_corners(wcs: WCS, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) [deg] of the outer corners of an image's pixel box."""
    ny, nx = shape
    ra, dec = wcs.pixel_to_world_values(np.array([-0.5, nx - 0.5, nx - 0.5, -0.5]),
                                        np.array([-0.5, -0.5, ny - 0.5, ny - 0.5]))
    return np.asarray(ra) % 360.0, np.asarray(dec)


def template_patches(skymap: RingsSkyMap, templates: Sequence[TemplateImage]) -> dict[tuple[int, int, str], list[int]]:
    """``{(tract, patch, band): [template indices]}`` of the patches whose outer boxes each template overlaps."""
    out: dict[tuple[int, int, str], list[int]] = {}
    for i, t in enumerate(templates):
        ra, dec = image_corners(t.wcs, t.image.shape)
        for tract, patches in skymap.find_tract_patch_list(ra, dec):
            for patch in patches:
                out.setdefault((tract.id, patch.id, t.band), []).append(i)
    return out


def _psf_nodes(box: tuple[int, int, int, int], n: int) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, nx, ny = box
    if n == 1:
        return np.array([x0 + (nx - 1) / 2.0]), np.array([y0 + (ny - 1) / 2.0])
    return np.linspace(x0, x0 + nx - 1.0, n), np.linspace(y0, y0 + ny - 1.0, n)


def coadd_patch(tract: TractInfo, patch: PatchInfo, band: str, templates: Sequence[TemplateImage],
                psf_nodes: int = 3) -> PatchCoadd | None:
    """Reproject and average the templates of one band on one patch.

    Parameters
    ----------
    tract, patch : `TractInfo`, `PatchInfo`
        Destination patch; the coadd covers its outer box.
    band : `str`
        Band.
    templates : sequence of `TemplateImage`
        Templates of this band overlapping the patch.
    psf_nodes : `int`
        PSF grid nodes per axis over the covered box.

    Returns
    -------
    coadd : `PatchCoadd` or `None`
        `None` if no template actually covers a pixel of the patch.
    """
    x0, y0, nx, ny = patch.outer_bbox
    shape = (ny, nx)
    dst_wcs = tract.patch_wcs(patch)
    layers = []
    for t in templates:
        box = footprint_box(t.wcs, t.image.shape, dst_wcs, shape)
        if box is None or box[2] < 4 or box[3] < 4:
            continue
        cmap = coordinate_map(t.wcs, dst_wcs, box)
        image, variance, mask = resample(t.image, t.variance, t.mask, cmap, shape)
        covered = (mask & np.uint32(int(MaskBit.NO_DATA))) == 0
        if not covered.any():
            continue
        layers.append((t, box, cmap, image, variance, mask, covered))
    if not layers:
        return None
    weights = np.array([1.0 / np.nanmedian(var[cov]) for _, _, _, _, var, _, cov in layers])
    good = np.array([cov & ((m & np.uint32(int(_REJECT))) == 0) for *_, m, cov in layers])
    covered = np.array([cov for *_, cov in layers])
    use = np.where(good.any(axis=0), good, covered)  # keep flagged pixels where nothing better exists
    w = weights[:, None, None] * use
    wsum = w.sum(axis=0)
    has = wsum > 0
    safe = np.where(has, wsum, 1.0)
    image = np.where(has, (w * np.array([layer[3] for layer in layers])).sum(axis=0) / safe, 0.0)
    variance = np.where(has, (w**2 * np.nan_to_num(np.array([layer[4] for layer in layers]))).sum(axis=0) / safe**2,
                        np.nan)
    mask = np.bitwise_or.reduce(np.where(use, np.array([layer[5] for layer in layers]), 0).astype(np.uint32), axis=0)
    mask[~has] = np.uint32(int(MaskBit.NO_DATA))
    # PSF: nodes over the union of the input boxes; per node, the weighted average over covering inputs
    bx0 = min(b[0] for _, b, *_ in layers)
    by0 = min(b[1] for _, b, *_ in layers)
    bx1 = max(b[0] + b[2] for _, b, *_ in layers)
    by1 = max(b[1] + b[3] for _, b, *_ in layers)
    xs, ys = _psf_nodes((bx0, by0, bx1 - bx0, by1 - by0), psf_nodes)
    grids = []
    node_weights = []
    for (t, box, cmap, *_), weight in zip(layers, weights):
        cx = np.clip(xs, box[0], box[0] + box[2] - 1)
        cy = np.clip(ys, box[1], box[1] + box[3] - 1)
        grids.append(transform_psf(t.psf, cmap, cx, cy))
        inside = ((xs >= box[0]) & (xs < box[0] + box[2]))[None, :] & ((ys >= box[1]) & (ys < box[1] + box[3]))[:, None]
        node_weights.append(weight * np.where(inside, 1.0, 1e-6))
    size = max(g.size for g in grids)
    stamps = np.zeros((len(ys), len(xs), size, size))
    norm = np.zeros((len(ys), len(xs)))
    for g, nw in zip(grids, node_weights):
        for i in range(len(ys)):
            for j in range(len(xs)):
                stamps[i, j] += nw[i, j] * embed_stamp(g.stamps[i, j], size)
        norm += nw
    psf = GridPsf(xs, ys, stamps / norm[..., None, None])
    return PatchCoadd(tract=tract, patch=patch, band=band, image=image.astype(np.float32),
                      variance=variance.astype(np.float32), mask=mask, psf=psf,
                      inputs=tuple(t.name for t, *_ in layers))
