"""SkyIndex: exact fixed-radius pairs against brute force while points are added and moved."""

import numpy as np

from lsst.dia.pipe.association import SkyIndex, arcsec_to_chord, normalize, radec_to_unit


def _brute_force(queries, points, radius):
    chord = np.linalg.norm(queries[:, None, :] - points[None, :, :], axis=2)
    q, p = np.nonzero(chord <= radius)
    return set(zip(q.tolist(), p.tolist()))


def _random_vectors(rng, n, half_width_deg=0.01):
    return radec_to_unit(rng.uniform(-half_width_deg, half_width_deg, n) % 360, rng.uniform(-1, 1, n) * 0.01)


def test_pairs_match_brute_force_through_adds_and_moves():
    rng = np.random.default_rng(3)
    radius = float(arcsec_to_chord(2.0))
    index = SkyIndex(capacity=3000, max_margin=radius, base_size=16, growth=2)
    truth = np.empty((0, 3))
    for step in range(40):
        new = _random_vectors(rng, rng.integers(0, 80))
        ids = index.add(new)
        np.testing.assert_array_equal(ids, np.arange(len(truth), len(truth) + len(new)))
        truth = np.concatenate([truth, new])
        # Move a random subset by up to 3 arcsec (beyond the query radius and max_margin).
        moved = rng.choice(len(truth), size=min(len(truth), 30), replace=False)
        shift = rng.normal(0, 1.5 / 206265.0, (len(moved), 3))
        truth[moved] = normalize(truth[moved] + shift)
        index.move(moved, truth[moved])
        queries = _random_vectors(rng, 60)
        # Half of the queries sit right on (moved) points, so pairs exist.
        queries[:30] = truth[rng.integers(0, len(truth), 30)]
        q, p, chord = index.pairs_within(queries, radius)
        assert set(zip(q.tolist(), p.tolist())) == _brute_force(queries, truth, radius)
        np.testing.assert_allclose(chord, np.linalg.norm(queries[q] - truth[p], axis=1))
        assert len(set(zip(q.tolist(), p.tolist()))) == len(q), "duplicate pairs"
    np.testing.assert_array_equal(index.positions, truth)


def test_dense_cluster_returns_every_neighbour():
    # 50 points within 0.1 arcsec: more than the k nearest fetched per level must all come back.
    rng = np.random.default_rng(4)
    points = radec_to_unit(10 + rng.normal(0, 0.03, 50) / 3600, rng.normal(0, 0.03, 50) / 3600)
    index = SkyIndex(capacity=50, max_margin=1e-6)
    index.add(points)
    q, p, _ = index.pairs_within(radec_to_unit([10.0], [0.0]), float(arcsec_to_chord(0.5)))
    assert sorted(p.tolist()) == list(range(50))
    assert np.all(q == 0)


def test_empty_index_and_capacity():
    index = SkyIndex(capacity=2, max_margin=1e-6)
    q, p, chord = index.pairs_within(radec_to_unit([1.0], [1.0]), 1e-5)
    assert len(q) == len(p) == len(chord) == 0
    index.add(radec_to_unit([1.0, 2.0], [1.0, 2.0]))
    try:
        index.add(radec_to_unit([3.0], [3.0]))
    except ValueError as err:
        assert "capacity" in str(err)
    else:
        raise AssertionError("capacity overflow not detected")
