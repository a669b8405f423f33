"""The whole chain as the image-difference task runs it: coadd patches of two tracts warped onto a rotated
detector, assembled, and subtracted with AL and ZOGY; checked against sky truth."""

from __future__ import annotations

import numpy as np
import pytest

from lsst.dia.pipe.diffim import SubtractionConfig, assemble_template, subtract_images
from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources, tan_wcs
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf

SHAPE = (768, 768)
TRANSIENTS = (np.array([300.0, 600.0, 400.0]), np.array([350.0, 500.0, 150.0]), np.array([20000.0, 30000.0, 60000.0]))


@pytest.fixture(scope="module")
def detector_and_patches():
    rng = np.random.default_rng(0)
    science_wcs = tan_wcs(SHAPE, 0.2, 150.0, 2.0, rotation_deg=30.0)
    n = 700
    x = rng.uniform(-100, SHAPE[1] + 100, n)
    y = rng.uniform(-100, SHAPE[0] + 100, n)
    ra, dec = science_wcs.pixel_to_world_values(x, y)
    flux = np.exp(rng.uniform(np.log(15), np.log(600), n)) * 10 * np.sqrt(4 * np.pi * 2.1**2)
    image = render_gaussian_sources(SHAPE, np.r_[x, TRANSIENTS[0]], np.r_[y, TRANSIENTS[1]],
                                    np.r_[flux, TRANSIENTS[2]], 2.1)
    image += rng.normal(0, 10, SHAPE).astype(np.float32)
    science = Exposure(image, np.full(SHAPE, 100, np.float32), np.zeros(SHAPE, np.uint32), GaussianPsf(2.1),
                       science_wcs, band="r")
    patches = []
    # Two tracts: different tangent points and rotations; together they cover the detector but its corners.
    for ra0, rotation, crpix in ((149.99, 0.0, (700.0, 450.0)), (150.02, 10.0, (-80.0, 450.0))):
        shape = (900, 760)
        wcs = tan_wcs(shape, 0.2, ra0, 2.0, rotation_deg=rotation, crpix=crpix)
        px, py = wcs.world_to_pixel_values(ra, dec)
        coadd = render_gaussian_sources(shape, px, py, flux, 1.5) + rng.normal(0, 4, shape).astype(np.float32)
        patches.append(Exposure(coadd, np.full(shape, 16, np.float32), np.zeros(shape, np.uint32),
                                GaussianPsf(1.5), wcs, band="r"))
    return science, patches


@pytest.mark.parametrize("algorithm", ["al", "zogy"])
def test_warped_template_subtraction_meets_truth(detector_and_patches, algorithm):
    science, patches = detector_and_patches
    template = assemble_template(patches, science.wcs, SHAPE)
    assert 0.9 < template.coverage_fraction < 1.0
    config = SubtractionConfig()
    config.algorithm = algorithm
    result = subtract_images(science, template.exposure, config)
    assert result.metadata["template_coverage"] == pytest.approx(template.coverage_fraction, abs=1e-6)
    assert 1.0 <= round(result.metadata["residual_noise_ratio"], 2) <= 1.08
    diff = result.difference
    for x, y, flux in zip(*TRANSIENTS):
        p = diff.psf.kernel_image(x, y)
        h = p.shape[0] // 2
        stamp = diff.image[int(y) - h : int(y) + h + 1, int(x) - h : int(x) + h + 1]
        assert (p * stamp).sum() / (p * p).sum() == pytest.approx(flux, rel=0.02)
    # Uncovered corners: zero, flagged, finite variance.
    uncovered = (template.exposure.mask & np.uint32(MaskBit.NO_DATA)) != 0
    assert uncovered.any()
    assert np.all(diff.image[uncovered] == 0)
    assert np.all(diff.mask[uncovered] & MaskBit.NO_TEMPLATE)
    assert np.all(np.isfinite(diff.variance))
    if algorithm == "al":
        assert result.metadata["kernel_sum"] == pytest.approx(1.0, abs=0.01)
