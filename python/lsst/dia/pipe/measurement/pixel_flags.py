"""SDM ``pixelFlags_*`` columns from mask bits in a source's footprint and around its centre."""

from __future__ import annotations

import numpy as np

from ..masks import MaskBit

__all__ = ["PIXEL_FLAG_BITS", "PIXEL_FLAG_COLUMNS", "center_bits", "pixel_flag_columns"]

#: SDM flag suffix -> mask bits that raise it. ``nodata`` includes pixels without template coverage (the
#: difference is undefined there); ``saturated`` includes saturation in the template.
PIXEL_FLAG_BITS: dict[str, int] = {
    "bad": int(MaskBit.BAD),
    "cr": int(MaskBit.COSMIC_RAY),
    "edge": int(MaskBit.DETECTION_EDGE),
    "nodata": int(MaskBit.NO_DATA | MaskBit.NO_TEMPLATE),
    "interpolated": int(MaskBit.INTERPOLATED),
    "saturated": int(MaskBit.SATURATED | MaskBit.SAT_TEMPLATE),
    "suspect": int(MaskBit.SUSPECT),
    "streak": int(MaskBit.STREAK),
}

_CENTER = ("cr", "nodata", "interpolated", "saturated", "suspect", "streak")

#: Output columns, in SDM order.
PIXEL_FLAG_COLUMNS: tuple[str, ...] = (
    "pixelFlags",
    "pixelFlags_bad",
    "pixelFlags_cr",
    "pixelFlags_crCenter",
    "pixelFlags_edge",
    "pixelFlags_nodata",
    "pixelFlags_nodataCenter",
    "pixelFlags_interpolated",
    "pixelFlags_interpolatedCenter",
    "pixelFlags_offimage",
    "pixelFlags_saturated",
    "pixelFlags_saturatedCenter",
    "pixelFlags_suspect",
    "pixelFlags_suspectCenter",
    "pixelFlags_streak",
    "pixelFlags_streakCenter",
)


def center_bits(mask: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """OR of the mask over the 3×3 pixels around integer pixels ``(cx, cy)`` (only pixels on the image)."""
    ny, nx = mask.shape
    offsets = np.arange(-1, 2)
    yy = np.asarray(cy, np.int64)[:, None] + offsets
    xx = np.asarray(cx, np.int64)[:, None] + offsets
    ok = ((yy >= 0) & (yy < ny))[:, :, None] & ((xx >= 0) & (xx < nx))[:, None, :]
    values = np.where(ok, mask[yy.clip(0, ny - 1)[:, :, None], xx.clip(0, nx - 1)[:, None, :]], 0)
    return np.bitwise_or.reduce(values.reshape(len(yy), -1), axis=1).astype(np.uint32)


def pixel_flag_columns(
    footprint_bits: np.ndarray, centre_bits: np.ndarray, off_border: np.ndarray, off_image: np.ndarray
) -> dict[str, np.ndarray]:
    """SDM pixel flag columns.

    Parameters
    ----------
    footprint_bits : `numpy.ndarray`
        Per source, OR of the mask over its footprint (or measurement stamp).
    centre_bits : `numpy.ndarray`
        Per source, OR of the mask over the 3×3 pixels around its centre.
    off_border : `numpy.ndarray`
        Per source, part of the footprint or stamp lies beyond the image border (raises ``pixelFlags_edge``).
    off_image : `numpy.ndarray`
        Per source, the centre is off the image (raises ``pixelFlags_offimage``, ``pixelFlags_edge`` and the
        general ``pixelFlags``: nothing can be measured there).

    Returns
    -------
    columns : `dict` [`str`, `numpy.ndarray`]
        Boolean arrays keyed by `PIXEL_FLAG_COLUMNS`.
    """
    fp = np.asarray(footprint_bits, np.uint32)
    ce = np.asarray(centre_bits, np.uint32)
    off_image = np.asarray(off_image, bool)
    cols = {"pixelFlags": off_image.copy()}
    for name, bits in PIXEL_FLAG_BITS.items():
        cols[f"pixelFlags_{name}"] = (fp & np.uint32(bits)) != 0
        if name in _CENTER:
            cols[f"pixelFlags_{name}Center"] = (ce & np.uint32(bits)) != 0
    cols["pixelFlags_edge"] |= np.asarray(off_border, bool) | off_image
    cols["pixelFlags_offimage"] = off_image
    return {name: cols[name] for name in PIXEL_FLAG_COLUMNS}
