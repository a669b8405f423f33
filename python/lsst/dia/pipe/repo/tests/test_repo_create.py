"""Repository creation from policy/, dimension registration, and butler round trips of our data types."""

import os

import lsst.images as li
import numpy as np
import pytest
from astropy.table import Table
from lsst.daf.butler import Butler
from lsst.images.psfs import GaussianPointSpreadFunction

from lsst.dia.pipe.imaging.camera import DetectorLayout, make_camera_frames, make_detector
from lsst.dia.pipe.imaging.visit import make_visit_image, visit_image_to_exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf
from lsst.dia.pipe.repo.collections import DEFAULT_INPUT_COLLECTION
from lsst.dia.pipe.repo.create import RepoExistsError, add_to_input_chain, create_repo
from lsst.dia.pipe.repo.dimensions import VisitDefinition, register_instrument, register_skymap, register_visits
from lsst.dia.pipe.repo.policy import load_dataset_definitions
from lsst.dia.pipe.skymap import RingsSkyMap, SkyMapDefinition
from lsst.dia.pipe.skymap.geometry import tan_wcs
from lsst.dia.pipe.skymap.storage import skymap_from_dict, skymap_to_dict

LAYOUT = DetectorLayout(0, "S00", 256, 200, 0.0, 0.0)


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    butler = create_repo(root)
    register_instrument(butler, "SimCam", [LAYOUT], {"SIM-r": "r"})
    skymap = RingsSkyMap(SkyMapDefinition(name="small", num_rings=720, patch_inner_nx=500, patch_inner_ny=500,
                                          patch_border=20))
    wcs = tan_wcs(56.0, -30.0, 127.5, 99.5, 0.2)
    xs, ys = np.array([-0.5, 255.5, 255.5, -0.5]), np.array([-0.5, -0.5, 199.5, 199.5])
    ra, dec = wcs.pixel_to_world_values(xs, ys)
    tp = skymap.find_tract_patch_list(ra, dec)
    register_skymap(butler, skymap, {t.id: [p.id for p in ps] for t, ps in tp})
    register_visits(butler, "SimCam", [VisitDefinition(7, "SIM-r", 60001.2, 30.0, {0: (ra, dec)})])
    return root, butler, skymap, wcs


def test_policy_dataset_types_are_registered(repo):
    root, butler, _, _ = repo
    definitions = load_dataset_definitions()
    assert {"calexp", "deepCoadd_calexp", "deepDiff_diaSrc", "deepDiff_diaObject"} <= set(definitions)
    for name, d in definitions.items():
        registered = butler.get_dataset_type(name)
        assert registered.storageClass_name == d.storage_class
        assert registered.dimensions == butler.dimensions.conform(d.dimensions)


def test_refuses_to_overwrite_an_existing_repo(repo):
    root, _, _, _ = repo
    before = sorted(os.listdir(root))
    with pytest.raises(RepoExistsError, match="already exists"):
        create_repo(root)
    assert sorted(os.listdir(root)) == before


def test_unwritable_location_is_a_clear_error(tmp_path):
    with pytest.raises(PermissionError):
        create_repo(tmp_path / "missing-parent" / "deeper" / "repo")


def test_spatial_join_of_visit_detector_and_patches(repo):
    _, butler, _, _ = repo
    rows = list(butler.registry.queryDataIds(["visit", "detector", "tract", "patch"]))
    assert rows and all(r["visit"] == 7 for r in rows)


def test_calexp_and_catalog_round_trip(repo):
    root, butler, skymap, wcs = repo
    run = "test/inputs"
    writer = Butler.from_config(str(root), writeable=True, run=run)
    add_to_input_chain(writer, run)
    frames = make_camera_frames("SimCam", [LAYOUT], 20.0)
    detector = make_detector("SimCam", LAYOUT, frames, visit=7)
    rng = np.random.default_rng(5)
    image = rng.normal(0, 3, (200, 256)).astype(np.float32)
    variance = np.full_like(image, 9.0)
    mask = np.zeros(image.shape, np.uint32)
    mask[10, 20] = MaskBit.SATURATED | MaskBit.BAD
    psf = GaussianPointSpreadFunction(1.7, li.Box.factory[0:200, 0:256], 17)
    vi = make_visit_image(image, variance, mask, wcs=wcs, psf=psf, detector=detector, band="r",
                          physical_filter="SIM-r", nJy_per_count=40.0, mjd=60001.2, exposure_time=30.0)
    writer.put(vi, "calexp", instrument="SimCam", visit=7, detector=0)
    writer.put(skymap_to_dict(skymap), "skyMap", skymap=skymap.name)
    table = Table({"diaSourceId": np.arange(3, dtype=np.int64), "psfFlux": [1.0, np.nan, 3.0]})
    writer.put(table, "deepDiff_diaSrc", instrument="SimCam", visit=7, detector=0)

    reader = Butler.from_config(str(root), collections=[DEFAULT_INPUT_COLLECTION])
    exposure = visit_image_to_exposure(reader.get("calexp", instrument="SimCam", visit=7, detector=0),
                                       psf=GaussianPsf(1.7))
    np.testing.assert_allclose(exposure.image, image * 40.0, rtol=1e-6)
    np.testing.assert_allclose(exposure.variance, variance * 1600.0, rtol=1e-6)
    assert exposure.mask[10, 20] == MaskBit.SATURATED | MaskBit.BAD
    assert exposure.band == "r" and exposure.mjd == pytest.approx(60001.2, abs=1e-8)
    ra, dec = exposure.pixel_to_sky(np.array([127.5]), np.array([99.5]))
    assert ra[0] == pytest.approx(56.0, abs=1e-9) and dec[0] == pytest.approx(-30.0, abs=1e-9)
    back = reader.get("deepDiff_diaSrc", instrument="SimCam", visit=7, detector=0)
    assert back["diaSourceId"].dtype == np.int64 and np.isnan(back["psfFlux"][1])
    assert skymap_from_dict(reader.get("skyMap", skymap=skymap.name)).definition == skymap.definition
