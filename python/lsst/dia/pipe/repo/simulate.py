"""Write a simulated survey (``lsst.dia.pipe.sim``) into a new butler repository.

Rendering runs in a pool of worker processes (pure functions of the plan, the sky model and a seed); the
parent alone writes the repository. The survey field is centred on a tract corner so that templates come
from several tracts, as the drivers must handle.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path

import lsst.images as li
import numpy as np
from astropy.table import Table
from lsst.daf.butler import Butler
from lsst.images.psfs import PiffWrapper

from ..imaging.camera import make_camera_frames, make_detector
from ..imaging.coadd import make_cell_coadd
from ..imaging.visit import make_visit_image
from ..psf.conversion import grid_to_cell_psf
from ..sim import PRESETS, VisitPlan, get_preset, make_catalog, plan_survey, render_coadd
from ..sim import render_visit_detector
from ..skymap import RingsSkyMap, SkyMapDefinition
from ..skymap.storage import skymap_to_dict
from .create import add_to_input_chain, create_repo
from .dimensions import VisitDefinition, register_instrument, register_skymap, register_visits

__all__ = ["SIM_INSTRUMENT", "SIM_SKYMAPS", "SimRepoSummary", "UnknownPresetError", "field_overrides", "make_sim_repo"]

_log = logging.getLogger(__name__)

SIM_INSTRUMENT = "SimCam"

#: Sky map of each preset: demo patches are small so that a ~0.3 deg field spans many patches and tracts.
SIM_SKYMAPS: dict[str, SkyMapDefinition] = {
    "demo": SkyMapDefinition(name="dia_rings_demo", num_rings=120, patch_inner_nx=1000, patch_inner_ny=1000,
                             patch_border=50),
    "dc2": SkyMapDefinition(name="dia_rings", num_rings=120, patch_inner_nx=4000, patch_inner_ny=4000,
                            patch_border=100),
}

#: Cell size of the template coadds' cell PSFs [pixels].
COADD_CELL_SIZE = 250


class UnknownPresetError(KeyError):
    """The requested simulation preset does not exist."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"Unknown preset {name!r}; choose one of {sorted(PRESETS)}.")

    def __str__(self) -> str:
        return self.args[0]


@dataclasses.dataclass
class SimRepoSummary:
    """What `make_sim_repo` wrote."""

    root: str
    preset: str
    n_visits: int
    n_calexps: int
    n_coadds: int
    n_objects: int
    tracts: list[int]
    seconds: float


def field_overrides(name: str, skymap: RingsSkyMap, **overrides) -> dict:
    """Preset overrides that move the field onto the nearest tract corner (south-west corner of its tract)."""
    base = get_preset(name)
    tract = int(skymap.find_tracts(base.field_ra, base.field_dec))
    _, _, ra_lo, _, dec_lo, _ = skymap.inner_bounds(tract)
    return {"field_ra": float(ra_lo % 360.0), "field_dec": float(dec_lo), **overrides}


# --- worker side -----------------------------------------------------------------------------------------
_WORKER: dict = {}


def _init_worker(preset_name: str, overrides: dict, objects: Table) -> None:
    # the preset is rebuilt from its name (it holds read-only mappings, which do not pickle)
    _WORKER["preset"] = get_preset(preset_name, **overrides)
    _WORKER["objects"] = objects


def _render_calexp(plan: VisitPlan, detector_id: int, seed: int):
    preset = _WORKER["preset"]
    detector = preset.camera().detector(detector_id)
    return render_visit_detector(plan, detector, _WORKER["objects"], preset, seed)


def _render_coadd(wcs, shape, band: str, seed: tuple[int, int, int]):
    return render_coadd(wcs, shape, band, _WORKER["objects"], _WORKER["preset"], seed)


