"""Tests of template warping and assembly against analytic truth."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.diffim import NoTemplateCoverageError, WarpConfig, assemble_template, warp_exposure
from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources, tan_wcs
from lsst.dia.pipe.diffim.warp import pixel_map
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf, GridPsf

TARGET_SHAPE = (256, 256)


def _exposure(image, wcs, psf=None, variance=None, mask=None) -> Exposure:
    shape = image.shape
    return Exposure(
        image=image.astype(np.float32),
        variance=np.ones(shape, np.float32) if variance is None else variance,
        mask=np.zeros(shape, np.uint32) if mask is None else mask,
        psf=psf if psf is not None else GaussianPsf(1.7),
        wcs=wcs,
    )


def _stars_in_both(target_wcs, source_wcs, source_shape, sigma, n=150, seed=1):
    """Stars at random target positions, rendered in the source frame and (truth) in the target frame."""
    rng = np.random.default_rng(seed)
    xt = rng.uniform(10, TARGET_SHAPE[1] - 10, n)
    yt = rng.uniform(10, TARGET_SHAPE[0] - 10, n)
    ra, dec = target_wcs.pixel_to_world_values(xt, yt)
    xs, ys = source_wcs.world_to_pixel_values(ra, dec)
    flux = np.full(n, 1000.0)
    source = render_gaussian_sources(source_shape, xs, ys, flux, sigma)
    truth = render_gaussian_sources(TARGET_SHAPE, xt, yt, flux, sigma)
    return source, truth


def test_pixel_map_error_below_a_hundredth_pixel():
    """Coarse-grid map of a 4k detector onto a rotated, offset TAN patch vs the WCSs at every pixel of 5 rows."""
    target = tan_wcs((4096, 4096), 0.2, 150.0, 2.0, rotation_deg=30.0)
    source = tan_wcs((4200, 4200), 0.19, 150.3, 2.4, rotation_deg=-15.0, crpix=(100.0, 4000.0))
    pmap = pixel_map(target, source, (4096, 4096), 64)
    worst = 0.0
    for row in (0, 17, 1000, 2047, 4095):
        xs, ys = pmap.block(slice(row, row + 1), slice(0, 4096))
        ra, dec = target.pixel_to_world_values(np.arange(4096.0), np.full(4096, float(row)))
        tx, ty = source.world_to_pixel_values(ra, dec)
        worst = max(worst, np.abs(xs[0] - tx).max(), np.abs(ys[0] - ty).max())
    assert worst < 0.01


def test_warp_rotated_star_field_reproduces_truth():
    """Band-limited stars (FWHM 4 px) in a frame rotated by 30 degrees: pixels within 0.5% of the peak."""
    target_wcs = tan_wcs(TARGET_SHAPE, 0.2, 150.0, 2.0, rotation_deg=30.0)
    source_wcs = tan_wcs((400, 400), 0.2, 150.0, 2.0)
    sigma = 1.7
    source, truth = _stars_in_both(target_wcs, source_wcs, (400, 400), sigma)
    warped = warp_exposure(_exposure(source, source_wcs, GaussianPsf(sigma)), target_wcs, TARGET_SHAPE)
    peak = 1000.0 / (2 * np.pi * sigma**2)
    assert np.all(np.isfinite(warped.image))
    assert np.abs(warped.image - truth).max() < 0.005 * peak
    assert warped.image.sum() == pytest.approx(truth.sum(), rel=1e-4)
    # The warped PSF of a circular Gaussian under a rotation keeps its width.
    assert warped.psf.sigma(128, 128) == pytest.approx(sigma, rel=0.02)


def test_warped_variance_matches_noise_of_warped_image():
    """Warp white noise with a sub-pixel shift and rotation: the variance plane predicts the pixel variance."""
    target_wcs = tan_wcs(TARGET_SHAPE, 0.2, 150.0, 2.0, rotation_deg=17.0)
    source_wcs = tan_wcs((400, 400), 0.2, 150.00003, 2.00002)
    rng = np.random.default_rng(5)
    sigma = 3.0
    noise = rng.normal(0, sigma, (400, 400))
    warped = warp_exposure(
        _exposure(noise, source_wcs, variance=np.full((400, 400), sigma**2, np.float32)), target_wcs, TARGET_SHAPE
    )
    ratio = warped.image / np.sqrt(warped.variance)
    assert np.std(ratio) == pytest.approx(1.0, abs=0.03)
    # Interpolation between pixels averages noise: the variance is below the input's, above half of it.
    assert 0.5 * sigma**2 < warped.variance.mean() < 0.95 * sigma**2


def test_mask_bits_propagate_and_uncovered_pixels_are_no_data():
    target_wcs = tan_wcs(TARGET_SHAPE, 0.2, 150.0, 2.0)
    # Source shifted by 100 target pixels in x: the first 100 target columns are not covered.
    source_wcs = tan_wcs((256, 256), 0.2, 150.0, 2.0, crpix=(128.5 - 100, 128.5))
    mask = np.zeros((256, 256), np.uint32)
    mask[50, 60] = MaskBit.BAD
    source = _exposure(np.ones((256, 256)), source_wcs, mask=mask)
    warped = warp_exposure(source, target_wcs, TARGET_SHAPE)
    uncovered = np.uint32(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE)
    assert np.all(warped.mask[:, :99] & uncovered == uncovered)
    assert np.all(np.isnan(warped.image[:, :99]))
    assert not np.any(warped.mask[:, 101:150] & np.uint32(MaskBit.NO_DATA))
    ra, dec = source_wcs.pixel_to_world_values(60.0, 50.0)
    x, y = (int(round(float(v))) for v in target_wcs.world_to_pixel_values(ra, dec))
    assert warped.mask[y, x] & MaskBit.BAD
    assert np.count_nonzero(warped.mask & np.uint32(MaskBit.BAD)) <= 9
    np.testing.assert_allclose(warped.image[:, 101:150], 1.0, atol=1e-5)


def test_nan_source_pixels_do_not_spread():
    target_wcs = tan_wcs(TARGET_SHAPE, 0.2, 150.0, 2.0, rotation_deg=10.0)
    source_wcs = tan_wcs((400, 400), 0.2, 150.0, 2.0)
    image = np.ones((400, 400))
    image[200, 200] = np.nan
    warped = warp_exposure(_exposure(image, source_wcs), target_wcs, TARGET_SHAPE)
    flagged = (warped.mask & np.uint32(MaskBit.NO_DATA)) != 0
    assert 1 <= np.count_nonzero(flagged) <= 9
    assert np.all(np.isfinite(warped.image[~flagged]))
    np.testing.assert_allclose(warped.image[~flagged], 1.0, atol=1e-3)


def test_psf_follows_scale_and_rotation():
    """An elliptical PSF (sigma_x 2.4, sigma_y 1.2 source px) seen from a frame rotated by 90 degrees with
    1.5x larger pixels: elongated along y, widths divided by 1.5."""
    size = 41
    r = np.arange(size) - size // 2
    stamp = np.exp(-0.5 * (r[None, :] ** 2 / 2.4**2 + r[:, None] ** 2 / 1.2**2))
    psf = GridPsf(np.array([0.0]), np.array([0.0]), stamp[None, None])
    source_wcs = tan_wcs((400, 400), 0.2, 150.0, 2.0)
    target_wcs = tan_wcs(TARGET_SHAPE, 0.3, 150.0, 2.0, rotation_deg=90.0)
    warped = warp_exposure(_exposure(np.zeros((400, 400)), source_wcs, psf), target_wcs, TARGET_SHAPE)
    kernel = warped.psf.kernel_image(100, 100)
    assert kernel.sum() == pytest.approx(1.0)
    n = kernel.shape[0]
    y, x = np.mgrid[0:n, 0:n] - n // 2
    sigma_x = np.sqrt((kernel * x**2).sum())
    sigma_y = np.sqrt((kernel * y**2).sum())
    assert sigma_y == pytest.approx(2.4 / 1.5, rel=0.03)
    assert sigma_x == pytest.approx(1.2 / 1.5, rel=0.05)


def test_assemble_two_tracts_covers_detector_seamlessly():
    """Two patches from tracts with different tangent points and rotations, each covering part of a
    detector: the assembled template reproduces the stars everywhere."""
    target_wcs = tan_wcs(TARGET_SHAPE, 0.2, 150.0, 2.0, rotation_deg=5.0)
    sigma = 1.7
    patches, truths = [], []
    for ra0, rot, crpix in ((149.99, 0.0, (330.0, 200.0)), (150.02, 20.0, (-40.0, 200.0))):
        wcs = tan_wcs((400, 300), 0.2, ra0, 2.0, rotation_deg=rot, crpix=crpix)
        source, truth = _stars_in_both(target_wcs, wcs, (400, 300), sigma, seed=3)
        patches.append(_exposure(source, wcs, GaussianPsf(sigma)))
        truths.append(truth)
    result = assemble_template(patches, target_wcs, TARGET_SHAPE)
    assert result.coverage_fraction == pytest.approx(1.0)
    template = result.exposure
    assert not np.any(template.mask & np.uint32(MaskBit.NO_DATA))
    peak = 1000.0 / (2 * np.pi * sigma**2)
    assert np.abs(template.image - truths[0]).max() < 0.005 * peak
    assert template.psf.sigma(10, 10) == pytest.approx(sigma, rel=0.02)


def test_assemble_raises_without_coverage():
    target_wcs = tan_wcs(TARGET_SHAPE, 0.2, 150.0, 2.0)
    far = _exposure(np.ones((100, 100)), tan_wcs((100, 100), 0.2, 151.0, 2.0))
    with pytest.raises(NoTemplateCoverageError) as info:
        assemble_template([far], target_wcs, TARGET_SHAPE)
    assert info.value.coverage_fraction == 0.0
    with pytest.raises(NoTemplateCoverageError):
        assemble_template([], target_wcs, TARGET_SHAPE)
    # A patch covering ~12% of the detector passes at minCoverage 0.1 and fails at 0.2.
    small = _exposure(np.ones((90, 90)), tan_wcs((90, 90), 0.2, 150.0, 2.0))
    config = WarpConfig()
    assert assemble_template([small], target_wcs, TARGET_SHAPE, config).coverage_fraction == pytest.approx(
        (89 * 89) / 256**2, rel=0.05)
    config.minCoverage = 0.2
    with pytest.raises(NoTemplateCoverageError, match="at least 20.0%"):
        assemble_template([small], target_wcs, TARGET_SHAPE, config)


def test_assemble_ignores_patches_the_wcs_cannot_map():
    """A patch on the opposite side of the sky (its TAN projection is undefined there) contributes nothing."""
    target_wcs = tan_wcs(TARGET_SHAPE, 0.2, 150.0, 2.0)
    antipodal = _exposure(np.ones((100, 100)), tan_wcs((100, 100), 0.2, 330.0, -2.0))
    good = _exposure(np.full((300, 300), 3.0), tan_wcs((300, 300), 0.2, 150.0, 2.0))
    result = assemble_template([antipodal, good], target_wcs, TARGET_SHAPE)
    assert result.coverage_fraction == 1.0
    np.testing.assert_allclose(result.exposure.image, 3.0, atol=1e-5)


def test_warp_config_rejects_bad_values():
    import lsst.pex.config as pexConfig

    config = WarpConfig()
    with pytest.raises(pexConfig.FieldValidationError):
        config.gridSpacing = 1
    with pytest.raises(pexConfig.FieldValidationError):
        config.minCoverage = 1.5
