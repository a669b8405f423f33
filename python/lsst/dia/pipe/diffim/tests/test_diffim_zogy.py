"""Tests of ZOGY subtraction: kernels, noise, transient fluxes, score image, flux scales, cells."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.detection import detect_sources
from lsst.dia.pipe.detection.matched_filter import matched_filter_significance
from lsst.dia.pipe.diffim import SubtractionConfig, subtract_images, zogy_kernels
from lsst.dia.pipe.diffim.decorrelation import convolve_stamp
from lsst.dia.pipe.diffim.stamps import embed_centred
from lsst.dia.pipe.diffim.synthetic import star_field_pair
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf

TRANSIENTS = (np.array([300.0, 700.0, 512.0]), np.array([400.0, 650.0, 200.0]), np.array([20000.0, 30000.0, 60000.0]))


def _zogy(pair, **overrides):
    config = SubtractionConfig()
    config.algorithm = "zogy"
    for name, value in overrides.items():
        setattr(config.zogy, name, value)
    return subtract_images(pair.science, pair.template, config)


def _psf_photometry(exposure, x, y) -> tuple[float, float]:
    p = exposure.psf.kernel_image(x, y)
    h = p.shape[0] // 2
    cx, cy = int(round(x)), int(round(y))
    box = np.s_[cy - h : cy + h + 1, cx - h : cx + h + 1]
    p2 = (p * p).sum()
    return float((p * exposure.image[box]).sum() / p2), float(np.sqrt((p * p * exposure.variance[box]).sum()) / p2)


def test_kernels_cancel_static_sources_and_whiten_noise():
    """k_n ⊗ P_n = k_r ⊗ P_r = P_D (static sources cancel, P_D sums to 1) and the per-pixel variance of D is
    σ_n² Σk_n² + σ_r² Σk_r² = 1 / F_D² = σ_n² + σ_r² (flux units, F = 1)."""
    p_n = GaussianPsf(2.1, size=25).kernel_image(0, 0)
    p_r = GaussianPsf(1.6, size=25).kernel_image(0, 0)
    var_n, var_r = 100.0, 20.0
    k = zogy_kernels(p_n, p_r, var_n, var_r)
    matched_n = convolve_stamp(embed_centred(p_n, 51), k.science)
    matched_r = convolve_stamp(embed_centred(p_r, 51), k.template)
    psf_d = embed_centred(k.psf, 51)
    np.testing.assert_allclose(matched_n, matched_r, atol=1e-5 * psf_d.max())
    np.testing.assert_allclose(matched_n, psf_d, atol=1e-3 * psf_d.max())
    assert k.psf.sum() == pytest.approx(1.0)
    assert var_n * (k.science**2).sum() + var_r * (k.template**2).sum() == pytest.approx(var_n + var_r, rel=1e-3)
    assert k.flux_scale == pytest.approx(1 / np.sqrt(var_n + var_r))


def test_zogy_noise_transients_and_score():
    pair = star_field_pair((1024, 1024), n_stars=500, transients=TRANSIENTS, seed=4)
    result = _zogy(pair)
    diff = result.difference
    assert 1.0 <= round(result.metadata["residual_noise_ratio"], 2) <= 1.05
    assert result.metadata["mode"] == "symmetric"
    assert len(result.kernel_sources) == 0 and result.kernel_solution is None
    for x, y, flux in zip(*TRANSIENTS):
        measured, error = _psf_photometry(diff, x, y)
        assert measured == pytest.approx(flux, rel=0.02)
        # S_corr at the transient is its matched-filter S/N.
        assert result.score[int(y), int(x)] == pytest.approx(measured / error, rel=0.05)
    # Away from sources the score is unit-normal.
    quiet = np.ones(diff.shape, bool)
    for x, y in zip(np.r_[pair.star_x, TRANSIENTS[0]], np.r_[pair.star_y, TRANSIENTS[1]]):
        quiet[max(int(y) - 12, 0) : int(y) + 13, max(int(x) - 12, 0) : int(x) + 13] = False
    quiet &= (diff.mask & np.uint32(MaskBit.DETECTION_EDGE)) == 0
    score = result.score[quiet]
    assert np.std(score) == pytest.approx(1.0, abs=0.03)
    assert abs(np.mean(score)) < 0.02
    assert diff.psf.kernel_image(512, 512).sum() == pytest.approx(1.0)
    assert result.matched_template.psf is diff.psf


def test_zogy_flux_scales():
    """A template in different units (0.8 x the science zero point) is handled by F_r."""
    pair = star_field_pair((512, 512), n_stars=250, template_scale=0.8, transients=(np.array([256.0]),
                           np.array([256.0]), np.array([30000.0])), seed=12)
    pair.template.variance *= np.float32(0.8**2)
    result = _zogy(pair, fluxScaleTemplate=0.8)
    assert 1.0 <= round(result.metadata["residual_noise_ratio"], 2) <= 1.05
    assert _psf_photometry(result.difference, 256, 256)[0] == pytest.approx(30000.0, rel=0.02)
    bright = np.argsort(pair.star_flux)[-10:]

    def star_residuals(result):
        return np.array([_psf_photometry(result.difference, round(x), round(y))[0]
                         for x, y in zip(pair.star_x[bright], pair.star_y[bright])]) / pair.star_flux[bright]

    assert np.abs(star_residuals(result)).max() < 0.02
    # Ignoring the zero-point difference leaves a fifth of every star in the difference.
    assert np.median(star_residuals(_zogy(pair))) > 0.1


def test_zogy_cells_follow_a_varying_psf():
    def sigma(x, y):
        return 1.9 + 0.5 * np.asarray(x, float) / 1023.0

    pair = star_field_pair((1024, 1024), n_stars=500, sigma_science=sigma, transients=TRANSIENTS, seed=9)
    single = _zogy(pair)
    cells = _zogy(pair, cellSize=256, cellOverlap=32)
    assert cells.metadata["zogy_n_cells"] == 16
    assert 1.0 <= round(cells.metadata["residual_noise_ratio"], 2) <= 1.05
    # One PSF pair for the whole image leaves residuals at bright stars far from the centre; cells do not.
    bright = np.argsort(pair.star_flux)[-30:]
    edge = bright[np.abs(pair.star_x[bright] - 512) > 300]

    def residual(result):
        return np.mean([np.abs(result.score[int(y) - 3 : int(y) + 4, int(x) - 3 : int(x) + 4]).max()
                        for x, y in zip(pair.star_x[edge], pair.star_y[edge])])

    assert residual(cells) < 0.5 * residual(single)
    for x, y, flux in zip(*TRANSIENTS):
        assert _psf_photometry(cells.difference, x, y)[0] == pytest.approx(flux, rel=0.02)


def test_difference_is_described_by_its_psf_and_variance():
    """A matched filter with P_D and the variance plane on D gives unit-normal significance away from sources.
    With a broad science PSF and a deep template, k_r rings far beyond two PSF stamps: cut there, D's filtered
    noise is ~6x what its variance plane predicts (the score, computed with its own kernels, is unaffected)."""
    pair = star_field_pair((512, 512), n_stars=120, sigma_science=3.4, sigma_template=2.5, noise_template=1.5,
                           snr_range=(50, 3000), seed=3)
    quiet = np.ones(pair.science.shape, bool)
    for x, y in zip(pair.star_x, pair.star_y):
        quiet[max(int(y) - 12, 0) : int(y) + 13, max(int(x) - 12, 0) : int(x) + 13] = False
    spread = {}
    for factor in (2, 16):
        result = _zogy(pair, kernelSideFactor=factor)
        diff = result.difference
        inner = quiet & ((diff.mask & np.uint32(MaskBit.DETECTION_EDGE)) == 0)
        spread[factor] = float(np.std(matched_filter_significance(diff.image, diff.variance, diff.psf)[inner]))
        assert np.std(result.score[inner]) == pytest.approx(1.0, abs=0.03)
    assert spread[16] < 1.15
    assert spread[2] > 3.0


def test_border_covers_only_where_the_score_kernels_matter():
    """The DETECTION_EDGE border is the score kernels' 1e-2 footprint (6 px for these PSFs, 8 at 1e-3): the score
    stays unit-normal up to it, and a transient 7 px from the edge is detected where it is."""
    transient = (np.array([7.0]), np.array([256.0]), np.array([20000.0]))
    pair = star_field_pair((512, 512), n_stars=150, transients=transient, seed=21)
    result = _zogy(pair)
    edge = (result.difference.mask & np.uint32(MaskBit.DETECTION_EDGE)) != 0
    assert edge[256, :6].all() and edge[256, -6:].all() and not edge[256, 6:-6].any()
    strip = np.zeros(edge.shape, bool)
    strip[16:-16, 6:14] = strip[16:-16, -14:-6] = True
    for x, y in zip(pair.star_x, pair.star_y):
        strip[max(int(y) - 12, 0) : int(y) + 13, max(int(x) - 12, 0) : int(x) + 13] = False
    strip[240:273, :30] = False
    assert np.std(result.score[strip]) == pytest.approx(1.0, abs=0.08)
    peaks = detect_sources(result.difference, score=result.score).peaks
    assert np.min(np.hypot(peaks["x"] - 7.0, peaks["y"] - 256.0)) <= 1.0
