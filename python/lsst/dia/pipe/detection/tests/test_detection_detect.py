"""Tests of matched-filter detection, footprints and dipole pairing on simulated difference images."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.wcs import WCS
from scipy.special import ndtr

from lsst.dia.pipe.detection import DetectionConfig, ScoreShapeError, detect_sources, matched_filter_significance
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.measurement import render_point_sources
from lsst.dia.pipe.psf import GaussianPsf, GridPsf

SIGMA = 2.0
NOISE = 10.0


def _wcs(n: int) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cd = [[-0.2 / 3600, 0], [0, 0.2 / 3600]]
    wcs.wcs.crpix = [n / 2, n / 2]
    wcs.wcs.crval = [30.0, -20.0]
    return wcs


def _exposure(image: np.ndarray, psf=None, variance: np.ndarray | None = None) -> Exposure:
    n = image.shape[0]
    return Exposure(
        image=image.astype(np.float32),
        variance=np.full(image.shape, NOISE**2, np.float32) if variance is None else variance,
        mask=np.zeros(image.shape, np.uint32),
        psf=psf if psf is not None else GaussianPsf(SIGMA),
        wcs=_wcs(n),
    )


def _flux_for_snr(snr: float, psf=GaussianPsf(SIGMA)) -> float:
    """Flux whose optimal (PSF-weighted) S/N is ``snr`` in white noise of sigma NOISE."""
    p = psf.kernel_image(0, 0)
    return snr * NOISE / np.sqrt((p * p).sum())


def _grid_positions(n: int, spacing: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    g = np.arange(spacing, n - spacing + 1, spacing, dtype=float)
    x, y = np.meshgrid(g, g)
    return x.ravel() + rng.uniform(-0.5, 0.5, x.size), y.ravel() + rng.uniform(-0.5, 0.5, x.size)


def test_completeness_of_10_sigma_sources_both_polarities():
    rng = np.random.default_rng(11)
    n = 1024
    x, y = _grid_positions(n, 48, rng)
    sign = np.where(np.arange(x.size) % 2 == 0, 1.0, -1.0)
    flux = sign * _flux_for_snr(10.0)
    image = render_point_sources((n, n), GaussianPsf(SIGMA), x, y, flux) + rng.normal(0, NOISE, (n, n))
    result = detect_sources(_exposure(image))
    peaks = result.peaks
    d = np.hypot(peaks["x"][:, None] - x[None, :], peaks["y"][:, None] - y[None, :])
    found = d.min(axis=0) < 1.5
    assert found.mean() == 1.0, f"{(~found).sum()} of {x.size} 10-sigma sources missed"
    nearest = d.argmin(axis=1)
    matched = d.min(axis=1) < 1.5
    # Polarity follows the injected sign, and the peak significance is close to 10.
    assert np.all(peaks["polarity"][matched] == sign[nearest[matched]])
    assert np.median(np.abs(peaks["significance"][matched])) == pytest.approx(10.0, abs=0.6)
    # Almost nothing else: a pure-noise 5-sigma false positive is expected ~0.3 times per 1024^2 image.
    assert (~matched).sum() <= 2
    # DETECTED / DETECTED_NEGATIVE bits sit on the footprints.
    pos_pix = result.positive_labels > 0
    neg_pix = result.negative_labels > 0
    assert np.all(result.mask[pos_pix] & MaskBit.DETECTED)
    assert np.all(result.mask[neg_pix] & MaskBit.DETECTED_NEGATIVE)
    assert not np.any(result.mask[~pos_pix] & MaskBit.DETECTED)
    assert not np.any(result.mask[~neg_pix] & MaskBit.DETECTED_NEGATIVE)


def test_false_positive_rate_matches_gaussian_noise():
    n = 1024
    rng = np.random.default_rng(3)
    exposure = _exposure(rng.normal(0, NOISE, (n, n)))
    config = DetectionConfig()
    config.thresholdValue = 3.5
    result = detect_sources(exposure, config)
    s = result.significance
    # Pixel statistics of the significance are those of a unit normal.
    assert np.std(s) == pytest.approx(1.0, abs=0.03)
    assert np.mean(np.abs(s) > 2.0) == pytest.approx(2 * ndtr(-2.0), rel=0.1)
    # Number of 3.5-sigma footprints vs the Euler-characteristic density of a Gaussian random field smoothed by
    # the PSF (correlation exp(-r^2 / 4 sigma^2): lambda_2 = 1 / (2 sigma^2)); pixelisation loses a few.
    u = 3.5
    expected = 2 * n * n / (2 * SIGMA**2) / (2 * np.pi) ** 1.5 * u * np.exp(-u * u / 2)
    assert 0.7 * expected < len(result.peaks) < 1.1 * expected
    # At the default 5 sigma a pure-noise image of this size has ~0.3 false detections on average.
    assert len(detect_sources(exposure).peaks) <= 3


def test_significance_follows_variance_plane():
    """Half the image is 3x noisier; the variance plane keeps the significance at unit variance in both."""
    n = 512
    rng = np.random.default_rng(5)
    scale = np.where(np.arange(n)[None, :] < n // 2, 1.0, 3.0) * np.ones((n, 1))
    image = rng.normal(0, NOISE, (n, n)) * scale
    variance = (NOISE * scale) ** 2
    s = matched_filter_significance(image, variance, GaussianPsf(SIGMA))
    assert np.std(s[:, 20 : n // 2 - 20]) == pytest.approx(1.0, abs=0.05)
    assert np.std(s[:, n // 2 + 20 : -20]) == pytest.approx(1.0, abs=0.05)


def test_rescale_significance_corrects_a_wrong_variance_plane():
    n = 512
    rng = np.random.default_rng(6)
    exposure = _exposure(rng.normal(0, NOISE, (n, n)), variance=np.full((n, n), (NOISE / 2) ** 2, np.float32))
    config = DetectionConfig()
    assert np.std(detect_sources(exposure, config).significance) == pytest.approx(2.0, rel=0.05)
    config.doRescaleSignificance = True
    assert np.std(detect_sources(exposure, config).significance) == pytest.approx(1.0, rel=0.05)


def test_masked_and_nan_pixels_are_never_detected():
    n = 256
    rng = np.random.default_rng(7)
    x = np.array([60.2, 180.7, 128.0])
    y = np.array([60.4, 180.1, 200.0])
    image = render_point_sources((n, n), GaussianPsf(SIGMA), x, y, np.full(3, _flux_for_snr(30))) + rng.normal(
        0, NOISE, (n, n)
    )
    exposure = _exposure(image)
    exposure.mask[170:192, 170:192] |= np.uint32(MaskBit.NO_TEMPLATE)  # covers source 2
    exposure.image[190:210, 118:138] = np.nan  # covers source 3
    exposure.image[0:5, :] = 1e6  # junk at the edge, masked
    exposure.mask[0:5, :] |= np.uint32(MaskBit.DETECTION_EDGE)
    result = detect_sources(exposure)
    assert len(result.peaks) == 1
    assert (result.peaks["x"][0], result.peaks["y"][0]) == (60, 60)
    assert np.all(np.isfinite(result.significance))


def test_dipole_candidates_are_paired():
    n = 256
    rng = np.random.default_rng(8)
    f = _flux_for_snr(25)
    # A dipole (lobes 3 px apart), and a positive and a negative source far from anything.
    x = np.array([100.0 + 1.5, 100.0 - 1.5, 200.0, 50.0])
    y = np.array([120.3, 120.3, 60.0, 200.0])
    flux = np.array([f, -f, f, -f])
    image = render_point_sources((n, n), GaussianPsf(SIGMA), x, y, flux) + rng.normal(0, NOISE, (n, n))
    peaks = detect_sources(_exposure(image)).peaks
    assert len(peaks) == 4
    dip = peaks[peaks["is_dipole_candidate"]]
    assert len(dip) == 2
    assert sorted(dip["polarity"].tolist()) == [-1, 1]
    assert dip["dipole_partner"][0] == dip["peak_id"][1] and dip["dipole_partner"][1] == dip["peak_id"][0]
    single = peaks[~peaks["is_dipole_candidate"]]
    assert np.all(single["dipole_partner"] == -1)
    # A merge distance of 0 with no growth keeps the lobes apart only if their footprints do not touch.
    config = DetectionConfig()
    config.dipoleMergeDistance = 0.0
    config.nGrow = 0
    far = render_point_sources((n, n), GaussianPsf(SIGMA), np.array([100.0, 130.0]), np.array([100.0, 100.0]),
                               np.array([f, -f])) + rng.normal(0, NOISE, (n, n))
    assert not np.any(detect_sources(_exposure(far), config).peaks["is_dipole_candidate"])


def test_polarity_selection_and_footprint_boxes():
    n = 128
    rng = np.random.default_rng(9)
    f = _flux_for_snr(40)
    image = render_point_sources((n, n), GaussianPsf(SIGMA), np.array([40.0, 90.0]), np.array([40.0, 90.0]),
                                 np.array([f, -f])) + rng.normal(0, NOISE, (n, n))
    config = DetectionConfig()
    config.thresholdPolarity = "positive"
    peaks = detect_sources(_exposure(image), config).peaks
    assert len(peaks) == 1 and peaks["polarity"][0] == 1
    assert peaks["bbox_x_min"][0] <= 40 <= peaks["bbox_x_max"][0]
    assert peaks["bbox_y_min"][0] <= 40 <= peaks["bbox_y_max"][0]
    assert peaks["npix"][0] >= 9


def test_score_image_is_thresholded_directly():
    n = 64
    score = np.zeros((n, n), np.float32)
    score[10, 20] = 6.0
    score[40, 30] = -7.0
    score[50, 50] = 4.0
    result = detect_sources(_exposure(np.zeros((n, n))), score=score)
    assert sorted(zip(result.peaks["x"].tolist(), result.peaks["y"].tolist())) == [(20, 10), (30, 40)]
    with pytest.raises(ScoreShapeError):
        detect_sources(_exposure(np.zeros((n, n))), score=np.zeros((n, n + 1)))


@pytest.mark.parametrize("with_score", [True, False])
def test_sources_inside_the_border_are_not_found_at_its_edge(with_score):
    """A source centred 3 px inside a 10-px DETECTION_EDGE border shows its wing above threshold at the border's
    edge; that truncated peak is dropped (and kept when doRemoveTruncatedPeaks is off). A source centred 3 px
    outside the border is kept."""
    n, border = 128, 10
    rng = np.random.default_rng(2)
    x, y = np.array([40.0, 90.0]), np.array([border - 3.0, border + 3.0])
    image = render_point_sources((n, n), GaussianPsf(SIGMA), x, y, np.full(2, _flux_for_snr(40.0)))
    image += rng.normal(0, NOISE, (n, n))
    exposure = _exposure(image)
    exposure.mask[:border] |= np.uint32(MaskBit.DETECTION_EDGE)
    exposure.mask[-border:] |= np.uint32(MaskBit.DETECTION_EDGE)
    exposure.mask[:, :border] |= np.uint32(MaskBit.DETECTION_EDGE)
    exposure.mask[:, -border:] |= np.uint32(MaskBit.DETECTION_EDGE)
    # A score computed on all pixels (as ZOGY's is), or the masked matched filter.
    score = matched_filter_significance(image, exposure.variance, GaussianPsf(SIGMA)) if with_score else None
    config = DetectionConfig()
    kept = detect_sources(exposure, config, score=score).peaks
    assert len(kept) == 1 and abs(kept["x"][0] - 90) <= 1 and abs(kept["y"][0] - (border + 3)) <= 1
    config.doRemoveTruncatedPeaks = False
    both = detect_sources(exposure, config, score=score).peaks
    assert len(both) == 2
    truncated = both[np.abs(both["x"] - 40) <= 2]
    assert truncated["y"][0] == border  # found at the border's edge, 3 px from the source


def test_spatially_varying_psf_keeps_unit_significance():
    n = 512
    rng = np.random.default_rng(10)
    psf = GridPsf.from_function(
        lambda x, y: GaussianPsf(1.5 + 1.5 * x / n, size=25).kernel_image(0, 0), (0, n - 1), (0, n - 1), 3, 3
    )
    s = matched_filter_significance(rng.normal(0, NOISE, (n, n)), np.full((n, n), NOISE**2), psf, tile_size=128)
    assert np.std(s[20:-20, 20:-20]) == pytest.approx(1.0, abs=0.05)


def test_empty_image_gives_empty_peak_table():
    result = detect_sources(_exposure(np.zeros((64, 64))))
    assert len(result) == 0
    assert "is_dipole_candidate" in result.peaks.colnames
