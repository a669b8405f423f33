"""Reproject a calibrated image and its PSF onto another pixel grid (a template onto a sky-map patch).

The source pixel position of every destination pixel comes from a coarse coordinate map (both WCSs
evaluated every ``step`` pixels, interpolated with a bicubic spline: the map is smooth), restricted to the
destination box that the source footprint covers. Pixels are resampled with a cubic spline and multiplied
by the local pixel-area ratio (flux per pixel is conserved); the variance is interpolated linearly and
scaled by the squared area ratio (the covariance that interpolation introduces is not tracked). Each mask
bit is dilated by one pixel in the source and sampled at the nearest source pixel; destination pixels
outside the source get NO_DATA.

The PSF follows the local affine part of the mapping: at each destination grid node the source PSF stamp is
resampled through the local Jacobian (``P_dst(v) = |det A| P_src(A v)``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.wcs import WCS
from scipy import interpolate, ndimage

from ..masks import MaskBit
from ..psf import GridPsf, PsfModel

__all__ = ["CoordinateMap", "coordinate_map", "footprint_box", "resample", "transform_psf"]


@dataclasses.dataclass(frozen=True)
class CoordinateMap:
    """Source pixel positions of a box of destination pixels.

    Attributes
    ----------
    x0, y0 : `int`
        Destination array position of the box's first pixel.
    src_x, src_y : `numpy.ndarray`
        ``(ny, nx)`` source array positions of the box's pixels.
    area : `numpy.ndarray`
        ``(ny, nx)`` |Jacobian determinant|: source pixels per destination pixel.
    splines : `tuple`
        The ``x`` and ``y`` splines, for evaluation at arbitrary destination positions.
    """

    x0: int
    y0: int
    src_x: np.ndarray
    src_y: np.ndarray
    area: np.ndarray
    splines: tuple

    def jacobian(self, x: float, y: float) -> tuple[float, float, np.ndarray]:
        """Source position and 2×2 Jacobian ``d(src)/d(dst)`` at destination array position ``(x, y)``."""
        sx, sy = self.splines
        u, v = y - self.y0, x - self.x0
        jac = np.array([[sx(u, v, dy=1)[0, 0], sx(u, v, dx=1)[0, 0]],
                        [sy(u, v, dy=1)[0, 0], sy(u, v, dx=1)[0, 0]]])
        return float(sx(u, v)[0, 0]), float(sy(u, v)[0, 0]), jac


def footprint_box(src_wcs: WCS, src_shape: tuple[int, int], dst_wcs: WCS, dst_shape: tuple[int, int],
                  margin: int = 2) -> tuple[int, int, int, int] | None:
    """Destination box ``(x0, y0, nx, ny)`` covering the source image footprint, or `None` if disjoint."""
    ny, nx = src_shape
    t = np.linspace(0.0, 1.0, 17)
    xs = np.concatenate([t * nx, np.full_like(t, nx), (1 - t) * nx, np.zeros_like(t)]) - 0.5
    ys = np.concatenate([np.zeros_like(t), t * ny, np.full_like(t, ny), (1 - t) * ny]) - 0.5
    ra, dec = src_wcs.pixel_to_world_values(xs, ys)
    dx, dy = dst_wcs.world_to_pixel_values(ra, dec)
    x0 = max(int(np.floor(dx.min())) - margin, 0)
    y0 = max(int(np.floor(dy.min())) - margin, 0)
    x1 = min(int(np.ceil(dx.max())) + margin + 1, dst_shape[1])
    y1 = min(int(np.ceil(dy.max())) + margin + 1, dst_shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1 - x0, y1 - y0


def coordinate_map(src_wcs: WCS, dst_wcs: WCS, box: tuple[int, int, int, int], step: int = 16) -> CoordinateMap:
    """Source array positions of the destination pixels of ``box`` (see the module docstring).

    Parameters
    ----------
    src_wcs, dst_wcs : `astropy.wcs.WCS`
        Array pixel -> sky of the source and destination images.
    box : `tuple` [`int`, `int`, `int`, `int`]
        Destination ``(x0, y0, nx, ny)``.
    step : `int`
        Coarse grid spacing [destination pixels].
    """
    x0, y0, nx, ny = box
    if nx < 4 or ny < 4:
        raise ValueError(f"Destination box {box} is too small to map (needs 4 pixels per axis).")
    # at least 4 nodes per axis: cubic splines, whose derivatives give the Jacobian
    cx = np.unique(np.concatenate([np.arange(0, nx, min(step, (nx - 1) // 3)), [nx - 1]])).astype(float)
    cy = np.unique(np.concatenate([np.arange(0, ny, min(step, (ny - 1) // 3)), [ny - 1]])).astype(float)
    gx, gy = np.meshgrid(cx + x0, cy + y0)
    ra, dec = dst_wcs.pixel_to_world_values(gx.ravel(), gy.ravel())
    sx, sy = src_wcs.world_to_pixel_values(ra, dec)
    spline_x = interpolate.RectBivariateSpline(cy, cx, np.reshape(sx, gx.shape), kx=3, ky=3)
    spline_y = interpolate.RectBivariateSpline(cy, cx, np.reshape(sy, gx.shape), kx=3, ky=3)
    fy, fx = np.arange(ny, dtype=float), np.arange(nx, dtype=float)
    src_x, src_y = spline_x(fy, fx), spline_y(fy, fx)
    dxdx, dxdy = spline_x(fy, fx, dy=1), spline_x(fy, fx, dx=1)
    dydx, dydy = spline_y(fy, fx, dy=1), spline_y(fy, fx, dx=1)
    area = np.abs(dxdx * dydy - dxdy * dydx)
    return CoordinateMap(x0, y0, src_x, src_y, area, (spline_x, spline_y))


def resample(image: np.ndarray, variance: np.ndarray, mask: np.ndarray, cmap: CoordinateMap,
             dst_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Resample an image, its variance and mask onto the destination grid of a coordinate map.

    Parameters
    ----------
    image, variance : `numpy.ndarray`
        Source pixels (flux per pixel) and variance; non-finite values are masked NO_DATA.
    mask : `numpy.ndarray`
        Source uint32 `MaskBit` mask.
    cmap : `CoordinateMap`
        From `coordinate_map`.
    dst_shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the full destination array.

    Returns
    -------
    image, variance, mask : `numpy.ndarray`
        Destination arrays: float32 image (0 where not covered), float32 variance (NaN where not covered),
        uint32 mask (NO_DATA where not covered).
    """
    ny, nx = image.shape
    finite = np.isfinite(image) & np.isfinite(variance)
    mask = mask | np.where(finite, 0, int(MaskBit.NO_DATA)).astype(np.uint32)
    bad = (mask & np.uint32(int(MaskBit.NO_DATA | MaskBit.BAD))) != 0
    src_img = np.where(bad | ~finite, 0.0, image)
    src_var = np.where(finite, variance, np.nanmedian(variance[finite]) if finite.any() else 1.0)
    coords = np.array([cmap.src_y, cmap.src_x])
    inside = (cmap.src_x >= -0.5) & (cmap.src_x <= nx - 0.5) & (cmap.src_y >= -0.5) & (cmap.src_y <= ny - 0.5)
    out_img = ndimage.map_coordinates(src_img, coords, order=3, mode="nearest") * cmap.area
    out_var = ndimage.map_coordinates(src_var, coords, order=1, mode="nearest") * cmap.area**2
    nearest = np.rint(coords).astype(int)
    nearest[0] = np.clip(nearest[0], 0, ny - 1)
    nearest[1] = np.clip(nearest[1], 0, nx - 1)
    out_mask = np.zeros(cmap.src_x.shape, dtype=np.uint32)
    present = int(np.bitwise_or.reduce(mask.ravel())) if mask.size else 0
    for bit in MaskBit:
        if present & int(bit):
            plane = ndimage.binary_dilation((mask & np.uint32(int(bit))) != 0, structure=np.ones((3, 3), bool))
            out_mask[plane[nearest[0], nearest[1]]] |= np.uint32(int(bit))
    out_mask[~inside] = np.uint32(int(MaskBit.NO_DATA))
    dst_img = np.zeros(dst_shape, dtype=np.float32)
    dst_var = np.full(dst_shape, np.nan, dtype=np.float32)
    dst_mask = np.full(dst_shape, np.uint32(int(MaskBit.NO_DATA)), dtype=np.uint32)
    sl = (slice(cmap.y0, cmap.y0 + cmap.src_x.shape[0]), slice(cmap.x0, cmap.x0 + cmap.src_x.shape[1]))
    dst_img[sl] = np.where(inside, out_img, 0.0)
    dst_var[sl] = np.where(inside, out_var, np.nan)
    dst_mask[sl] = out_mask
    return dst_img, dst_var, dst_mask


