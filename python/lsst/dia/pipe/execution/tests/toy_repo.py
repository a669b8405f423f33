"""A tiny butler repository for the execution-layer tests and benchmarks.

Instrument ``ToyCam`` with ``n_detectors`` detectors and ``n_visits`` visits (odd visits in band ``g``,
even ones in ``r``), one ``toy_input`` (``StructuredDataDict``) per visit and detector, in the RUN
``toy/raw`` chained under `DEFAULT_INPUT_COLLECTION`.
"""

from __future__ import annotations

__all__ = ["TOY_INSTRUMENT", "make_toy_repo"]

import astropy.time
import astropy.units as u
from lsst.daf.butler import Butler, CollectionType, DatasetType, Timespan
from lsst.sphgeom import ConvexPolygon, LonLat, UnitVector3d

from ...repo.collections import DEFAULT_INPUT_COLLECTION

TOY_INSTRUMENT = "ToyCam"


def _box(ra0: float, dec0: float, ra1: float, dec1: float) -> ConvexPolygon:
    """Return the sky polygon with the given RA/Dec corners (degrees)."""
    corners = [(ra0, dec0), (ra1, dec0), (ra1, dec1), (ra0, dec1)]
    return ConvexPolygon([UnitVector3d(LonLat.fromDegrees(ra, dec)) for ra, dec in corners])


def make_toy_repo(root: str, n_visits: int = 4, n_detectors: int = 2) -> str:
    """Create the toy repository at ``root`` and return ``root``.

    Parameters
    ----------
    root : `str`
        Directory of the new repository (created).
    n_visits : `int`
        Number of visits, ids ``1 .. n_visits``.
    n_detectors : `int`
        Number of detectors, ids ``0 .. n_detectors - 1``.

    Returns
    -------
    root : `str`
        The repository root.
    """
    Butler.makeRepo(root)
    run = "toy/raw"
    with Butler.from_config(root, writeable=True, run=run) as butler:
        registry = butler.registry
        registry.syncDimensionData(
            "instrument",
            {"name": TOY_INSTRUMENT, "detector_max": 64, "visit_max": 10**6, "class_name": "toy.ToyCam"},
        )
        for band in ("g", "r"):
            registry.syncDimensionData(
                "physical_filter", {"instrument": TOY_INSTRUMENT, "name": f"ToyCam-{band}", "band": band}
            )
        for det in range(n_detectors):
            registry.syncDimensionData(
                "detector", {"instrument": TOY_INSTRUMENT, "id": det, "full_name": f"D{det:02d}"}
            )
        t0 = astropy.time.Time("2025-01-01T00:00:00", scale="tai")
        registry.syncDimensionData(
            "day_obs",
            {"instrument": TOY_INSTRUMENT, "id": 20250101, "timespan": Timespan(t0, t0 + 1.0 * u.day)},
        )
        for visit in range(1, n_visits + 1):
            registry.syncDimensionData(
                "visit",
                {
                    "instrument": TOY_INSTRUMENT,
                    "id": visit,
                    "name": f"v{visit}",
                    "physical_filter": "ToyCam-g" if visit % 2 else "ToyCam-r",
                    "day_obs": 20250101,
                    "timespan": Timespan(t0 + visit * u.min, t0 + (visit + 0.5) * u.min),
                    "region": _box(10.0, -1.0, 10.0 + 0.2 * n_detectors, 1.0),
                },
            )
            for det in range(n_detectors):
                registry.syncDimensionData(
                    "visit_detector_region",
                    {
                        "instrument": TOY_INSTRUMENT,
                        "visit": visit,
                        "detector": det,
                        "region": _box(10.0 + 0.2 * det, -1.0, 10.2 + 0.2 * det, 1.0),
                    },
                )
        dataset_type = DatasetType(
            "toy_input", ("instrument", "visit", "detector"), "StructuredDataDict", universe=butler.dimensions
        )
        registry.registerDatasetType(dataset_type)
        for visit in range(1, n_visits + 1):
            for det in range(n_detectors):
                butler.put(
                    {"value": float(100 * visit + det)},
                    "toy_input",
                    instrument=TOY_INSTRUMENT,
                    visit=visit,
                    detector=det,
                )
        registry.registerCollection(DEFAULT_INPUT_COLLECTION, CollectionType.CHAINED)
        registry.setCollectionChain(DEFAULT_INPUT_COLLECTION, [run])
    return root
