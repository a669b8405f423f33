"""One-to-one assignment: maximum cardinality first, then minimum total distance (checked exhaustively)."""

import itertools

import numpy as np

from lsst.dia.pipe.association import assign_one_to_one


def _best_by_enumeration(source, target, distance, n_sources):
    """(cardinality, total distance) of the best matching, by brute force over subsets of edges."""
    best = (0, 0.0)
    edges = list(zip(source.tolist(), target.tolist(), distance.tolist()))
    for r in range(1, min(n_sources, len(set(target.tolist()))) + 1):
        for subset in itertools.combinations(edges, r):
            if len({e[0] for e in subset}) == r and len({e[1] for e in subset}) == r:
                total = sum(e[2] for e in subset)
                if r > best[0] or (r == best[0] and total < best[1]):
                    best = (r, total)
    return best


def test_greedy_would_fail_but_optimal_matches_both():
    # Source 0: object 10 at 0.1, object 20 at 0.4; source 1: object 10 at 0.2 only.
    # Nearest-first would give 10 to source 0 and leave source 1 unmatched.
    assigned, contested = assign_one_to_one(
        np.array([0, 0, 1]), np.array([10, 20, 10]), np.array([0.1, 0.4, 0.2]), 2
    )
    np.testing.assert_array_equal(assigned, [20, 10])
    np.testing.assert_array_equal(contested, [True, True])


def test_two_sources_one_object_nearest_wins():
    assigned, contested = assign_one_to_one(np.array([0, 1]), np.array([7, 7]), np.array([0.3, 0.2]), 3)
    np.testing.assert_array_equal(assigned, [-1, 7, -1])
    np.testing.assert_array_equal(contested, [True, True, False])


def test_isolated_pairs_uncontested():
    assigned, contested = assign_one_to_one(np.array([2, 0]), np.array([5, 9]), np.array([0.1, 0.2]), 3)
    np.testing.assert_array_equal(assigned, [9, -1, 5])
    assert not contested.any()


def test_random_conflicts_are_optimal():
    rng = np.random.default_rng(11)
    for _ in range(150):
        n_sources, n_targets = rng.integers(1, 6), rng.integers(1, 6)
        mask = rng.random((n_sources, n_targets)) < 0.45
        source, target = np.nonzero(mask)
        target = target * 3 + 100  # arbitrary non-contiguous ids
        distance = rng.random(len(source))
        assigned, _ = assign_one_to_one(source, target, distance, n_sources)
        matched = np.flatnonzero(assigned >= 0)
        assert len(set(assigned[matched].tolist())) == len(matched), "object used twice"
        lookup = {(s, t): d for s, t, d in zip(source.tolist(), target.tolist(), distance.tolist())}
        total = sum(lookup[(int(s), int(assigned[s]))] for s in matched)
        cardinality, best_total = _best_by_enumeration(source, target, distance, n_sources)
        assert len(matched) == cardinality
        assert total <= best_total + 1e-12
