"""Rendering of calexps and template coadds: injected fluxes, positions, noise, masks and truth."""

import dataclasses

import numpy as np
import pytest
from astropy.table import Table, vstack

from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.sim import (
    detector_psf,
    draw_scene,
    get_preset,
    make_catalog,
    plan_survey,
    render_coadd,
    render_visit_detector,
    template_flux,
    template_psf,
    true_flux,
)
from lsst.dia.pipe.skymap.geometry import tan_wcs

SEED = 7


@pytest.fixture(scope="module")
def survey():
    # no sky-subtraction residual, so that pixel sums measure the injected fluxes exactly
    preset = get_preset("demo", sky_residual=0.0)
    objects = make_catalog(preset, SEED)
    plans = plan_survey(preset, SEED)
    return preset, objects, plans


@pytest.fixture(scope="module")
def noiseless(survey):
    preset, objects, plans = survey
    plan = plans[len(plans) // 2]
    return render_visit_detector(plan, preset.camera().detector(1), objects, preset, SEED, noise=False,
                                 artifacts=False)


@pytest.fixture(scope="module")
def points_only(survey, noiseless):
    """The same visit without galaxies: many isolated point sources (stars, variables, transients)."""
    preset, objects, _ = survey
    points = objects[objects["objectType"] != "galaxy"]
    rendered = render_visit_detector(noiseless.plan, noiseless.detector, points, preset, SEED, noise=False,
                                     artifacts=False)
    return rendered, points


def _overlapping(x_all, y_all, flux_all, x, y, psf_size):
    """Whether another source's (square) stamp can reach the square PSF box around ``(x, y)``."""
    chebyshev = np.maximum(np.abs(x_all - x), np.abs(y_all - y))
    return np.any((chebyshev > 1e-6) & (flux_all > 0) & (chebyshev < psf_size + 1))


def _isolated_points(rendered, objects, min_flux=0.0):
    """Truth rows of point sources whose PSF box no other source reaches, away from the image edges."""
    truth = rendered.truth
    h = rendered.psf.size // 2
    ny, nx = rendered.image.shape
    x_all, y_all = rendered.wcs.world_to_pixel_values(np.asarray(objects["ra"]), np.asarray(objects["dec"]))
    flux_all = true_flux(objects, rendered.plan.band, rendered.plan.mjd)
    keep = [
        row for row in truth
        if row["trueInstFlux"] > min_flux and h + 1 <= row["x"] <= nx - h - 2 and h + 1 <= row["y"] <= ny - h - 2
        and not _overlapping(x_all, y_all, flux_all, row["x"], row["y"], rendered.psf.size)
    ]
    return Table(rows=keep, names=truth.colnames) if keep else truth[:0]


def _box(image, x, y, h):
    xc, yc = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
    return image[yc - h: yc + h + 1, xc - h: xc + h + 1], xc, yc


def test_injected_point_fluxes_recovered(points_only):
    noiseless, objects = points_only
    isolated = _isolated_points(noiseless, objects)
    assert len(isolated) >= 20
    assert "transient" in set(isolated["objectType"])
    h = noiseless.psf.size // 2
    n_checked = 0
    for row in isolated:
        box = _box(noiseless.image, row["x"], row["y"], h)[0].astype(float)
        mbox, _, _ = _box(noiseless.mask, row["x"], row["y"], h)
        if np.any(mbox & MaskBit.SATURATED):
            continue
        # the truncated PSF lies entirely inside its stamp: the box sum is the whole flux
        assert box.sum() == pytest.approx(row["trueInstFlux"], rel=1e-3)
        n_checked += 1
    assert n_checked >= 20


def test_centroids_match_truth(points_only):
    noiseless, objects = points_only
    bright = _isolated_points(noiseless, objects, min_flux=1000.0)
    h = noiseless.psf.size // 2
    r = np.arange(-h, h + 1)
    assert len(bright) >= 5
    for row in bright:
        box, xc, yc = _box(noiseless.image.astype(float), row["x"], row["y"], h)
        assert (box.sum(axis=0) * r).sum() / box.sum() + xc == pytest.approx(row["x"], abs=0.02)
        assert (box.sum(axis=1) * r).sum() / box.sum() + yc == pytest.approx(row["y"], abs=0.02)


def test_render_across_ra_zero():
    preset = get_preset("demo", field_ra=0.0, field_dec=0.0, sky_residual=0.0)
    objects = make_catalog(preset, 3)
    points = objects[objects["objectType"] != "galaxy"]
    # optical axis 36" east of RA = 0: detector 1 (west of the axis) straddles RA = 0
    plan = dataclasses.replace(plan_survey(preset, 3)[0], ra=0.01, dec=0.0, rotation=0.0)
    rendered = render_visit_detector(plan, preset.camera().detector(1), points, preset, 3, noise=False,
                                     artifacts=False)
    ra = np.asarray(rendered.truth["ra"])
    assert np.any(ra > 359.9) and np.any(ra < 0.1)
    isolated = _isolated_points(rendered, points)
    sides = set()
    h = rendered.psf.size // 2
    for row in isolated:
        box = _box(rendered.image, row["x"], row["y"], h)[0].astype(float)
        if np.any(_box(rendered.mask, row["x"], row["y"], h)[0]):
            continue
        assert box.sum() == pytest.approx(row["trueInstFlux"], rel=1e-3)
        sides.add(bool(row["ra"] > 180))
    assert sides == {True, False}


def test_truth_table(noiseless):
    truth = noiseless.truth
    x, y = noiseless.wcs.world_to_pixel_values(np.asarray(truth["ra"]), np.asarray(truth["dec"]))
    np.testing.assert_allclose(truth["x"], x, atol=1e-9)
    np.testing.assert_allclose(truth["y"], y, atol=1e-9)
    ny, nx = noiseless.image.shape
    assert np.all((truth["x"] >= -0.5) & (truth["x"] < nx - 0.5) & (truth["y"] >= -0.5) & (truth["y"] < ny - 0.5))
    np.testing.assert_allclose(truth["diffFlux"], truth["trueFlux"] - truth["templateFlux"])
    np.testing.assert_allclose(truth["trueInstFlux"] * noiseless.nJy_per_electron, truth["trueFlux"])
    assert np.all(truth["templateFlux"][truth["objectType"] == "transient"] == 0)
    static = np.isin(truth["objectType"], ["star", "galaxy"])
    assert np.all(truth["diffFlux"][static] == 0)


def test_galaxy_flux_and_orientation():
    preset = get_preset("demo")
    plan = plan_survey(preset, 1)[0]
    det = preset.camera().detector(0)
    psf = detector_psf(plan, preset, det)
    galaxy = Table({"id": [1], "objectType": ["galaxy"], "ra": [56.0], "dec": [-30.0], "hostId": [-1],
                    "sersicIndex": [1.0], "halfLightRadius": [1.5], "shapeG1": [0.5], "shapeG2": [0.0]})
    for rotation, elongated_along_x in [(0.0, True), (90.0, False)]:
        wcs = tan_wcs(56.0, -30.0, 100.0, 100.0, 0.2, rotation)
        image, x, y = draw_scene((201, 201), wcs, psf, galaxy, np.array([5000.0]))
        assert (x[0], y[0]) == pytest.approx((100.0, 100.0))
        assert image.sum() == pytest.approx(5000.0, rel=5e-3)
        yy, xx = np.mgrid[0:201, 0:201] - 100.0
        ixx, iyy = (image * xx**2).sum(), (image * yy**2).sum()
        # g1 = 0.5 stretches the galaxy east-west (axis ratio 3): along x when north is up
        assert (ixx > 2 * iyy) if elongated_along_x else (iyy > 2 * ixx)


def test_light_of_objects_centred_off_the_image_is_drawn():
    preset = get_preset("demo")
    plan = plan_survey(preset, 1)[0]
    psf = detector_psf(plan, preset, preset.camera().detector(0))
    objects = Table({"id": [1, 2], "objectType": ["galaxy", "star"], "ra": [56.0, 56.0],
                     "dec": [-30.0, -30.0 + 60 * 0.2 / 3600], "hostId": [-1, -1], "sersicIndex": [4.0, np.nan],
                     "halfLightRadius": [2.0, np.nan], "shapeG1": [0.3, np.nan], "shapeG2": [0.1, np.nan]})
    flux = np.array([1e5, 1e5])
    # the same sky on two grids: the objects 40 px left of the first one, 160 px inside the second
    small, x, _ = draw_scene((201, 201), tan_wcs(56.0, -30.0, -40.0, 100.0, 0.2), psf, objects, flux)
    large, _, _ = draw_scene((201, 401), tan_wcs(56.0, -30.0, 160.0, 100.0, 0.2), psf, objects, flux)
    assert x[0] == pytest.approx(-40.0)
    assert small.sum() > 0.01 * flux[0]
    np.testing.assert_allclose(small, large[:, 200:], atol=1e-5 * large.max())


def test_noise_matches_variance_and_is_deterministic(noiseless, survey):
    preset, objects, _ = survey
    plan, det = noiseless.plan, noiseless.detector
    noisy = render_visit_detector(plan, det, objects, preset, SEED, artifacts=False)
    again = render_visit_detector(plan, det, objects, preset, SEED, artifacts=False)
    np.testing.assert_array_equal(noisy.image, again.image)
    other = render_visit_detector(plan, det, objects, preset, SEED + 1, artifacts=False)
    assert not np.array_equal(other.image, noisy.image)
    np.testing.assert_array_equal(noisy.variance, noiseless.variance)
    good = noisy.mask == 0
    pull = ((noisy.image - noiseless.image) / np.sqrt(noisy.variance))[good]
    assert pull.std() == pytest.approx(1.0, abs=0.01)
    assert abs(pull.mean()) < 0.01
    # sky-dominated variance at the sky level of the visit
    assert np.median(noisy.variance) == pytest.approx(plan.sky + preset.read_noise**2, rel=0.05)


def test_artifacts_and_saturation(noiseless, survey):
    preset, objects, _ = survey
    plan, det = noiseless.plan, noiseless.detector
    # a 12th-magnitude star in the middle of the detector
    bright = objects[objects["objectType"] == "star"][:1]
    bright["ra"], bright["dec"] = noiseless.wcs.pixel_to_world_values(500.2, 600.7)
    bright[f"{plan.band}_flux"] = 10 ** (0.4 * (31.4 - 12.0))
    objects = vstack([objects, bright])
    rendered = render_visit_detector(plan, det, objects, preset, SEED)
    mask = rendered.mask
    # bad columns: zeroed and BAD, the same in another visit
    assert len(rendered.bad_columns) == preset.bad_columns_per_detector
    for col in rendered.bad_columns:
        rows = slice(col["y_start"], None)
        assert np.all(mask[rows, col["x"]] & MaskBit.BAD)
        assert np.all(rendered.image[rows, col["x"]] == 0)
    later = render_visit_detector(survey[2][0], det, objects, preset, SEED, noise=False)
    np.testing.assert_array_equal(later.bad_columns["x"], rendered.bad_columns["x"])
    # cosmic rays: masked tracks are flagged and interpolated, some may remain unflagged
    cr = rendered.cosmic_rays
    flagged = (mask & MaskBit.COSMIC_RAY) != 0
    assert np.all(mask[flagged] & MaskBit.INTERPOLATED)
    assert flagged.any() == bool(np.any(cr["masked"]))
    for ray in cr[cr["masked"]]:
        xi, yi = int(round(ray["x"])), int(round(ray["y"]))
        if 0 <= xi < det.nx and 0 <= yi < det.ny:
            assert flagged[yi, xi]
    # saturation: clipped at the full well minus the subtracted sky, flagged
    clean = render_visit_detector(plan, det, objects, preset, SEED, noise=False, artifacts=False)
    saturated = (clean.mask & MaskBit.SATURATED) != 0
    assert saturated[601, 500] and saturated.sum() > 20
    sky = plan.sky * (1 + np.abs(plan.sky_gradient).sum())
    assert np.all(clean.image[saturated] <= preset.saturation - plan.sky * (1 - np.abs(plan.sky_gradient).sum()))
    assert np.all(clean.image[saturated] >= preset.saturation - sky)
    assert clean.image[~saturated].max() < preset.saturation - plan.sky * (1 - np.abs(plan.sky_gradient).sum())


def test_to_exposure_is_calibrated(noiseless):
    exposure = noiseless.to_exposure()
    assert exposure.band == noiseless.plan.band and exposure.mjd == noiseless.plan.mjd
    np.testing.assert_allclose(exposure.image, noiseless.image * np.float32(noiseless.nJy_per_electron))
    np.testing.assert_allclose(exposure.variance, noiseless.variance * np.float32(noiseless.nJy_per_electron) ** 2)


@pytest.fixture(scope="module")
def coadd_grid(survey):
    preset = survey[0]
    # 0.2"/pixel grid rotated by 25 deg whose right side pokes out of the 0.12 deg field
    wcs = tan_wcs(preset.field_ra, preset.field_dec, 100.0, 300.0, 0.2, 25.0)
    return wcs, (600, 2400)


def test_coadd_static_sky_and_no_data(survey, coadd_grid):
    preset, objects, _ = survey
    wcs, shape = coadd_grid
    coadd = render_coadd(wcs, shape, "r", objects, preset, (SEED, 1, 2), noise=False)
    points = objects[objects["objectType"] != "galaxy"]
    coadd_points = render_coadd(wcs, shape, "r", points, preset, (SEED, 1, 2), noise=False)
    truth = coadd.truth
    assert np.all(truth["templateFlux"][truth["objectType"] == "transient"] == 0)
    assert "transient" in set(truth["objectType"])
    variables = truth["objectType"] == "variable"
    np.testing.assert_allclose(truth["templateFlux"][variables],
                               objects["r_flux"][np.isin(objects["id"], truth["id"][variables])])
    # NO_DATA beyond the field radius (2160 px = 0.12 deg from the centre along x)
    no_data = (coadd.mask & MaskBit.NO_DATA) != 0
    assert no_data[300, 2300] and not no_data[300, 2000]
    assert np.all(coadd.image[no_data] == 0)
    # isolated stars and variables: total (mean) flux in nJy
    h = coadd.psf.size // 2
    x_all, y_all = wcs.world_to_pixel_values(np.asarray(points["ra"]), np.asarray(points["dec"]))
    flux_all = template_flux(points, "r")
    n_checked = 0
    truth = coadd_points.truth
    for row in truth[(truth["templateFlux"] > 0) & (truth["x"] > h + 1) & (truth["x"] < 2000)
                     & (truth["y"] > h + 1) & (truth["y"] < shape[0] - h - 2)]:
        if _overlapping(x_all, y_all, flux_all, row["x"], row["y"], coadd.psf.size):
            continue
        box = _box(coadd_points.image, row["x"], row["y"], h)[0].astype(float)
        mbox, _, _ = _box(coadd_points.mask, row["x"], row["y"], h)
        if np.any(mbox & MaskBit.SATURATED):
            continue
        assert box.sum() == pytest.approx(row["templateFlux"], rel=1e-3)
        n_checked += 1
    assert n_checked >= 10


def test_coadd_psf_and_noise(survey, coadd_grid, noiseless):
    preset, objects, _ = survey
    wcs, shape = coadd_grid
    psf = template_psf(wcs, shape, "r", preset, SEED)
    centre = psf.kernel_image(100.0, 300.0)
    assert centre.sum() == pytest.approx(1.0)
    assert psf.fwhm_at(100.0, 300.0)[0] == pytest.approx(preset.template_seeing / 0.2, rel=1e-6)
    fwhm = psf.fwhm_at(np.array([0.0, 2399.0]), np.array([0.0, 599.0]))
    assert np.all(np.abs(fwhm / (preset.template_seeing / 0.2) - 1) <= preset.template_psf_variation)
    clean = render_coadd(wcs, shape, "r", objects, preset, (SEED, 1, 2), noise=False)
    noisy = render_coadd(wcs, shape, "r", objects, preset, (SEED, 1, 2))
    other_patch = render_coadd(wcs, shape, "r", objects, preset, (SEED, 1, 3))
    assert not np.array_equal(noisy.image, other_patch.image)
    good = noisy.mask == 0
    pull = ((noisy.image - clean.image) / np.sqrt(noisy.variance))[good]
    assert pull.std() == pytest.approx(1.0, abs=0.01)
    # deeper than a single visit: per-pixel noise in nJy ~ 1/sqrt(25) of a visit's
    calexp_sigma = np.sqrt(np.median(noiseless.variance)) * noiseless.nJy_per_electron
    assert np.sqrt(np.median(noisy.variance)) < 0.3 * calexp_sigma
