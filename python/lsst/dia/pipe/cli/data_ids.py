"""The Gen2 ``--id`` grammar and its translation into a butler data query.

``--id visit=1^3..9:2 detector=0..8``: ``^`` separates values, ``a..b`` is an inclusive integer range and
``a..b:s`` one with step ``s``.  Several keys in one ``--id`` select their cross product (AND); several
``--id`` options select the union (OR).  ``--selectId`` uses the same grammar and further restricts the
inputs (AND with the ``--id`` selection).
"""

from __future__ import annotations

__all__ = ["DataIdError", "IdSelection", "build_query", "parse_id_tokens", "parse_id_values"]

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any

from lsst.daf.butler import DimensionUniverse

_RANGE = re.compile(r"^(-?\d+)\.\.(-?\d+)(?::(\d+))?$")
_INTEGER = re.compile(r"^-?\d+$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DataIdError(ValueError):
    """Malformed ``--id``/``--selectId`` argument (unknown key, bad value or range)."""


@dataclasses.dataclass(frozen=True)
class IdSelection:
    """One ``--id`` (or ``--selectId``) option: key -> values, ANDed.

    Attributes
    ----------
    values : `dict` [`str`, `tuple`]
        Values per key (ranges expanded): integers where the text is an integer, else strings;
        `build_query` converts them to the dimension's type.
    """

    values: Mapping[str, tuple[int | str, ...]]

    def __str__(self) -> str:
        return " ".join(f"{k}={'^'.join(str(v) for v in vals)}" for k, vals in self.values.items())


def parse_id_values(text: str) -> tuple[int | str, ...]:
    """Parse ``1^2..5^7..11:2`` into ``(1, 2, 3, 4, 5, 7, 9, 11)`` (``g^r`` into ``("g", "r")``).

    Raises
    ------
    DataIdError
        Empty values, or a range that is empty or has a zero step.
    """
    result: list[int | str] = []
    for part in text.split("^"):
        if not part:
            raise DataIdError(f"empty value in {text!r}")
        match = _RANGE.match(part)
        if match:
            start, stop, step = int(match[1]), int(match[2]), int(match[3] or 1)
            if step == 0 or stop < start:
                raise DataIdError(f"empty range {part!r} (expected a..b with a <= b and a step > 0)")
            result.extend(range(start, stop + 1, step))
        elif ".." in part:
            raise DataIdError(f"malformed range {part!r} (expected a..b or a..b:step with integers)")
        else:
            result.append(int(part) if _INTEGER.match(part) else part)
    return tuple(dict.fromkeys(result))


def parse_id_tokens(tokens: Sequence[str], known: Mapping[str, Any], option: str = "--id") -> IdSelection:
    """Parse the tokens of one ``--id`` option.

    Parameters
    ----------
    tokens : `list` [`str`]
        ``key=values`` tokens; none selects everything.
    known : `dict`
        The accepted keys.
    option : `str`
        Option name for messages.

    Raises
    ------
    DataIdError
        Malformed token, unknown or repeated key, bad values.
    """
    values: dict[str, tuple[int | str, ...]] = {}
    for token in tokens:
        key, sep, text = token.partition("=")
        if not sep or not _KEY.match(key):
            raise DataIdError(f"{option}: malformed {token!r} (expected key=value[^value...])")
        if key not in known:
            raise DataIdError(f"{option}: unknown key {key!r}; known keys: {', '.join(known)}")
        if key in values:
            raise DataIdError(f"{option}: key {key!r} given twice in one {option}")
        try:
            values[key] = parse_id_values(text)
        except DataIdError as exc:
            raise DataIdError(f"{option} {key}: {exc}") from None
    return IdSelection(values)


def _convert(value: int | str, python_type: type, key: str, dimension: str) -> int | str:
    if python_type is int:
        try:
            return int(value)
        except ValueError:
            raise DataIdError(f"{key}={value!r}: {dimension} values are integers") from None
    if isinstance(value, int):
        return str(value)
    return value


def build_query(
    selections: Sequence[IdSelection],
    keys: Mapping[str, str | tuple[str, ...]],
    universe: DimensionUniverse,
    prefix: str = "id",
) -> tuple[str, dict[str, Any]]:
    """Translate ``--id`` selections into a data query expression and its bind values.

    Parameters
    ----------
    selections : `list` [`IdSelection`]
        One per option; ORed.
    keys : `dict`
        Key -> dimension or alternative dimensions.
    universe : `lsst.daf.butler.DimensionUniverse`
        Gives the value type of each dimension.
    prefix : `str`
        Prefix of bind identifiers (distinguishes ``--id`` from ``--selectId``).

    Returns
    -------
    where : `str`
        Expression (empty when nothing is restricted).
    bind : `dict`
        Bind values referenced by ``where``.

    Raises
    ------
    DataIdError
        A value of the wrong type for its dimension, or a key mapped to an unknown dimension.
    """
    groups: list[str] = []
    bind: dict[str, Any] = {}
    for i, selection in enumerate(selections):
        terms = []
        for key, values in selection.values.items():
            dimensions = keys[key] if isinstance(keys[key], tuple) else (keys[key],)
            alternatives = []
            for dimension in dimensions:
                if dimension not in universe.getStaticDimensions().names:
                    raise DataIdError(f"key {key!r} maps to unknown dimension {dimension!r}")
                python_type = universe[dimension].primaryKey.getPythonType()
                name = f"{prefix}{i}_{key}_{dimension}"
                bind[name] = [_convert(v, python_type, key, dimension) for v in values]
                alternatives.append(f"{dimension} IN (:{name})")
            terms.append(alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")")
        if not terms:
            return "", {}  # an empty --id selects everything, whatever the others say
        groups.append(" AND ".join(terms))
    if not groups:
        return "", {}
    if len(groups) == 1:
        return groups[0], bind
    return " OR ".join(f"({g})" for g in groups), bind
