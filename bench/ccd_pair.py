"""One dc2-like 4k × 4k science CCD and the template patches that cover it, rendered once and cached.

The pair is what ``makeDiaSimRepo.py --preset dc2`` would write for one visit/detector: the ``dc2`` survey
preset with its field moved onto a tract corner (so that the detector draws templates from several
tracts), the calexp of ``visit``/``detector`` rendered with `lsst.dia.pipe.sim.render_visit_detector`, and
every template patch of the ``dc2`` sky map whose outer box overlaps the detector, rendered with
`lsst.dia.pipe.sim.render_coadd`.  Patch rendering is slow (a few seconds per 4k patch), so the pixel arrays
are cached under ``bench/cache/`` as ``.npz`` files, in a directory whose name carries a hash of the
simulator's source: a change to the simulator re-renders.  WCSs and PSFs are rebuilt from the survey plan
and sky map on load (they are cheap and deterministic).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import os
from pathlib import Path

import numpy as np
from astropy.table import Table

from lsst.dia.pipe import sim
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.repo.simulate import SIM_SKYMAPS, field_overrides
from lsst.dia.pipe.sim import SurveyPreset, VisitPlan
from lsst.dia.pipe.skymap import RingsSkyMap

__all__ = ["CcdPair", "DEFAULT_CACHE", "load_ccd_pair"]

#: Default cache directory (git-ignored).
DEFAULT_CACHE = Path(__file__).resolve().parent / "cache"


@dataclasses.dataclass
class CcdPair:
    """A science CCD, its template patches and the truth of the science image.

    Attributes
    ----------
    science : `~lsst.dia.pipe.exposure.Exposure`
        The calexp [nJy].
    patches : `list` [`~lsst.dia.pipe.exposure.Exposure`]
        Template coadd patches (outer boxes) overlapping the detector, any tract [nJy].
    patch_ids : `list` [`tuple` [`int`, `int`]]
        ``(tract, patch)`` of each patch.
    truth : `astropy.table.Table`
        Objects on the science image (``x``, ``y``, ``trueFlux``, ``diffFlux``, ``objectType``, …).
    plan : `~lsst.dia.pipe.sim.VisitPlan`
        The visit.
    preset : `~lsst.dia.pipe.sim.SurveyPreset`
        The survey.
    detector_id : `int`
        Detector.
    """

    science: Exposure
    patches: list[Exposure]
    patch_ids: list[tuple[int, int]]
    truth: Table
    plan: VisitPlan
    preset: SurveyPreset
    detector_id: int


def _simulator_hash() -> str:
    """Short hash of the simulator's source files (the cache is invalid when they change)."""
    digest = hashlib.sha1()
    for path in sorted(Path(sim.__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _save_planes(path: Path, image: np.ndarray, variance: np.ndarray, mask: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, image=image, variance=variance, mask=mask)
    os.replace(tmp, path)


def _load_planes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(path) as data:
        return data["image"], data["variance"], data["mask"]


# Worker side: each (spawned) worker rebuilds the preset and sky model from the seed (cheap, deterministic).
_WORKER: dict = {}


def _dc2_survey(seed: int) -> tuple[RingsSkyMap, SurveyPreset, Table]:
    """The dc2 sky map, the preset with its field on the south-west corner of its tract (where
    `~lsst.dia.pipe.repo.simulate.make_sim_repo` puts it) and the sky model."""
    skymap = RingsSkyMap(SIM_SKYMAPS["dc2"])
    preset = sim.get_preset("dc2", **field_overrides("dc2", skymap))
    return skymap, preset, sim.make_catalog(preset, seed)


def _init_worker(seed: int) -> None:
    _, _WORKER["preset"], _WORKER["objects"] = _dc2_survey(seed)


def _render_patch(wcs, shape, band: str, seed: tuple[int, int, int], path: Path) -> None:
    rendered = sim.render_coadd(wcs, shape, band, _WORKER["objects"], _WORKER["preset"], seed)
    _save_planes(path, rendered.image, rendered.variance, rendered.mask)


def load_ccd_pair(
    visit: int = 6,
    detector: int = 4,
    seed: int = 1,
    cache: str | os.PathLike[str] = DEFAULT_CACHE,
    workers: int = 2,
) -> CcdPair:
    """Load (rendering and caching on first use) one dc2 science CCD and its template patches.

    Parameters
    ----------
    visit : `int`
        Visit of the ``dc2`` survey plan (default 6: i band, 1.02″ seeing against 0.8″ templates).
    detector : `int`
        Detector (default 4, the central one, which draws templates from three tracts).
    seed : `int`
        Survey seed (as ``makeDiaSimRepo.py --seed``).
    cache : path-like
        Cache root directory.
    workers : `int`
        Processes used to render missing patches.

    Returns
    -------
    pair : `CcdPair`
    """
    skymap, preset, objects = _dc2_survey(seed)
    plans = {p.visit: p for p in sim.plan_survey(preset, seed)}
    if visit not in plans:
        raise KeyError(f"Visit {visit} is not in the dc2 plan (1..{len(plans)}).")
    plan = plans[visit]
    camera = preset.camera()
    layout = camera.detector(detector)
    root = Path(cache) / f"dc2_s{seed}_v{visit}_d{detector}_{_simulator_hash()}"
    root.mkdir(parents=True, exist_ok=True)

    calexp_path, truth_path = root / "calexp.npz", root / "truth.fits"
    if not (calexp_path.exists() and truth_path.exists()):
        rendered = sim.render_visit_detector(plan, layout, objects, preset, seed)
        c = np.float32(rendered.nJy_per_electron)
        _save_planes(calexp_path, rendered.image * c, rendered.variance * c**2, rendered.mask)
        rendered.truth.write(truth_path, overwrite=True)
    image, variance, mask = _load_planes(calexp_path)
    science = Exposure(image, variance, mask, sim.detector_psf(plan, preset, layout),
                       camera.detector_wcs(plan.ra, plan.dec, plan.rotation, layout), band=plan.band, mjd=plan.mjd)

    ra, dec = camera.detector_corners_sky(plan.ra, plan.dec, plan.rotation, layout)
    jobs = []
    for tract, patches in skymap.find_tract_patch_list(ra, dec):
        for patch in patches:
            x0, y0, nx, ny = patch.outer_bbox
            jobs.append((tract, patch, tract.patch_wcs(patch), (ny, nx), root / f"patch_{tract.id}_{patch.id}.npz"))
    missing = [job for job in jobs if not job[4].exists()]
    if missing:
        # spawn, not fork: this process may already run FFT/BLAS threads
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                    initializer=_init_worker, initargs=(seed,)) as pool:
            futures = [pool.submit(_render_patch, wcs, shape, plan.band, (seed, tract.id, patch.id), path)
                       for tract, patch, wcs, shape, path in missing]
            for future in futures:
                future.result()
    patch_exposures = []
    for _, _, wcs, shape, path in jobs:
        image, variance, mask = _load_planes(path)
        psf = sim.template_psf(wcs, shape, plan.band, preset, seed)
        patch_exposures.append(Exposure(image, variance, mask, psf, wcs, band=plan.band))
    return CcdPair(science=science, patches=patch_exposures, patch_ids=[(t.id, p.id) for t, p, *_ in jobs],
                   truth=Table.read(truth_path), plan=plan, preset=preset, detector_id=detector)
