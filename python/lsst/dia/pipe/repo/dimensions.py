"""Dimension records for instruments, visits and sky maps defined without lsst.obs.base/lsst.skymap."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import astropy.time
import numpy as np
from lsst.daf.butler import Butler, Timespan

from ..imaging.camera import DetectorLayout
from ..skymap import RingsSkyMap
from ..skymap.geometry import polygon_from_radec

__all__ = ["VisitDefinition", "register_instrument", "register_visits", "register_skymap"]


@dataclasses.dataclass(frozen=True)
class VisitDefinition:
    """What the registry needs to know of one visit.

    Attributes
    ----------
    visit : `int`
        Visit id.
    physical_filter : `str`
        Physical filter name (registered with `register_instrument`).
    mjd : `float`
        Mid-exposure MJD (TAI).
    exposure_time : `float`
        Exposure time [s].
    detector_corners : `Mapping` [`int`, `tuple` [`numpy.ndarray`, `numpy.ndarray`]]
        Per detector, the (ra, dec) [deg] of its corners.
    target_name : `str`
        Field name.
    """

    visit: int
    physical_filter: str
    mjd: float
    exposure_time: float
    detector_corners: Mapping[int, tuple[np.ndarray, np.ndarray]]
    target_name: str = "field"


def register_instrument(
    butler: Butler,
    name: str,
    detectors: Sequence[DetectorLayout],
    filters: Mapping[str, str],
    visit_max: int = 2**30,
) -> None:
    """Register an instrument, its physical filters (``{physical_filter: band}``) and detectors."""
    registry = butler.registry
    registry.syncDimensionData(
        "instrument",
        {
            "name": name,
            "visit_max": visit_max,
            "exposure_max": visit_max,
            "detector_max": max(d.id for d in detectors) + 1,
            "class_name": "lsst.dia.pipe.repo.dimensions.register_instrument",
        },
    )
    for physical_filter, band in filters.items():
        registry.syncDimensionData(
            "physical_filter", {"instrument": name, "name": physical_filter, "band": band}
        )
    for d in detectors:
        registry.syncDimensionData(
            "detector",
            {"instrument": name, "id": d.id, "full_name": d.name, "name_in_raft": d.name, "raft": "R0",
             "purpose": "SCIENCE"},
        )


def _day_obs(mjd: float) -> int:
    t = astropy.time.Time(mjd - 0.5, format="mjd", scale="tai")  # observing day rolls over at MJD x.5
    return int(t.strftime("%Y%m%d"))


def register_visits(butler: Butler, instrument: str, visits: Iterable[VisitDefinition]) -> None:
    """Register visits with their regions and per-detector regions (for spatial joins)."""
    registry = butler.registry
    for v in visits:
        t0 = astropy.time.Time(v.mjd - 0.5 * v.exposure_time / 86400.0, format="mjd", scale="tai")
        t1 = astropy.time.Time(v.mjd + 0.5 * v.exposure_time / 86400.0, format="mjd", scale="tai")
        day = _day_obs(v.mjd)
        registry.syncDimensionData(
            "day_obs",
            {"instrument": instrument, "id": day,
             "timespan": Timespan(astropy.time.Time(_day_start(day), scale="tai"),
                                  astropy.time.Time(_day_start(day), scale="tai") + astropy.time.TimeDelta(1, format="jd"))},
        )
        all_ra = np.concatenate([np.asarray(c[0]) for c in v.detector_corners.values()])
        all_dec = np.concatenate([np.asarray(c[1]) for c in v.detector_corners.values()])
        registry.syncDimensionData(
            "visit",
            {
                "instrument": instrument,
                "id": v.visit,
                "name": f"v{v.visit}",
                "physical_filter": v.physical_filter,
                "day_obs": day,
                "seq_num": v.visit,
                "exposure_time": v.exposure_time,
                "target_name": v.target_name,
                "observation_reason": "science",
                "science_program": "dia_pipe",
                "timespan": Timespan(t0, t1),
                "region": polygon_from_radec(all_ra, all_dec),
            },
        )
        for detector, (ra, dec) in v.detector_corners.items():
            registry.syncDimensionData(
                "visit_detector_region",
                {"instrument": instrument, "visit": v.visit, "detector": int(detector),
                 "region": polygon_from_radec(ra, dec)},
            )


def _day_start(day: int) -> str:
    s = str(day)
    return f"{s[:4]}-{s[4:6]}-{s[6:]}T12:00:00"


def register_skymap(butler: Butler, skymap: RingsSkyMap, tract_patches: Mapping[int, Iterable[int]]) -> None:
    """Register a sky map and the given tracts and patches, with their (outer) regions.

    Only the tracts/patches that a repository uses are registered (a rings sky map has ~10⁴–10⁶ tracts).
    """
    registry = butler.registry
    registry.syncDimensionData(
        "skymap",
        {
            "name": skymap.name,
            "hash": skymap.hash,
            "tract_max": skymap.n_tracts,
            "patch_nx_max": skymap.max_patches_per_side,
            "patch_ny_max": skymap.max_patches_per_side,
        },
    )
    for tract_id, patch_ids in tract_patches.items():
        tract = skymap.tract(int(tract_id))
        registry.syncDimensionData(
            "tract", {"skymap": skymap.name, "id": tract.id, "region": tract.outer_region()}
        )
        records = []
        for p in patch_ids:
            patch = tract.patch(int(p))
            records.append(
                {
                    "skymap": skymap.name,
                    "tract": tract.id,
                    "id": patch.id,
                    "cell_x": patch.index[0],
                    "cell_y": patch.index[1],
                    "region": tract.patch_outer_region(patch),
                }
            )
        if records:
            registry.insertDimensionData("patch", *records, skip_existing=True)
