"""The Gen2-style command line shared by the dia_pipe drivers.

A driver is declared by a `DriverSpec` (pipeline, configurable task labels, ``--id`` keys) and run by
`run_driver`, which parses the Gen2 grammar (`make_parser`/`parse_arguments`), builds a
`lsst.dia.pipe.execution.RunRequest` and hands it to the execution layer.  Example ``bin/`` script::

    from lsst.dia.pipe.cli import CCD_KEYS, DriverSpec, main

    SPEC = DriverSpec(
        name="imageDifferenceDriver.py",
        pipeline=lambda: Pipeline.from_uri(PIPELINE_YAML + "#imageDifference"),
        config_labels=("imageDifference",),
        id_keys=CCD_KEYS,
    )

    if __name__ == "__main__":
        main(SPEC)
"""

from .arguments import DriverArguments, ShowRequest, make_parser, parse_arguments, parse_walltime
from .config_overrides import ConfigOverride, ConfigOverrideError, apply_overrides, configure_pipeline
from .data_ids import DataIdError, IdSelection, build_query, parse_id_tokens, parse_id_values
from .driver import EXIT_INTERRUPTED, EXIT_USAGE, main, run_driver
from .spec import CCD_KEYS, FILTER_DIMENSIONS, PATCH_KEYS, VISIT_KEYS, DriverSpec, load_pipeline

__all__ = [
    "CCD_KEYS",
    "EXIT_INTERRUPTED",
    "EXIT_USAGE",
    "FILTER_DIMENSIONS",
    "PATCH_KEYS",
    "VISIT_KEYS",
    "ConfigOverride",
    "ConfigOverrideError",
    "DataIdError",
    "DriverArguments",
    "DriverSpec",
    "IdSelection",
    "ShowRequest",
    "apply_overrides",
    "build_query",
    "configure_pipeline",
    "load_pipeline",
    "main",
    "make_parser",
    "parse_arguments",
    "parse_id_tokens",
    "parse_id_values",
    "parse_walltime",
    "run_driver",
]