# --- parent side -----------------------------------------------------------------------------------------
def make_sim_repo(
    root: str | os.PathLike[str],
    preset_name: str = "demo",
    seed: int = 1,
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    **preset_overrides,
) -> SimRepoSummary:
    """Simulate a survey and write it into a new repository at ``root``.

    Parameters
    ----------
    root : path-like
        Repository to create (must not exist yet).
    preset_name : `str`
        ``"demo"`` or ``"dc2"`` (see `lsst.dia.pipe.sim.PRESETS`).
    seed : `int`
        Random seed of the survey plan, sky model and noise.
    workers : `int`, optional
        Rendering processes (default: the CPU count).
    progress : callable, optional
        Called with one-line progress messages.
    **preset_overrides
        Fields of `~lsst.dia.pipe.sim.SurveyPreset` to change (e.g. ``visits_per_band=3``).

    Returns
    -------
    summary : `SimRepoSummary`

    Raises
    ------
    UnknownPresetError
        For an unknown preset (before anything is written).
    lsst.dia.pipe.repo.create.RepoExistsError
        If a repository already exists at ``root`` (nothing is touched).
    """
    if preset_name not in PRESETS:
        raise UnknownPresetError(preset_name)
    say = progress or (lambda message: _log.info("%s", message))
    start = time.perf_counter()
    skymap = RingsSkyMap(SIM_SKYMAPS[preset_name])
    overrides = field_overrides(preset_name, skymap, **preset_overrides)
    preset = get_preset(preset_name, **overrides)
    butler = create_repo(root)
    run = f"sim/{preset_name}"
    butler = Butler.from_config(str(root), writeable=True, run=run)
    add_to_input_chain(butler, run)

    plans = plan_survey(preset, seed)
    objects = make_catalog(preset, seed)
    camera = preset.camera()
    register_instrument(butler, SIM_INSTRUMENT, camera.detectors, {f"SIM-{b}": b for b in preset.bands})
    visits = []
    tract_patches: dict[int, set[int]] = {}
    for plan in plans:
        corners = {d.id: camera.detector_corners_sky(plan.ra, plan.dec, plan.rotation, d) for d in camera.detectors}
        visits.append(VisitDefinition(plan.visit, plan.physical_filter, plan.mjd, plan.exposure_time, corners,
                                      target_name=f"sim-{preset_name}"))
        for ra, dec in corners.values():
            for tract, patches in skymap.find_tract_patch_list(ra, dec):
                tract_patches.setdefault(tract.id, set()).update(p.id for p in patches)
    register_visits(butler, SIM_INSTRUMENT, visits)
    register_skymap(butler, skymap, {t: sorted(p) for t, p in tract_patches.items()})
    butler.put(skymap_to_dict(skymap), "skyMap", skymap=skymap.name)
    butler.put(objects, "truth_objects", skymap=skymap.name)
    n_patches = sum(len(p) for p in tract_patches.values())
    say(f"simulating {len(plans)} visits x {len(camera.detectors)} detectors and {n_patches} patches x "
        f"{len(preset.bands)} bands over tracts {sorted(tract_patches)}")

    frames = make_camera_frames(SIM_INSTRUMENT, camera.detectors, camera.plate_scale_arcsec_per_mm)
    workers = workers or os.cpu_count() or 1
    n_calexps = n_coadds = 0
    # spawn, not fork: the butler and GalSim may hold threads in this process
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(preset_name, overrides, objects)) as pool:
        jobs = [pool.submit(_render_calexp, plan, d.id, seed) for plan in plans for d in camera.detectors]
        for job in concurrent.futures.as_completed(jobs):
            rendered = job.result()
            _put_calexp(butler, rendered, frames)
            n_calexps += 1
            if n_calexps % 20 == 0 or n_calexps == len(jobs):
                say(f"calexps {n_calexps}/{len(jobs)}")
        coadd_jobs = {}
        for tract_id, patch_ids in tract_patches.items():
            tract = skymap.tract(tract_id)
            for patch_id in patch_ids:
                patch = tract.patch(patch_id)
                shape = (patch.outer_bbox[3], patch.outer_bbox[2])
                for band in preset.bands:
                    job = pool.submit(_render_coadd, tract.patch_wcs(patch), shape, band, (seed, tract_id, patch_id))
                    coadd_jobs[job] = (tract, patch, band)
        for job in concurrent.futures.as_completed(coadd_jobs):
            tract, patch, band = coadd_jobs[job]
            _put_coadd(butler, job.result(), skymap, tract, patch, band)
            n_coadds += 1
            if n_coadds % 20 == 0 or n_coadds == len(coadd_jobs):
                say(f"template patches {n_coadds}/{len(coadd_jobs)}")
    return SimRepoSummary(str(Path(root)), preset_name, len(plans), n_calexps, n_coadds, len(objects),
                          sorted(tract_patches), time.perf_counter() - start)


def _put_calexp(butler: Butler, rendered, frames) -> None:
    plan, layout = rendered.plan, rendered.detector
    ny, nx = rendered.image.shape
    bbox = li.Box.factory[0:ny, 0:nx]
    detector = make_detector(SIM_INSTRUMENT, layout, frames, visit=plan.visit)
    psf = PiffWrapper(rendered.piff_psf(), bounds=bbox, stamp_size=rendered.psf.size)
    calexp = make_visit_image(
        rendered.image, rendered.variance, rendered.mask, wcs=rendered.wcs, psf=psf, detector=detector,
        band=plan.band, physical_filter=plan.physical_filter, nJy_per_count=rendered.nJy_per_electron,
        mjd=plan.mjd, exposure_time=plan.exposure_time,
        metadata={"SEEING": float(plan.seeing), "SKYLEVEL": float(plan.sky)},
    )
    data_id = {"instrument": SIM_INSTRUMENT, "visit": plan.visit, "detector": layout.id}
    butler.put(calexp, "calexp", data_id)
    butler.put(rendered.truth, "truth_visit", data_id)


def _put_coadd(butler: Butler, rendered, skymap: RingsSkyMap, tract, patch, band: str) -> None:
    x0, y0, nx, ny = patch.outer_bbox
    bbox = li.Box.factory[y0:y0 + ny, x0:x0 + nx]
    psf = grid_to_cell_psf(rendered.psf, bbox, COADD_CELL_SIZE, rendered.psf.size)
    coadd = make_cell_coadd(rendered.image, rendered.variance, rendered.mask, wcs=rendered.wcs, bbox=bbox,
                            band=band, psf=psf, skymap=skymap.name, tract=tract, patch=patch)
    butler.put(coadd, "deepCoadd_calexp", skymap=skymap.name, tract=tract.id, patch=patch.id, band=band)
