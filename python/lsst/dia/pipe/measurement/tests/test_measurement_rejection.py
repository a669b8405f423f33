"""`unreliable_sources`: each test removes what it should, counted once, and can be switched off."""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from lsst.dia.pipe.measurement import RejectionSettings, unreliable_sources

SETTINGS = RejectionSettings(bad_flags=("pixelFlags_crCenter",), max_reduced_chi2=3.0, model_error_fraction=0.05,
                             bright_star_min_snr=1000.0, bright_star_max_fit_residual=0.1, ring_radii_fwhm=(1.0, 3.5))


def _sources() -> Table:
    """Rows: clean; flagged; poor fit; on a ring of the bright star at (60.3, 60.2); at that star's centre;
    flagged and on the ring."""
    return Table({
        "x": [150.0, 200.0, 250.0, 70.0, 60.3, 60.3], "y": [150.0, 200.0, 250.0, 60.2, 60.2, 70.0],
        "psfFlux": np.full(6, 500.0), "psfFluxErr": np.full(6, 50.0), "templateFlux": np.full(6, np.nan),
        "psfChi2": [300.0, 300.0, 2000.0, 300.0, 300.0, 300.0], "psfNdata": np.full(6, 289),
        "pixelFlags_crCenter": [False, True, False, False, False, True],
    })


def test_each_test_removes_its_sources_once(bright_star_pair):
    template, difference = bright_star_pair
    reject, counts = unreliable_sources(_sources(), template, difference, fwhm=4.7, systematic_fraction=0.0,
                                        settings=SETTINGS)
    np.testing.assert_array_equal(reject, [False, True, True, True, False, True])
    assert counts == {"badFlags": 2, "poorPsfFit": 1, "brightStarRing": 1}


def test_tests_switched_off(bright_star_pair):
    template, difference = bright_star_pair
    off = RejectionSettings(bad_flags=(), max_reduced_chi2=None, model_error_fraction=0.05,
                            bright_star_min_snr=None, bright_star_max_fit_residual=0.1, ring_radii_fwhm=(1.0, 3.5))
    reject, counts = unreliable_sources(_sources(), template, difference, 4.7, 0.0, off)
    assert not reject.any() and counts == {"badFlags": 0, "poorPsfFit": 0, "brightStarRing": 0}


def test_empty_catalog_and_nan_template_region(bright_star_pair):
    """No sources: nothing to do. A template whose left half has no data (NaN) still yields the bright stars of
    its right half, and the sources near the blank half are judged by the other tests only."""
    template, difference = bright_star_pair
    reject, counts = unreliable_sources(_sources()[:0], template, difference, 4.7, 0.0, SETTINGS)
    assert reject.size == 0 and counts == {"badFlags": 0, "poorPsfFit": 0, "brightStarRing": 0}
    template.image[:, :120] = np.nan
    reject, counts = unreliable_sources(_sources(), template, difference, 4.7, 0.0, SETTINGS)
    np.testing.assert_array_equal(reject, [False, True, True, False, False, True])
    assert counts == {"badFlags": 2, "poorPsfFit": 1, "brightStarRing": 0}
