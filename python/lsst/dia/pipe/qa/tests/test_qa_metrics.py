"""QA metrics on synthetic arrays and tables with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from scipy import ndimage

from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf
from lsst.dia.pipe.qa.matching import match_sky, near_any
from lsst.dia.pipe.qa.metrics import (
    ArtifactCriteria,
    CompletenessFitError,
    artifacts_per_ccd4k,
    association_quality,
    binned_completeness,
    classify_artifacts,
    disc_mask,
    fit_completeness,
    fractional_bias,
    gaussian_noise_peak_rate,
    psf_flux_sigma,
    pull_statistics,
    residual_noise_map,
    residual_noise_ratio,
)

ARCSEC = 1.0 / 3600.0


def test_match_sky_respects_radius_and_groups():
    ra2 = np.array([10.0, 10.0, 10.0])
    dec2 = np.array([0.0, 0.0, 5 * ARCSEC])
    ra1 = np.array([10.0 + 0.5 * ARCSEC, 10.0 + 0.5 * ARCSEC, 10.0, np.nan])
    dec1 = np.array([0.0, 0.0, 3.5 * ARCSEC, 0.0])
    m = match_sky(ra1, dec1, ra2, dec2, 1.0, group1=[1, 2, 1, 1], group2=[1, 2, 1])
    assert m.index.tolist() == [0, 1, -1, -1]
    assert m.separation[0] == pytest.approx(0.5, rel=1e-6)
    m = match_sky(ra1, dec1, ra2, dec2, 2.0, group1=[1, 2, 1, 1], group2=[1, 2, 1])
    assert m.index.tolist() == [0, 1, 2, -1]
    # RA wrap
    m = match_sky([359.9999], [0.0], [0.0001], [0.0], 1.0)
    assert m.index.tolist() == [0] and m.separation[0] == pytest.approx(0.72, abs=1e-3)
    with pytest.raises(ValueError):
        match_sky(ra1, dec1, ra2, dec2, 1.0, group1=[1, 2, 1, 1])


def test_near_any_uses_each_reference_radius():
    near = near_any([0.0, 0.0, 0.0], [0.0, 3 * ARCSEC, 3 * ARCSEC], [1, 1, 2],
                    [0.0, 0.0], [0.0, 0.0], [1, 2], [4.0, 2.0])
    assert near.tolist() == [True, True, False]


def test_residual_noise_ratio_and_map():
    rng = np.random.default_rng(1)
    variance = np.full((256, 256), 4.0, np.float32)
    image = rng.normal(0.0, 2.2, variance.shape).astype(np.float32)
    mask = np.zeros(variance.shape, np.uint32)
    image[100:110, 100:110] += 1000.0  # a residual, flagged DETECTED
    mask[100:110, 100:110] |= np.uint32(MaskBit.DETECTED)
    image[200:203, 10:13] = 500.0  # an unflagged source, excluded by position
    exclude = disc_mask(image.shape, [11.0], [201.0], 3.0)
    assert exclude[201, 11] and exclude[201, 14] and not exclude[201, 15]
    assert residual_noise_ratio(image, variance, mask, exclude=exclude) == pytest.approx(1.1, abs=0.015)
    image[:128, 128:] *= 2.0
    ratio_map = residual_noise_map(image, variance, mask, block=128, exclude=exclude)
    assert ratio_map.shape == (2, 2)
    assert ratio_map[0, 1] == pytest.approx(2.2, abs=0.06)
    assert ratio_map[1, 0] == pytest.approx(1.1, abs=0.03)
    mask[:] = np.uint32(MaskBit.NO_DATA)
    assert np.isnan(residual_noise_ratio(image, variance, mask))


def test_psf_flux_sigma_matches_direct_sum():
    psf = GaussianPsf(2.0, size=25)
    variance = np.full((200, 300), 9.0)
    variance[:, 150:] = 36.0
    stamp = psf.kernel_image(0, 0)
    expected = np.sqrt(9.0 * (stamp**2).sum()) / (stamp**2).sum()
    sigma = psf_flux_sigma(variance, psf, [50.0, 250.0, 5.0, -10.0], [100.0, 100.0, 100.0, 100.0])
    assert sigma[0] == pytest.approx(expected, rel=1e-9)
    assert sigma[1] == pytest.approx(2 * expected, rel=1e-9)
    assert sigma[0] == pytest.approx(np.sqrt(9.0 * 4 * np.pi * 4.0), rel=0.01)  # sqrt(V * 4 pi sigma^2)
    assert sigma[2] > sigma[0]  # PSF clipped by the border: fewer pixels, larger error
    assert np.isnan(sigma[3])


def test_binned_completeness_counts():
    values = np.array([1.0, 2.0, 3.0, 3.5, 9.0, np.nan])
    detected = np.array([False, False, True, False, True, True])
    curve = binned_completeness(values, detected, [1.0, 2.0, 4.0, 8.0, 16.0])
    assert curve.n.tolist() == [1, 3, 0, 1]
    assert curve.n_detected.tolist() == [0, 1, 0, 1]
    assert curve.completeness[1] == pytest.approx(1 / 3)
    assert np.isnan(curve.completeness[2])
    assert curve.centers[0] == pytest.approx(np.sqrt(2.0))


def test_fit_completeness_recovers_known_logistic():
    rng = np.random.default_rng(7)
    snr = np.exp(rng.uniform(np.log(1.0), np.log(100.0), 6000))
    s0, width, plateau = 5.5, 0.12, 0.96
    p = plateau / (1 + np.exp(-(np.log(snr) - np.log(s0)) / width))
    detected = rng.uniform(size=snr.size) < p
    fit = fit_completeness(snr, detected)
    true_snr50 = np.exp(np.log(s0) - width * np.log(2 * plateau - 1))
    assert fit.snr50 == pytest.approx(true_snr50, rel=0.03)
    assert fit.plateau == pytest.approx(plateau, abs=0.01)
    assert fit(true_snr50) == pytest.approx(0.5, abs=0.03)
    fixed = fit_completeness(snr, detected, fit_plateau=False)
    assert fixed.plateau == 1.0
    with pytest.raises(CompletenessFitError, match="both detected and missed"):
        fit_completeness(snr, np.ones(snr.size, bool))
    with pytest.raises(CompletenessFitError, match="fewer than"):
        fit_completeness(snr[:5], detected[:5])


def _truth():
    return Table({
        "visit": [1, 1, 1, 1], "detector": [0, 0, 0, 0],
        "objectType": ["star", "star", "galaxy", "transient"],
        "ra": [10.0, 10.01, 10.02, 10.03], "dec": [0.0, 0.0, 0.0, 0.0],
        "trueFlux": [3e6, 1e4, 5e4, 1e4], "templateFlux": [3e6, 1e4, 5e4, 0.0],
    })


def test_classify_artifacts_by_cause():
    n = 7
    sources = Table({
        "visit": np.ones(n, int), "detector": np.zeros(n, int),
        "ra": [10.1, 10.1, 10.0 + 8 * ARCSEC, 10.01 + 0.5 * ARCSEC, 10.02, 10.1, 10.1],
        "dec": [0.0, 0.0, 0.0, 0.0, 0.5 * ARCSEC, 0.1, 0.2],
        "x": [3.0, 500, 500, 500, 500, 500, 500], "y": [500.0] * n,
        "pixelFlags_edge": [False] * n,
        "pixelFlags_cr": [False, True, False, False, False, False, False],
        "isNegative": [False] * n, "isDipole": [False] * n, "shape_flag": [False] * n,
        "ixx": [1.0, 1, 1, 1, 1, 0.2, 1], "iyy": [1.0, 1, 1, 1, 1, 0.2, 1], "ixy": [0.0] * n,
        "ixxPSF": [1.0] * n, "iyyPSF": [1.0] * n,
    })
    causes = classify_artifacts(sources, _truth(), (1024, 1024))
    # star of 3e6 nJy: radius 4" * (3e6 / 9.1e4)^0.25 = 9.5" > 8"
    assert causes.tolist() == ["edge", "cosmic_ray", "bright_star", "star", "galaxy_core", "cosmic_ray", "other"]
    strict = classify_artifacts(sources, _truth(), (1024, 1024), ArtifactCriteria(bright_star_radius=2.0))
    assert strict[2] == "other"


def test_artifact_rate_per_ccd4k():
    assert artifacts_per_ccd4k(10, 1024 * 1024) == pytest.approx(160.0)
    assert np.isnan(artifacts_per_ccd4k(3, 0))


def test_pull_statistics_and_bias():
    rng = np.random.default_rng(3)
    true = rng.uniform(-500.0, 500.0, 20000)
    error = rng.uniform(50.0, 150.0, true.size)
    measured = true + rng.normal(0.3, 1.2, true.size) * error
    measured[:50] += 1e5  # gross outliers are clipped
    stats = pull_statistics(measured, error, true)
    assert stats.n == true.size and stats.n_clipped >= 50
    assert stats.mean == pytest.approx(0.3, abs=0.03)
    assert stats.std == pytest.approx(1.2, abs=0.03)
    assert stats.robust_std == pytest.approx(1.2, abs=0.04)
    assert stats.n_highsnr == 0 and np.isnan(stats.bias_highsnr)
    # 10 % of far outliers (blends) are clipped; the core keeps its mean and width
    measured[: true.size // 10] -= 500.0 * error[: true.size // 10]
    contaminated = pull_statistics(measured, error, true)
    assert contaminated.n_clipped == pytest.approx(true.size // 10, rel=0.01)
    assert contaminated.mean == pytest.approx(0.3, abs=0.04) and contaminated.std == pytest.approx(1.2, abs=0.04)
    # 1 % flux-scale error: visible at high S/N, selected on the true S/N
    bright = rng.uniform(1e4, 1e5, 5000)
    bright_err = np.full(bright.size, 100.0)
    scaled = pull_statistics(1.01 * bright + rng.normal(0, 1, bright.size) * bright_err, bright_err, bright)
    assert scaled.bias_highsnr == pytest.approx(0.01, abs=0.001) and scaled.n_highsnr == bright.size
    bias, n = fractional_bias([102.0, 51.0, 7.0], [100.0, 50.0, 5.0], [100.0, 60.0, 10.0])
    assert bias == pytest.approx(0.02) and n == 2


def test_association_quality_definitions():
    # object 1: 4 sources of truth 10 (pure); object 2: 2 of truth 11 + 2 artifacts (impure);
    # object 3: 1 source of truth 10 (too small); object 4: two artifacts (not considered)
    obj = [1, 1, 1, 1, 2, 2, 2, 2, 3, 4, 4]
    tru = [10, 10, 10, 10, 11, 11, -1, -1, 10, -1, -1]
    q = association_quality(obj, tru)
    assert (q.n_objects, q.n_pure, q.purity) == (2, 1, 0.5)
    # truth 10: 5 detections, 4 in object 1 (0.8 -> complete); truth 11: 2 in object 2 (complete)
    assert (q.n_truth, q.n_complete, q.completeness) == (2, 2, 1.0)
    q = association_quality(obj, tru, min_fraction=0.9)
    assert q.n_complete == 1
    with pytest.raises(ValueError):
        association_quality([1, 2], [1])


def test_gaussian_noise_peak_rate_matches_monte_carlo():
    """White noise through a Gaussian matched filter: 3x3 extrema beyond +-u, counted on 8 fields of 1024^2."""
    rng = np.random.default_rng(11)
    sigma, side, pad = 3.0, 1024, 16
    counts = {3.5: 0, 4.0: 0}
    for _ in range(8):
        field = ndimage.gaussian_filter(rng.normal(size=(side + 2 * pad,) * 2), sigma)[pad:-pad, pad:-pad]
        field /= field.std()
        maxima = field == ndimage.maximum_filter(field, 3)
        minima = field == ndimage.minimum_filter(field, 3)
        for u in counts:
            counts[u] += int(np.count_nonzero(((maxima & (field > u)) | (minima & (field < -u)))[1:-1, 1:-1]))
    for u, count in counts.items():
        expected = gaussian_noise_peak_rate(sigma, u) * 8 * (side - 2) ** 2
        assert abs(count - expected) < 0.15 * expected + 3 * np.sqrt(expected), (u, count, expected)
    assert gaussian_noise_peak_rate(2.0, 5.0) * 4096**2 == pytest.approx(4.96, rel=0.01)
