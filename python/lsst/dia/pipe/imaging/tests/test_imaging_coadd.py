"""CellCoadd (deepCoadd_calexp) built from arrays: file and butler round trips with the cell PSF."""

import astropy.units as u
import lsst.images as li
import numpy as np
import pytest
from lsst.daf.butler import Butler, DatasetType

from lsst.dia.pipe.imaging.coadd import make_cell_coadd, patch_definition
from lsst.dia.pipe.imaging.visit import visit_image_to_exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import embed_stamp, grid_to_cell_psf
from lsst.dia.pipe.skymap import RingsSkyMap, SkyMapDefinition

CELL = 100
STAMP = 21


@pytest.fixture(scope="module")
def sky():
    skymap = RingsSkyMap(SkyMapDefinition(name="cells", num_rings=720, patch_inner_nx=400, patch_inner_ny=400,
                                          patch_border=55))
    tract = skymap.tract(1000)
    return skymap, tract, tract.patch(tract.n_patches_x + 2)


def gaussian(x: float, y: float, size: int = STAMP) -> np.ndarray:
    s = 1.8 + 0.4 * x / 500 + 0.2 * y / 500
    r = np.arange(size) - size // 2
    g = np.exp(-0.5 * (r[None, :] ** 2 + r[:, None] ** 2) / s**2)
    return g / g.sum()


def build(sky, rng):
    skymap, tract, patch = sky
    x0, y0, nx, ny = patch.outer_bbox  # 510 x 510: not a multiple of the cell size
    bbox = li.Box.factory[y0 : y0 + ny, x0 : x0 + nx]
    image = rng.normal(0, 5, (ny, nx)).astype(np.float32)
    variance = np.full((ny, nx), 25.0, np.float32)
    mask = np.zeros((ny, nx), np.uint32)
    mask[10:20, 30:35] = MaskBit.SATURATED | MaskBit.DETECTED
    psf = grid_to_cell_psf(gaussian, bbox, CELL, STAMP)
    coadd = make_cell_coadd(image, variance, mask, wcs=tract.patch_wcs(patch), bbox=bbox, band="g", psf=psf,
                            skymap=skymap.name, tract=tract, patch=patch, metadata={"NINPUTS": 12})
    return coadd, image, mask


def check_coadd(back, sky, image, mask):
    skymap, tract, patch = sky
    x0, y0, nx, ny = patch.outer_bbox
    assert back.bbox == li.Box.factory[y0 : y0 + ny, x0 : x0 + nx]
    assert (back.band, back.skymap, back.tract) == ("g", skymap.name, tract.id)
    assert back.image.unit == u.nJy and back.variance.unit == u.nJy**2
    np.testing.assert_array_equal(back.image.array, image)
    assert back.patch.id == patch.id and back.patch.index == li.YX(y=patch.index[1], x=patch.index[0])
    assert back.patch.inner_bbox == li.Box.factory[y0 + 55 : y0 + 455, x0 + 55 : x0 + 455]
    # the projection maps tract pixels like the tract WCS
    coord = back.sky_projection.pixel_to_sky(x=x0 + 123.0, y=y0 + 45.0)
    ra_t, dec_t = tract.wcs.pixel_to_world_values(x0 + 123.0, y0 + 45.0)
    assert coord.ra.deg == pytest.approx(float(ra_t), abs=1e-9)
    assert coord.dec.deg == pytest.approx(float(dec_t), abs=1e-9)
    # the PSF of the cell holding tract pixel (x0 + 250, y0 + 420): cell (i=4, j=2), centre (249.5, 449.5)
    kernel = back.psf.compute_kernel_image(x=x0 + 250.0, y=y0 + 420.0)
    assert kernel.bbox == li.Box.factory[-10:11, -10:11]
    np.testing.assert_allclose(kernel.array, embed_stamp(gaussian(249.5, 449.5), STAMP), atol=1e-15)
    exposure = visit_image_to_exposure(back)
    assert (exposure.x0, exposure.y0) == (x0, y0)
    np.testing.assert_array_equal(exposure.mask, mask)
    np.testing.assert_allclose(exposure.psf.x_nodes, np.arange(6) * CELL + 49.5)
    np.testing.assert_allclose(exposure.psf.kernel_image(249.5, 449.5), kernel.array, atol=1e-15)
    ra_e, dec_e = exposure.pixel_to_sky(123.0, 45.0)
    assert float(ra_e) == pytest.approx(float(ra_t), abs=1e-9)


def test_cell_coadd_round_trips_through_a_file(tmp_path, sky):
    coadd, image, mask = build(sky, np.random.default_rng(3))
    path = str(tmp_path / "deepCoadd_calexp.fits")
    coadd.write(path)
    back = li.cells.CellCoadd.read(path)
    assert back.metadata["NINPUTS"] == 12
    check_coadd(back, sky, image, mask)


def test_cell_coadd_round_trips_through_a_butler(tmp_path, sky):
    root = str(tmp_path / "repo")
    Butler.makeRepo(root)
    butler = Butler.from_config(root, writeable=True, run="coadd/test")
    butler.registry.insertDimensionData("instrument", {"name": "SimCam", "detector_max": 4, "visit_max": 9,
                                                       "exposure_max": 9})
    butler.registry.registerDatasetType(DatasetType("deepCoadd_calexp", ("instrument",), "CellCoadd",
                                                    universe=butler.dimensions))
    coadd, image, mask = build(sky, np.random.default_rng(4))
    butler.put(coadd, "deepCoadd_calexp", instrument="SimCam")
    check_coadd(butler.get("deepCoadd_calexp", instrument="SimCam"), sky, image, mask)
    psf = butler.get("deepCoadd_calexp.psf", instrument="SimCam")
    assert psf.grid.cell_shape == li.YX(y=CELL, x=CELL)


def test_bad_inputs_are_clear_errors(sky):
    skymap, tract, patch = sky
    x0, y0, nx, ny = patch.outer_bbox
    small = grid_to_cell_psf(gaussian, li.Box.factory[y0 : y0 + 200, x0 : x0 + 200], CELL, STAMP)
    with pytest.raises(ValueError, match="does not cover the outer box"):
        patch_definition(patch, small.grid)
    bbox = li.Box.factory[y0 : y0 + ny, x0 : x0 + nx]
    psf = grid_to_cell_psf(gaussian, bbox, CELL, STAMP)
    with pytest.raises(ValueError, match="does not match bbox"):
        make_cell_coadd(np.zeros((10, 10)), np.ones((10, 10)), np.zeros((10, 10), np.uint32),
                        wcs=tract.patch_wcs(patch), bbox=bbox, band="g", psf=psf, skymap=skymap.name, tract=tract)
