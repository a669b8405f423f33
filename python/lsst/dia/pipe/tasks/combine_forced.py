"""CombineForcedTask: per-patch multi-band light curves from per-CCD forced photometry
(the original dia_pipe's ``combineDiaForced``)."""

from __future__ import annotations

import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
import numpy as np
from astropy.table import Table, vstack

__all__ = ["CombineForcedConfig", "CombineForcedTask"]


class CombineForcedConnections(pipeBase.PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    forcedSources = cT.Input(
        doc="Forced photometry of every visit/detector overlapping the patch.", name="deepDiff_forced_diaSrc",
        storageClass="ArrowAstropy", dimensions=("instrument", "visit", "detector"), multiple=True,
        deferLoad=True,
    )
    diaObjects = cT.Input(
        doc="DIAObjects of the patch.", name="deepDiff_diaObject", storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
    )
    lightCurves = cT.Output(
        doc="Forced light curves, one row per DIAObject and visit.", name="deepDiff_forced_diaObject",
        storageClass="ArrowAstropy", dimensions=("skymap", "tract", "patch"),
    )


class CombineForcedConfig(pipeBase.PipelineTaskConfig, pipelineConnections=CombineForcedConnections):
    """Configuration of `CombineForcedTask` (no options)."""


class CombineForcedTask(pipeBase.PipelineTask):
    """Gather the forced measurements of one patch's DIAObjects from every visit into light curves."""

    ConfigClass = CombineForcedConfig
    _DefaultName = "combineForced"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        inputs = butlerQC.get(inputRefs)
        data_id = butlerQC.quantum.dataId
        tables = [handle.get() for handle in inputs["forcedSources"]]
        butlerQC.put(self.run(tables, inputs["diaObjects"], int(data_id["tract"]), int(data_id["patch"])),
                     outputRefs)

    def run(self, forced_tables: list[Table], dia_objects: Table, tract: int, patch: int) -> pipeBase.Struct:
        """Select this patch's measurements and sort them into light curves.

        Parameters
        ----------
        forced_tables : `list` [`astropy.table.Table`]
            ``deepDiff_forced_diaSrc`` of the overlapping visits/detectors.
        dia_objects : `astropy.table.Table`
            The patch's DIAObjects.
        tract, patch : `int`
            The patch.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``lightCurves``: rows of every forced measurement of the patch's DIAObjects, sorted by
            ``diaObjectId`` then ``midpointMjdTai``; all bands together (``band`` column).
        """
        tables = [t for t in forced_tables if len(t)]
        if not tables:
            raise pipeBase.NoWorkFound(f"No forced photometry overlaps tract {tract} patch {patch}.")
        forced = vstack(tables, metadata_conflicts="silent")
        mine = (np.asarray(forced["tract"]) == tract) & (np.asarray(forced["patch"]) == patch)
        mine &= np.isin(np.asarray(forced["diaObjectId"]), np.asarray(dia_objects["diaObjectId"]))
        forced = forced[mine]
        order = np.lexsort((np.asarray(forced["midpointMjdTai"]), np.asarray(forced["diaObjectId"])))
        forced = forced[order]
        self.metadata["nMeasurements"] = len(forced)
        self.metadata["nDiaObjects"] = len(np.unique(np.asarray(forced["diaObjectId"])))
        return pipeBase.Struct(lightCurves=forced)
