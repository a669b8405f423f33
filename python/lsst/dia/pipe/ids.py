"""64-bit identifiers of DIASources and DIAObjects.

Every id is a non-negative ``int64`` made of bit fields, so it is unique across the whole repository and can
be decoded without a lookup table:

========== =========================================================== ======== ======================
id         fields, most significant first                              bits     largest value
========== =========================================================== ======== ======================
DIASource  visit | detector | sequence number within (visit, detector) 32/9/22  4 294 967 295 / 511 /
                                                                                4 194 303
DIAObject  tract | patch | sequence number within (tract, patch)       16/14/33 65 535 / 16 383 /
                                                                                8 589 934 591
========== =========================================================== ======== ======================

The budgets cover DC2 (visits < 2.6e6, 189 science detectors, 18 938 tracts of 7×7 patches), HSC and the
simulated surveys of `lsst.dia.pipe.sim`; a few thousand DIASources per detector and < 1e6 DIAObjects per
patch leave orders of magnitude of margin. LSSTCam exposure ids (``YYYYMMDDNNNNN``, ≈ 2^41) do not fit the
visit field: pass a compact visit index instead. Values outside a field raise `IdFieldOverflowError`.

All functions are vectorised: arguments broadcast against each other like numpy ufunc arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "IdFieldOverflowError",
    "IdLayout",
    "DIA_SOURCE_ID_LAYOUT",
    "DIA_OBJECT_ID_LAYOUT",
    "pack_dia_source_id",
    "unpack_dia_source_id",
    "pack_dia_object_id",
    "unpack_dia_object_id",
    "dia_object_ids_for_patch",
]


class IdFieldOverflowError(ValueError):
    """A value does not fit in its bit field of a packed id.

    Parameters
    ----------
    field : `str`
        Name of the field (e.g. ``"visit"``).
    value : `int`
        First offending value.
    n_bits : `int`
        Width of the field; valid values are ``0 <= value < 2**n_bits``.
    n_bad : `int`
        Number of offending values in the call.
    """

    def __init__(self, field: str, value: int, n_bits: int, n_bad: int = 1):
        self.field = field
        self.value = value
        self.n_bits = n_bits
        self.n_bad = n_bad
        super().__init__(
            f"{field}={value} does not fit in {n_bits} bits (valid 0..{(1 << n_bits) - 1}); "
            f"{n_bad} offending value(s)"
        )


@dataclass(frozen=True)
class IdLayout:
    """Bit layout of a packed id: named fields, most significant first, 63 bits in total at most.

    Parameters
    ----------
    fields : `tuple` [`tuple` [`str`, `int`], ...]
        ``(name, n_bits)`` for each field, most significant first.
    """

    fields: tuple[tuple[str, int], ...]

    def __post_init__(self) -> None:
        if sum(n for _, n in self.fields) > 63:
            raise ValueError(f"id layout {self.fields} needs more than 63 bits")

    def max_value(self, name: str) -> int:
        """Largest value the field ``name`` can hold."""
        return (1 << dict(self.fields)[name]) - 1

    def pack(self, *values: ArrayLike) -> np.ndarray:
        """Pack one value per field (broadcast together) into ``int64`` ids.

        Raises
        ------
        IdFieldOverflowError
            If a value is negative, not integral, or too large for its field.
        """
        if len(values) != len(self.fields):
            raise TypeError(f"expected {len(self.fields)} fields {self.fields}, got {len(values)} values")
        arrays = np.broadcast_arrays(*(np.asarray(v) for v in values))
        packed = np.zeros(arrays[0].shape, dtype=np.int64)
        for (name, n_bits), array in zip(self.fields, arrays):
            field = _checked_field(name, array, n_bits)
            packed = (packed << np.int64(n_bits)) | field
        return packed

    def unpack(self, ids: ArrayLike) -> tuple[np.ndarray, ...]:
        """Split ``int64`` ids into one ``int64`` array per field, most significant first.

        Raises
        ------
        IdFieldOverflowError
            If an id is negative or uses bits above the layout.
        """
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"ids must be integers, got dtype {ids.dtype}")
        total = sum(n for _, n in self.fields)
        ids = _checked_field("id", ids, total)
        out = []
        shift = total
        for _, n_bits in self.fields:
            shift -= n_bits
            out.append((ids >> np.int64(shift)) & np.int64((1 << n_bits) - 1))
        return tuple(out)


def _checked_field(name: str, array: np.ndarray, n_bits: int) -> np.ndarray:
    """Return ``array`` as ``int64`` after checking ``0 <= array < 2**n_bits``."""
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array) & (array == np.round(array))):
            raise TypeError(f"{name} values must be integers, got non-integral floats")
    elif array.dtype.kind not in "iub":
        raise TypeError(f"{name} values must be integers, got dtype {array.dtype}")
    if array.dtype.kind == "u" and array.dtype.itemsize == 8:
        bad = array >= np.uint64(1 << n_bits)
    else:
        bad = (array < 0) | (array >= (1 << n_bits))
    if np.any(bad):
        raise IdFieldOverflowError(name, int(array[bad].flat[0]), n_bits, int(np.count_nonzero(bad)))
    return array.astype(np.int64)


DIA_SOURCE_ID_LAYOUT = IdLayout((("visit", 32), ("detector", 9), ("seq", 22)))
"""Bit layout of DIASource ids: visit (32 bits), detector (9 bits), sequence number (22 bits)."""

DIA_OBJECT_ID_LAYOUT = IdLayout((("tract", 16), ("patch", 14), ("seq", 33)))
"""Bit layout of DIAObject ids: tract (16 bits), patch (14 bits), sequence number (33 bits)."""


def pack_dia_source_id(visit: ArrayLike, detector: ArrayLike, seq: ArrayLike) -> np.ndarray:
    """Pack (visit, detector, sequence number) into DIASource ids.

    Parameters
    ----------
    visit : array_like of `int`
        Visit id, ``0 <= visit < 2**32``.
    detector : array_like of `int`
        Detector id, ``0 <= detector < 512``.
    seq : array_like of `int`
        Sequence number of the DIASource within its (visit, detector), ``0 <= seq < 2**22``.

    Returns
    -------
    ids : `numpy.ndarray` of `numpy.int64`
        Packed ids, shape of the broadcast arguments (0-d for scalars).

    Raises
    ------
    IdFieldOverflowError
        If a value does not fit in its field.
    """
    return DIA_SOURCE_ID_LAYOUT.pack(visit, detector, seq)


def unpack_dia_source_id(ids: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split DIASource ids into ``(visit, detector, seq)`` int64 arrays (inverse of `pack_dia_source_id`)."""
    return DIA_SOURCE_ID_LAYOUT.unpack(ids)


