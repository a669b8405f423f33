"""Data-quality (DQ) planes of survey pipelines -> dia_pipe `MaskBit` masks.

Conventions
-----------
``cp-codes``
    NOIRLab Community Pipeline InstCal images from version 3.5 on: one integer code per pixel,
    1 bad, 2 no value, 3 saturated, 4 bleed trail, 5 cosmic ray, 6 low weight, 7 multi-exposure transient,
    8 long streak.
``cp-bits``
    Community Pipeline before version 3.5: bits 1 bad, 2 saturated, 4 interpolated, 8 low signal,
    16 cosmic ray, 32 bright star, 64 bleed trail, 128 transient, 256/512 edge, 1024 streak.
``nonzero``
    Any other pipeline: every non-zero DQ pixel is BAD.

The multi-exposure "transient" flags become SUSPECT, not BAD: a difference-imaging pipeline must not mask
the very transients it looks for.
"""

from __future__ import annotations

import re

import numpy as np
from scipy import ndimage

from ..masks import MaskBit

__all__ = ["DQ_CONVENTIONS", "dq_to_mask", "guess_dq_convention"]

DQ_CONVENTIONS = ("auto", "cp-codes", "cp-bits", "nonzero")

_CP_CODES: dict[int, MaskBit] = {
    1: MaskBit.BAD,
    2: MaskBit.NO_DATA | MaskBit.BAD,
    3: MaskBit.SATURATED,
    4: MaskBit.SATURATED,
    5: MaskBit.COSMIC_RAY,
    6: MaskBit.BAD,
    7: MaskBit.SUSPECT,
    8: MaskBit.STREAK,
}

_CP_BITS: dict[int, MaskBit] = {
    1: MaskBit.BAD,
    2: MaskBit.SATURATED,
    4: MaskBit.INTERPOLATED,
    8: MaskBit.BAD,
    16: MaskBit.COSMIC_RAY,
    32: MaskBit.SUSPECT,
    64: MaskBit.SATURATED,
    128: MaskBit.SUSPECT,
    256: MaskBit.BAD,
    512: MaskBit.BAD,
    1024: MaskBit.STREAK,
}


def guess_dq_convention(plver: str | None) -> str:
    """Choose the DQ convention from a Community Pipeline version string (header ``PLVER``).

    Returns ``"cp-codes"`` for CP 3.5 and later, ``"cp-bits"`` before, ``"nonzero"`` without a version.
    """
    if not plver:
        return "nonzero"
    match = re.search(r"(\d+)\.(\d+)", str(plver))
    if match is None:
        return "nonzero"
    major, minor = int(match.group(1)), int(match.group(2))
    return "cp-codes" if (major, minor) >= (3, 5) else "cp-bits"


def dq_to_mask(dq: np.ndarray, convention: str) -> np.ndarray:
    """Convert a DQ plane to a ``uint32`` `MaskBit` mask.

    Parameters
    ----------
    dq : `numpy.ndarray`
        Integer DQ plane ``(ny, nx)``.
    convention : `str`
        ``"cp-codes"``, ``"cp-bits"`` or ``"nonzero"`` (see the module docstring).

    Returns
    -------
    mask : `numpy.ndarray`
        ``(ny, nx)`` ``uint32`` MaskBit values.

    Raises
    ------
    ValueError
        For an unknown convention.
    """
    dq = np.asarray(dq).astype(np.int64)
    out = np.zeros(dq.shape, dtype=np.uint32)
    if convention == "nonzero":
        out[dq != 0] = np.uint32(MaskBit.BAD)
    elif convention == "cp-codes":
        # "bad" rings around saturated cores are part of the saturation (as legacypipe treats them)
        dq = dq.copy()
        dq[(dq == 1) & ndimage.binary_dilation(dq == 3)] = 3
        lut = np.zeros(max(_CP_CODES) + 1, dtype=np.uint32)
        for code, bit in _CP_CODES.items():
            lut[code] = np.uint32(bit)
        known = (dq >= 0) & (dq < lut.size)
        out[known] = lut[dq[known]]
        out[~known] = np.uint32(MaskBit.BAD)
    elif convention == "cp-bits":
        for value, bit in _CP_BITS.items():
            out[(dq & value) != 0] |= np.uint32(bit)
        unknown = dq & ~np.int64(sum(_CP_BITS))
        out[unknown != 0] |= np.uint32(MaskBit.SUSPECT)
    else:
        raise ValueError(f"Unknown DQ convention {convention!r}; expected one of {DQ_CONVENTIONS[1:]}.")
    return out
