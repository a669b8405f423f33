"""Association of DIASources into DIAObjects, and DIAObject summaries.

Pure algorithm code on astropy Tables (SDM ``DiaSource`` / ``DiaObject`` column names); no butler.

Typical use (one patch)::

    from lsst.dia.pipe.association import AssociationConfig, associate, summarize_dia_objects
    from lsst.dia.pipe.ids import dia_object_ids_for_patch

    result = associate(dia_sources, AssociationConfig())          # running list, 0.5 arcsec
    ids = dia_object_ids_for_patch(tract, patch, result.n_objects)
    dia_objects = summarize_dia_objects(dia_sources, result.dia_source_to_object, "ugrizy", ids)
    id_table = make_dia_object_id_table(ids, dia_sources, result.dia_source_to_object)
"""

from .assignment import assign_one_to_one
from .base import (
    REQUIRED_COLUMNS,
    AssociationError,
    AssociationResult,
    Associator,
    AssociatorConfig,
    Epochs,
    MissingColumnsError,
    NonFiniteInputError,
    check_sources,
    epochs_in_time_order,
    require_columns,
)
from .multi_match import MultiMatchAssociator, MultiMatchConfig
from .registry import AssociationConfig, associate, association_registry
from .running_list import RunningListAssociator, RunningListConfig
from .sky_index import SkyIndex
from .sphere import arcsec_to_chord, chord_to_arcsec, normalize, radec_to_unit, unit_to_radec
from .summary import (
    dia_object_column_specs,
    make_dia_object_id_arrow,
    make_dia_object_id_table,
    summarize_dia_objects,
)

__all__ = [
    "REQUIRED_COLUMNS",
    "AssociationConfig",
    "AssociationError",
    "AssociationResult",
    "Associator",
    "AssociatorConfig",
    "Epochs",
    "MissingColumnsError",
    "MultiMatchAssociator",
    "MultiMatchConfig",
    "NonFiniteInputError",
    "RunningListAssociator",
    "RunningListConfig",
    "SkyIndex",
    "arcsec_to_chord",
    "assign_one_to_one",
    "associate",
    "association_registry",
    "check_sources",
    "chord_to_arcsec",
    "dia_object_column_specs",
    "epochs_in_time_order",
    "make_dia_object_id_arrow",
    "make_dia_object_id_table",
    "normalize",
    "radec_to_unit",
    "require_columns",
    "summarize_dia_objects",
    "unit_to_radec",
]
