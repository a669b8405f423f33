"""Bright template stars (point-like, bright relative to the difference noise; saturated ones) and their rings."""

from __future__ import annotations

import numpy as np

from lsst.dia.pipe.measurement.bright_stars import bright_template_stars, in_bright_star_rings


def test_point_like_bright_and_saturated_stars_only(bright_star_pair):
    template, difference = bright_star_pair
    x, y = bright_template_stars(template, difference, min_snr=1000.0, max_fit_residual=0.1)
    found = sorted(zip(np.round(x).astype(int), np.round(y).astype(int)))
    # the 5e6 star (S/N ~ 7e4 on the difference) and the saturated one; not the 2e4 star (S/N ~ 280), not the
    # galaxy (PSF fit residual ~ its whole flux)
    assert found == [(60, 60), (220, 220)]


def test_rings_between_the_radii_only():
    star_x, star_y = np.array([60.3, 220.0]), np.array([60.2, 220.0])
    x = np.array([60.3, 68.3, 75.0, 100.0, 220.0, 220.0])
    y = np.array([60.2, 60.2, 60.2, 60.2, 228.0, 245.0])
    ring = in_bright_star_rings(x, y, star_x, star_y, inner=4.7, outer=16.5)
    np.testing.assert_array_equal(ring, [False, True, True, False, True, False])
    assert not in_bright_star_rings(x, y, np.zeros(0), np.zeros(0), 4.7, 16.5).any()
