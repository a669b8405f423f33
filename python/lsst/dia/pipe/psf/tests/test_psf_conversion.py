"""Conversion between lsst-images PSFs (Piff, Gaussian, cell) and GridPsf, and storage in image files."""

import lsst.images as li
import numpy as np
import pytest
from lsst.daf.butler import Butler, DatasetType
from lsst.images.cells import CellGrid, CellGridBounds, CellPointSpreadFunction
from lsst.images.psfs import GaussianPointSpreadFunction, PiffWrapper

from lsst.dia.pipe.imaging.camera import DetectorLayout, make_camera_frames, make_detector
from lsst.dia.pipe.imaging.visit import make_difference_image, make_visit_image, visit_image_to_exposure
from lsst.dia.pipe.psf import (
    GridPsf,
    PsfConversionError,
    embed_stamp,
    grid_to_cell_psf,
    grid_to_lsst_psf,
    lsst_psf_to_grid,
    psf_moments_sigma,
)
from lsst.dia.pipe.skymap.geometry import tan_wcs

NX, NY = 240, 320
STAMP = 25


def elliptical_gaussian(x: float, y: float, size: int = STAMP) -> np.ndarray:
    """Truth PSF in array pixels of an NX × NY image: width grows 15% across, x/y widths differ by 10%."""
    s = 2.0 + 0.2 * x / NX + 0.1 * y / NY
    r = np.arange(size) - size // 2
    g = np.exp(-0.5 * (r[None, :] ** 2 / (1.1 * s) ** 2 + r[:, None] ** 2 / s**2))
    return g / g.sum()


def truth_grid(n: int = 5) -> GridPsf:
    return GridPsf.from_function(elliptical_gaussian, (0, NX - 1), (0, NY - 1), n, n)


def peak_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / b.max())


def test_embed_stamp_crops_pads_and_keeps_centre():
    stamp = elliptical_gaussian(0, 0, 11)
    padded = embed_stamp(stamp, 15)
    assert padded.shape == (15, 15) and np.unravel_index(padded.argmax(), padded.shape) == (7, 7)
    np.testing.assert_allclose(padded[2:13, 2:13], stamp / stamp.sum(), atol=1e-15)
    cropped = embed_stamp(stamp, 5)
    np.testing.assert_allclose(cropped, stamp[3:8, 3:8] / stamp[3:8, 3:8].sum(), atol=1e-15)
    # an even stamp's centre is just right/above its middle; an explicit origin moves it
    even = np.zeros((4, 4))
    even[2, 2] = 1.0
    assert embed_stamp(even, 3)[1, 1] == 1.0
    assert embed_stamp(even, 3, x0=-1, y0=-1)[2, 2] == 1.0
    with pytest.raises(PsfConversionError, match="no positive flux"):
        embed_stamp(np.full((5, 5), np.nan), 5)
    with pytest.raises(PsfConversionError, match="odd"):
        embed_stamp(stamp, 8)


def test_gaussian_psf_to_grid_uses_array_coordinates():
    bbox = li.Box.factory[1000 : 1000 + NY, 500 : 500 + NX]
    psf = GaussianPointSpreadFunction(2.5, bbox, 21)
    grid = lsst_psf_to_grid(psf, bbox, n_x=3, n_y=4)
    np.testing.assert_allclose(grid.x_nodes, [0, (NX - 1) / 2, NX - 1])
    np.testing.assert_allclose(grid.y_nodes, np.linspace(0, NY - 1, 4))
    assert grid.size == 21
    np.testing.assert_allclose(grid.kernel_image(17.0, 33.0), psf.compute_kernel_image(x=0, y=0).array,
                               atol=1e-15)
    assert lsst_psf_to_grid(psf, bbox, stamp_size=11).size == 11
    assert psf_moments_sigma(lsst_psf_to_grid(psf, bbox, stamp_size=31).kernel_image(0, 0)) == pytest.approx(
        2.5, rel=1e-3)


def test_piff_from_grid_reproduces_nodes_and_interpolates_smoothly():
    grid = truth_grid()
    bbox = li.Box.factory[0:NY, 0:NX]
    piff_psf = grid_to_lsst_psf(grid, bbox, pixel_scale_arcsec=0.2)
    assert isinstance(piff_psf, PiffWrapper) and piff_psf.kernel_bbox == li.Box.factory[-12:13, -12:13]
    node_errors = [
        peak_error(piff_psf.compute_kernel_image(x=x, y=y).array, grid.kernel_image(x, y))
        for x in grid.x_nodes for y in grid.y_nodes
    ]
    assert max(node_errors) < 1e-10
    # between nodes: within 1e-3 of the bilinear grid, and closer than the grid to the smooth truth
    for x, y in [(31.0, 47.5), (100.3, 170.0), (201.7, 290.2), (NX / 2, NY / 2 + 0.5)]:
        stored = piff_psf.compute_kernel_image(x=x, y=y).array
        truth = elliptical_gaussian(x, y)
        assert peak_error(stored, grid.kernel_image(x, y)) < 1e-3
        assert peak_error(stored, truth) < 1e-5
        assert peak_error(stored, truth) < peak_error(grid.kernel_image(x, y), truth)


