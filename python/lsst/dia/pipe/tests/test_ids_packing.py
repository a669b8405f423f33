"""Round trips and overflow of the packed DIASource / DIAObject ids."""

import numpy as np
import pytest

from lsst.dia.pipe.ids import (
    DIA_OBJECT_ID_LAYOUT,
    DIA_SOURCE_ID_LAYOUT,
    IdFieldOverflowError,
    dia_object_ids_for_patch,
    pack_dia_object_id,
    pack_dia_source_id,
    unpack_dia_object_id,
    unpack_dia_source_id,
)


def test_dia_source_id_round_trip_vectorised():
    rng = np.random.default_rng(1)
    visit = rng.integers(0, 2**32, 10_000)
    detector = rng.integers(0, 512, 10_000)
    seq = rng.integers(0, 2**22, 10_000)
    ids = pack_dia_source_id(visit, detector, seq)
    assert ids.dtype == np.int64 and np.all(ids >= 0)
    n_distinct_triples = np.unique(np.stack([visit, detector, seq], axis=1), axis=0).shape[0]
    assert len(np.unique(ids)) == n_distinct_triples
    v, d, s = unpack_dia_source_id(ids)
    np.testing.assert_array_equal(v, visit)
    np.testing.assert_array_equal(d, detector)
    np.testing.assert_array_equal(s, seq)


def test_field_extremes_and_order():
    top = pack_dia_source_id(2**32 - 1, 511, 2**22 - 1)
    assert int(top) == 2**63 - 1
    # Most significant field first: ids sort by visit, then detector, then seq.
    assert pack_dia_source_id(1, 0, 0) > pack_dia_source_id(0, 511, 2**22 - 1)
    assert int(pack_dia_object_id(0, 0, 0)) == 0
    assert int(pack_dia_object_id(1, 0, 0)) == 2**47


def test_dia_object_id_round_trip_broadcast():
    seq = np.arange(5) * 1_000_000_007
    ids = pack_dia_object_id(18_937, 48, seq)
    assert ids.shape == (5,)
    tract, patch, s = unpack_dia_object_id(ids)
    assert np.all(tract == 18_937) and np.all(patch == 48)
    np.testing.assert_array_equal(s, seq)


def test_object_ids_for_patch_start_at_one():
    ids = dia_object_ids_for_patch(3, 7, 4)
    _, _, seq = unpack_dia_object_id(ids)
    np.testing.assert_array_equal(seq, [1, 2, 3, 4])
    assert np.all(ids != 0)


@pytest.mark.parametrize(
    "args, field",
    [
        ((2**32, 0, 0), "visit"),
        ((0, 512, 0), "detector"),
        ((0, 0, 2**22), "seq"),
        ((-1, 0, 0), "visit"),
    ],
)
def test_dia_source_overflow(args, field):
    with pytest.raises(IdFieldOverflowError, match=field) as err:
        pack_dia_source_id(*args)
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_dia_object_overflow_reports_count():
    with pytest.raises(IdFieldOverflowError) as err:
        pack_dia_object_id([1, 2**16, 2**16 + 1], 0, 0)
    assert err.value.field == "tract" and err.value.n_bad == 2 and err.value.value == 2**16
    with pytest.raises(IdFieldOverflowError, match="patch"):
        pack_dia_object_id(0, 2**14, 0)
    with pytest.raises(IdFieldOverflowError, match="seq"):
        pack_dia_object_id(0, 0, 2**33)


def test_unpack_rejects_negative_and_non_integer():
    with pytest.raises(IdFieldOverflowError):
        unpack_dia_object_id(np.array([-5], dtype=np.int64))
    with pytest.raises(TypeError):
        pack_dia_source_id(1.5, 0, 0)
    with pytest.raises(TypeError):
        unpack_dia_source_id(np.array([1.0]))


def test_layouts_fill_63_bits():
    for layout in (DIA_SOURCE_ID_LAYOUT, DIA_OBJECT_ID_LAYOUT):
        assert sum(n for _, n in layout.fields) == 63
