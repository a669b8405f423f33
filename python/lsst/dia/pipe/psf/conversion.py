"""Conversion between the PSFs stored in lsst-images files and the algorithms' `GridPsf`.

Files hold lsst-images PSF types: a Piff PSF (`~lsst.images.psfs.PiffWrapper`), PSFEx or Gaussian PSF inside a
``VisitImage`` / ``DifferenceImage``, and a `~lsst.images.cells.CellPointSpreadFunction` inside a ``CellCoadd``.
Algorithms use `GridPsf`. This module samples the former into the latter (`lsst_psf_to_grid`) and stores a
`GridPsf` back as a file PSF: `grid_to_lsst_psf` (a standard Piff model, readable by any Piff 1.6 installation
without dia_pipe) and `grid_to_cell_psf` (one stamp per coadd cell).

Coordinates: `GridPsf` nodes are ARRAY pixel coordinates (column 0 of the image array is ``x = 0``);
lsst-images PSFs are evaluated in the image's own pixel frame, where column 0 is ``bbox.x.start``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeAlias

import galsim
import lsst.images as li
import numpy as np
import piff
from lsst.images import NoOverlapError
from lsst.images.cells import CellGrid, CellGridBounds, CellIJ, CellPointSpreadFunction
from lsst.images.psfs import PiffWrapper, PointSpreadFunction
from numpy.polynomial import polynomial as npoly
from scipy.ndimage import distance_transform_edt
from scipy.special import comb

from .models import GridPsf, PsfModel

__all__ = [
    "PsfConversionError",
    "lsst_psf_to_grid",
    "grid_to_lsst_psf",
    "grid_to_cell_psf",
    "embed_stamp",
]

#: A PSF given as a function of array pixel position returning a centred stamp.
StampFunction: TypeAlias = Callable[[float, float], np.ndarray]

#: Tolerated rounding error (relative to the stamp peak) of Piff's evaluation of the interpolation polynomial
#: in raw pixel monomials (10x below the 1e-3 accuracy we aim at).
_ROUNDING_TOLERANCE = 1e-4


class PsfConversionError(ValueError):
    """A PSF cannot be converted: bad stamps, an unusable grid, or a failed representation check.

    Parameters
    ----------
    reason : `str`
        What went wrong.
    x, y : `float`, optional
        Array pixel position concerned (0-based, relative to the image's bbox start).
    """

    def __init__(self, reason: str, x: float | None = None, y: float | None = None) -> None:
        self.reason = reason
        self.x = x
        self.y = y
        where = f" at array pixel (x={x:.1f}, y={y:.1f})" if x is not None and y is not None else ""
        super().__init__(f"PSF conversion failed{where}: {reason}")


def _check_stamp_size(size: int) -> int:
    size = int(size)
    if size < 3 or size % 2 != 1:
        raise PsfConversionError(f"stamp size must be odd and >= 3, got {size}")
    return size


def _odd_size_covering(box: li.Box) -> int:
    """Smallest odd square stamp centred on (0, 0) that contains ``box``."""
    r = max(-box.x.start, box.x.stop - 1, -box.y.start, box.y.stop - 1, 1)
    return 2 * int(r) + 1


def embed_stamp(array: np.ndarray, size: int, *, x0: int | None = None, y0: int | None = None) -> np.ndarray:
    """Crop or zero-pad a PSF stamp into a centred odd ``size`` × ``size`` stamp normalised to sum 1.

    Parameters
    ----------
    array : `numpy.ndarray`
        2-d PSF image.
    size : `int`
        Odd side of the output stamp [pixels].
    x0, y0 : `int`, optional
        Offsets of ``array[0, 0]`` from the PSF centre [pixels]; by default ``-(n // 2)`` for each axis
        (the PSF is on the central pixel of an odd array, or just right/above the middle of an even one).

    Returns
    -------
    stamp : `numpy.ndarray`
        ``(size, size)`` float64 stamp, PSF centre on the central pixel, summing to 1.

    Raises
    ------
    PsfConversionError
        If the stamp has non-finite values or no positive flux inside the output window.
    """
    size = _check_stamp_size(size)
    array = np.asarray(array, dtype=float)
    ny, nx = array.shape
    x0 = -(nx // 2) if x0 is None else int(x0)
    y0 = -(ny // 2) if y0 is None else int(y0)
    r = size // 2
    out = np.zeros((size, size))
    xs, xe = max(x0, -r), min(x0 + nx, r + 1)
    ys, ye = max(y0, -r), min(y0 + ny, r + 1)
    if xs < xe and ys < ye:
        out[ys + r : ye + r, xs + r : xe + r] = array[ys - y0 : ye - y0, xs - x0 : xe - x0]
    total = out.sum()
    if not np.isfinite(total) or total <= 0:
        raise PsfConversionError(f"PSF stamp has non-finite values or no positive flux (sum={total!r})")
    return out / total


def _image_stamp(image: li.Image, size: int) -> np.ndarray:
    return embed_stamp(image.array, size, x0=image.bbox.x.start, y0=image.bbox.y.start)


def _node_positions(n: int, length: int) -> np.ndarray:
    if n < 1:
        raise PsfConversionError(f"a PSF grid needs at least one node per axis, got {n}")
    if n == 1:
        return np.array([(length - 1) / 2.0])
    return np.linspace(0.0, length - 1.0, n)


def lsst_psf_to_grid(
    psf: PointSpreadFunction, bbox: li.Box, n_x: int = 5, n_y: int = 5, stamp_size: int | None = None
) -> GridPsf:
    """Sample an lsst-images PSF into a `GridPsf` in array pixel coordinates.

    Parameters
    ----------
    psf : `lsst.images.psfs.PointSpreadFunction`
        Any lsst-images PSF (Piff, Gaussian, PSFEx, cell PSF).
    bbox : `lsst.images.Box`
        Pixel box of the image the PSF belongs to (in the PSF's own pixel frame). The grid spans it:
        ``bbox.x.start`` becomes array column 0.
    n_x, n_y : `int`
        Grid nodes along x and y (evenly spaced, first and last on the first and last pixel centres; one
        node sits at the centre). Ignored for cell PSFs, which are sampled at the centre of every cell
        overlapping ``bbox``.
    stamp_size : `int`, optional
        Odd stamp side [pixels]; default the smallest odd size holding ``psf.kernel_bbox``. Kernel images
        are cropped or zero-padded about their centre, then normalised.

    Returns
    -------
    grid : `GridPsf`
        Nodes in array pixels of ``bbox``.

    Raises
    ------
    PsfConversionError
        If a kernel image is not finite or has no positive flux, or a cell PSF has no cell in ``bbox``.
    """
    size = _odd_size_covering(psf.kernel_bbox) if stamp_size is None else _check_stamp_size(stamp_size)
    if isinstance(psf, CellPointSpreadFunction):
        return _cell_psf_to_grid(psf, bbox, size)
    xs = _node_positions(n_x, bbox.x.size)
    ys = _node_positions(n_y, bbox.y.size)
    stamps = np.empty((len(ys), len(xs), size, size))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            try:
                kernel = psf.compute_kernel_image(x=bbox.x.start + x, y=bbox.y.start + y)
                stamps[i, j] = _image_stamp(kernel, size)
            except PsfConversionError as err:
                raise PsfConversionError(err.reason, x, y) from None
    return GridPsf(xs, ys, stamps)


def _cell_psf_to_grid(psf: CellPointSpreadFunction, bbox: li.Box, size: int) -> GridPsf:
    """Cell centres become grid nodes; missing cells take the stamp of the nearest cell that has one."""
    try:
        overlap = bbox.intersection(psf.bounds.bbox)
    except NoOverlapError:
        raise PsfConversionError(f"cell PSF bounds {psf.bounds.bbox} do not overlap {bbox}") from None
    bounds = psf.bounds[overlap]
    grid = psf.grid
    start, stop = bounds.subgrid_start, bounds.subgrid_stop
    rows = np.arange(start.i, stop.i)
    cols = np.arange(start.j, stop.j)
    cell_y, cell_x = grid.cell_shape.y, grid.cell_shape.x
    ys = grid.bbox.y.start + rows * cell_y + (cell_y - 1) / 2.0 - bbox.y.start
    xs = grid.bbox.x.start + cols * cell_x + (cell_x - 1) / 2.0 - bbox.x.start
    stamps = np.zeros((len(rows), len(cols), size, size))
    have = np.zeros((len(rows), len(cols)), dtype=bool)
    for a, i in enumerate(rows):
        for b, j in enumerate(cols):
            index = CellIJ(i=int(i), j=int(j))
            if not bounds.contains_cell(index):
                continue
            try:
                stamps[a, b] = _image_stamp(psf[index], size)
            except PsfConversionError:
                continue  # NaN stamps of cells without data: filled below
            have[a, b] = True
    if not have.any():
        raise PsfConversionError(f"no cell of the cell PSF inside {bbox} has a usable stamp")
    if not have.all():
        nearest = distance_transform_edt(~have, return_distances=False, return_indices=True)
        stamps = stamps[nearest[0], nearest[1]]
    return GridPsf(xs, ys, stamps)


def _monomial_transform(center: float, half_range: float, order: int) -> np.ndarray:
    """Matrix ``T`` with ``sum_k a_k ((x - c) / h)**k == sum_j (T @ a)_j x**j``."""
    j = np.arange(order + 1)[:, None]
    k = np.arange(order + 1)[None, :]
    power = np.clip(k - j, 0, None)
    return np.where(k >= j, comb(k, j) * (-center) ** power / half_range**k, 0.0)


def grid_to_lsst_psf(
    grid: GridPsf, bbox: li.Box, pixel_scale_arcsec: float, max_order: int = 4
) -> PiffWrapper:
    """Represent a `GridPsf` as a standard, serialisable Piff PSF.

    The model is ``piff.SimplePSF(piff.PixelGrid(scale, size), piff.BasisPolynomial((o_x, o_y), keys=("x",
    "y")))``: every stamp pixel is a tensor-product polynomial of the image position, of order
    ``o = min(n_nodes - 1, max_order)`` per axis, fitted to the grid stamps by linear least squares. With
    ``n_nodes <= max_order + 1`` per axis the polynomial interpolates the nodes exactly (Lagrange); between
    nodes it is a smooth interpolant (where `GridPsf` itself is bilinear).

    Parameters
    ----------
    grid : `GridPsf`
        PSF in array pixel coordinates of ``bbox``.
    bbox : `lsst.images.Box`
        Pixel box of the image; array column 0 is ``bbox.x.start``. Also the PSF's validity bounds.
    pixel_scale_arcsec : `float`
        Pixel scale [arcsec/pixel], recorded as Piff's ``PixelScale`` WCS and PixelGrid scale.
    max_order : `int`
        Highest polynomial order per axis.

    Returns
    -------
    psf : `lsst.images.psfs.PiffWrapper`
        ``stamp_size = grid.size``; ``compute_kernel_image(x=bbox.x.start + x, y=bbox.y.start + y)``
        reproduces ``grid.kernel_image(x, y)`` at the nodes.

    Raises
    ------
    PsfConversionError
        If the pixel scale or order is invalid, or the polynomial cannot be expressed accurately in raw
        pixel monomials (pixel coordinates far from the origin compared with the image size).
    """
    if not (pixel_scale_arcsec > 0 and math.isfinite(pixel_scale_arcsec)):
        raise PsfConversionError(f"pixel scale must be positive and finite, got {pixel_scale_arcsec!r}")
    if max_order < 0:
        raise PsfConversionError(f"max_order must be >= 0, got {max_order}")
    x_nodes = grid.x_nodes + bbox.x.start
    y_nodes = grid.y_nodes + bbox.y.start
    order_x = min(len(x_nodes) - 1, max_order)
    order_y = min(len(y_nodes) - 1, max_order)
    n_pix = grid.size * grid.size
    values = grid.stamps.reshape(len(y_nodes) * len(x_nodes), n_pix)

    # Solve in centred, scaled coordinates (well conditioned), then re-express in the raw pixel monomials
    # x**i * y**j that Piff's BasisPolynomial evaluates.
    cx, hx = 0.5 * (x_nodes[0] + x_nodes[-1]), max(0.5 * (x_nodes[-1] - x_nodes[0]), 1.0)
    cy, hy = 0.5 * (y_nodes[0] + y_nodes[-1]), max(0.5 * (y_nodes[-1] - y_nodes[0]), 1.0)
    yy, xx = (a.ravel() for a in np.meshgrid(y_nodes, x_nodes, indexing="ij"))
    design = npoly.polyvander2d((xx - cx) / hx, (yy - cy) / hy, [order_x, order_y])
    centred, *_ = np.linalg.lstsq(design, values, rcond=None)
    centred = centred.reshape(order_x + 1, order_y + 1, n_pix)
    raw = np.einsum(
        "ik,jl,klp->ijp",
        _monomial_transform(cx, hx, order_x),
        _monomial_transform(cy, hy, order_y),
        centred,
    ).reshape((order_x + 1) * (order_y + 1), n_pix)

    # Piff sums raw terms x**i y**j q_ij that cancel when the image lies far from pixel (0, 0): the rounding
    # error of that sum is ~ eps * sum |x**i y**j q_ij|.
    term_sizes = np.abs(npoly.polyvander2d(xx, yy, [order_x, order_y])) @ np.abs(raw)
    rounding = np.finfo(float).eps * term_sizes.max() / values.max()
    if rounding > _ROUNDING_TOLERANCE:
        raise PsfConversionError(
            f"Piff's raw-monomial polynomial would lose precision ({rounding:.1e} of the peak) for bbox "
            f"{bbox}; lower max_order"
        )

    interp = piff.BasisPolynomial(order=[order_x, order_y], keys=("x", "y"), max_order=order_x + order_y)
    interp.q = np.ascontiguousarray(raw.T)
    impl = piff.SimplePSF(piff.PixelGrid(pixel_scale_arcsec, grid.size), interp)
    impl.wcs = {0: galsim.PixelScale(pixel_scale_arcsec)}
    impl.pointing = None
    impl.stars = []
    return PiffWrapper(impl, bounds=bbox, stamp_size=grid.size)


def grid_to_cell_psf(
    grid_or_func: PsfModel | StampFunction, bbox: li.Box, cell_size: int, stamp_size: int
) -> CellPointSpreadFunction:
    """Build a cell PSF (one stamp per square cell) for a ``CellCoadd``.

    Parameters
    ----------
    grid_or_func : `PsfModel` or callable
        A PSF model (e.g. `GridPsf`) or a function ``f(x, y) -> stamp``, both in ARRAY pixel coordinates of
        ``bbox``; stamps are centred on their central pixel (even stamps: just right/above the middle).
    bbox : `lsst.images.Box`
        Pixel box (tract pixels for a coadd patch) whose start is the corner of cell ``(0, 0)``. The cell
        grid covers it, extending past its upper edges when the size is not a multiple of ``cell_size``.
    cell_size : `int`
        Cell side [pixels].
    stamp_size : `int`
        Odd stamp side [pixels].

    Returns
    -------
    psf : `lsst.images.cells.CellPointSpreadFunction`
        The PSF at each cell centre, normalised; its ``grid`` is the full cell grid.
    """
    size = _check_stamp_size(stamp_size)
    if cell_size < 1:
        raise PsfConversionError(f"cell size must be >= 1, got {cell_size}")
    kernel = grid_or_func.kernel_image if isinstance(grid_or_func, PsfModel) else grid_or_func
    n_i = -(-bbox.y.size // cell_size)
    n_j = -(-bbox.x.size // cell_size)
    y0, x0 = bbox.y.start, bbox.x.start
    cells = CellGrid(
        bbox=li.Box.factory[y0 : y0 + n_i * cell_size, x0 : x0 + n_j * cell_size],
        cell_shape=li.YX(y=cell_size, x=cell_size),
    )
    centres = np.arange(max(n_i, n_j)) * cell_size + (cell_size - 1) / 2.0
    stamps = np.empty((n_i, n_j, size, size))
    for i in range(n_i):
        for j in range(n_j):
            x, y = float(centres[j]), float(centres[i])
            try:
                stamps[i, j] = embed_stamp(kernel(x, y), size)
            except PsfConversionError as err:
                raise PsfConversionError(err.reason, x, y) from None
    return CellPointSpreadFunction(stamps, bounds=CellGridBounds(grid=cells, bbox=cells.bbox))
