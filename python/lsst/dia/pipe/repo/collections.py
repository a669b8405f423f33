"""Collection naming conventions shared by repo set-up, the simulator, ingest and the drivers."""

from __future__ import annotations

__all__ = ["DEFAULT_INPUT_COLLECTION", "RERUN_PREFIX", "rerun_collection"]

#: CHAINED collection holding every input the drivers read by default (calexps, template coadds, truth,
#: skymap and instrument curated data). Repo set-up, the simulator and ingest append their RUNs to it.
DEFAULT_INPUT_COLLECTION = "dia/inputs"

#: Prefix of the output CHAINED collection of a Gen2-style ``--rerun OUT``.
RERUN_PREFIX = "rerun/"


def rerun_collection(name: str) -> str:
    """Return the output CHAINED collection name for ``--rerun name``."""
    if not name or any(c.isspace() for c in name) or name.startswith(("/", RERUN_PREFIX)):
        raise ValueError(f"Invalid rerun name {name!r}: expected a non-empty name without spaces.")
    return RERUN_PREFIX + name