def transform_psf(psf: PsfModel, cmap: CoordinateMap, x_nodes: np.ndarray, y_nodes: np.ndarray,
                  size: int | None = None) -> GridPsf:
    """The source PSF seen on the destination grid, sampled at destination nodes.

    Parameters
    ----------
    psf : `~lsst.dia.pipe.psf.PsfModel`
        PSF in source array pixels.
    cmap : `CoordinateMap`
        Mapping destination -> source.
    x_nodes, y_nodes : `numpy.ndarray`
        Destination grid nodes [destination array pixels].
    size : `int`, optional
        Odd destination stamp side; default the source stamp size scaled by the mapping.

    Returns
    -------
    grid : `~lsst.dia.pipe.psf.GridPsf`
        In destination array pixels.
    """
    stamps = []
    for y in y_nodes:
        row = []
        for x in x_nodes:
            sx, sy, jac = cmap.jacobian(float(x), float(y))
            src = psf.kernel_image(sx, sy)
            k = src.shape[0]
            if size is None:
                stretch = float(np.linalg.svd(np.linalg.inv(jac), compute_uv=False).max())
                size = 2 * int(np.ceil((k // 2) * stretch)) + 1
            c = np.arange(size) - size // 2
            vy, vx = np.meshgrid(c, c, indexing="ij")
            # source offsets of destination offsets v: A v
            ux = jac[0, 0] * vx + jac[0, 1] * vy
            uy = jac[1, 0] * vx + jac[1, 1] * vy
            stamp = ndimage.map_coordinates(src, [uy + k // 2, ux + k // 2], order=3, mode="constant", cval=0.0)
            row.append(stamp * abs(np.linalg.det(jac)))
        stamps.append(row)
    return GridPsf(np.asarray(x_nodes, float), np.asarray(y_nodes, float), np.array(stamps))
