"""The subtraction's systematic flux error added to difference-image flux errors."""

from __future__ import annotations

import numpy as np

from lsst.dia.pipe.measurement import with_systematic_error


def test_quadrature_sum_known_answer():
    err = np.array([3.0, 3.0, 3.0, 3.0])
    template = np.array([400.0, -400.0, 0.0, np.nan])
    np.testing.assert_allclose(with_systematic_error(err, template, 0.01), [5.0, 5.0, 3.0, 3.0])


def test_unmeasured_fraction_leaves_errors_alone():
    err = np.array([2.0, 7.0])
    for eps in (0.0, float("nan"), -1.0):
        np.testing.assert_array_equal(with_systematic_error(err, np.array([1e6, 1e6]), eps), err)


def test_pulls_of_a_residual_become_unit_normal():
    """Template sources of 10^5 nJy leave residuals with rms 1% on a difference with 100 nJy noise: with the
    systematic term the pulls have unit variance, without it 10."""
    rng = np.random.default_rng(2)
    template = np.full(20000, 1e5)
    measured = 0.01 * template * rng.normal(size=template.size) + 100 * rng.normal(size=template.size)
    err = np.full(template.size, 100.0)
    assert np.std(measured / err) > 9
    assert abs(np.std(measured / with_systematic_error(err, template, 0.01)) - 1) < 0.02
