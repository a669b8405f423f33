"""MultiMatch association (semantics of ``lsst.afw.table.MultiMatch``, used by the original dia_pipe).

Catalogs (one per visit/detector, in time order) are matched one after the other against a reference list:
the position of each DIAObject is that of its *first* DIASource and never moves. Every (reference, DIASource)
pair within the tolerance is a match; DIASources with no match start new DIAObjects. A DIAObject is
*ambiguous* when one catalog gives it more than one DIASource, or when one of its DIASources also matches
another DIAObject (then all those DIAObjects are ambiguous).

Differences from afw, forced by one DIAObject per DIASource in `AssociationResult`: a DIASource matching
several DIAObjects joins the nearest one only (afw repeats it under each). With ``dropAmbiguous`` (afw's
``finish(removeAmbiguous=True)``) every DIASource of an ambiguous DIAObject gets no DIAObject (index -1)
and the remaining DIAObjects are renumbered in order; otherwise (default, as the original dia_pipe) they
are kept. Either way ``AssociationResult.ambiguous`` flags the DIASources of ambiguous DIAObjects.
"""

from __future__ import annotations

import lsst.pex.config as pexConfig
import numpy as np
from astropy.table import Table

from .base import AssociationResult, Associator, AssociatorConfig
from .sky_index import SkyIndex

__all__ = ["MultiMatchConfig", "MultiMatchAssociator"]


class MultiMatchConfig(AssociatorConfig):
    """Configuration of `MultiMatchAssociator`."""

    dropAmbiguous = pexConfig.Field(
        dtype=bool,
        doc="Remove ambiguous DIAObjects: their DIASources get no DIAObject (index -1).",
        default=False,
    )


class MultiMatchAssociator(Associator):
    """Match catalogs in time order against fixed first-detection positions (see module docstring)."""

    ConfigClass = MultiMatchConfig

    def associate(self, sources: Table) -> AssociationResult:
        n, epochs, vectors, radius = self._prepare(sources)

        index = SkyIndex(capacity=n, max_margin=radius)
        object_of = np.empty(n, dtype=np.int64)
        object_ambiguous = np.zeros(n, dtype=bool)
        for e in range(len(epochs)):
            lo, hi = epochs.bounds[e], epochs.bounds[e + 1]
            epoch_vectors = vectors[lo:hi]
            query, reference, chord = index.pairs_within(epoch_vectors, radius)
            nearest = np.full(hi - lo, -1, dtype=np.int64)
            if len(query):
                by_distance = np.lexsort((chord, query))
                first = np.r_[True, np.diff(query[by_distance]) != 0]
                nearest[query[by_distance[first]]] = reference[by_distance[first]]
                references, counts = np.unique(reference, return_counts=True)
                object_ambiguous[references[counts > 1]] = True
                multi = np.bincount(query, minlength=hi - lo) > 1
                object_ambiguous[reference[multi[query]]] = True
            unmatched = nearest < 0
            nearest[unmatched] = index.add(epoch_vectors[unmatched])
            object_of[lo:hi] = nearest

        dia_source_to_object = np.empty(n, dtype=np.int64)
        dia_source_to_object[epochs.order] = object_of
        n_objects = index.size
        object_ambiguous = object_ambiguous[:n_objects]
        ambiguous = object_ambiguous[dia_source_to_object]
        if self.config.dropAmbiguous:
            kept = ~object_ambiguous
            renumber = np.where(kept, np.cumsum(kept) - 1, -1)
            dia_source_to_object = renumber[dia_source_to_object]
            n_objects = int(np.count_nonzero(kept))
        return AssociationResult(dia_source_to_object, n_objects, ambiguous)
