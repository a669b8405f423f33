"""Dataset type definitions from ``policy/datasets.yaml`` and the repo seed config ``policy/seed.yaml``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

__all__ = ["DatasetDefinition", "policy_dir", "load_dataset_definitions", "seed_config_path"]


def policy_dir() -> Path:
    """Return the ``policy/`` directory (``$DIA_PIPE_POLICY_DIR`` overrides the in-tree location)."""
    env = os.environ.get("DIA_PIPE_POLICY_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[5] / "policy"


@dataclasses.dataclass(frozen=True)
class DatasetDefinition:
    """One dataset type of the policy.

    Attributes
    ----------
    name : `str`
        Dataset type name (Gen2 names: ``calexp``, ``deepDiff_diaSrc`` …).
    dimensions : `tuple` [`str`, ...]
        Butler dimensions.
    storage_class : `str`
        Butler storage class.
    doc : `str`
        What the dataset holds.
    """

    name: str
    dimensions: tuple[str, ...]
    storage_class: str
    doc: str


def load_dataset_definitions(path: Path | None = None) -> dict[str, DatasetDefinition]:
    """Read the dataset definitions of ``policy/datasets.yaml``.

    Raises
    ------
    ValueError
        If an entry lacks dimensions or a storage class.
    """
    path = path or policy_dir() / "datasets.yaml"
    with open(path) as f:
        content = yaml.safe_load(f)
    out = {}
    for name, entry in content["datasets"].items():
        try:
            out[name] = DatasetDefinition(
                name, tuple(entry["dimensions"]), entry["storageClass"], entry.get("doc", "")
            )
        except KeyError as err:
            raise ValueError(f"{path}: dataset {name!r} lacks {err.args[0]!r}.") from None
    return out


def seed_config_path() -> Path:
    """Path of the butler seed config merged into new repos."""
    return policy_dir() / "seed.yaml"
