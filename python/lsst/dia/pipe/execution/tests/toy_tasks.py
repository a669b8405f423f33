"""Toy PipelineTasks for testing and benchmarking the execution layer.

They read and write tiny ``StructuredDataDict`` datasets, so a whole run takes milliseconds of task time.
Worker processes import this module by name (``lsst.dia.pipe.execution.tests.toy_tasks``), which is why it
lives in an importable location rather than in a test file.

Pipeline: ``toyScale`` (per visit+detector: ``toy_input`` -> ``toy_scaled``) then ``toySum`` (per visit:
all ``toy_scaled`` of the visit -> ``toy_sum``).
"""

from __future__ import annotations

__all__ = [
    "ToyFailure",
    "ToyScaleConfig",
    "ToyScaleConnections",
    "ToyScaleTask",
    "ToySumConfig",
    "ToySumConnections",
    "ToySumTask",
    "make_toy_pipeline",
]

import os
import time
from typing import Any

import lsst.pex.config as pexConfig
import lsst.pipe.base as pipeBase
from lsst.pipe.base import connectionTypes as cT


class ToyFailure(RuntimeError):
    """Raised by `ToyScaleTask` for the data IDs listed in its ``failVisits`` config."""

    def __init__(self, visit: int, detector: int):
        super().__init__(f"toy failure requested for visit={visit} detector={detector}")
        self.visit = visit
        self.detector = detector


class ToyScaleConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "visit", "detector")):
    inputData = cT.Input(
        doc="Toy input values.",
        name="toy_input",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "visit", "detector"),
    )
    outputData = cT.Output(
        doc="Scaled toy values.",
        name="toy_scaled",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "visit", "detector"),
    )


class ToyScaleConfig(pipeBase.PipelineTaskConfig, pipelineConnections=ToyScaleConnections):
    scale = pexConfig.Field[float](doc="Multiplier applied to the input value.", default=2.0)
    offset = pexConfig.Field[float](doc="Added after scaling.", default=0.0)
    sleep = pexConfig.Field[float](doc="Busy-wait CPU seconds per quantum (benchmarks).", default=0.0)
    failVisits = pexConfig.ListField[int](doc="Raise ToyFailure for these visits.", default=[])
    failDetectors = pexConfig.ListField[int](
        doc="Restrict failVisits to these detectors (empty: all detectors).", default=[]
    )
    crashVisits = pexConfig.ListField[int](
        doc="Kill the worker process (os._exit) for these visits.", default=[]
    )
    hangVisits = pexConfig.ListField[int](doc="Sleep for an hour for these visits (timeouts).", default=[])
    tag = pexConfig.Field[str](doc="Free-form label copied to the output.", default="toy")


class ToyScaleTask(pipeBase.PipelineTask):
    """Multiply a toy value; optionally fail, crash, hang or burn CPU for chosen visits."""

    ConfigClass = ToyScaleConfig
    _DefaultName = "toyScale"

    def runQuantum(
        self,
        butlerQC: pipeBase.QuantumContext,
        inputRefs: pipeBase.InputQuantizedConnection,
        outputRefs: pipeBase.OutputQuantizedConnection,
    ) -> None:
        data_id = butlerQC.quantum.dataId
        inputs = butlerQC.get(inputRefs)
        outputs = self.run(inputs["inputData"], visit=data_id["visit"], detector=data_id["detector"])
        butlerQC.put(outputs, outputRefs)

    def run(self, inputData: dict[str, Any], visit: int, detector: int) -> pipeBase.Struct:
        """Scale ``inputData["value"]``.

        Parameters
        ----------
        inputData : `dict`
            Must contain a numeric ``"value"``.
        visit, detector : `int`
            Data ID of the quantum (used by the failure-injection options).

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputData``: dict with ``value``, ``visit``, ``detector``, ``tag``.
        """
        if visit in self.config.crashVisits:
            os._exit(17)
        if visit in self.config.hangVisits:
            time.sleep(3600.0)
        if visit in self.config.failVisits and (
            not self.config.failDetectors or detector in self.config.failDetectors
        ):
            raise ToyFailure(visit, detector)
        if self.config.sleep > 0:
            end = time.process_time() + self.config.sleep
            while time.process_time() < end:
                pass
        value = inputData["value"] * self.config.scale + self.config.offset
        return pipeBase.Struct(
            outputData={"value": value, "visit": visit, "detector": detector, "tag": self.config.tag}
        )


class ToySumConnections(pipeBase.PipelineTaskConnections, dimensions=("instrument", "visit")):
    inputData = cT.Input(
        doc="Scaled toy values of every detector of the visit.",
        name="toy_scaled",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
    )
    outputData = cT.Output(
        doc="Sum over detectors.",
        name="toy_sum",
        storageClass="StructuredDataDict",
        dimensions=("instrument", "visit"),
    )


class ToySumConfig(pipeBase.PipelineTaskConfig, pipelineConnections=ToySumConnections):
    pass


class ToySumTask(pipeBase.PipelineTask):
    """Sum the scaled toy values of one visit."""

    ConfigClass = ToySumConfig
    _DefaultName = "toySum"

    def run(self, inputData: list[dict[str, Any]]) -> pipeBase.Struct:
        """Sum ``value`` over the inputs.

        Parameters
        ----------
        inputData : `list` [`dict`]
            Outputs of `ToyScaleTask`.

        Returns
        -------
        result : `lsst.pipe.base.Struct`
            ``outputData``: dict with ``value`` (the sum) and ``n`` (number of inputs).
        """
        return pipeBase.Struct(outputData={"value": sum(d["value"] for d in inputData), "n": len(inputData)})


def make_toy_pipeline(with_sum: bool = True) -> pipeBase.Pipeline:
    """Return the toy pipeline: ``toyScale`` and (optionally) ``toySum``."""
    pipeline = pipeBase.Pipeline("dia_pipe toy pipeline")
    pipeline.addTask(ToyScaleTask, "toyScale")
    if with_sum:
        pipeline.addTask(ToySumTask, "toySum")
    return pipeline
