"""The three Gen2-style drivers (and their pipelines), as `~lsst.dia.pipe.cli.spec.DriverSpec` s."""

from __future__ import annotations

from pathlib import Path

from .cli.spec import CCD_KEYS, PATCH_KEYS, VISIT_KEYS, DriverSpec
from .repo.policy import policy_dir

__all__ = ["pipelines_dir", "IMAGE_DIFFERENCE", "ASSOCIATION", "FORCED_PHOT_CCD_DIA", "DRIVERS"]


def pipelines_dir() -> Path:
    """The ``pipelines/`` directory beside ``policy/``."""
    return policy_dir().parent / "pipelines"


IMAGE_DIFFERENCE = DriverSpec(
    name="imageDifferenceDriver.py",
    pipeline=str(pipelines_dir() / "imageDifference.yaml"),
    config_labels=("imageDifference",),
    id_keys=CCD_KEYS,
    description="Difference imaging per visit/detector: warp and PSF-match the overlapping template patches "
    "(Alard-Lupton by default, ZOGY with -C config/zogy.py), subtract, detect and measure DIASources.",
)

ASSOCIATION = DriverSpec(
    name="associationDriver.py",
    pipeline=str(pipelines_dir() / "association.yaml"),
    config_labels=("association",),
    id_keys=PATCH_KEYS,
    select_keys=VISIT_KEYS,
    description="Association per tract/patch: DIASources inside the inner patch and inner tract of the "
    "requested filters -> DIAObjects (running list by default, MultiMatch as alternative).",
)

FORCED_PHOT_CCD_DIA = DriverSpec(
    name="forcedPhotCcdDiaDriver.py",
    pipeline=str(pipelines_dir() / "forcedPhotCcdDia.yaml"),
    config_labels=("forcedPhotCcdDia", "combineForced"),
    id_keys=CCD_KEYS,
    description="Forced PSF photometry of every DIAObject on every visit/detector (difference and science "
    "images), then multi-band light curves per patch.",
)

DRIVERS = {spec.name: spec for spec in (IMAGE_DIFFERENCE, ASSOCIATION, FORCED_PHOT_CCD_DIA)}
