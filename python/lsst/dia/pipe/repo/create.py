"""Create a dia_pipe butler repository from ``policy/``."""

from __future__ import annotations

import os
from pathlib import Path

from lsst.daf.butler import Butler, CollectionType, Config, DatasetType

from .collections import DEFAULT_INPUT_COLLECTION
from .policy import load_dataset_definitions, seed_config_path

__all__ = ["RepoExistsError", "create_repo", "register_dataset_types", "add_to_input_chain"]


class RepoExistsError(FileExistsError):
    """Raised when asked to create a repository where one already exists."""

    def __init__(self, root: str) -> None:
        super().__init__(f"A butler repository already exists at {root}; refusing to overwrite it.")
        self.root = root


def create_repo(root: str | os.PathLike[str]) -> Butler:
    """Create a new SQLite-backed repository at ``root`` and register the policy's dataset types.

    Parameters
    ----------
    root : path-like
        Directory of the new repository (created; must not already hold a ``butler.yaml``).

    Returns
    -------
    butler : `lsst.daf.butler.Butler`
        A writeable butler on the new repository.

    Raises
    ------
    RepoExistsError
        If ``root/butler.yaml`` exists.
    PermissionError
        If ``root`` cannot be created or written.
    """
    root = Path(root)
    if (root / "butler.yaml").exists():
        raise RepoExistsError(str(root))
    if root.exists() and not os.access(root, os.W_OK):
        raise PermissionError(f"Cannot write to {root}.")
    parent = root if root.exists() else root.parent
    if not parent.exists() or not os.access(parent, os.W_OK):
        raise PermissionError(f"Cannot create a repository at {root}: {parent} is missing or not writable.")
    Butler.makeRepo(str(root), config=Config(str(seed_config_path())))
    butler = Butler.from_config(str(root), writeable=True)
    register_dataset_types(butler)
    butler.registry.registerCollection(DEFAULT_INPUT_COLLECTION, CollectionType.CHAINED)
    return butler


def register_dataset_types(butler: Butler) -> list[str]:
    """Register every dataset type of ``policy/datasets.yaml``; return their names."""
    names = []
    for definition in load_dataset_definitions().values():
        dataset_type = DatasetType(
            definition.name,
            dimensions=butler.dimensions.conform(definition.dimensions),
            storageClass=definition.storage_class,
        )
        butler.registry.registerDatasetType(dataset_type)
        names.append(definition.name)
    return names


def add_to_input_chain(butler: Butler, run: str) -> None:
    """Append a RUN collection to the repository's default input chain (no-op if already there)."""
    butler.registry.registerCollection(DEFAULT_INPUT_COLLECTION, CollectionType.CHAINED)
    chain = list(butler.registry.getCollectionChain(DEFAULT_INPUT_COLLECTION))
    if run not in chain:
        butler.registry.setCollectionChain(DEFAULT_INPUT_COLLECTION, [run, *chain])
