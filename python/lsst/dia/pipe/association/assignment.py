"""One-to-one assignment of the DIASources of one epoch to candidate DIAObjects.

Within one visit/detector a DIAObject may receive at most one DIASource and a DIASource joins at most one
DIAObject. Among all such assignments we take one with the most matches and, among those, the smallest total
separation (a minimum-cost maximum-cardinality bipartite matching): two sources competing for one object,
each with another object in reach, both get matched; greedy nearest-first would leave one of them out.

Almost every candidate pair is isolated (its source and its object have no other candidate): those are
accepted directly, vectorised. The few connected conflict components left are solved exactly with
`scipy.optimize.linear_sum_assignment`.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["assign_one_to_one"]


def assign_one_to_one(
    source: np.ndarray, target: np.ndarray, distance: np.ndarray, n_sources: int
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-cardinality, minimum-total-distance one-to-one assignment.

    Parameters
    ----------
    source : `numpy.ndarray` of `int64`
        Source row ``0 .. n_sources - 1`` of each candidate pair.
    target : `numpy.ndarray` of `int64`
        Target (DIAObject) id of each candidate pair; any non-negative integers.
    distance : `numpy.ndarray` of `float64`
        Separation of each pair (any monotonic measure, e.g. chord length), non-negative.
    n_sources : `int`
        Number of sources.

    Returns
    -------
    assigned : `numpy.ndarray` of `int64`, shape ``(n_sources,)``
        Target of each source, -1 if unassigned.
    contested : `numpy.ndarray` of `bool`, shape ``(n_sources,)``
        Source had more than one candidate or shared a candidate with another source.
    """
    assigned = np.full(n_sources, -1, dtype=np.int64)
    contested = np.zeros(n_sources, dtype=bool)
    if len(source) == 0:
        return assigned, contested
    targets, t_local = np.unique(target, return_inverse=True)
    source_degree = np.bincount(source, minlength=n_sources)
    target_degree = np.bincount(t_local, minlength=len(targets))
    isolated = (source_degree[source] == 1) & (target_degree[t_local] == 1)
    assigned[source[isolated]] = target[isolated]

    rest = ~isolated
    if not rest.any():
        return assigned, contested
    s, t, d = source[rest], t_local[rest], distance[rest]
    contested[s] = True
    component = _bipartite_components(s, t, n_sources, len(targets))
    order = np.lexsort((d, component))
    s, t, d, component = s[order], t[order], d[order], component[order]
    first = np.r_[True, component[1:] != component[:-1]]
    # Components with one source or one target match exactly one pair: their shortest.
    n_rows = np.bincount(component[np.unique(s, return_index=True)[1]], minlength=n_sources)
    n_cols = np.bincount(component[np.unique(t, return_index=True)[1]], minlength=n_sources)
    star = (n_rows == 1) | (n_cols == 1)
    take = first & star[component]
    assigned[s[take]] = targets[t[take]]
    starts = np.flatnonzero(first & ~star[component])
    ends = np.searchsorted(component, component[starts], side="right")
    for start, end in zip(starts, ends):
        rows, row_of = np.unique(s[start:end], return_inverse=True)
        cols, col_of = np.unique(t[start:end], return_inverse=True)
        # Absent pairs cost more than any set of real pairs: cardinality comes first, then distance.
        absent = (end - start + 1) * (d[end - 1] + 1.0)
        cost = np.full((len(rows), len(cols)), absent)
        cost[row_of, col_of] = d[start:end]
        r, c = linear_sum_assignment(cost)
        real = cost[r, c] < absent
        assigned[rows[r[real]]] = targets[cols[c[real]]]
    return assigned, contested


def _bipartite_components(
    source: np.ndarray, target: np.ndarray, n_sources: int, n_targets: int
) -> np.ndarray:
    """Connected-component label of each edge of a bipartite graph (the smallest source row in it).

    Min-label propagation: one round per step of the component's diameter, which is tiny for conflict
    components of an epoch.
    """
    label = np.arange(n_sources)
    while True:
        target_label = np.full(n_targets, n_sources)
        np.minimum.at(target_label, target, label[source])
        updated = label.copy()
        np.minimum.at(updated, source, target_label[target])
        if np.array_equal(updated, label):
            return label[source]
        label = updated
