"""End-to-end tests of `subtract_images`: Alard-Lupton noise, transient fluxes, modes, coverage, bad input; bad
columns with both algorithms."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.diffim import (
    EmptyImageError,
    KERNEL_SOURCE_COLUMNS,
    SubtractionConfig,
    residual_noise_ratio,
    subtract_images,
)
from lsst.dia.pipe.detection import detect_sources
from lsst.dia.pipe.diffim.synthetic import star_field_pair
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GridPsf

# On pixel centres, so that a centred PSF model measures them without bias.
TRANSIENTS = (np.array([300.0, 700.0, 512.0]), np.array([400.0, 650.0, 200.0]), np.array([20000.0, 30000.0, 60000.0]))


def psf_flux(exposure, x, y) -> float:
    """PSF flux (meas_base estimator) with the exposure's PSF centred on pixel (x, y)."""
    p = exposure.psf.kernel_image(x, y)
    h = p.shape[0] // 2
    cx, cy = int(round(x)), int(round(y))
    data = exposure.image[cy - h : cy + h + 1, cx - h : cx + h + 1]
    return float((p * data).sum() / (p * p).sum())


def _neighbour_correlation(exposure) -> float:
    """Correlation of horizontally adjacent pixels of difference/sqrt(variance), away from sources."""
    d = exposure.image[64:-64, 64:-64] / np.sqrt(exposure.variance[64:-64, 64:-64])
    left, right = d[:, :-1].ravel(), d[:, 1:].ravel()
    quiet = (np.abs(left) < 4) & (np.abs(right) < 4)
    return float(np.corrcoef(left[quiet], right[quiet])[0, 1])


@pytest.mark.parametrize(
    "sigma_science,sigma_template,noise_template,mode,expected_mode",
    [
        (2.1, 1.7, 5.0, "convolveTemplate", "convolveTemplate"),
        (1.8, 1.8, 10.0, "convolveTemplate", "convolveTemplate"),  # identical PSFs, equal noise
        (1.7, 2.1, 5.0, "auto", "convolveScience"),  # the science PSF is the narrower one
        (2.1, 1.7, 5.0, "auto", "convolveTemplate"),
    ],
)
def test_transients_survive_and_noise_is_white(sigma_science, sigma_template, noise_template, mode, expected_mode):
    pair = star_field_pair((1024, 1024), n_stars=500, sigma_science=sigma_science, sigma_template=sigma_template,
                           noise_template=noise_template, transients=TRANSIENTS, seed=4)
    config = SubtractionConfig()
    config.mode = mode
    result = subtract_images(pair.science, pair.template, config)
    assert result.metadata["mode"] == expected_mode
    assert 1.0 <= round(result.metadata["residual_noise_ratio"], 2) <= 1.08
    for x, y, flux in zip(*TRANSIENTS):
        assert psf_flux(result.difference, x, y) == pytest.approx(flux, rel=0.02)
    # Decorrelated: neighbouring pixels of the normalised difference are uncorrelated.
    assert abs(_neighbour_correlation(result.difference)) < 0.01
    assert result.score is None
    assert isinstance(result.difference.psf, GridPsf)
    assert result.matched_template.shape == pair.science.shape
    assert set(KERNEL_SOURCE_COLUMNS) <= set(result.kernel_sources.colnames)
    assert result.metadata["n_kernel_used"] == int(np.count_nonzero(result.kernel_sources["used"]))
    for key in ("kernel_sum", "n_kernel_candidates", "spatial_order_used", "template_coverage", "time_total_s"):
        assert key in result.metadata


def test_without_decorrelation_noise_is_correlated_but_variance_consistent():
    pair = star_field_pair((1024, 1024), n_stars=500, noise_template=10.0, transients=TRANSIENTS, seed=4)
    config = SubtractionConfig()
    config.doDecorrelation = False
    result = subtract_images(pair.science, pair.template, config)
    # The convolved template's noise is correlated; the per-pixel variance plane still describes it.
    assert 0.97 < result.metadata["residual_noise_ratio"] < 1.05
    assert _neighbour_correlation(result.difference) > 0.03
    for x, y, flux in zip(*TRANSIENTS):
        assert psf_flux(result.difference, x, y) == pytest.approx(flux, rel=0.02)


def test_decorrelation_in_cells_follows_a_varying_kernel():
    def sigma(x, y):
        return 2.0 + 0.3 * np.asarray(x, float) / 1023.0

    pair = star_field_pair((1024, 1024), n_stars=500, sigma_science=sigma, transients=TRANSIENTS, seed=9)
    config = SubtractionConfig()
    config.decorrelation.cellSize = 256
    result = subtract_images(pair.science, pair.template, config)
    assert 1.0 <= round(result.metadata["residual_noise_ratio"], 2) <= 1.08
    for x, y, flux in zip(*TRANSIENTS):
        assert psf_flux(result.difference, x, y) == pytest.approx(flux, rel=0.02)


