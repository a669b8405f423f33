"""Interpolation of masked pixels along rows (bad columns)."""

from __future__ import annotations

import numpy as np

from lsst.dia.pipe.diffim.synthetic import render_gaussian_sources
from lsst.dia.pipe.repair import interpolate_along_rows, interpolate_masked


def test_linear_ramps_are_restored_exactly():
    """Across a two-pixel-wide gap a linear ramp is reproduced; one-sided gaps copy the only end."""
    yy, xx = np.mgrid[:20, :30].astype(float)
    truth = 3.0 * xx - 2.0 * yy + 7.0
    image = truth.copy()
    fill = np.zeros(truth.shape, bool)
    fill[:, 10:12] = True
    fill[5, 0] = True  # no usable pixel on the left
    image[fill] = -999.0
    filled = interpolate_along_rows(image, *np.nonzero(fill), ~fill)
    assert filled.all()
    np.testing.assert_allclose(image[:, 10:12], truth[:, 10:12])
    assert image[5, 0] == truth[5, 1]


def test_gaps_wider_than_max_gap_and_unusable_ends_are_left():
    image = np.ones((5, 40))
    fill = np.zeros(image.shape, bool)
    fill[:, 5:25] = True  # 20 pixels: the middle ones have no end within 8
    usable = ~fill
    usable[2, :] = False  # this row has no usable end at all
    image[fill] = -1.0
    replaced = interpolate_along_rows(image, *np.nonzero(fill), usable, max_gap=8)
    filled = np.zeros(image.shape, bool)
    filled[fill] = replaced
    assert not filled[2].any() and np.all(image[2, 5:25] == -1.0)
    assert filled[0, 5:13].all() and filled[0, 17:25].all() and not filled[0, 13:17].any()
    assert np.all(image[filled] == 1.0) and np.all(image[fill & ~filled] == -1.0)


def test_star_on_a_bad_column_keeps_its_flux():
    """A PSF (sigma 2 px) centred on a one-pixel column: row interpolation loses ~2% of the flux, a 7x7 box mean
    about three times more."""
    shape = (41, 41)
    star = render_gaussian_sources(shape, np.array([20.0]), np.array([20.0]), np.array([1e5]), 2.0)
    fill = np.zeros(shape, bool)
    fill[:, 20] = True
    rows, box = star.copy(), star.copy()
    interpolate_along_rows(rows, *np.nonzero(fill), ~fill)
    interpolate_masked(box, fill, ~fill)
    loss_rows = 1 - rows.sum() / star.sum()
    loss_box = 1 - box.sum() / star.sum()
    assert 0 < loss_rows < 0.04
    assert loss_box > 2.5 * loss_rows
