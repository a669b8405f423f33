"""Tract/patch geometry: a rings sky map with inner (owned) and outer (overlapping) regions."""

from .geometry import PatchInfo, TractInfo
from .rings import RingsSkyMap, SkyMapDefinition

__all__ = ["PatchInfo", "RingsSkyMap", "SkyMapDefinition", "TractInfo"]
