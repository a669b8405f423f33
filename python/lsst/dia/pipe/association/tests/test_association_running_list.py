"""Running-list association on hand-built catalogs whose correct association is known."""

import numpy as np
import pytest
from astropy.table import Table

from lsst.dia.pipe.association import (
    MissingColumnsError,
    NonFiniteInputError,
    RunningListAssociator,
    RunningListConfig,
    epochs_in_time_order,
)

ARCSEC = 1 / 3600.0


def _sources(ra, dec, visit, detector=None, mjd=None):
    """DIASource table with the columns association needs (MJD = 60000 + visit unless given)."""
    visit = np.asarray(visit)
    return Table(
        {
            "diaSourceId": np.arange(len(visit), dtype=np.int64),
            "visit": visit,
            "detector": np.zeros(len(visit), dtype=int) if detector is None else np.asarray(detector),
            "midpointMjdTai": 60000.0 + visit if mjd is None else np.asarray(mjd, dtype=float),
            "ra": np.asarray(ra, dtype=float) % 360.0,
            "dec": np.asarray(dec, dtype=float),
        }
    )


def _same_partition(labels_a, labels_b):
    """True if two labelings group the rows identically (up to renaming)."""
    pairs = np.unique(np.stack([labels_a, labels_b], axis=1), axis=0)
    return len(pairs) == len(np.unique(labels_a)) == len(np.unique(labels_b))


def test_noisy_objects_over_many_epochs_recovered_exactly():
    rng = np.random.default_rng(5)
    n_obj, n_visit = 30, 60
    ra0 = 150.0 + rng.uniform(0, 0.01, n_obj)
    dec0 = 2.0 + rng.uniform(0, 0.01, n_obj)
    # Keep objects > 3 arcsec apart so the truth is unambiguous.
    ra0 += np.arange(n_obj) * 4 * ARCSEC
    obj, visit = np.nonzero(rng.random((n_obj, n_visit)) < 0.7)
    noise = rng.normal(0, 0.08, (2, len(obj))) * ARCSEC
    detector = (obj % 3) + 10  # several detectors per visit
    table = _sources(ra0[obj] + noise[0] / np.cos(np.deg2rad(2.0)), dec0[obj] + noise[1], visit, detector)
    perm = rng.permutation(len(table))
    table, obj = table[perm], obj[perm]
    result = RunningListAssociator().associate(table)
    assert result.n_objects == n_obj
    assert _same_partition(result.dia_source_to_object, obj)
    assert not result.ambiguous.any()
    # Objects are numbered by first appearance in time.
    first_visit = np.array([table["visit"][result.dia_source_to_object == k].min() for k in range(n_obj)])
    assert np.all(np.diff(first_visit) >= 0)


def test_two_sources_of_one_ccd_never_join_one_object():
    # Visit 0 creates object X; visit 1 has two sources of one CCD near X: the nearer joins, the other
    # starts a new object. Visit 2 on two different detectors: both may join (different visit/detector).
    ra = np.array([0.0, 0.1, 0.2, 0.05, 0.25]) * ARCSEC + 30.0
    table = _sources(ra, np.zeros(5), visit=[0, 1, 1, 2, 2], detector=[0, 0, 0, 1, 2])
    result = RunningListAssociator().associate(table)
    obj = result.dia_source_to_object
    assert obj[0] == obj[1] and obj[2] != obj[0]
    np.testing.assert_array_equal(result.ambiguous, [False, True, True, True, True])
    # Visit 2: source 3 (0.05") and source 4 (0.25") are on different detectors; each takes its nearest.
    assert obj[3] == obj[0]
    assert result.n_objects == 2


def test_optimal_assignment_when_greedy_fails():
    # Objects X (at 0") and Y (at 0.5") built over two visits; then one CCD sees A at 0.1" (X 0.1, Y 0.4)
    # and B at -0.2" (X only). Optimal: A -> Y, B -> X (greedy nearest-first would orphan B).
    x = np.array([0.0, 0.5, 0.0, 0.5, 0.1, -0.2]) * ARCSEC
    table = _sources(10.0 + x, np.zeros(6), visit=[0, 0, 1, 1, 2, 2])
    obj = RunningListAssociator().associate(table).dia_source_to_object
    assert obj[0] == obj[2] and obj[1] == obj[3] and obj[0] != obj[1]
    assert obj[4] == obj[1] and obj[5] == obj[0]


def test_moving_position_updates_index():
    # Each source is within 0.5" of the running mean but the last ones are > 0.5" from the first source:
    # found only if the index follows the moving mean.
    offsets = np.array([0.0, 0.45, 0.6, 0.8, 0.95]) * ARCSEC
    table = _sources(200.0 + offsets / np.cos(np.deg2rad(-40.0)), np.full(5, -40.0), visit=np.arange(5))
    result = RunningListAssociator().associate(table)
    assert result.n_objects == 1


def test_objects_straddling_ra_zero():
    rng = np.random.default_rng(8)
    n = 40
    ra = rng.normal(0, 0.1, n) * ARCSEC  # both sides of 0 -> 359.99997.. and 0.00002..
    ra_far = 180.0 + rng.normal(0, 0.1, n) * ARCSEC
    table = _sources(np.r_[ra, ra_far], np.full(2 * n, 0.5), visit=np.r_[np.arange(n), np.arange(n)])
    assert (table["ra"][:n] > 359).any() and (table["ra"][:n] < 1).any()
    result = RunningListAssociator().associate(table)
    assert result.n_objects == 2
    assert len(set(result.dia_source_to_object[:n])) == 1


def test_tolerance_is_configurable():
    table = _sources(np.array([0.0, 0.7]) * ARCSEC + 5.0, [0.0, 0.0], visit=[0, 1])
    assert RunningListAssociator().associate(table).n_objects == 2
    config = RunningListConfig()
    config.tolerance = 1.0
    assert RunningListAssociator(config).associate(table).n_objects == 1


def test_epochs_sorted_by_time_then_visit_detector():
    table = _sources(np.zeros(6), np.zeros(6), visit=[5, 3, 5, 3, 4, 3], detector=[1, 2, 0, 2, 0, 1],
                     mjd=[10.0, 20.0, 10.0, 20.0, 10.0, 20.0])
    epochs = epochs_in_time_order(table)
    keys = [(int(table["visit"][i]), int(table["detector"][i])) for i in epochs.order]
    assert keys == [(4, 0), (5, 0), (5, 1), (3, 1), (3, 2), (3, 2)]
    np.testing.assert_array_equal(epochs.bounds, [0, 1, 2, 3, 4, 6])


def test_empty_and_bad_input():
    empty = _sources([], [], visit=np.array([], dtype=int))
    result = RunningListAssociator().associate(empty)
    assert result.n_objects == 0 and len(result.dia_source_to_object) == 0
    table = _sources([1.0, 2.0], [0.0, np.nan], visit=[0, 1])
    with pytest.raises(NonFiniteInputError, match="dec"):
        RunningListAssociator().associate(table)
    del table["midpointMjdTai"]
    with pytest.raises(MissingColumnsError, match="midpointMjdTai"):
        RunningListAssociator().associate(table)
