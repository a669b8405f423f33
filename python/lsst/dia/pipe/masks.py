"""Mask planes used by dia_pipe algorithms.

Algorithm code works with a plain ``uint32`` bit mask per pixel, with the bits of `MaskBit`. The names are
the ``lsst.images`` plane names, so conversion to and from `lsst.images.Mask` is by name
(see `lsst.dia.pipe.imaging.masks`).
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["MaskBit", "MASK_DOCS", "planes_set", "any_set", "mask_bits"]


class MaskBit(enum.IntFlag):
    """Bits of the per-pixel ``uint32`` mask used by every algorithm."""

    BAD = 1 << 0
    SATURATED = 1 << 1
    INTERPOLATED = 1 << 2
    COSMIC_RAY = 1 << 3
    DETECTION_EDGE = 1 << 4
    SUSPECT = 1 << 5
    NO_DATA = 1 << 6
    DETECTED = 1 << 7
    DETECTED_NEGATIVE = 1 << 8
    SAT_TEMPLATE = 1 << 9
    NO_TEMPLATE = 1 << 10
    STREAK = 1 << 11


MASK_DOCS: dict[str, str] = {
    "BAD": "Bad pixel in the instrument (bad column, hot pixel).",
    "SATURATED": "Pixel was saturated or affected by saturation in a neighboring pixel.",
    "INTERPOLATED": "Original pixel value was interpolated.",
    "COSMIC_RAY": "A cosmic ray affected this pixel.",
    "DETECTION_EDGE": "Pixel is too close to the image edge for detection or convolution to be trusted.",
    "SUSPECT": "Pixel was close to the saturation level.",
    "NO_DATA": "No data was available for this pixel.",
    "DETECTED": "Pixel was part of a detected source.",
    "DETECTED_NEGATIVE": "Pixel was part of a detected source with negative flux.",
    "SAT_TEMPLATE": "Template pixel was saturated.",
    "NO_TEMPLATE": "No template coverage for this pixel (difference undefined).",
    "STREAK": "An extended streak affected this pixel.",
}


def planes_set(mask: np.ndarray, bits: int | MaskBit) -> np.ndarray:
    """Return a boolean array, true where any of ``bits`` is set in ``mask``.

    Parameters
    ----------
    mask : `numpy.ndarray` of `numpy.uint32`
        Per-pixel bit mask.
    bits : `int` or `MaskBit`
        OR of the bits to test.
    """
    return (mask & np.uint32(int(bits))) != 0


def any_set(mask: np.ndarray, bits: int | MaskBit) -> int:
    """Return the OR of ``mask`` over all pixels, restricted to ``bits``."""
    if mask.size == 0:
        return 0
    return int(np.bitwise_or.reduce(mask.ravel() & np.uint32(int(bits))))


def mask_bits(names) -> int:
    """OR of the `MaskBit` bits named in ``names`` (e.g. a config's mask-plane list).

    Raises
    ------
    KeyError
        If a name is not a `MaskBit` member.
    """
    bits = 0
    for name in names:
        bits |= int(MaskBit[name])
    return bits
