"""The ``skyMap`` dataset: a sky map definition stored as a plain dict in the repository."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .rings import RingsSkyMap, SkyMapDefinition

__all__ = ["skymap_to_dict", "skymap_from_dict"]


def skymap_to_dict(skymap: RingsSkyMap) -> dict[str, Any]:
    """Return the storable form of a sky map (``StructuredDataDict``)."""
    return {"class": "RingsSkyMap", **dataclasses.asdict(skymap.definition)}


def skymap_from_dict(content: Mapping[str, Any]) -> RingsSkyMap:
    """Rebuild a sky map from `skymap_to_dict` output.

    Raises
    ------
    ValueError
        If the stored class is unknown or fields are missing/unexpected.
    """
    content = dict(content)
    kind = content.pop("class", None)
    if kind != "RingsSkyMap":
        raise ValueError(f"Unknown sky map class {kind!r} in skyMap dataset.")
    try:
        return RingsSkyMap(SkyMapDefinition(**content))
    except TypeError as err:
        raise ValueError(f"Invalid skyMap dataset: {err}") from None
