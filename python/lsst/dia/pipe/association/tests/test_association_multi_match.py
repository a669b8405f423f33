"""MultiMatch (afw semantics): fixed first-detection references, ambiguity flags, dropping ambiguous."""

import numpy as np
from astropy.table import Table

from lsst.dia.pipe.association import MultiMatchAssociator, MultiMatchConfig, RunningListAssociator

ARCSEC = 1 / 3600.0


def _sources(x_arcsec, visit, detector=None, y_arcsec=None):
    visit = np.asarray(visit)
    x = np.asarray(x_arcsec, dtype=float)
    y = np.zeros(len(x)) if y_arcsec is None else np.asarray(y_arcsec, dtype=float)
    return Table(
        {
            "diaSourceId": np.arange(len(x), dtype=np.int64) + 1000,
            "visit": visit,
            "detector": np.zeros(len(x), dtype=int) if detector is None else np.asarray(detector),
            "midpointMjdTai": 60000.0 + visit,
            "ra": 45.0 + x * ARCSEC,
            "dec": y * ARCSEC,
        }
    )


def _drop_config():
    config = MultiMatchConfig()
    config.dropAmbiguous = True
    return config


def test_clean_objects_not_ambiguous():
    # Two objects 3" apart seen in 4 visits with small noise.
    x = np.array([0.0, 3.0, 0.05, 3.02, -0.04, 2.97, 0.01, 3.05])
    result = MultiMatchAssociator().associate(_sources(x, [0, 0, 1, 1, 2, 2, 3, 3]))
    np.testing.assert_array_equal(result.dia_source_to_object, [0, 1, 0, 1, 0, 1, 0, 1])
    assert result.n_objects == 2 and not result.ambiguous.any()


def test_two_sources_of_one_catalog_make_object_ambiguous_and_can_be_dropped():
    # Object A (x=0) gets two sources from visit 1 (same detector) -> ambiguous; object B (x=5) is clean.
    table = _sources([0.0, 5.0, 0.1, -0.2, 5.1], [0, 0, 1, 1, 1])
    result = MultiMatchAssociator().associate(table)
    np.testing.assert_array_equal(result.dia_source_to_object, [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(result.ambiguous, [True, False, True, True, False])

    dropped = MultiMatchAssociator(_drop_config()).associate(table)
    np.testing.assert_array_equal(dropped.dia_source_to_object, [-1, 0, -1, -1, 0])
    assert dropped.n_objects == 1 and dropped.n_associated == 2
    np.testing.assert_array_equal(dropped.ambiguous, result.ambiguous)


def test_source_matching_two_references_flags_both():
    # References at 0 and 0.8"; a later source at 0.45" is within 0.5" of both: joins the nearer (0.8", at
    # 0.35"), and both objects are ambiguous. A third, far object stays clean.
    table = _sources([0.0, 0.8, 9.0, 0.45, 9.1], [0, 0, 0, 1, 1])
    result = MultiMatchAssociator().associate(table)
    np.testing.assert_array_equal(result.dia_source_to_object, [0, 1, 2, 1, 2])
    np.testing.assert_array_equal(result.ambiguous, [True, True, False, True, False])
    dropped = MultiMatchAssociator(_drop_config()).associate(table)
    np.testing.assert_array_equal(dropped.dia_source_to_object, [-1, -1, 0, -1, 0])


def test_references_stay_at_first_detection():
    # Each source within 0.5" of the running mean but the 3rd is 0.6" from the first: MultiMatch (fixed
    # reference) starts a new object where the running list keeps one.
    table = _sources([0.0, 0.45, 0.6], [0, 1, 2])
    assert MultiMatchAssociator().associate(table).n_objects == 2
    assert RunningListAssociator().associate(table).n_objects == 1


def test_same_visit_other_detector_is_another_catalog():
    # Sources of visit 1 on detectors 0 and 1 both near object A: separate catalogs, so not ambiguous.
    table = _sources([0.0, 0.1, 0.2], [0, 1, 1], detector=[0, 0, 1])
    result = MultiMatchAssociator().associate(table)
    np.testing.assert_array_equal(result.dia_source_to_object, [0, 0, 0])
    assert not result.ambiguous.any()
