"""Algorithm selection by configuration, and adding an algorithm without touching existing code."""

import numpy as np
from astropy.table import Table

import lsst.pex.config as pexConfig
from lsst.dia.pipe.association import (
    AssociationConfig,
    AssociationResult,
    Associator,
    AssociatorConfig,
    MultiMatchAssociator,
    RunningListAssociator,
    associate,
    association_registry,
)


def _table():
    x = np.array([0.0, 0.2, 0.45, 0.6]) / 3600
    return Table(
        {
            "visit": [0, 1, 2, 3],
            "detector": [0, 0, 0, 0],
            "midpointMjdTai": [1.0, 2.0, 3.0, 4.0],
            "ra": 12.0 + x,
            "dec": np.zeros(4),
        }
    )


def test_default_is_running_list_with_half_arcsec():
    config = AssociationConfig()
    assert config.associator.name == "runningList"
    assert config.associator.active.tolerance == 0.5
    assert isinstance(config.associator.apply(), RunningListAssociator)
    assert associate(_table()).n_objects == 1


def test_select_multimatch_by_name_and_override():
    config = AssociationConfig()
    config.associator.name = "multiMatch"
    config.associator["multiMatch"].dropAmbiguous = True
    config.associator["multiMatch"].tolerance = 0.3
    associator = config.associator.apply()
    assert isinstance(associator, MultiMatchAssociator)
    assert associator.config.tolerance == 0.3 and associator.config.dropAmbiguous
    # References fixed at 0 (0.2 joins) then 0.45 -> new reference, 0.6 joins it: 2 objects.
    assert associate(_table(), config).n_objects == 2


def test_third_algorithm_plugs_in():
    class EveryoneAloneConfig(AssociatorConfig):
        label = pexConfig.Field(dtype=str, doc="unused", default="x")

    class EveryoneAlone(Associator):
        ConfigClass = EveryoneAloneConfig

        def associate(self, sources):
            n = len(sources)
            return AssociationResult(np.arange(n, dtype=np.int64), n, np.zeros(n, dtype=bool))

    association_registry.register("testEveryoneAlone", EveryoneAlone)
    try:
        config = AssociationConfig()
        config.associator.name = "testEveryoneAlone"
        assert associate(_table(), config).n_objects == 4
    finally:
        # pex_config registries have no public removal; keep repeated test runs in one process clean.
        del association_registry._dict["testEveryoneAlone"]