def test_uncovered_template_pixels_are_zero_and_flagged():
    pair = star_field_pair((512, 512), n_stars=300, seed=6)
    pair.template.image[:, :200] = np.nan
    pair.template.mask[:, :200] |= np.uint32(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE)
    pair.template.mask[300, 400] |= np.uint32(MaskBit.SATURATED)
    result = subtract_images(pair.science, pair.template)
    diff = result.difference
    undefined = np.uint32(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE)
    assert np.all(diff.mask[:, :200] & undefined == undefined)
    assert np.all(diff.image[:, :200] == 0.0)
    assert np.all(np.isfinite(diff.image)) and np.all(np.isfinite(diff.variance)) and np.all(diff.variance > 0)
    assert result.metadata["template_coverage"] == pytest.approx(312 / 512)
    # The template's saturation reaches the difference as SAT_TEMPLATE, dilated by the kernel footprint.
    assert diff.mask[300, 400] & MaskBit.SAT_TEMPLATE and diff.mask[301, 401] & MaskBit.SAT_TEMPLATE
    assert not np.any(diff.mask & np.uint32(MaskBit.SATURATED))
    # The kernel border is flagged; the covered part subtracts to the noise.
    assert np.all(diff.mask[:, -3:] & MaskBit.DETECTION_EDGE)
    assert 0.97 < residual_noise_ratio(diff) < 1.08


def test_missing_science_pixels_are_zero_without_no_template():
    pair = star_field_pair((512, 512), n_stars=300, seed=6)
    pair.science.image[400:, :] = np.nan
    result = subtract_images(pair.science, pair.template)
    diff = result.difference
    assert np.all(diff.image[400:] == 0.0) and np.all(diff.mask[400:] & MaskBit.NO_DATA)
    assert not np.any(diff.mask[:380] & np.uint32(MaskBit.NO_TEMPLATE | MaskBit.NO_DATA))
    assert not np.any(diff.mask & np.uint32(MaskBit.NO_TEMPLATE))
    assert result.metadata["template_coverage"] == 1.0


def test_bad_template_pixel_does_not_leak():
    pair = star_field_pair((512, 512), n_stars=300, seed=8)
    pair.template.image[256, 256] = 1e9
    pair.template.mask[256, 256] |= np.uint32(MaskBit.BAD)
    result = subtract_images(pair.science, pair.template)
    flagged = (result.difference.mask & np.uint32(MaskBit.BAD)) != 0
    assert flagged[256, 256]
    assert np.abs(result.difference.image[~flagged]).max() < 1e4


def test_bad_inputs_raise_clear_errors():
    pair = star_field_pair((128, 128), n_stars=20, seed=1)
    science = pair.science
    with pytest.raises(ValueError, match="share one pixel grid"):
        subtract_images(science, star_field_pair((128, 96), n_stars=5).template)
    nan_science = star_field_pair((128, 128), n_stars=20, seed=1).science
    nan_science.image[:] = np.nan
    with pytest.raises(EmptyImageError, match="science"):
        subtract_images(nan_science, pair.template)
    empty_template = star_field_pair((128, 128), n_stars=20, seed=1).template
    empty_template.mask[:] = np.uint32(MaskBit.NO_DATA)
    with pytest.raises(EmptyImageError, match="template"):
        subtract_images(science, empty_template)


@pytest.mark.parametrize("algorithm", ["al", "zogy"])
def test_transient_on_a_bad_column_is_found_where_it_is(algorithm):
    """Bad science columns (zeros, BAD) are interpolated along rows, not zero-filled: a transient centred on one
    keeps its PSF flux to ~3.5% (zero-filled: 28% lost) and is detected at its position; the column's BAD bit is not dilated."""
    x, y, flux = 300.0, 200.0, 30000.0
    pair = star_field_pair((512, 512), n_stars=100, transients=(np.array([x]), np.array([y]), np.array([flux])),
                           seed=9)
    for column in (150, 300):
        pair.science.image[:, column] = 0.0
        pair.science.mask[:, column] |= np.uint32(MaskBit.BAD)
    config = SubtractionConfig()
    config.algorithm = algorithm
    result = subtract_images(pair.science, pair.template, config)
    mask = result.difference.mask
    for column in (150, 300):
        assert np.all(mask[32:-32, column] & np.uint32(MaskBit.BAD | MaskBit.INTERPOLATED))
        assert not np.any(mask[32:-32, [column - 2, column + 2]] & np.uint32(MaskBit.BAD))
    assert psf_flux(result.difference, x, y) == pytest.approx(flux, rel=0.05)
    peaks = detect_sources(result.difference, score=result.score).peaks
    distance = np.hypot(peaks["x"] - x, peaks["y"] - y)
    assert distance.min() <= 1.5
    assert peaks["polarity"][np.argmin(distance)] == 1
