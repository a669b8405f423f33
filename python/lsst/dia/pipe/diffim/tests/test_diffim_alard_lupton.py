"""Tests of the Alard-Lupton basis, kernel candidates and the spatial kernel fit against known kernels."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from scipy.signal import fftconvolve

from lsst.dia.pipe.diffim import (
    AlardLuptonConfig,
    ChebyshevSpatialModel,
    KernelSolution,
    InsufficientKernelSourcesError,
    SubtractionConfig,
    make_alard_lupton_basis,
    subtract_images,
)
from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources, star_field_pair
from lsst.dia.pipe.psf import GaussianPsf


def test_basis_follows_ip_diffim_rules():
    config = AlardLuptonConfig()
    basis = make_alard_lupton_basis(1.7, 2.1, config)
    sigma_k = np.sqrt(2.1**2 - 1.7**2)
    # sigma_K / 2 < 0.7 px: the sigmas are {sigma_K, 2 sigma_K, 4 sigma_K}; size int(6 x 4 sigma_K) made odd.
    np.testing.assert_allclose(basis.sigmas, [sigma_k, 2 * sigma_k, 4 * sigma_k])
    assert basis.size == 29
    assert len(basis) == 27
    sums = basis.kernels.sum(axis=(1, 2))
    assert sums[0] == pytest.approx(1.0)
    np.testing.assert_allclose(sums[1:], 0.0, atol=1e-10)
    rest = basis.kernels[1:].reshape(26, -1)
    np.testing.assert_allclose(rest @ rest.T, np.eye(26), atol=1e-10)
    # Identical PSFs: sigma_K at its 0.7 px floor, size clipped up to 21; a big difference clips at 35.
    assert make_alard_lupton_basis(2.0, 2.0, config).sigmas[0] == pytest.approx(0.7)
    assert make_alard_lupton_basis(2.0, 2.0, config).size == 21
    assert make_alard_lupton_basis(1.0, 4.0, config).size == 35


def _matched_psf_error(solution, x, y, sigma_template, sigma_science, scale):
    """max |K ⊗ P_template - scale × P_science| relative to the peak of the target."""
    template_psf = GaussianPsf(sigma_template, size=41).kernel_image(0, 0)
    target = scale * GaussianPsf(sigma_science, size=41).kernel_image(0, 0)
    matched = fftconvolve(template_psf, solution.kernel_image(x, y), mode="same")
    return np.abs(matched - target).max() / target.max()


def _frozen_at(solution, x, y):
    """The same kernel without spatial variation: the one at (x, y) everywhere."""
    model = ChebyshevSpatialModel(0, solution.kernel_model.shape)
    coefficients = solution.basis_coefficients(x, y)[:, None]
    return KernelSolution(solution.basis, coefficients, model, solution.background, solution.background_model)


def test_spatially_varying_kernel_recovered():
    """Science PSF sigma grows from 2.0 to 2.3 px across the image, template 1.7 px and 1/0.8 times fainter
    stars: the kernel sum (1.25) is recovered to 1%, and K ⊗ P_template matches 1.25 P_science to 1% of the
    peak everywhere."""
    def sigma(x, y):
        return 2.0 + 0.3 * np.asarray(x, float) / 1023.0

    pair = star_field_pair((1024, 1024), n_stars=600, sigma_science=sigma, template_scale=0.8, seed=7)
    result = subtract_images(pair.science, pair.template)
    solution = result.kernel_solution
    assert solution.kernel_sum == pytest.approx(1.25, rel=0.01)
    assert solution.kernel_image(900, 300).sum() == pytest.approx(solution.kernel_sum)
    for x, y in ((100, 100), (512, 512), (900, 300), (950, 950)):
        assert _matched_psf_error(solution, x, y, 1.7, float(sigma(x, y)), 1.25) < 0.01
    # The spatial variation matters: the centre kernel alone misses the PSF at the left edge by several percent.
    assert _matched_psf_error(_frozen_at(solution, 512, 512), 50, 512, 1.7, float(sigma(50, 0)), 1.25) > 0.03
    # The PSF width varies linearly in x: cross-validation picks order 1 out of 0..2.
    assert result.metadata["spatial_order_used"] == 1
    assert 0.98 < result.metadata["residual_noise_ratio"] < 1.05


def test_spatial_order_cross_validation_prefers_constant_kernel():
    """Same PSFs everywhere: the stamps' noise must not buy spatial terms (order 0 of 0..2), and the kernel
    sum is still recovered."""
    pair = star_field_pair((1024, 1024), n_stars=600, sigma_science=2.1, template_scale=0.8, seed=11)
    result = subtract_images(pair.science, pair.template)
    assert result.metadata["spatial_order_used"] == 0
    assert result.kernel_solution.kernel_sum == pytest.approx(1.25, rel=0.01)
    config = SubtractionConfig()
    config.alardLupton.doSelectSpatialOrder = False
    assert subtract_images(pair.science, pair.template, config).metadata["spatial_order_used"] == 2


def test_kernel_solution_matches_lsst_images_kernel_fields():
    import lsst.images as li
    from lsst.images.fields import ChebyshevField

    pair = star_field_pair((512, 512), n_stars=300, seed=2)
    solution = subtract_images(pair.science, pair.template).kernel_solution
    box = li.Box.factory[0:512, 0:512]
    fields = [ChebyshevField(box, matrix) for matrix in solution.spatial_coefficients]
    assert solution.basis.shape[0] == len(fields) == solution.spatial_coefficients.shape[0]
    x, y = 400.0, 37.0
    np.testing.assert_allclose([f(x=x, y=y) for f in fields], solution.basis_coefficients(x, y), atol=1e-12)


def test_variable_star_is_rejected_from_kernel_fit():
    """A star that brightens by 30% in the science image must not drive the kernel."""
    pair = star_field_pair((512, 512), n_stars=250, seed=11)
    config = SubtractionConfig()
    clean = subtract_images(pair.science, pair.template, config).kernel_sources
    used = clean[clean["used"] & (clean["snr"] < 380)]  # still below maxSnr = 500 after brightening
    sx, sy = int(used["x"][0]), int(used["y"][0])
    star = np.argmin(np.hypot(pair.star_x - sx, pair.star_y - sy))
    extra = render_gaussian_sources((512, 512), [pair.star_x[star]], [pair.star_y[star]],
                                    [0.3 * pair.star_flux[star]], 2.1)
    pair.science.image += extra
    table = subtract_images(pair.science, pair.template, config).kernel_sources
    row = table[(table["x"] == sx) & (table["y"] == sy)]
    assert len(row) == 1
    assert not row["used"][0]
    assert row["rejectedBy"][0] in ("stampResidual", "kernelSum", "spatialResidual")


def test_no_stars_raises_insufficient_kernel_sources():
    rng = np.random.default_rng(3)
    pair = star_field_pair((256, 256), n_stars=0, seed=3)
    pair.science.image[:] = rng.normal(0, 10, (256, 256))
    config = SubtractionConfig()
    config.alardLupton.usePsfModelFallback = False
    with pytest.raises(InsufficientKernelSourcesError) as info:
        subtract_images(pair.science, pair.template, config)
    assert info.value.n_sources < info.value.n_required == 5


def test_no_stars_falls_back_to_psf_models(caplog):
    """Without kernel stars the kernel is fitted to the PSF models: K ⊗ P_template = P_science, sum 1, and a
    lone transient keeps its flux."""
    pair = star_field_pair((512, 512), n_stars=0, transients=(np.array([256.0]), np.array([300.0]),
                           np.array([20000.0])), seed=3)
    with caplog.at_level(logging.WARNING, logger="lsst.dia.pipe.diffim.alard_lupton"):
        result = subtract_images(pair.science, pair.template)
    assert "PSF models instead" in caplog.text
    assert result.metadata["kernel_source"] == "psfModel"
    solution = result.kernel_solution
    assert solution.kernel_sum == pytest.approx(1.0, abs=1e-3)
    for x, y in ((100, 100), (400, 256)):
        assert _matched_psf_error(solution, x, y, 1.7, 2.1, 1.0) < 0.01
    assert 1.0 <= round(result.metadata["residual_noise_ratio"], 2) <= 1.05
    p = result.difference.psf.kernel_image(256, 300)
    h = p.shape[0] // 2
    stamp = result.difference.image[300 - h : 300 + h + 1, 256 - h : 256 + h + 1]
    assert (p * stamp).sum() / (p * p).sum() == pytest.approx(20000.0, rel=0.02)


def test_few_stars_lower_the_spatial_order(caplog):
    pair = star_field_pair((512, 512), n_stars=14, snr_range=(60.0, 300.0), seed=5)
    with caplog.at_level(logging.INFO, logger="lsst.dia.pipe.diffim.kernel_fit"):
        result = subtract_images(pair.science, pair.template)
    n_used = result.metadata["n_kernel_used"]
    assert 5 <= n_used < 18
    assert result.metadata["spatial_order_used"] < 2
    assert "lowering the order" in caplog.text
    # ~10 stars of S/N 60-300: the kernel sum is good to a few percent, the subtraction to the noise.
    assert result.metadata["kernel_sum"] == pytest.approx(1.0, abs=0.05)
    assert 0.95 < result.metadata["residual_noise_ratio"] < 1.1
