"""Registry of association algorithms, selected by name in the configuration.

A new algorithm is a subclass of `Associator` (with its own ``ConfigClass`` deriving from `AssociatorConfig`)
registered under a name from its own module::

    from lsst.dia.pipe.association import Associator, association_registry

    class MyAssociator(Associator):
        def associate(self, sources): ...

    association_registry.register("mine", MyAssociator)

after which ``config.associator.name = "mine"`` selects it; tasks never change. Built in:
``"runningList"`` (default, `RunningListAssociator`) and ``"multiMatch"`` (`MultiMatchAssociator`).
"""

from __future__ import annotations

import lsst.pex.config as pexConfig
from astropy.table import Table

from .base import AssociationResult, AssociatorConfig
from .multi_match import MultiMatchAssociator
from .running_list import RunningListAssociator

__all__ = ["association_registry", "AssociationConfig", "associate"]

association_registry = pexConfig.makeRegistry(
    "Association algorithms: DIASources of one patch -> DIAObjects.", AssociatorConfig
)
association_registry.register("runningList", RunningListAssociator)
association_registry.register("multiMatch", MultiMatchAssociator)


class AssociationConfig(pexConfig.Config):
    """Choice and configuration of the association algorithm (embed in a task config with `ConfigField`)."""

    associator = association_registry.makeField(
        doc="Association algorithm; each registered algorithm keeps its own configuration.",
        default="runningList",
    )


def associate(sources: Table, config: AssociationConfig | None = None) -> AssociationResult:
    """Associate the DIASources of one patch with the configured algorithm.

    Parameters
    ----------
    sources : `astropy.table.Table`
        DIASources (SDM ``DiaSource`` columns; at least visit, detector, midpointMjdTai, ra, dec in degrees).
    config : `AssociationConfig`, optional
        Algorithm choice and its configuration; defaults to the running list with a 0.5 arcsec tolerance.

    Returns
    -------
    result : `AssociationResult`
    """
    config = config if config is not None else AssociationConfig()
    return config.associator.apply().associate(sources)
