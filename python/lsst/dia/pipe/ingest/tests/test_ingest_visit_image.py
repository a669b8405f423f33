"""lsst-images VisitImage files: stored as calexps as they are, or coadded as templates."""

import astropy.units as u
import lsst.images as li
import numpy as np
import pytest
from lsst.daf.butler import Butler
from lsst.images.psfs import GaussianPointSpreadFunction

from lsst.dia.pipe.imaging.camera import DetectorLayout, make_camera_frames, make_detector
from lsst.dia.pipe.imaging.visit import make_visit_image, visit_image_to_exposure
from lsst.dia.pipe.ingest import IngestOptions, ingest_images
from lsst.dia.pipe.ingest.calibration import aperture_flux
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.repo.collections import DEFAULT_INPUT_COLLECTION
from lsst.dia.pipe.skymap.geometry import tan_wcs

NY, NX = 120, 140


def write_visit_image(path, visit: int, detector: int, seed: int) -> np.ndarray:
    layout = DetectorLayout(detector, f"S{detector:02d}", NX, NY, 0.0, 0.0)
    det = make_detector("SimCam", layout, make_camera_frames("SimCam", [layout], 20.0), visit=visit)
    rng = np.random.default_rng(seed)
    image = rng.normal(0.0, 5.0, (NY, NX)).astype(np.float32)
    y, x = np.mgrid[0:NY, 0:NX]
    image += (2e4 * np.exp(-0.5 * ((x - 70.3) ** 2 + (y - 60.7) ** 2) / 2.0**2) / (8 * np.pi)).astype(np.float32)
    mask = np.zeros((NY, NX), np.uint32)
    mask[5, 7] = MaskBit.BAD
    vi = make_visit_image(image, np.full_like(image, 25.0), mask, wcs=tan_wcs(30.0, -10.0, 69.5, 59.5, 0.2),
                          psf=GaussianPointSpreadFunction(2.0, li.Box.factory[0:NY, 0:NX], 21), detector=det,
                          band="r", physical_filter="SIM-r", nJy_per_count=1.0, mjd=60100.0 + visit,
                          exposure_time=30.0, image_unit=u.nJy)
    vi.write(str(path))
    return image


def test_visit_images_are_ingested_as_they_are(tmp_path):
    science = write_visit_image(tmp_path / "sci.fits", visit=11, detector=3, seed=1)
    write_visit_image(tmp_path / "tmpl.fits", visit=5, detector=3, seed=2)
    report = ingest_images(tmp_path / "repo", [tmp_path / "sci.fits"], [tmp_path / "tmpl.fits"],
                           IngestOptions(patch_size=100, patch_border=10, cell_size=40))
    assert report.n_failed == 0, report.lines()
    butler = Butler.from_config(str(tmp_path / "repo"), collections=[DEFAULT_INPUT_COLLECTION])
    stored = butler.get("calexp", instrument="SimCam", visit=11, detector=3)
    np.testing.assert_array_equal(stored.image.array, science)
    assert visit_image_to_exposure(stored).mask[5, 7] == MaskBit.BAD
    visit = next(iter(butler.registry.queryDimensionRecords("visit", instrument="SimCam")))
    assert visit.physical_filter == "SIM-r" and visit.exposure_time == pytest.approx(30.0)
    # the template VisitImage (already in nJy, pixel scale 0.2″) became coadd patches on a 0.2″ sky map
    coadds = butler.query_datasets("deepCoadd_calexp")
    assert coadds and {r.dataId["band"] for r in coadds} == {"r"}
    assert butler.get("skyMap", skymap="ingest_rings")["pixel_scale_arcsec"] == pytest.approx(0.2)
    ra, dec = tan_wcs(30.0, -10.0, 69.5, 59.5, 0.2).pixel_to_world_values(70.3, 60.7)
    fluxes = []
    for ref in coadds:
        exposure = visit_image_to_exposure(butler.get(ref))
        x, y = exposure.sky_to_pixel(np.array([ra]), np.array([dec]))
        if 10 <= x[0] < exposure.shape[1] - 10 and 10 <= y[0] < exposure.shape[0] - 10:
            fluxes.append(aperture_flux(exposure.image, x, y, 8.0)[0])
    assert fluxes and fluxes == pytest.approx([2e4] * len(fluxes), rel=0.01)
