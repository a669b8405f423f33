"""Running-list association (ap_association style; the dia_pipe default).

DIASources are processed one epoch (visit, detector) at a time in time order. Each epoch's sources are
matched, all at once, against the current DIAObject positions: candidates are the DIAObjects within the
tolerance, and a maximum-cardinality minimum-total-separation one-to-one assignment (`assign_one_to_one`)
gives each DIAObject at most one DIASource of the epoch. Unmatched DIASources start new DIAObjects. A
DIAObject's position is the spherical mean of its DIASources (normalised sum of unit vectors: RA wrap and
poles are harmless), updated after every epoch; the spatial index (`SkyIndex`) stays exact as positions move.

A DIASource is flagged ``ambiguous`` when it had more than one candidate DIAObject or competed with another
DIASource of its epoch for one.
"""

from __future__ import annotations

import numpy as np
from astropy.table import Table

from .assignment import assign_one_to_one
from .base import AssociationResult, Associator, AssociatorConfig
from .sky_index import SkyIndex
from .sphere import normalize

__all__ = ["RunningListConfig", "RunningListAssociator"]


class RunningListConfig(AssociatorConfig):
    """Configuration of `RunningListAssociator`."""


class RunningListAssociator(Associator):
    """Associate DIASources epoch by epoch to a running list of DIAObjects (see module docstring)."""

    ConfigClass = RunningListConfig

    def associate(self, sources: Table) -> AssociationResult:
        n, epochs, vectors, radius = self._prepare(sources)

        sums = np.empty((n, 3), dtype=np.float64)
        index = SkyIndex(capacity=n, max_margin=radius)
        object_of = np.empty(n, dtype=np.int64)
        contested = np.zeros(n, dtype=bool)
        for e in range(len(epochs)):
            lo, hi = epochs.bounds[e], epochs.bounds[e + 1]
            epoch_vectors = vectors[lo:hi]
            query, candidate, chord = index.pairs_within(epoch_vectors, radius)
            assigned, contested[lo:hi] = assign_one_to_one(query, candidate, chord, hi - lo)

            matched = assigned >= 0
            joined = assigned[matched]
            sums[joined] += epoch_vectors[matched]
            index.move(joined, normalize(sums[joined]))

            fresh = epoch_vectors[~matched]
            new_ids = index.add(fresh)
            sums[new_ids] = fresh
            assigned[~matched] = new_ids
            object_of[lo:hi] = assigned

        dia_source_to_object = np.empty(n, dtype=np.int64)
        dia_source_to_object[epochs.order] = object_of
        ambiguous = np.empty(n, dtype=bool)
        ambiguous[epochs.order] = contested
        return AssociationResult(dia_source_to_object, index.size, ambiguous)