def pack_dia_object_id(tract: ArrayLike, patch: ArrayLike, seq: ArrayLike) -> np.ndarray:
    """Pack (tract, patch, sequence number) into DIAObject ids.

    Parameters
    ----------
    tract : array_like of `int`
        Tract id, ``0 <= tract < 2**16``.
    patch : array_like of `int`
        Sequential patch index within the tract, ``0 <= patch < 2**14``.
    seq : array_like of `int`
        Sequence number of the DIAObject within its patch, ``0 <= seq < 2**33``.

    Returns
    -------
    ids : `numpy.ndarray` of `numpy.int64`
        Packed ids, shape of the broadcast arguments (0-d for scalars).

    Raises
    ------
    IdFieldOverflowError
        If a value does not fit in its field.
    """
    return DIA_OBJECT_ID_LAYOUT.pack(tract, patch, seq)


def unpack_dia_object_id(ids: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split DIAObject ids into ``(tract, patch, seq)`` int64 arrays (inverse of `pack_dia_object_id`)."""
    return DIA_OBJECT_ID_LAYOUT.unpack(ids)


def dia_object_ids_for_patch(tract: int, patch: int, n_objects: int) -> np.ndarray:
    """Ids of the ``n_objects`` DIAObjects of one patch, in association order.

    Sequence numbers start at 1, so no DIAObject id is ever 0 (0 can then mean "no DIAObject" in a
    DIASource's ``diaObjectId`` column).

    Parameters
    ----------
    tract, patch : `int`
        Tract id and sequential patch index.
    n_objects : `int`
        Number of DIAObjects (e.g. ``AssociationResult.n_objects``).

    Returns
    -------
    ids : `numpy.ndarray` of `numpy.int64`, shape ``(n_objects,)``
    """
    return pack_dia_object_id(tract, patch, np.arange(1, n_objects + 1, dtype=np.int64))
