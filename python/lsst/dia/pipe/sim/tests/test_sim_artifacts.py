"""Detector artifacts: saturation clipping, bad columns, cosmic rays and their interpolation."""

import numpy as np
import pytest

from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.sim.artifacts import add_bad_columns, add_cosmic_rays, apply_saturation, interpolate_masked


def test_saturation_clips_and_flags():
    image = np.array([[10.0, 200.0], [99.0, 101.0]], dtype=np.float32)
    mask = np.zeros(image.shape, np.uint32)
    limit = np.array([[100.0], [100.0]], dtype=np.float32)
    assert apply_saturation(image, mask, limit) == 2
    np.testing.assert_array_equal(image, [[10, 100], [99, 100]])
    np.testing.assert_array_equal(mask, [[0, MaskBit.SATURATED], [0, MaskBit.SATURATED]])


def test_bad_columns():
    rng = np.random.default_rng(1)
    image = np.ones((50, 40), np.float32)
    mask = np.zeros(image.shape, np.uint32)
    cols = add_bad_columns(image, mask, 3, rng)
    assert len(cols) == 3 and len(set(cols["x"])) == 3
    bad = (mask & MaskBit.BAD) != 0
    assert bad.sum() == sum(50 - y for y in cols["y_start"])
    assert np.all(image[bad] == 0) and np.all(image[~bad] == 1)
    for col in cols:
        assert bad[col["y_start"]:, col["x"]].all() and not bad[: col["y_start"], col["x"]].any()


def test_unmasked_cosmic_rays_deposit_their_charge():
    rng = np.random.default_rng(2)
    image = np.zeros((400, 400), np.float32)
    mask = np.zeros(image.shape, np.uint32)
    rays = add_cosmic_rays(image, mask, 20, rng, unmasked_fraction=1.0)
    assert not rays["masked"].any() and not mask.any()
    inside = ((rays["x"] > rays["length"] / 2 + 1) & (rays["x"] < 398 - rays["length"] / 2)
              & (rays["y"] > rays["length"] / 2 + 1) & (rays["y"] < 398 - rays["length"] / 2))
    # all the charge of tracks inside the image lands on it; tracks crossing the edge lose some
    assert rays["charge"][inside].sum() <= image.sum() * (1 + 1e-6) <= rays["charge"].sum() * (1 + 1e-6)
    assert image.sum() > 0.5 * rays["charge"].sum()


def test_masked_cosmic_rays_are_flagged_and_interpolated_away():
    rng = np.random.default_rng(3)
    image = np.full((300, 300), 10.0, np.float32)
    mask = np.zeros(image.shape, np.uint32)
    rays = add_cosmic_rays(image, mask, 15, rng, unmasked_fraction=0.0)
    assert rays["masked"].all()
    flagged = (mask & MaskBit.COSMIC_RAY) != 0
    assert flagged.sum() > 15 * 3
    assert np.all(mask[flagged] == MaskBit.COSMIC_RAY | MaskBit.INTERPOLATED)
    # every deposited pixel was flagged and replaced by the flat background around it
    np.testing.assert_allclose(image, 10.0, rtol=1e-6)


def test_interpolation_ignores_unusable_pixels():
    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    fill = np.zeros(image.shape, bool)
    fill[5, 5] = True
    usable = np.ones(image.shape, bool)
    usable[:, 6:] = False
    interpolate_masked(image, fill, usable, width=3)
    # mean of the 3x3 box without the centre and without columns >= 6
    expected = np.mean([44, 45, 54, 64, 65])
    assert image[5, 5] == pytest.approx(expected)
