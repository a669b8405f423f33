"""ForcedPhotCcdDiaTask.run: owned references only, fluxes recovered, edge objects flagged not dropped."""

import numpy as np
import pytest
from astropy.table import Table

from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.psf import GaussianPsf
from lsst.dia.pipe.skymap import RingsSkyMap, SkyMapDefinition
from lsst.dia.pipe.skymap.geometry import tan_wcs
from lsst.dia.pipe.tasks.forced_phot import ForcedPhotCcdDiaConfig, ForcedPhotCcdDiaTask, MissingReferenceError

SKYMAP = RingsSkyMap(SkyMapDefinition(name="t", num_rings=120, patch_inner_nx=500, patch_inner_ny=500,
                                      patch_border=50))


def _exposure(x, y, flux, sigma_noise, rng, shape=(300, 400)):
    psf = GaussianPsf(2.0)
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    image = np.zeros(shape)
    for xi, yi, fi in zip(x, y, flux):
        image += fi * np.exp(-0.5 * ((xx - xi) ** 2 + (yy - yi) ** 2) / 4.0) / (2 * np.pi * 4.0)
    image += rng.normal(0, sigma_noise, shape)
    wcs = tan_wcs(56.0, -30.0, nx / 2, ny / 2, 0.2, 20.0)
    return Exposure(image.astype(np.float32), np.full(shape, sigma_noise**2, np.float32),
                    np.zeros(shape, np.uint32), psf, wcs, band="r", mjd=60010.5)


def test_forced_photometry_of_owned_references():
    rng = np.random.default_rng(7)
    x = np.array([50.3, 200.7, 330.1, 1.0])
    y = np.array([40.2, 150.5, 250.9, 150.0])
    flux_diff = np.array([5000.0, -3000.0, 800.0, 4000.0])
    flux_sci = np.array([20000.0, 9000.0, 7000.0, 8000.0])
    difference = _exposure(x, y, flux_diff, 5.0, rng)
    science = _exposure(x, y, flux_sci, 8.0, rng)
    ra, dec = difference.pixel_to_sky(x, y)
    tracts, patches = SKYMAP.owners(ra, dec)
    # every object listed in two patches' catalogs (the owner and a neighbour): only the owner may count
    references = []
    for t, p in set(zip(tracts.tolist(), patches.tolist())):
        references.append((t, p, Table({"diaObjectId": np.arange(1, 5, dtype=np.int64), "ra": ra, "dec": dec})))
    references.append((int(tracts[0]), int(patches[0]) + 1,
                       Table({"diaObjectId": np.arange(1, 5, dtype=np.int64), "ra": ra, "dec": dec})))
    task = ForcedPhotCcdDiaTask(config=ForcedPhotCcdDiaConfig())
    out = task.run(science, difference, references, SKYMAP, visit=12, detector=3).forcedSources
    assert sorted(out["diaObjectId"]) == [1, 2, 3, 4]
    order = np.argsort(out["diaObjectId"])
    out = out[order]
    pulls = (out["psfFlux"] - flux_diff) / out["psfFluxErr"]
    assert np.all(np.abs(pulls[:3]) < 4)
    np.testing.assert_allclose(out["scienceFlux"][:3], flux_sci[:3], rtol=0.02)
    assert out["pixelFlags_edge"][3]  # 1 px from the edge: flagged, not dropped
    assert set(out["visit"]) == {12} and set(out["detector"]) == {3} and set(out["band"]) == {"r"}
    assert np.all(out["midpointMjdTai"] == 60010.5)
    assert len(np.unique(out["diaForcedSourceId"])) == 4


def test_missing_reference_patch_is_an_error_when_required():
    rng = np.random.default_rng(8)
    difference = _exposure([], [], [], 5.0, rng)
    config = ForcedPhotCcdDiaConfig()
    config.requireAllReferences = True
    with pytest.raises(MissingReferenceError, match="No deepDiff_diaObject"):
        ForcedPhotCcdDiaTask(config=config).run(difference, difference, [], SKYMAP, visit=1, detector=0)
    out = ForcedPhotCcdDiaTask(config=ForcedPhotCcdDiaConfig()).run(difference, difference, [], SKYMAP, 1, 0)
    assert len(out.forcedSources) == 0 and "psfFlux" in out.forcedSources.colnames
