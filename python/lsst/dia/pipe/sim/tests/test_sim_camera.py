"""SimCam geometry: detector layout and the array-pixel TAN WCS of each detector."""

import numpy as np
import pytest

from lsst.dia.pipe.sim import SimCam, UnknownDetectorError, get_preset


@pytest.fixture(scope="module")
def camera():
    return SimCam.grid(2, 2, (1024, 1024), 40)


def test_layout_ids_names_and_gaps(camera):
    assert camera.detector_ids == (0, 1, 2, 3)
    assert camera.detector(3).name == "S11"
    d0, d1 = camera.detector(0), camera.detector(1)
    # centres 1024 + 40 pixels apart, symmetric about the optical axis
    assert (d1.center_x_mm - d0.center_x_mm) / d0.pixel_size_mm == pytest.approx(1064.0)
    assert d0.center_x_mm == pytest.approx(-d1.center_x_mm)
    assert camera.plate_scale_arcsec_per_mm == pytest.approx(20.0)
    # corner radius: half of (2 * 1024 + 40) pixels along each axis
    assert camera.field_radius_arcsec == pytest.approx(np.hypot(1044, 1044) * 0.2)
    with pytest.raises(UnknownDetectorError, match="Detector 7"):
        camera.detector(7)


def test_wcs_array_pixel_convention(camera):
    det = camera.detector(0)
    wcs = camera.detector_wcs(56.0, -30.0, 0.0, det)
    # the optical axis: pixel ((nx-1)/2 - cx/pix, ...) in ARRAY (0-based) coordinates maps to the pointing
    x_axis = (det.nx - 1) / 2 - det.center_x_mm / det.pixel_size_mm
    y_axis = (det.ny - 1) / 2 - det.center_y_mm / det.pixel_size_mm
    ra, dec = wcs.pixel_to_world_values(x_axis, y_axis)
    assert ra == pytest.approx(56.0, abs=1e-12) and dec == pytest.approx(-30.0, abs=1e-12)
    assert wcs.wcs.crpix[0] == pytest.approx(x_axis + 1.0)  # FITS is 1-based
    # rotation 0: +y is north, +x is west (east to the left), 0.2 arcsec per pixel
    r0, d0 = wcs.pixel_to_world_values(500.0, 500.0)
    r1, d1 = wcs.pixel_to_world_values(500.0, 501.0)
    r2, d2 = wcs.pixel_to_world_values(501.0, 500.0)
    assert (d1 - d0) * 3600 == pytest.approx(0.2, rel=1e-4)
    assert (r2 - r0) * np.cos(np.deg2rad(d0)) * 3600 == pytest.approx(-0.2, rel=1e-4)


def test_wcs_rotation_and_round_trip(camera):
    det = camera.detector(2)
    wcs = camera.detector_wcs(56.0, -30.0, 90.0, det)
    x = np.array([0.0, 511.3, 1023.0])
    y = np.array([5.0, 700.2, 1023.0])
    ra, dec = wcs.pixel_to_world_values(x, y)
    xb, yb = wcs.world_to_pixel_values(ra, dec)
    np.testing.assert_allclose(xb, x, atol=1e-8)
    np.testing.assert_allclose(yb, y, atol=1e-8)
    # rotation 90 deg: +y points east (RA increases along +y)
    r0, _ = wcs.pixel_to_world_values(500.0, 500.0)
    r1, _ = wcs.pixel_to_world_values(500.0, 501.0)
    assert r1 > r0


def test_detectors_tile_the_focal_plane_without_overlap(camera):
    # the same sky point can be on at most one detector of a visit
    wcss = [camera.detector_wcs(56.0, -30.0, 17.0, d) for d in camera.detectors]
    ra, dec = wcss[0].pixel_to_world_values(np.array([1023.0, 1040.0]), np.array([500.0, 500.0]))
    x1, y1 = wcss[1].world_to_pixel_values(ra, dec)
    # the last column of detector 0 is 41 pixels left of detector 1's first column (1 pixel + 40 gap)
    np.testing.assert_allclose(x1, [-41.0, -24.0], atol=1e-6)
    np.testing.assert_allclose(y1, [500.0, 500.0], atol=1e-6)


def test_corners_near_ra_zero():
    camera = get_preset("demo").camera()
    ra, dec = camera.detector_corners_sky(0.0, 1.0, 0.0, camera.detector(3))
    # detector 3 is right of the optical axis, i.e. west (east is left): its corners wrap to just below 360
    assert np.all((ra >= 0) & (ra < 360))
    assert np.all(ra > 359.9)
    ra0, _ = camera.detector_corners_sky(0.0, 1.0, 0.0, camera.detector(0))
    assert np.all(ra0 < 0.1)
    # corners are the outer pixel edges: 1024 pixels × 0.2 arcsec apart
    dra = ((ra[1] - ra[0] + 180) % 360 - 180) * np.cos(np.deg2rad(dec[0]))
    assert np.hypot(dra, dec[1] - dec[0]) * 3600 == pytest.approx(1024 * 0.2, rel=1e-4)