def test_piff_from_grid_with_offset_bbox_and_sampling_back():
    grid = truth_grid()
    bbox = li.Box.factory[30000 : 30000 + NY, 21000 : 21000 + NX]
    piff_psf = grid_to_lsst_psf(grid, bbox, pixel_scale_arcsec=0.2)
    resampled = lsst_psf_to_grid(piff_psf, bbox)
    np.testing.assert_allclose(resampled.x_nodes, grid.x_nodes)
    # a small image far from pixel (0, 0): Piff's raw monomials cancel, costing ~3e-5 of the peak
    assert np.abs(resampled.stamps - grid.stamps).max() < 1e-4 * grid.stamps.max()


def test_piff_least_squares_when_grid_is_denser_than_the_polynomial():
    # 7 nodes per axis, order capped at 2: least squares; the truth's width is linear in x and y, so a
    # quadratic still represents the stamps to ~1e-4 of the peak
    grid = truth_grid(7)
    piff_psf = grid_to_lsst_psf(grid, li.Box.factory[0:NY, 0:NX], 0.2, max_order=2)
    assert piff_psf.piff_psf.interp.q.shape == (STAMP * STAMP, 9)
    assert peak_error(piff_psf.compute_kernel_image(x=60.0, y=80.0).array, elliptical_gaussian(60, 80)) < 5e-4


def test_grid_to_lsst_psf_rejects_bad_arguments():
    grid = truth_grid(2)
    with pytest.raises(PsfConversionError, match="lose precision"):
        grid_to_lsst_psf(truth_grid(), li.Box.factory[10**7 : 10**7 + NY, 0:NX], 0.2)
    with pytest.raises(PsfConversionError, match="pixel scale"):
        grid_to_lsst_psf(grid, li.Box.factory[0:NY, 0:NX], 0.0)
    with pytest.raises(PsfConversionError, match="max_order"):
        grid_to_lsst_psf(grid, li.Box.factory[0:NY, 0:NX], 0.2, max_order=-1)


def _visit_image(psf) -> li.VisitImage:
    layout = DetectorLayout(3, "S03", NX, NY, 0.0, 0.0)
    detector = make_detector("SimCam", layout, make_camera_frames("SimCam", [layout], 20.0), visit=11)
    shape = (NY, NX)
    return make_visit_image(
        np.zeros(shape), np.ones(shape), np.zeros(shape, np.uint32), wcs=tan_wcs(40.0, -20.0, NX / 2, NY / 2, 0.2),
        psf=psf, detector=detector, band="r", physical_filter="SIM-r", nJy_per_count=1.0,
    )


def test_piff_psf_round_trips_through_a_visit_image_file(tmp_path):
    grid = truth_grid()
    bbox = li.Box.factory[0:NY, 0:NX]
    path = str(tmp_path / "calexp.fits")
    _visit_image(grid_to_lsst_psf(grid, bbox, 0.2)).write(path)
    back = li.VisitImage.read(path).psf
    assert isinstance(back, PiffWrapper)
    for x, y in [(0.0, 0.0), (NX - 1.0, NY / 2), (77.7, 123.4)]:
        assert peak_error(back.compute_kernel_image(x=x, y=y).array, grid.kernel_image(x, y)) < 1e-3
    assert np.abs(lsst_psf_to_grid(back, bbox).stamps - grid.stamps).max() < 1e-10


def test_piff_psf_round_trips_through_a_difference_image_file(tmp_path):
    grid = truth_grid(3)
    psf = grid_to_lsst_psf(grid, li.Box.factory[0:NY, 0:NX], 0.2)
    science = _visit_image(psf)
    path = str(tmp_path / "deepDiff_differenceExp.fits")
    make_difference_image(visit_image_to_exposure(science), science, psf=psf).write(path)
    back = li.DifferenceImage.read(path).psf
    x = (NX - 1) / 2  # a node
    assert peak_error(back.compute_kernel_image(x=x, y=0.0).array, grid.kernel_image(x, 0.0)) < 1e-10


