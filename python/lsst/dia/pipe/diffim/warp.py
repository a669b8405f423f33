"""Resampling of an exposure (a template coadd patch) onto another pixel grid (a detector).

Choices, and why
----------------
- Pixel map: the target -> sky -> source transform is evaluated with the WCSs only on a coarse grid of nodes
  (every ``gridSpacing`` target pixels) and interpolated between them with a tensor-product cubic spline,
  computed as one matrix product per coordinate and block of rows. For TAN pairs (different tangent points,
  rotations) the error is ~1e-9 px at the default 64 px spacing (tested: < 0.01 px); SIP polynomials vary on
  far larger scales than 64 px.
- Image: cubic B-spline interpolation with the exact interpolating prefilter (`scipy.ndimage.spline_filter` +
  `map_coordinates(order=3)`). Its kernel is the cardinal cubic spline, which is Lanczos-3 class on
  band-limited (PSF-sampled) images at a fraction of the cost of a 6×6-tap Lanczos sum. Measured on Gaussian
  star fields rotated by 30° (error relative to the star peak, cubic spline vs normalised Lanczos-3):
  FWHM 4 px max 0.3% vs 1.0%, rms 0.02% vs 0.09%; FWHM 2.35 px max 3.9% vs 2.2%, rms 0.17% vs 0.17%.
  Non-finite or NO_DATA source pixels are replaced by the mean of their valid 3×3 neighbours (0 inside large
  holes) before the prefilter, so they cannot spread through it; their bits mark the output (ringing beyond
  the flagged 3×3 neighbourhood is < 1e-3 of the jump).
- Variance: ``Var(Σ w_k I_k) = Σ w_k² V_k``; with the variance locally constant this is the bilinearly
  resampled variance times ``f(tx) f(ty)``, ``f(t) = Σ_k w_k(t)²`` the noise factor of the (separable)
  cardinal cubic spline at sub-pixel phase ``t`` (``f(0) = 1``, ``f(0.5) ≈ 0.756``), tabulated once.
- Mask: bits of every source pixel within ±1 pixel of the nearest one (the 3×3 neighbourhood, which holds the
  largest weights of the cubic) are ORed. Target pixels outside the source (beyond its outermost pixel
  centres) get ``NO_DATA | NO_TEMPLATE``, image and variance NaN.
- PSF: a `~lsst.dia.pipe.psf.GridPsf` in the target frame: at each node the source PSF is evaluated at the
  mapped position and resampled through the local affine Jacobian ``J = ∂(source)/∂(target)``:
  ``P_t(u) = |det J| P_s(J u)``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator

import numpy as np
import scipy.ndimage
from astropy.wcs import WCS

from ..exposure import Exposure
from ..masks import MaskBit
from ..psf import GridPsf, PsfModel
from .config import WarpConfig
from .convolution import dilate_bits
from .grids import grid_nodes, interpolation_matrix

__all__ = ["PixelMap", "WarpedBlock", "pixel_map", "warp_blocks", "warp_exposure", "warp_psf_stamps"]

_UNCOVERED = np.uint32(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE)
_PREFILTER_MARGIN = 12
#: Target pixels mapping this far (source pixels) outside the outermost source pixel centres still count as
#: covered (rounding of the WCS round trip).
_EDGE_TOLERANCE = 1e-3


@dataclasses.dataclass
class PixelMap:
    """Source-pixel coordinates of every target pixel, from WCS evaluations on a coarse node grid.

    Attributes
    ----------
    nodes_x, nodes_y : `numpy.ndarray`
        Target pixel positions of the node columns and rows.
    source_x, source_y : `numpy.ndarray`
        ``(len(nodes_y), len(nodes_x))`` source coordinates of the nodes (NaN where the WCS fails).
    target_shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the target.
    """

    nodes_x: np.ndarray
    nodes_y: np.ndarray
    source_x: np.ndarray
    source_y: np.ndarray
    target_shape: tuple[int, int]

    def __post_init__(self) -> None:
        valid = np.isfinite(self.source_x) & np.isfinite(self.source_y)
        # Cubic (global) interpolation is exact to < 0.01 px; with failed nodes use local linear interpolation
        # and a far-away sentinel so the failure stays confined to the neighbouring cells.
        degree = 3 if valid.all() else 1
        self._sx = np.where(valid, self.source_x, -1e9)
        self._sy = np.where(valid, self.source_y, -1e9)
        ny, nx = self.target_shape
        self._my = interpolation_matrix(self.nodes_y, np.arange(ny), degree)
        self._mx = interpolation_matrix(self.nodes_x, np.arange(nx), degree)

        self._columns: tuple[tuple[int, int], np.ndarray, np.ndarray] | None = None

    def block(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """Source ``(x, y)`` of the target pixels ``[rows, cols]`` [pixels], float64 arrays.

        The interpolation along x (node rows to every column of ``cols``) is cached, so successive blocks of
        rows over the same columns cost one matrix product per coordinate.
        """
        key = (cols.start, cols.stop)
        if self._columns is None or self._columns[0] != key:
            mx = self._mx[cols].T
            self._columns = (key, self._sx @ mx, self._sy @ mx)
        _, along_x, along_y = self._columns
        my = self._my[rows]
        return my @ along_x, my @ along_y


def pixel_map(target_wcs: WCS, source_wcs: WCS, target_shape: tuple[int, int], spacing: int) -> PixelMap:
    """Build the target -> source `PixelMap` with WCS evaluations every ``spacing`` target pixels."""
    ny, nx = target_shape
    nodes_x, nodes_y = grid_nodes(nx, spacing), grid_nodes(ny, spacing)
    gx, gy = np.meshgrid(nodes_x, nodes_y)
    sx, sy = _map_points(target_wcs, source_wcs, gx, gy)
    return PixelMap(nodes_x, nodes_y, sx, sy, (int(ny), int(nx)))


def _map_points(target_wcs: WCS, source_wcs: WCS, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ra, dec = target_wcs.pixel_to_world_values(x, y)
    sx, sy = source_wcs.world_to_pixel_values(ra, dec)
    return np.asarray(sx, dtype=float), np.asarray(sy, dtype=float)


@functools.cache
def _spline_noise_table(n: int = 513) -> np.ndarray:
    """``f(t)`` at ``t = i / (n - 1)``: noise-variance factor ``Σ_k w_k(t)²`` of cardinal cubic-spline
    interpolation at sub-pixel phase ``t``."""
    size, centre = 41, 20
    coefficients = scipy.ndimage.spline_filter1d(np.eye(size), order=3, axis=1, mode="mirror")
    t = np.linspace(0.0, 1.0, n)
    weights = np.array(
        [scipy.ndimage.map_coordinates(c, [centre + t], order=3, prefilter=False, mode="mirror") for c in coefficients]
    )
    return (weights**2).sum(axis=0).astype(np.float32)


def _noise_factor(coordinate: np.ndarray) -> np.ndarray:
    """``f`` at the sub-pixel phase of each coordinate (nearest table entry; the table step is 1/512)."""
    table = _spline_noise_table()
    phase = coordinate - np.floor(coordinate)
    return table[np.rint(phase * (len(table) - 1)).astype(np.intp)]


def _fill_holes(image: np.ndarray, no_data: np.ndarray) -> np.ndarray:
    """float32 copy with no-data pixels set to the mean of their valid 3×3 neighbours (0 if none), so an
    isolated bad pixel leaves no deep hole to ring through the spline prefilter."""
    filled = np.where(no_data, np.float32(0.0), image).astype(np.float32)
    if no_data.any():
        valid = (~no_data).astype(np.float32)
        total = scipy.ndimage.uniform_filter(filled, 3, mode="nearest")
        count = scipy.ndimage.uniform_filter(valid, 3, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            filled[no_data] = np.where(count[no_data] > 0, total[no_data] / count[no_data], 0.0)
    return filled


@dataclasses.dataclass
class WarpedBlock:
    """Warped pixels of one block of target rows.

    Attributes
    ----------
    rows, cols : `slice`
        Target rows and columns of the block.
    covered : `numpy.ndarray`
        ``(rows, cols)`` bool, target pixels that map inside the source.
    image, variance, mask, depth : `numpy.ndarray`
        1-d values at the covered pixels (in ``covered``'s C order): warped image [nJy], variance [nJy²]
        (both NaN where the source has no data), mask bits, and the distance of the source position from
        the nearest source edge [source pixels] (``-inf`` where the source has no data), which picks the best
        of overlapping patches.
    """

    rows: slice
    cols: slice
    covered: np.ndarray
    image: np.ndarray
    variance: np.ndarray
    mask: np.ndarray
    depth: np.ndarray


def _target_bounds(pmap: PixelMap, source_shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """Target rows/columns whose pixels may map inside the source (node test with a one-cell margin)."""
    sny, snx = source_shape
    step_x = np.nanmax(np.abs(np.diff(pmap.source_x, axis=1)), initial=0.0) + np.nanmax(
        np.abs(np.diff(pmap.source_x, axis=0)), initial=0.0)
    step_y = np.nanmax(np.abs(np.diff(pmap.source_y, axis=1)), initial=0.0) + np.nanmax(
        np.abs(np.diff(pmap.source_y, axis=0)), initial=0.0)
    with np.errstate(invalid="ignore"):
        near = ((pmap.source_x >= -step_x) & (pmap.source_x <= snx - 1 + step_x)
                & (pmap.source_y >= -step_y) & (pmap.source_y <= sny - 1 + step_y))
    if not near.any():
        return None
    iy, ix = np.nonzero(near)
    ny, nx = pmap.target_shape
    y0 = int(pmap.nodes_y[max(iy.min() - 1, 0)])
    y1 = int(pmap.nodes_y[min(iy.max() + 1, len(pmap.nodes_y) - 1)]) + 1
    x0 = int(pmap.nodes_x[max(ix.min() - 1, 0)])
    x1 = int(pmap.nodes_x[min(ix.max() + 1, len(pmap.nodes_x) - 1)]) + 1
    return slice(y0, min(y1, ny)), slice(x0, min(x1, nx))


def warp_blocks(
    source: Exposure, target_wcs: WCS, target_shape: tuple[int, int], config: WarpConfig
) -> Iterator[WarpedBlock]:
    """Warp ``source`` onto the target grid, block of rows by block of rows, over the target box it can reach.

    Parameters
    ----------
    source : `~lsst.dia.pipe.exposure.Exposure`
        Image to resample (e.g. a coadd patch) [nJy].
    target_wcs : `astropy.wcs.WCS`
        WCS of the target array pixels.
    target_shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the target.
    config : `WarpConfig`
        Grid spacing, rows per block.

    Yields
    ------
    block : `WarpedBlock`
        Blocks with at least one covered pixel; nothing if no target pixel maps inside the source.
    """
    pmap = pixel_map(target_wcs, source.wcs, target_shape, config.gridSpacing)
    bounds = _target_bounds(pmap, source.shape)
    if bounds is None:
        return
    rows, cols = bounds
    sny, snx = source.shape
    in_y = (pmap.nodes_y >= rows.start) & (pmap.nodes_y < rows.stop)
    in_x = (pmap.nodes_x >= cols.start) & (pmap.nodes_x < cols.stop)
    node_x = np.clip(pmap.source_x[np.ix_(in_y, in_x)], 0, snx - 1)
    node_y = np.clip(pmap.source_y[np.ix_(in_y, in_x)], 0, sny - 1)
    margin = _PREFILTER_MARGIN
    sx0 = int(max(np.floor(np.nanmin(node_x)) - margin, 0))
    sx1 = int(min(np.ceil(np.nanmax(node_x)) + margin + 1, snx))
    sy0 = int(max(np.floor(np.nanmin(node_y)) - margin, 0))
    sy1 = int(min(np.ceil(np.nanmax(node_y)) + margin + 1, sny))
    crop = np.s_[sy0:sy1, sx0:sx1]

    image = source.image[crop]
    variance = source.variance[crop]
    no_data = ~(np.isfinite(image) & np.isfinite(variance)) | ((source.mask[crop] & np.uint32(MaskBit.NO_DATA)) != 0)
    mask = source.mask[crop] | np.where(no_data, np.uint32(MaskBit.NO_DATA), np.uint32(0))
    coefficients = scipy.ndimage.spline_filter(_fill_holes(image, no_data), order=3, mode="mirror", output=np.float32)
    variance = np.where(no_data, 0.0, variance).astype(np.float32)
    mask = dilate_bits(mask, 1)
    no_data_bit = np.uint32(MaskBit.NO_DATA)

    for start in range(rows.start, rows.stop, config.rowsPerBlock):
        block = slice(start, min(start + config.rowsPerBlock, rows.stop))
        xs, ys = pmap.block(block, cols)
        covered = (xs >= -_EDGE_TOLERANCE) & (xs <= snx - 1 + _EDGE_TOLERANCE)
        covered &= (ys >= -_EDGE_TOLERANCE) & (ys <= sny - 1 + _EDGE_TOLERANCE)
        if not covered.any():
            continue
        x, y = np.clip(xs[covered], 0, snx - 1), np.clip(ys[covered], 0, sny - 1)
        lx, ly = x - sx0, y - sy0
        values = scipy.ndimage.map_coordinates(coefficients, [ly, lx], order=3, prefilter=False, mode="mirror",
                                               output=np.float32)
        var = scipy.ndimage.map_coordinates(variance, [ly, lx], order=1, mode="nearest", output=np.float32)
        var *= _noise_factor(x) * _noise_factor(y)
        bits = mask[np.clip(np.rint(ly).astype(np.intp), 0, mask.shape[0] - 1),
                    np.clip(np.rint(lx).astype(np.intp), 0, mask.shape[1] - 1)]
        d = np.minimum(np.minimum(x, snx - 1 - x), np.minimum(y, sny - 1 - y)).astype(np.float32)
        missing = (bits & no_data_bit) != 0
        d[missing] = -np.inf
        values[missing] = np.nan
        var[missing] = np.nan
        yield WarpedBlock(rows=block, cols=cols, covered=covered, image=values, variance=var, mask=bits, depth=d)


def warp_psf_stamps(
    psf: PsfModel, source_wcs: WCS, target_wcs: WCS, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PSF stamps in the target frame at target nodes ``xs × ys`` (see module notes).

    Returns
    -------
    stamps : `numpy.ndarray`
        ``(len(ys), len(xs), k, k)``, each normalised to sum 1; ``k`` covers the source stamp after the
        Jacobian's largest shrinking.
    source_x, source_y : `numpy.ndarray`
        ``(len(ys), len(xs))`` source positions of the nodes [pixels].
    """
    gx, gy = np.meshgrid(np.asarray(xs, float), np.asarray(ys, float))
    sx, sy = _map_points(target_wcs, source_wcs, gx, gy)
    jac = np.empty(gx.shape + (2, 2))
    for axis, (dx, dy) in enumerate(((0.5, 0.0), (0.0, 0.5))):
        px, py = _map_points(target_wcs, source_wcs, gx + dx, gy + dy)
        mx, my = _map_points(target_wcs, source_wcs, gx - dx, gy - dy)
        jac[..., 0, axis] = px - mx
        jac[..., 1, axis] = py - my
    if not (np.all(np.isfinite(jac)) and np.all(np.isfinite(sx)) and np.all(np.isfinite(sy))):
        raise ValueError("The WCSs do not map the PSF nodes between the two frames.")
    source_stamps = [[np.asarray(psf.kernel_image(float(a), float(b)), float) for a, b in zip(rx, ry)]
                     for rx, ry in zip(sx, sy)]
    half_src = max(s.shape[0] for row in source_stamps for s in row) // 2
    min_sv = np.linalg.svd(jac, compute_uv=False)[..., -1]
    half = int(np.ceil(half_src / min_sv.min() - 1e-6))
    offsets = np.arange(-half, half + 1, dtype=float)
    uy, ux = np.meshgrid(offsets, offsets, indexing="ij")
    stamps = np.empty(gx.shape + (2 * half + 1, 2 * half + 1))
    for i, j in np.ndindex(gx.shape):
        stamp = source_stamps[i][j]
        c = stamp.shape[0] // 2
        j_ij = jac[i, j]
        vx = j_ij[0, 0] * ux + j_ij[0, 1] * uy
        vy = j_ij[1, 0] * ux + j_ij[1, 1] * uy
        sampled = scipy.ndimage.map_coordinates(stamp, [c + vy, c + vx], order=3, mode="constant", cval=0.0)
        stamps[i, j] = sampled / sampled.sum()
    return stamps, sx, sy


def warp_exposure(
    source: Exposure, target_wcs: WCS, target_shape: tuple[int, int], config: WarpConfig | None = None
) -> Exposure:
    """Resample an exposure onto a target pixel grid (image, variance, mask and PSF).

    Parameters
    ----------
    source : `~lsst.dia.pipe.exposure.Exposure`
        Image to resample, e.g. a template coadd patch [nJy].
    target_wcs : `astropy.wcs.WCS`
        WCS of the target array pixels (e.g. the science detector's).
    target_shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the target.
    config : `WarpConfig`, optional
        Map grid spacing, PSF grid size, rows per block.

    Returns
    -------
    warped : `~lsst.dia.pipe.exposure.Exposure`
        On the target grid, with ``target_wcs``, a `~lsst.dia.pipe.psf.GridPsf` and the source's band and
        MJD. Pixels not covered by the source: NaN image and variance, ``NO_DATA | NO_TEMPLATE``.
    """
    config = config if config is not None else WarpConfig()
    config.validate()
    ny, nx = target_shape
    image = np.full(target_shape, np.nan, np.float32)
    variance = np.full(target_shape, np.nan, np.float32)
    mask = np.full(target_shape, _UNCOVERED, np.uint32)
    for block in warp_blocks(source, target_wcs, target_shape, config):
        box = (block.rows, block.cols)
        image[box][block.covered] = block.image
        variance[box][block.covered] = block.variance
        mask[box][block.covered] = block.mask
    xs, ys = np.linspace(0, nx - 1, config.psfGridSize), np.linspace(0, ny - 1, config.psfGridSize)
    stamps, _, _ = warp_psf_stamps(source.psf, source.wcs, target_wcs, xs, ys)
    return Exposure(image=image, variance=variance, mask=mask, psf=GridPsf(xs, ys, stamps), wcs=target_wcs,
                    band=source.band, mjd=source.mjd)
