"""Declaration of a Gen2-style driver: its pipeline, the tasks ``-C``/``-c`` configure, its ``--id`` keys."""

from __future__ import annotations

__all__ = [
    "CCD_KEYS",
    "DriverSpec",
    "FILTER_DIMENSIONS",
    "PATCH_KEYS",
    "VISIT_KEYS",
    "load_pipeline",
]

import argparse
import dataclasses
from collections.abc import Callable, Mapping

from lsst.pex.config import Config
from lsst.pipe.base import Pipeline

from ..repo.collections import DEFAULT_INPUT_COLLECTION

#: ``filter=`` values match either the abstract band (``g``) or the instrument's physical filter
#: (``LSST-g``): the data query ORs both dimensions.
FILTER_DIMENSIONS = ("band", "physical_filter")

#: Keys of CCD-level drivers (imageDifference, forcedPhotCcdDia): ``ccd`` is the Gen2 ``ccdKey`` alias of
#: ``detector``.
CCD_KEYS: Mapping[str, str | tuple[str, ...]] = {
    "instrument": "instrument",
    "visit": "visit",
    "detector": "detector",
    "ccd": "detector",
    "filter": FILTER_DIMENSIONS,
    "band": "band",
    "physical_filter": "physical_filter",
}

#: Keys selecting visits (``--selectId`` of association).
VISIT_KEYS: Mapping[str, str | tuple[str, ...]] = CCD_KEYS

#: Keys of tract/patch drivers (association).
PATCH_KEYS: Mapping[str, str | tuple[str, ...]] = {
    "tract": "tract",
    "patch": "patch",
    "skymap": "skymap",
    "filter": FILTER_DIMENSIONS,
    "band": "band",
}


@dataclasses.dataclass(frozen=True)
class DriverSpec:
    """Everything that distinguishes one driver from another.

    Attributes
    ----------
    name : `str`
        Program name shown in usage and error messages (e.g. ``"imageDifferenceDriver.py"``).
    pipeline : callable or `str`
        A factory returning the `lsst.pipe.base.Pipeline`, or the path/URI of a pipeline YAML (a
        ``#label,...`` fragment selects a subset).
    config_labels : `tuple` [`str`, ...]
        Labels of the tasks ``-C``/``-c`` configure.  The first is the default target; a ``-c`` name or an
        attribute of ``config`` in a ``-C`` file whose first component is another of these labels
        (``-c association.radius=1``) configures that task instead.
    id_keys : `dict` [`str`, `str` or `tuple` [`str`, ...]]
        ``--id`` keys and the Gen3 dimension they select; a tuple lists alternative dimensions, any of
        which may match (``filter`` -> band or physical_filter).
    select_keys : `dict` [`str`, `str` or `tuple` [`str`, ...]]
        ``--selectId`` keys (restricting which inputs contribute, e.g. visits for association); empty
        means the driver has no ``--selectId``.
    description : `str`
        One-paragraph description for ``--help``.
    add_arguments : callable, optional
        ``add_arguments(parser)`` adds driver-specific options.
    apply_arguments : callable, optional
        ``apply_arguments(namespace, configs)`` turns those options into config changes; ``configs`` maps
        task label to (unfrozen) config, and is applied after ``-C``/``-c``.
    """

    name: str
    pipeline: Callable[[], Pipeline] | str
    config_labels: tuple[str, ...]
    id_keys: Mapping[str, str | tuple[str, ...]] = dataclasses.field(default_factory=lambda: dict(CCD_KEYS))
    select_keys: Mapping[str, str | tuple[str, ...]] = dataclasses.field(default_factory=dict)
    description: str = ""
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None
    apply_arguments: Callable[[argparse.Namespace, dict[str, Config]], None] | None = None
    default_inputs: tuple[str, ...] = (DEFAULT_INPUT_COLLECTION,)

    def __post_init__(self) -> None:
        if not self.config_labels:
            raise ValueError(f"driver {self.name!r} must name at least one task label in config_labels")
        if not self.id_keys:
            raise ValueError(f"driver {self.name!r} must accept at least one --id key")


def load_pipeline(spec: DriverSpec) -> Pipeline:
    """Return the driver's pipeline (calling its factory or reading its YAML)."""
    if isinstance(spec.pipeline, str):
        return Pipeline.from_uri(spec.pipeline)
    return spec.pipeline()
