"""Repair of calibrated images before subtraction: cosmic rays missed upstream, masked-pixel interpolation.

- `find_cosmic_rays`: pixels sharper than the PSF allows (the "condition 3" test of LSST's findCosmicRays),
  grown along their track.
- `interpolate_masked`: replace pixels by the mean of usable neighbours.
- `interpolate_along_rows`: replace pixels by linear interpolation along their row (column-like defects).
- `repair_cosmic_rays`: both, in place on an `~lsst.dia.pipe.exposure.Exposure`, with the mask bits set.
"""

from .config import CosmicRayConfig
from .cosmic_rays import find_cosmic_rays, repair_cosmic_rays
from .interpolate import interpolate_along_rows, interpolate_masked

__all__ = ["CosmicRayConfig", "find_cosmic_rays", "interpolate_along_rows", "interpolate_masked", "repair_cosmic_rays"]
