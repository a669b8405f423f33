"""Butler-side helpers shared by the tasks: read inputs into algorithm types, stamp catalog metadata."""

from __future__ import annotations

import logging

import numpy as np
from astropy.table import Table
from lsst.daf.butler import DeferredDatasetHandle

from ..exposure import Exposure
from ..imaging.visit import visit_image_to_exposure
from ..skymap import RingsSkyMap

__all__ = ["load_coadds", "select_owned"]

_log = logging.getLogger(__name__)


def load_coadds(
    handles: list[DeferredDatasetHandle], psf_grid: int
) -> list[tuple[DeferredDatasetHandle, Exposure]]:
    """Read template coadd patches as `Exposure` objects (nJy), skipping unreadable ones with a warning.

    Returns
    -------
    coadds : `list` [`tuple` [`DeferredDatasetHandle`, `Exposure`]]
        ``(handle, exposure)`` per readable patch.
    """
    out = []
    for handle in handles:
        try:
            coadd = handle.get()
        except Exception as err:  # a corrupt file must not stop the CCD when other patches cover it
            _log.warning("Skipping unreadable template %s: %s", handle.dataId, err)
            continue
        out.append((handle, visit_image_to_exposure(coadd, psf_grid=psf_grid)))
    return out


def select_owned(catalog: Table, skymap: RingsSkyMap, tract: int, patch: int) -> np.ndarray:
    """Boolean mask of catalog rows (``ra``, ``dec`` columns) owned by the inner tract and inner patch."""
    if len(catalog) == 0:
        return np.zeros(0, dtype=bool)
    ra = np.asarray(catalog["ra"], dtype=float)
    dec = np.asarray(catalog["dec"], dtype=float)
    ok = np.isfinite(ra) & np.isfinite(dec)
    out = np.zeros(len(catalog), dtype=bool)
    out[ok] = skymap.in_inner(ra[ok], dec[ok], tract, patch)
    return out
