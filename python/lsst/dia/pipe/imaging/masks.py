"""Conversion between dia_pipe's ``uint32`` `MaskBit` arrays and `lsst.images.Mask`.

dia_pipe writes masks with `MASK_SCHEMA`: one ``uint32`` element per pixel whose bit ``i`` is plane ``i``,
in `MaskBit` order, so conversion of our own files is a copy. Masks written by other software (LSST
calexps, ingested data) are converted plane by plane, by name, including the legacy afw plane names.
"""

from __future__ import annotations

import lsst.images as li
import numpy as np

from ..masks import MASK_DOCS, MaskBit

__all__ = ["MASK_SCHEMA", "LEGACY_PLANE_NAMES", "bits_to_mask", "mask_to_bits"]

MASK_SCHEMA = li.MaskSchema([li.MaskPlane(bit.name, MASK_DOCS[bit.name]) for bit in MaskBit], dtype=np.uint32)

#: afw-style plane names that map to our planes.
LEGACY_PLANE_NAMES: dict[str, MaskBit] = {
    "SAT": MaskBit.SATURATED,
    "INTRP": MaskBit.INTERPOLATED,
    "CR": MaskBit.COSMIC_RAY,
    "EDGE": MaskBit.DETECTION_EDGE,
    "NO_TEMPLATE": MaskBit.NO_TEMPLATE,
}


def bits_to_mask(bits: np.ndarray, bbox: li.Box, sky_projection: li.SkyProjection | None = None) -> li.Mask:
    """Return an `lsst.images.Mask` with `MASK_SCHEMA` holding ``bits``.

    Parameters
    ----------
    bits : `numpy.ndarray`
        ``(ny, nx)`` `MaskBit` values.
    bbox : `lsst.images.Box`
        Pixel bounding box of the mask (same shape as ``bits``).
    """
    mask = li.Mask(0, schema=MASK_SCHEMA, bbox=bbox, sky_projection=sky_projection)
    mask.array[..., 0] = bits.astype(np.uint32, copy=False)
    return mask


def mask_to_bits(mask: li.Mask) -> np.ndarray:
    """Return the `MaskBit` ``uint32`` array of an `lsst.images.Mask`.

    Planes are matched by name (our names, then legacy afw names); planes we do not know are ignored.
    """
    if mask.schema == MASK_SCHEMA:
        return np.array(mask.array[..., 0], dtype=np.uint32)
    out = np.zeros(mask.array.shape[:2], dtype=np.uint32)
    for name in mask.schema.names:
        bit = MaskBit.__members__.get(name) or LEGACY_PLANE_NAMES.get(name)
        if bit is not None:
            out[mask.get(name)] |= np.uint32(int(bit))
    return out
