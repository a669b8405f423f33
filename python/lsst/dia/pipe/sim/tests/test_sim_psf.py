"""Truncated-Moffat PSF field: GalSim agreement, normalisation, Piff twin and its lsst-images round trip."""

import galsim
import lsst.images as li
import numpy as np
import pytest
from lsst.images.psfs import PiffWrapper

from lsst.dia.pipe.psf import PsfModel, psf_moments_sigma
from lsst.dia.pipe.sim import MoffatPsfField, monomial_exponents

WIDTH, HEIGHT = 1024, 900


def _variation(x, y):
    tx = 2 * x / (WIDTH - 1) - 1
    ty = 2 * y / (HEIGHT - 1) - 1
    return 1 + 0.05 * tx - 0.03 * ty**2 + 0.02 * tx * ty, 0.01 + 0.03 * tx, -0.02 * ty + 0.01 * tx**2


@pytest.fixture(scope="module")
def psf():
    return MoffatPsfField.from_function(_variation, WIDTH, HEIGHT, beta=3.0, fwhm=4.5, order=2)


POSITIONS = [(0.0, 0.0), (1023.0, 899.0), (100.3, 800.7), (512.0, 450.0), (900.6, 20.2)]


def test_polynomials_reproduce_the_function(psf):
    x = np.array([p[0] for p in POSITIONS])
    y = np.array([p[1] for p in POSITIONS])
    for got, want in zip(psf.parameters(x, y), _variation(x, y)):
        np.testing.assert_allclose(got, want, atol=1e-10)
    np.testing.assert_allclose(psf.fwhm_at(x, y), 4.5 * _variation(x, y)[0])


def test_monomial_order_matches_piff():
    import piff

    interp = piff.BasisPolynomial(3)
    exps = monomial_exponents(3)
    u, v = 1.7, -0.6
    star = piff.Star.makeTarget(x=0.0, y=0.0, u=u, v=v, scale=1.0)
    np.testing.assert_allclose(interp.basis(star), u ** exps[:, 0] * v ** exps[:, 1])


def test_kernel_is_normalised_centred_and_holds_the_whole_profile(psf):
    assert isinstance(psf, PsfModel)
    for x, y in POSITIONS:
        k = psf.kernel_image(x, y)
        assert k.shape == (psf.size, psf.size) and psf.size % 2 == 1
        assert k.sum() == pytest.approx(1.0, abs=1e-12)
        # point-symmetric profile centred on the central pixel
        np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-14)
        # truncated profile: the stamp border is empty
        border = np.concatenate([k[0], k[-1], k[:, 0], k[:, -1]])
        assert np.all(border == 0.0)
    # size grows with the dilation: sigma tracks the local FWHM
    s_small = psf.sigma(0.0, 450.0)
    s_big = psf.sigma(1023.0, 450.0)
    fw = psf.fwhm_at(np.array([0.0, 1023.0]), np.array([450.0, 450.0]))
    assert s_big / s_small == pytest.approx(fw[1] / fw[0], rel=0.01)


def test_stamps_match_galsim_profile(psf):
    x = np.array([100.6, 700.2, 333.49])
    y = np.array([800.9, 12.5, 640.0])
    stamps, xc, yc = psf.draw_stamps(x, y)
    np.testing.assert_array_equal(xc, [101, 700, 333])
    np.testing.assert_array_equal(yc, [801, 13, 640])
    h = psf.size // 2
    for i in range(len(x)):
        image = galsim.ImageD(galsim.BoundsI(xc[i] - h, xc[i] + h, yc[i] - h, yc[i] + h), scale=1.0)
        psf.profile(x[i], y[i]).drawImage(image, method="no_pixel", center=galsim.PositionD(x[i], y[i]))
        assert image.array.sum() == pytest.approx(1.0, abs=1e-3)
        np.testing.assert_allclose(stamps[i], image.array / image.array.sum(), atol=1e-10)
        # centroid of the stamp is the sub-pixel position
        r = np.arange(psf.size) - h
        assert (stamps[i].sum(axis=0) * r).sum() == pytest.approx(x[i] - xc[i], abs=2e-3)
        assert (stamps[i].sum(axis=1) * r).sum() == pytest.approx(y[i] - yc[i], abs=2e-3)


def test_grid_stamps(psf):
    grid = psf.grid_stamps(np.array([10.0, 500.0, 1000.0]), np.array([20.0, 880.0]))
    assert grid.shape == (2, 3, psf.size, psf.size)
    np.testing.assert_allclose(grid[1, 2], psf.kernel_image(1000.0, 880.0), atol=1e-15)


def test_invalid_parameters_raise():
    with pytest.raises(ValueError, match="shape"):
        MoffatPsfField(3.0, 4.0, 3.0, np.zeros((3, 2)), 2, 100, 100, 0.2)
    bad = np.zeros((3, 3))
    bad[1, 0] = 1.2  # |g| >= 1
    bad[0, 0] = 1.0
    with pytest.raises(ValueError, match="g"):
        MoffatPsfField(3.0, 4.0, 3.0, bad, 1, 100, 100, 0.2)


def test_piff_twin_draws_the_same_kernels(psf):
    wrapper = PiffWrapper(psf.to_piff(), bounds=li.Box.factory[0:HEIGHT, 0:WIDTH], stamp_size=psf.size)
    for x, y in POSITIONS:
        kernel = wrapper.compute_kernel_image(x=x, y=y).array
        mine = psf.kernel_image(x, y)
        assert np.abs(kernel - mine).max() < 1e-3 * mine.max()
        assert psf_moments_sigma(kernel) == pytest.approx(psf.sigma(x, y), rel=1e-6)


def test_piff_twin_survives_lsst_images_fits_round_trip(psf, tmp_path):
    from lsst.dia.pipe.imaging.camera import make_camera_frames, make_detector
    from lsst.dia.pipe.imaging.visit import make_visit_image
    from lsst.dia.pipe.sim import SimCam

    camera = SimCam.grid(1, 1, (HEIGHT, WIDTH), 0)
    layout = camera.detector(0)
    frames = make_camera_frames(camera.name, camera.detectors, camera.plate_scale_arcsec_per_mm)
    detector = make_detector(camera.name, layout, frames, visit=7)
    bbox = li.Box.factory[0:HEIGHT, 0:WIDTH]
    wrapper = PiffWrapper(psf.to_piff(), bounds=bbox, stamp_size=psf.size)
    zeros = np.zeros((HEIGHT, WIDTH), np.float32)
    visit_image = make_visit_image(
        zeros, zeros + 1, np.zeros((HEIGHT, WIDTH), np.uint32),
        wcs=camera.detector_wcs(56.0, -30.0, 10.0, layout), psf=wrapper, detector=detector, band="r",
        physical_filter="SIM-r", nJy_per_count=0.7,
    )
    path = tmp_path / "calexp.fits"
    visit_image.write(str(path))
    back = li.VisitImage.read(str(path))
    assert isinstance(back.psf, PiffWrapper)
    for x, y in POSITIONS:
        np.testing.assert_allclose(back.psf.compute_kernel_image(x=x, y=y).array, psf.kernel_image(x, y),
                                   atol=1e-12)