def test_piff_psf_round_trips_through_a_butler(tmp_path):
    root = str(tmp_path / "repo")
    Butler.makeRepo(root)
    butler = Butler.from_config(root, writeable=True, run="psf/test")
    butler.registry.insertDimensionData("instrument", {"name": "SimCam", "detector_max": 4, "visit_max": 99,
                                                       "exposure_max": 99})
    butler.registry.registerDatasetType(DatasetType("calexp", ("instrument",), "VisitImage",
                                                    universe=butler.dimensions))
    grid = truth_grid(3)
    butler.put(_visit_image(grid_to_lsst_psf(grid, li.Box.factory[0:NY, 0:NX], 0.2)), "calexp",
               instrument="SimCam")
    psf = butler.get("calexp.psf", instrument="SimCam")
    assert peak_error(psf.compute_kernel_image(x=NX - 1.0, y=0.0).array, grid.kernel_image(NX - 1, 0)) < 1e-10


def _cell_bbox() -> li.Box:
    return li.Box.factory[4000 : 4000 + NY, 2000 : 2000 + NX]


def test_cell_psf_from_function_samples_cell_centres():
    bbox = _cell_bbox()
    psf = grid_to_cell_psf(elliptical_gaussian, bbox, cell_size=100, stamp_size=21)
    assert isinstance(psf, CellPointSpreadFunction)
    # 240 x 320 px in 100 px cells: 3 x 4 cells, the grid extends past the upper edges
    assert psf.grid.bbox == li.Box.factory[4000:4400, 2000:2300]
    assert psf.kernel_bbox == li.Box.factory[-10:11, -10:11]
    kernel = psf.compute_kernel_image(x=2000 + 130.0, y=4000 + 260.0).array  # cell (i=2, j=1)
    np.testing.assert_allclose(kernel, embed_stamp(elliptical_gaussian(149.5, 249.5), 21), atol=1e-15)


def test_cell_psf_from_grid_and_back_to_grid():
    bbox = _cell_bbox()
    grid = truth_grid()
    psf = grid_to_cell_psf(grid, bbox, cell_size=80, stamp_size=STAMP)
    back = lsst_psf_to_grid(psf, bbox)
    np.testing.assert_allclose(back.x_nodes, [39.5, 119.5, 199.5])
    np.testing.assert_allclose(back.y_nodes, [39.5, 119.5, 199.5, 279.5])
    np.testing.assert_allclose(back.kernel_image(119.5, 199.5), grid.kernel_image(119.5, 199.5), atol=1e-15)
    # a subimage only sees its own cells, still in its own array coordinates
    sub = li.Box.factory[4100:4250, 2090:2200]
    back_sub = lsst_psf_to_grid(psf, sub)
    np.testing.assert_allclose(back_sub.x_nodes, [119.5 - 90, 199.5 - 90])
    np.testing.assert_allclose(back_sub.y_nodes, [119.5 - 100, 199.5 - 100, 279.5 - 100])
    np.testing.assert_allclose(back_sub.stamps, back.stamps[1:, 1:], atol=1e-15)


def test_cell_psf_missing_cells_take_the_nearest_stamp():
    grid = CellGrid(bbox=li.Box.factory[0:10, 0:40], cell_shape=li.YX(y=10, x=10))
    stamps = np.array([[elliptical_gaussian(10 * j, 0, 11) for j in range(4)]])
    stamps[0, 0] = stamps[0, 3] = np.nan
    missing = frozenset({li.cells.CellIJ(i=0, j=3)})  # cell 0 has no entry in `missing`, only NaNs
    psf = CellPointSpreadFunction(stamps, CellGridBounds(grid=grid, bbox=grid.bbox, missing=missing))
    back = lsst_psf_to_grid(psf, grid.bbox)
    np.testing.assert_allclose(back.x_nodes, [4.5, 14.5, 24.5, 34.5])
    np.testing.assert_allclose(back.stamps[0], stamps[0, [1, 1, 2, 2]], atol=1e-15)
    stamps[:] = np.nan
    with pytest.raises(PsfConversionError, match="no cell"):
        lsst_psf_to_grid(CellPointSpreadFunction(stamps, CellGridBounds(grid=grid, bbox=grid.bbox)), grid.bbox)


def test_bad_psf_stamp_reports_its_position():
    def broken(x, y):
        return np.full((5, 5), np.nan) if x > 100 else elliptical_gaussian(x, y, 5)

    with pytest.raises(PsfConversionError, match=r"at array pixel \(x=149.5, y=49.5\)"):
        grid_to_cell_psf(broken, li.Box.factory[0:200, 0:200], cell_size=100, stamp_size=5)
