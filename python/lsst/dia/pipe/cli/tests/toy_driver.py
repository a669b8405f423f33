"""A driver over the toy pipeline, for tests of the command line (importable, and runnable as a script).

``python -m lsst.dia.pipe.cli.tests.toy_driver REPO --rerun OUT --id visit=1..2 ...``
"""

from __future__ import annotations

__all__ = ["TOY_SCALE_SPEC", "TOY_SPEC"]

from lsst.dia.pipe.cli import CCD_KEYS, VISIT_KEYS, DriverSpec, main
from lsst.dia.pipe.execution.tests.toy_tasks import make_toy_pipeline

TOY_SPEC = DriverSpec(
    name="toyDriver.py",
    pipeline=make_toy_pipeline,
    config_labels=("toyScale", "toySum"),
    id_keys=CCD_KEYS,
    select_keys=VISIT_KEYS,
    description="Scale toy values per visit and detector, then sum them per visit.",
)

#: The same with the per-detector task only (one quantum per data ID).
TOY_SCALE_SPEC = DriverSpec(
    name="toyScaleDriver.py",
    pipeline=lambda: make_toy_pipeline(with_sum=False),
    config_labels=("toyScale",),
    id_keys=CCD_KEYS,
)

if __name__ == "__main__":
    main(TOY_SPEC)
