"""The three drivers end to end on a simulated survey, checked against simulation truth."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import vstack
from lsst.daf.butler import Butler

from lsst.dia.pipe.cli.driver import run_driver
from lsst.dia.pipe.drivers import IMAGE_DIFFERENCE
from lsst.dia.pipe.imaging.visit import visit_image_to_exposure
from lsst.dia.pipe.repo.collections import DEFAULT_INPUT_COLLECTION

pytestmark = pytest.mark.slow


def _butler(repo, rerun):
    return Butler.from_config(repo.root, collections=[f"rerun/{rerun}", DEFAULT_INPUT_COLLECTION])


def _match(ra1, dec1, ra2, dec2, radius_arcsec):
    """Index into (ra2, dec2) of the nearest within radius for each of (ra1, dec1), or -1."""
    from scipy.spatial import cKDTree

    def unit(ra, dec):
        ra, dec = np.deg2rad(ra), np.deg2rad(dec)
        return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])

    d, i = cKDTree(unit(ra2, dec2)).query(unit(ra1, dec1), distance_upper_bound=np.deg2rad(radius_arcsec / 3600))
    return np.where(np.isfinite(d), i, -1)


def test_all_drivers_succeed(sim_repo):
    assert sim_repo.status == {"imageDifference": 0, "association": 0, "forcedPhotCcdDia": 0}


def test_difference_images_are_noise_like_and_find_transients(sim_repo):
    butler = _butler(sim_repo, sim_repo.rerun)
    refs = list(butler.query_datasets("deepDiff_differenceExp", collections=f"rerun/{sim_repo.rerun}"))
    assert len(refs) == len(sim_repo.visits) * 4
    ratios = []
    for ref in refs[:4]:
        diff = visit_image_to_exposure(butler.get(ref), psf_grid=3)
        good = diff.mask == 0
        z = diff.image[good] / np.sqrt(diff.variance[good])
        mad = 1.4826 * np.median(np.abs(z - np.median(z)))
        ratios.append(mad)
    assert 0.9 < np.median(ratios) < 1.15
    # bright transients (true |diffFlux| > 30 sigma-ish) are detected within 1 arcsec
    sources = vstack([butler.get("deepDiff_diaSrc", ref.dataId) for ref in refs])
    truth = vstack([butler.get("truth_visit", ref.dataId) for ref in refs])
    bright = truth[(np.abs(truth["diffFlux"]) > 5000) & np.isin(truth["objectType"], ["transient", "variable"])]
    assert len(bright) > 0
    found = _match(bright["ra"], bright["dec"], sources["ra"], sources["dec"], 1.0) >= 0
    assert found.mean() > 0.9


def test_association_products(sim_repo):
    butler = _butler(sim_repo, sim_repo.rerun)
    objects = [butler.get(ref) for ref in butler.query_datasets("deepDiff_diaObject",
                                                               collections=f"rerun/{sim_repo.rerun}")]
    assert objects
    ids = np.concatenate([np.asarray(t["diaObjectId"]) for t in objects])
    assert len(np.unique(ids)) == len(ids)
    for column in ("ra", "dec", "nDiaSources", "g_psfFluxMean", "r_psfFluxStetsonJ"):
        assert column in objects[0].colnames


def test_forced_light_curves(sim_repo):
    butler = _butler(sim_repo, sim_repo.rerun)
    forced = [butler.get(ref) for ref in butler.query_datasets("deepDiff_forced_diaSrc",
                                                              collections=f"rerun/{sim_repo.rerun}")]
    forced = vstack([f for f in forced if len(f)])
    assert len(forced) > 0
    assert {"psfFlux", "psfFluxErr", "scienceFlux", "scienceFluxErr", "diaObjectId", "band"} <= set(forced.colnames)
    curves = list(butler.query_datasets("deepDiff_forced_diaObject", collections=f"rerun/{sim_repo.rerun}"))
    assert curves


def test_rerun_skips_completed_work_and_keeps_outputs(sim_repo, caplog):
    butler = _butler(sim_repo, sim_repo.rerun)
    before = {ref.id for ref in butler.query_datasets("deepDiff_diaSrc", collections=f"rerun/{sim_repo.rerun}")}
    status = run_driver(IMAGE_DIFFERENCE, [sim_repo.root, "--rerun", sim_repo.rerun, "--id", "visit=1",
                                           "--cores", "1"])
    assert status == 0
    after = {ref.id for ref in _butler(sim_repo, sim_repo.rerun).query_datasets(
        "deepDiff_diaSrc", collections=f"rerun/{sim_repo.rerun}")}
    assert before == after


def test_zogy_override_file_and_matched_template(sim_repo, config_dir):
    status = run_driver(IMAGE_DIFFERENCE, [sim_repo.root, "--rerun", "zogy", "--id", "visit=1", "detector=0",
                                           "-C", str(config_dir / "zogy.py"), "-c", "doWriteMatchedExp=True",
                                           "--cores", "1"])
    assert status == 0
    butler = _butler(sim_repo, "zogy")
    assert len(list(butler.query_datasets("deepDiff_diaSrc", collections="rerun/zogy"))) == 1
    matched = butler.get("deepDiff_matchedExp", instrument="SimCam", visit=1, detector=0)
    difference = butler.get("deepDiff_differenceExp", instrument="SimCam", visit=1, detector=0)
    assert matched.image.array.shape == difference.image.array.shape
    assert difference.metadata["algorithm"] == "zogy"


def test_a_corrupt_calexp_fails_alone(sim_repo):
    butler = Butler.from_config(sim_repo.root, collections=[DEFAULT_INPUT_COLLECTION])
    ref = butler.find_dataset("calexp", instrument="SimCam", visit=2, detector=1)
    path = butler.getURI(ref).ospath
    original = open(path, "rb").read()
    try:
        with open(path, "wb") as f:
            f.write(b"not a FITS file")
        status = run_driver(IMAGE_DIFFERENCE, [sim_repo.root, "--rerun", "corrupt", "--id", "visit=2",
                                               "--cores", "2"])
    finally:
        with open(path, "wb") as f:
            f.write(original)
    assert status == 1
    done = list(_butler(sim_repo, "corrupt").query_datasets("deepDiff_diaSrc", collections="rerun/corrupt"))
    assert sorted(r.dataId["detector"] for r in done) == [0, 2, 3]
