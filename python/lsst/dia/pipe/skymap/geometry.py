"""Tract and patch descriptions: pixel boxes, the tract TAN projection, sky regions."""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.wcs import WCS
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

__all__ = ["PatchInfo", "TractInfo", "tan_wcs", "polygon_from_radec"]


def tan_wcs(ra0: float, dec0: float, x_ref: float, y_ref: float, scale_arcsec: float, rotation_deg: float = 0.0) -> WCS:
    """Return a TAN `astropy.wcs.WCS` in the array-pixel convention.

    Parameters
    ----------
    ra0, dec0 : `float`
        Tangent point [deg].
    x_ref, y_ref : `float`
        Array pixel coordinates (0-based) of the tangent point.
    scale_arcsec : `float`
        Pixel scale [arcsec/pixel].
    rotation_deg : `float`
        Position angle of the pixel y axis east of north [deg]; 0 puts north up and east left.
    """
    s = scale_arcsec / 3600.0
    th = np.deg2rad(rotation_deg)
    c, sn = np.cos(th), np.sin(th)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0 % 360.0, dec0]
    wcs.wcs.crpix = [x_ref + 1.0, y_ref + 1.0]
    wcs.wcs.cd = np.array([[-s * c, s * sn], [s * sn, s * c]])
    wcs.wcs.radesys = "ICRS"
    return wcs


def polygon_from_radec(ra: np.ndarray, dec: np.ndarray) -> ConvexPolygon:
    """Return the convex hull polygon of sky points given in degrees."""
    vertices = [UnitVector3d(LonLat.fromDegrees(float(r), float(d))) for r, d in zip(ra, dec)]
    return ConvexPolygon.convexHull(vertices)


@dataclasses.dataclass(frozen=True)
class PatchInfo:
    """One patch of a tract.

    Attributes
    ----------
    index : `tuple` [`int`, `int`]
        ``(ix, iy)`` position in the tract's patch grid.
    id : `int`
        Sequential patch id, ``iy * n_patches_x + ix`` (the butler ``patch`` value).
    inner_bbox, outer_bbox : `tuple` [`int`, `int`, `int`, `int`]
        ``(x0, y0, nx, ny)`` in tract pixels; inner boxes tile the tract, outer ones are grown by the border.
    """

    index: tuple[int, int]
    id: int
    inner_bbox: tuple[int, int, int, int]
    outer_bbox: tuple[int, int, int, int]


@dataclasses.dataclass(frozen=True)
class TractInfo:
    """One tract: its TAN projection, pixel extent and patch grid.

    Attributes
    ----------
    id : `int`
        Tract id.
    ra_center, dec_center : `float`
        Tangent point [deg].
    wcs : `astropy.wcs.WCS`
        Tract pixels (array convention, origin at the tract bbox corner) -> ICRS.
    nx, ny : `int`
        Tract size in pixels.
    n_patches_x, n_patches_y : `int`
        Patch grid size.
    patch_inner_nx, patch_inner_ny, patch_border : `int`
        Patch geometry in pixels.
    """

    id: int
    ra_center: float
    dec_center: float
    wcs: WCS
    nx: int
    ny: int
    n_patches_x: int
    n_patches_y: int
    patch_inner_nx: int
    patch_inner_ny: int
    patch_border: int

    @property
    def n_patches(self) -> int:
        """Number of patches in the tract."""
        return self.n_patches_x * self.n_patches_y

    def patch(self, patch_id: int) -> PatchInfo:
        """Return the `PatchInfo` of a sequential patch id."""
        if not 0 <= patch_id < self.n_patches:
            raise ValueError(f"Patch {patch_id} is not in tract {self.id} (0..{self.n_patches - 1}).")
        iy, ix = divmod(int(patch_id), self.n_patches_x)
        x0, y0 = ix * self.patch_inner_nx, iy * self.patch_inner_ny
        nx = min(self.patch_inner_nx, self.nx - x0)
        ny = min(self.patch_inner_ny, self.ny - y0)
        b = self.patch_border
        ox0, oy0 = max(x0 - b, 0), max(y0 - b, 0)
        ox1, oy1 = min(x0 + nx + b, self.nx), min(y0 + ny + b, self.ny)
        return PatchInfo((ix, iy), int(patch_id), (x0, y0, nx, ny), (ox0, oy0, ox1 - ox0, oy1 - oy0))

    def patch_ids_of_pixels(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Sequential id of the patch whose INNER box contains tract pixel ``(x, y)``; -1 off the tract."""
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        ix = np.floor((x + 0.5) / self.patch_inner_nx).astype(np.int64)
        iy = np.floor((y + 0.5) / self.patch_inner_ny).astype(np.int64)
        on = (x >= -0.5) & (x < self.nx - 0.5) & (y >= -0.5) & (y < self.ny - 0.5) & np.isfinite(x) & np.isfinite(y)
        return np.where(on, iy * self.n_patches_x + ix, -1)

    def patch_ids_of_sky(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Sequential inner-patch id of sky positions [deg] in this tract's pixel grid (-1 off the tract)."""
        x, y = self.wcs.world_to_pixel_values(np.asarray(ra, float), np.asarray(dec, float))
        return self.patch_ids_of_pixels(x, y)

    def patch_wcs(self, patch: PatchInfo) -> WCS:
        """The tract WCS shifted to the array origin of the patch's OUTER box."""
        wcs = self.wcs.deepcopy()
        wcs.wcs.crpix = [wcs.wcs.crpix[0] - patch.outer_bbox[0], wcs.wcs.crpix[1] - patch.outer_bbox[1]]
        return wcs

    def _box_polygon(self, box: tuple[int, int, int, int]) -> ConvexPolygon:
        x0, y0, nx, ny = box
        xs = np.array([x0 - 0.5, x0 + nx - 0.5, x0 + nx - 0.5, x0 - 0.5])
        ys = np.array([y0 - 0.5, y0 - 0.5, y0 + ny - 0.5, y0 + ny - 0.5])
        ra, dec = self.wcs.pixel_to_world_values(xs, ys)
        return polygon_from_radec(ra, dec)

    def outer_region(self) -> ConvexPolygon:
        """Sky polygon of the whole tract pixel box (its outer region)."""
        return self._box_polygon((0, 0, self.nx, self.ny))

    def patch_outer_region(self, patch: PatchInfo) -> ConvexPolygon:
        """Sky polygon of a patch's outer box."""
        return self._box_polygon(patch.outer_bbox)

    def patch_inner_region(self, patch: PatchInfo) -> ConvexPolygon:
        """Sky polygon of a patch's inner box."""
        return self._box_polygon(patch.inner_bbox)
