"""AssociationTask: DIASources of one patch -> DIAObjects (``deepDiff_diaObject``, ``deepDiff_diaObjectId``)."""

from __future__ import annotations

import logging

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT
import numpy as np
from astropy.table import Table, vstack

from ..association import AssociationConfig, associate, make_dia_object_id_arrow, summarize_dia_objects
from ..ids import dia_object_ids_for_patch
from ..skymap import RingsSkyMap
from ..skymap.storage import skymap_from_dict
from .io import select_owned

__all__ = ["AssociationConfig", "AssociationTask", "AssociationTaskConfig"]

_log = logging.getLogger(__name__)


class AssociationConnections(pipeBase.PipelineTaskConnections, dimensions=("skymap", "tract", "patch")):
    diaSourceTables = cT.Input(
        doc="DIASource catalogs of every visit/detector overlapping the patch.",
        name="deepDiff_diaSrc",
        storageClass="ArrowAstropy",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
        deferLoad=True,
    )
    skyMap = cT.Input(
        doc="Sky map definition (inner tract/patch regions).",
        name="skyMap",
        storageClass="StructuredDataDict",
        dimensions=("skymap",),
    )
    diaObjects = cT.Output(
        doc="DIAObjects of the patch.",
        name="deepDiff_diaObject",
        storageClass="ArrowAstropy",
        dimensions=("skymap", "tract", "patch"),
    )
    diaObjectIds = cT.Output(
        doc="diaObjectId -> list of diaSourceIds.",
        name="deepDiff_diaObjectId",
        storageClass="ArrowTable",
        dimensions=("skymap", "tract", "patch"),
    )


class AssociationTaskConfig(pipeBase.PipelineTaskConfig, pipelineConnections=AssociationConnections):
    """Configuration of `AssociationTask`."""

    association = pexConfig.ConfigField(
        dtype=AssociationConfig, doc="Association algorithm (config.association.associator.name selects it)."
    )
    badFlags = pexConfig.ListField[str](
        doc="DIASources with any of these boolean columns true are not associated.",
        default=["pixelFlags_edge", "pixelFlags_nodataCenter", "centroid_flag"],
    )
    bands = pexConfig.ListField[str](
        doc="Bands for which per-band DIAObject columns are written (sources of other bands still "
        "contribute positions).",
        default=["u", "g", "r", "i", "z", "y"],
    )


class AssociationTask(pipeBase.PipelineTask):
    """Associate the DIASources owned by one patch (inner patch AND inner tract) into DIAObjects."""

    ConfigClass = AssociationTaskConfig
    _DefaultName = "association"

    def runQuantum(self, butlerQC, inputRefs, outputRefs):
        inputs = butlerQC.get(inputRefs)
        data_id = butlerQC.quantum.dataId
        tables = []
        for handle in inputs["diaSourceTables"]:
            table = handle.get()
            if len(table):
                tables.append(table)
        result = self.run(tables, skymap_from_dict(inputs["skyMap"]), int(data_id["tract"]), int(data_id["patch"]))
        butlerQC.put(result, outputRefs)

    def run(self, dia_source_tables: list[Table], skymap: RingsSkyMap, tract: int, patch: int) -> pipeBase.Struct:
        """Associate DIASources into DIAObjects.

        Parameters
        ----------
        dia_source_tables : `list` [`astropy.table.Table`]
            DIASource catalogs (SDM ``DiaSource`` columns) of the visits/detectors overlapping the patch.
        skymap : `~lsst.dia.pipe.skymap.RingsSkyMap`
            Sky map defining inner regions.
        tract, patch : `int`
            The patch to build.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``diaObjects`` (`astropy.table.Table`), ``diaObjectIds`` (`pyarrow.Table`), ``diaSources``
            (the associated DIASources with their ``diaObjectId``).
        """
        sources = vstack(dia_source_tables, metadata_conflicts="silent") if dia_source_tables else None
        if sources is None or len(sources) == 0:
            raise pipeBase.NoWorkFound(f"No DIASources overlap tract {tract} patch {patch}.")
        n_in = len(sources)
        keep = select_owned(sources, skymap, tract, patch)
        n_owned = int(keep.sum())
        for flag in self.config.badFlags:
            if flag in sources.colnames:
                keep &= ~np.asarray(sources[flag], dtype=bool)
        sources = sources[keep]
        self.metadata["nDiaSourcesIn"] = n_in
        self.metadata["nDiaSourcesOwned"] = n_owned
        self.metadata["nDiaSourcesUsed"] = len(sources)
        if len(sources) == 0:
            raise pipeBase.NoWorkFound(
                f"None of the {n_in} DIASources is owned by tract {tract} patch {patch} and passes the flag cuts."
            )
        result = associate(sources, self.config.association)
        object_ids = dia_object_ids_for_patch(tract, patch, result.n_objects)
        index = result.dia_source_to_object
        dia_objects = summarize_dia_objects(sources, index, list(self.config.bands), object_ids)
        id_table = make_dia_object_id_arrow(object_ids, sources, index)
        sources["diaObjectId"] = np.where(index >= 0, object_ids[np.clip(index, 0, None)], 0)
        self.metadata["nDiaObjects"] = result.n_objects
        _log.info("tract %d patch %d: %d DIASources (of %d overlapping) -> %d DIAObjects",
                  tract, patch, len(sources), n_in, result.n_objects)
        return pipeBase.Struct(diaObjects=dia_objects, diaObjectIds=id_table, diaSources=sources)
