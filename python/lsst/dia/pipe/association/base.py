"""What every association algorithm shares: configuration, result, input checks and epoch order."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import lsst.pex.config as pexConfig
import numpy as np
from astropy.table import Table

from .sphere import arcsec_to_chord, radec_to_unit

__all__ = [
    "AssociationError",
    "MissingColumnsError",
    "NonFiniteInputError",
    "AssociationResult",
    "AssociatorConfig",
    "Associator",
    "Epochs",
    "REQUIRED_COLUMNS",
    "check_sources",
    "float_column",
    "require_columns",
    "epochs_in_time_order",
]

REQUIRED_COLUMNS = ("visit", "detector", "midpointMjdTai", "ra", "dec")
"""DiaSource columns every associator needs."""


class AssociationError(RuntimeError):
    """Base class of association input errors."""


class MissingColumnsError(AssociationError, KeyError):
    """The DIASource table lacks columns an algorithm needs.

    Parameters
    ----------
    missing : `list` [`str`]
        Absent column names.
    """

    def __init__(self, missing: list[str]):
        self.missing = list(missing)
        super().__init__(f"DIASource table lacks required column(s) {self.missing}")

    def __str__(self) -> str:
        return self.args[0]


class NonFiniteInputError(AssociationError, ValueError):
    """A column that must be finite (position, time) has NaN or infinite values.

    Parameters
    ----------
    column : `str`
        Column name.
    n_bad : `int`
        Number of non-finite values.
    first_row : `int`
        Row of the first non-finite value.
    """

    def __init__(self, column: str, n_bad: int, first_row: int):
        self.column = column
        self.n_bad = n_bad
        self.first_row = first_row
        super().__init__(f"{n_bad} non-finite value(s) in column {column!r} (first at row {first_row})")


@dataclass(frozen=True)
class AssociationResult:
    """Association of DIASources into DIAObjects.

    Attributes
    ----------
    dia_source_to_object : `numpy.ndarray` of `numpy.int64`
        For each input DIASource (input row order), the index ``0 .. n_objects - 1`` of its DIAObject, or -1
        if it belongs to none (only when an algorithm drops ambiguous matches). DIAObjects are numbered in
        the order they were created (time order of their first DIASource).
    n_objects : `int`
        Number of DIAObjects.
    ambiguous : `numpy.ndarray` of `bool`
        Per DIASource: its association was ambiguous (see the algorithm's documentation).
    """

    dia_source_to_object: np.ndarray
    n_objects: int
    ambiguous: np.ndarray

    @property
    def n_associated(self) -> int:
        """Number of DIASources that belong to a DIAObject."""
        return int(np.count_nonzero(self.dia_source_to_object >= 0))


class AssociatorConfig(pexConfig.Config):
    """Configuration shared by all associators."""

    tolerance = pexConfig.RangeField(
        dtype=float,
        doc="Maximum separation (arcsec) between a DIASource and the DIAObject it joins.",
        default=0.5,
        min=0.0,
        inclusiveMin=False,
    )


class Associator(abc.ABC):
    """Base class of association algorithms (registered in `association_registry`).

    Parameters
    ----------
    config : `AssociatorConfig` or subclass
        Configuration (the class's ``ConfigClass``).
    """

    ConfigClass: type[AssociatorConfig] = AssociatorConfig

    def __init__(self, config: AssociatorConfig | None = None):
        self.config = config if config is not None else self.ConfigClass()

    def _prepare(self, sources: Table) -> tuple[int, Epochs, np.ndarray, float]:
        """Checked inputs of an association: ``(n, epochs, unit vectors in time order, chord radius)``."""
        check_sources(sources)
        epochs = epochs_in_time_order(sources)
        vectors = radec_to_unit(float_column(sources, "ra"), float_column(sources, "dec"))[epochs.order]
        return len(sources), epochs, vectors, float(arcsec_to_chord(self.config.tolerance))

    @abc.abstractmethod
    def associate(self, sources: Table) -> AssociationResult:
        """Group the DIASources of one patch into DIAObjects.

        Parameters
        ----------
        sources : `astropy.table.Table`
            DIASources with at least the `REQUIRED_COLUMNS` (SDM ``DiaSource`` names; ra, dec in degrees).

        Returns
        -------
        result : `AssociationResult`

        Raises
        ------
        MissingColumnsError
            If a required column is absent.
        NonFiniteInputError
            If a position or time is not finite.
        """


def float_column(sources: Table, name: str) -> np.ndarray:
    """Column ``name`` as a float64 array, masked entries (e.g. Parquet nulls) as NaN."""
    return np.ma.filled(np.ma.asarray(sources[name], dtype=np.float64), np.nan)


def require_columns(sources: Table, columns: Sequence[str]) -> None:
    """Raise `MissingColumnsError` if any of ``columns`` is absent from ``sources``."""
    missing = [c for c in columns if c not in sources.colnames]
    if missing:
        raise MissingColumnsError(missing)


def check_sources(sources: Table, columns: Sequence[str] = REQUIRED_COLUMNS) -> None:
    """Raise `MissingColumnsError` / `NonFiniteInputError` unless ``sources`` can be associated."""
    require_columns(sources, columns)
    for name in ("ra", "dec", "midpointMjdTai"):
        finite = np.isfinite(float_column(sources, name))
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise NonFiniteInputError(name, len(bad), int(bad[0]))


@dataclass(frozen=True)
class Epochs:
    """DIASources split into epochs (one visit/detector each), epochs in time order.

    Attributes
    ----------
    order : `numpy.ndarray` of `numpy.int64`
        Input rows, epoch after epoch (input order within an epoch).
    bounds : `numpy.ndarray` of `numpy.int64`
        Epoch ``e`` is ``order[bounds[e]:bounds[e + 1]]``.
    """

    order: np.ndarray
    bounds: np.ndarray

    def __len__(self) -> int:
        return len(self.bounds) - 1


def epochs_in_time_order(sources: Table) -> Epochs:
    """Split DIASources into (visit, detector) epochs sorted by (midpointMjdTai, visit, detector).

    The epoch time is the earliest ``midpointMjdTai`` of its sources (all equal for a real exposure).

    Parameters
    ----------
    sources : `astropy.table.Table`
        DIASources with ``visit``, ``detector`` and ``midpointMjdTai``.

    Returns
    -------
    epochs : `Epochs`
    """
    visit = np.asarray(sources["visit"], dtype=np.int64)
    detector = np.asarray(sources["detector"], dtype=np.int64)
    time = float_column(sources, "midpointMjdTai")
    n = len(visit)
    if n == 0:
        return Epochs(np.empty(0, dtype=np.int64), np.zeros(1, dtype=np.int64))
    by_key = np.lexsort((np.arange(n), detector, visit))
    v, d = visit[by_key], detector[by_key]
    starts = np.flatnonzero(np.r_[True, (v[1:] != v[:-1]) | (d[1:] != d[:-1])])
    lengths = np.diff(np.r_[starts, n])
    epoch_time = np.minimum.reduceat(time[by_key], starts)
    epoch_order = np.lexsort((d[starts], v[starts], epoch_time))
    lengths = lengths[epoch_order]
    bounds = np.r_[0, np.cumsum(lengths)]
    # Row k of the output is row (k - bounds[e] + starts[e]) of by_key, e being the epoch of k.
    shift = np.repeat(starts[epoch_order] - bounds[:-1], lengths)
    return Epochs(by_key[np.arange(n) + shift], bounds.astype(np.int64))
