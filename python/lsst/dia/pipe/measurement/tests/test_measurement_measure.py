"""DIASource measurement end to end: centroids, fluxes, shapes, sky positions, dipoles, pixel flags, schema."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import yaml
from astropy import units as u
from astropy.wcs import WCS

from lsst.dia.pipe.detection import DetectionConfig, detect_sources
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.measurement import (
    GridMismatchError,
    MeasurementConfig,
    MissingWcsError,
    aperture_weights,
    dia_source_columns,
    measure_dia_sources,
    render_point_sources,
)
from lsst.dia.pipe.psf import GaussianPsf

NOISE = 10.0
SIGMA = 2.0
SCALE = 0.2  # arcsec / pixel
ROTATION = np.deg2rad(30.0)
_SDM_TYPES = {"float": "float32", "double": "float64", "int": "int32", "long": "int64", "boolean": "bool"}


def _wcs(n: int) -> WCS:
    """TAN WCS, 0.2"/pixel, north rotated 30 degrees from +y, east to the left (a normal sky image)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    c, s = np.cos(ROTATION), np.sin(ROTATION)
    wcs.wcs.cd = (SCALE / 3600) * np.array([[-c, s], [s, c]])
    wcs.wcs.crpix = [n / 2, n / 2]
    wcs.wcs.crval = [150.0, 2.0]
    return wcs


def _exposure(n: int, x, y, flux, seed: int) -> Exposure:
    rng = np.random.default_rng(seed)
    image = render_point_sources((n, n), GaussianPsf(SIGMA), np.asarray(x, float), np.asarray(y, float),
                                 np.asarray(flux, float))
    return Exposure(
        image=(image + rng.normal(0, NOISE, (n, n))).astype(np.float32),
        variance=np.full((n, n), NOISE**2, np.float32),
        mask=np.zeros((n, n), np.uint32),
        psf=GaussianPsf(SIGMA),
        wcs=_wcs(n),
    )


def _match(table, x, y, radius=1.0):
    d = np.hypot(np.asarray(table["x"])[:, None] - x[None, :], np.asarray(table["y"])[:, None] - y[None, :])
    j = d.argmin(axis=1)
    ok = d[np.arange(len(table)), j] < radius
    return ok, j


@pytest.fixture(scope="module")
def point_sources():
    n = 1024
    rng = np.random.default_rng(60)
    g = np.arange(32, n - 32, 40, dtype=float)
    x, y = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    sign = np.where(rng.uniform(size=x.size) < 0.5, -1.0, 1.0)
    flux = sign * rng.uniform(2000, 8000, x.size)  # S/N 28-113
    static = rng.uniform(1000, 5000, x.size)
    difference = _exposure(n, x, y, flux, seed=61)
    science = _exposure(n, x, y, static + flux, seed=62)
    template = _exposure(n, x, y, static, seed=63)
    detections = detect_sources(difference)
    table = measure_dia_sources(difference, science, template, detections)
    ok, _ = _match(table, x, y)
    # Pure noise gives ~0.3 false 5-sigma detections per image of this size.
    assert (~ok).sum() <= 2
    return table[ok], x, y, flux, static, difference


def test_every_source_measured_once(point_sources):
    table, x, y, flux, *_ = point_sources
    _, j = _match(table, x, y)
    assert len(table) == x.size and len(np.unique(j)) == x.size
    np.testing.assert_array_equal(table["isNegative"], flux[j] < 0)
    assert not np.any(table["centroid_flag"] | table["psfFlux_flag"] | table["shape_flag"])
    assert not np.any(table["dipoleFitAttempted"] | table["isDipole"])


def test_centroid_pulls(point_sources):
    table, x, y, *_ = point_sources
    _, j = _match(table, x, y)
    for axis, truth in (("x", x), ("y", y)):
        pull = (np.asarray(table[axis]) - truth[j]) / np.asarray(table[f"{axis}Err"])
        assert abs(np.mean(pull)) < 0.1
        assert np.std(pull) == pytest.approx(1.0, abs=0.1)


def test_psf_science_template_and_aperture_fluxes(point_sources):
    table, x, y, flux, static, _ = point_sources
    _, j = _match(table, x, y)
    for column, truth in (("psfFlux", flux), ("scienceFlux", static + flux), ("templateFlux", static)):
        pull = (np.asarray(table[column]) - truth[j]) / np.asarray(table[f"{column}Err"])
        assert abs(np.mean(pull)) < 0.1, column
        assert np.std(pull) == pytest.approx(1.0, abs=0.1), column
    # A 12-pixel aperture holds all the flux of a sigma = 2 px Gaussian; its error is sigma * sqrt(sum w^2),
    # a little below sigma * sqrt(area) because of the partial pixels on the rim.
    pull = (np.asarray(table["apFlux"]) - flux[j]) / np.asarray(table["apFluxErr"])
    assert abs(np.mean(pull)) < 0.15 and np.std(pull) == pytest.approx(1.0, abs=0.12)
    assert NOISE * np.sqrt(np.pi * 11.5**2) < np.median(table["apFluxErr"]) < NOISE * np.sqrt(np.pi * 12.0**2)
    assert not np.any(table["apFlux_flag"] | table["forced_PsfFlux_flag"] | table["templateFlux_flag"])
    # snr is the detection significance, close to the PSF-flux S/N.
    ratio = table["snr"] / np.abs(table["psfFlux"] / table["psfFluxErr"])
    assert np.median(ratio) == pytest.approx(1.0, abs=0.05)


def test_sky_positions_and_errors(point_sources):
    table, x, y, _, _, difference = point_sources
    _, j = _match(table, x, y)
    ra, dec = difference.pixel_to_sky(x[j], y[j])
    d_east = (np.asarray(table["ra"]) - ra) * np.cos(np.deg2rad(dec)) * 3600
    d_north = (np.asarray(table["dec"]) - dec) * 3600
    sep_pull = np.hypot(d_east, d_north) / (np.hypot(table["raErr"], table["decErr"]) * 3600)
    assert np.median(sep_pull) < 1.5
    # Errors scale with the pixel size; the rotation mixes x and y but keeps the trace.
    trace_sky = (table["raErr"] ** 2 + table["decErr"] ** 2) * 3600**2
    trace_pix = (table["xErr"] ** 2 + table["yErr"] ** 2) * SCALE**2
    np.testing.assert_allclose(trace_sky, trace_pix, rtol=1e-3)


def test_adaptive_moments_in_arcsec(point_sources):
    table, *_ = point_sources
    expected = (SIGMA * SCALE) ** 2  # circular: the same in any rotated frame
    for suffix in ("", "PSF"):
        assert np.median(table[f"ixx{suffix}"]) == pytest.approx(expected, rel=0.03)
        assert np.median(table[f"iyy{suffix}"]) == pytest.approx(expected, rel=0.03)
        assert abs(np.median(table[f"ixy{suffix}"])) < 0.01 * expected
    np.testing.assert_allclose(table["ixxPSF"], expected, rtol=0.01)


def _dipole_scene(n, centres, separation, angle, pos_flux, neg_flux, seed):
    cx, cy = centres
    ux, uy = np.cos(angle), np.sin(angle)
    x = np.concatenate([cx + 0.5 * separation * ux, cx - 0.5 * separation * ux])
    y = np.concatenate([cy + 0.5 * separation * uy, cy - 0.5 * separation * uy])
    return _exposure(n, x, y, np.concatenate([pos_flux, -neg_flux]), seed), x, y


def test_dipole_fit_recovers_separation_orientation_and_fluxes():
    n = 512
    rng = np.random.default_rng(70)
    g = np.arange(48, n - 48, 64, dtype=float)
    cx, cy = (a.ravel() + rng.uniform(-0.5, 0.5, a.size) for a in np.meshgrid(g, g))
    m = cx.size
    angle = rng.uniform(0, 2 * np.pi, m)
    f = 6000.0
    separation = 4.0
    diff, px, py = _dipole_scene(n, (cx, cy), separation, angle, np.full(m, f), np.full(m, f), seed=71)
    sci = _exposure(n, px[:m], py[:m], np.full(m, f), seed=72)
    table = measure_dia_sources(diff, sci, None, detect_sources(diff))
    assert len(table) == m and np.all(table["dipoleFitAttempted"])
    ok, j = _match(table, cx, cy, radius=0.5)
    assert ok.all()
    assert np.all(table["isDipole"])
    assert np.all(table["dipoleNdata"] > 0)
    pull = (np.asarray(table["dipoleMeanFlux"]) - f) / np.asarray(table["dipoleMeanFluxErr"])
    assert abs(np.mean(pull)) < 0.5 and np.std(pull) == pytest.approx(1.0, abs=0.3)
    pull = np.asarray(table["dipoleFluxDiff"]) / np.asarray(table["dipoleFluxDiffErr"])
    assert abs(np.mean(pull)) < 0.5 and np.std(pull) == pytest.approx(1.0, abs=0.3)
    np.testing.assert_allclose(table["dipoleLength"], separation * SCALE, atol=0.05)
    # Position angle of the negative -> positive vector, east of north, from the WCS at the true lobes.
    ra_p, dec_p = diff.pixel_to_sky(px[:m][j], py[:m][j])
    ra_n, dec_n = diff.pixel_to_sky(px[m:][j], py[m:][j])
    east = (ra_p - ra_n) * np.cos(np.deg2rad(dec_p))
    north = dec_p - dec_n
    expected = np.rad2deg(np.arctan2(east, north)) % 360
    delta = (np.asarray(table["dipoleAngle"]) - expected + 180) % 360 - 180
    assert np.abs(delta).max() < 5.0
    assert np.median(table["dipoleChi2"] / table["dipoleNdata"]) == pytest.approx(1.0, abs=0.1)
    # The centroid of a fitted dipole is the midpoint of its lobes.
    assert np.hypot(table["x"] - cx[j], table["y"] - cy[j]).max() < 0.3


def test_unbalanced_pair_is_not_classified_dipole():
    n = 256
    f = 6000.0
    diff, *_ = _dipole_scene(n, (np.array([128.0]), np.array([128.0])), 5.0, np.array([0.3]), np.array([f]),
                             np.array([f / 3]), seed=73)
    table = measure_dia_sources(diff, diff, None, detect_sources(diff))
    assert len(table) == 1
    row = table[0]
    assert row["dipoleFitAttempted"] and not row["isDipole"]
    assert row["dipoleFluxDiff"] == pytest.approx(2 * f / 3, abs=4 * float(row["dipoleFluxDiffErr"]))
    assert np.isnan(row["templateFlux"]) and row["templateFlux_flag"]


def test_pixel_flags_from_footprint_and_centre():
    n = 256
    x = np.array([60.0, 130.0, 200.0, 3.0, 60.0])
    y = np.array([60.0, 60.0, 60.0, 150.0, 180.0])
    diff = _exposure(n, x, y, np.full(5, 20000.0), seed=74)
    diff.mask[60, 60] |= np.uint32(MaskBit.SATURATED)  # source 0: at the centre
    diff.mask[60, 135] |= np.uint32(MaskBit.INTERPOLATED)  # source 1: in the footprint, off centre
    diff.mask[61, 199] |= np.uint32(MaskBit.COSMIC_RAY)  # source 2: next to the centre
    diff.mask[183, 57] |= np.uint32(MaskBit.NO_TEMPLATE)  # source 4: in the footprint (not detectable there)
    table = measure_dia_sources(diff, diff, diff, detect_sources(diff))
    ok, j = _match(table, x, y)
    assert ok.all() and len(table) == 5
    rows = {int(k): table[i] for i, k in enumerate(j)}
    assert rows[0]["pixelFlags_saturated"] and rows[0]["pixelFlags_saturatedCenter"]
    assert rows[1]["pixelFlags_interpolated"] and not rows[1]["pixelFlags_interpolatedCenter"]
    assert rows[2]["pixelFlags_cr"] and rows[2]["pixelFlags_crCenter"]
    assert rows[4]["pixelFlags_nodata"] and not rows[4]["pixelFlags_nodataCenter"]
    assert rows[3]["pixelFlags_edge"] and rows[3]["psfFlux_flag_edge"] and rows[3]["apFlux_flag_apertureTruncated"]
    for k in (0, 1, 2, 4):
        assert not rows[k]["pixelFlags_edge"] and not rows[k]["pixelFlags_offimage"]
    assert not rows[0]["pixelFlags_interpolated"] and not rows[1]["pixelFlags_saturated"]
    # The saturated centre pixel is left out of the PSF fit (default badMaskPlanes).
    assert rows[0]["psfNdata"] == rows[1]["psfNdata"] - 1
    assert rows[0]["bboxSize"] >= 9


def test_empty_detections_give_the_full_schema():
    diff = _exposure(64, [], [], [], seed=75)
    config = DetectionConfig()
    config.thresholdValue = 50.0
    table = measure_dia_sources(diff, diff, None, detect_sources(diff, config))
    assert len(table) == 0
    assert table.colnames == [c.name for c in dia_source_columns()]


def test_missing_wcs_or_mismatched_grids_are_errors():
    diff = _exposure(64, [32.0], [32.0], [5000.0], seed=76)
    detections = detect_sources(diff)
    with pytest.raises(GridMismatchError):
        measure_dia_sources(diff, _exposure(65, [], [], [], seed=77), None, detections)
    diff.wcs = None
    with pytest.raises(MissingWcsError):
        measure_dia_sources(diff, diff, None, detections, MeasurementConfig())


def test_columns_follow_the_sdm_schema(point_sources):
    table = point_sources[0]
    schema = yaml.safe_load((files("lsst.sdm.schemas") / "apdb.yaml").read_text())
    sdm = {c["name"]: c for c in {t["name"]: t for t in schema["tables"]}["DiaSource"]["columns"]}
    for col in dia_source_columns():
        assert table[col.name].dtype == np.dtype(col.dtype)
        assert table[col.name].unit == (u.Unit(col.unit) if col.unit else None)
        if col.sdm:
            assert col.name in sdm, col.name
            assert col.dtype == _SDM_TYPES[sdm[col.name]["datatype"]], col.name
            assert col.unit == sdm[col.name].get("fits:tunit"), col.name
        else:
            assert col.name not in sdm


def test_aperture_weights_cover_the_circle_area():
    rng = np.random.default_rng(77)
    dx, dy = rng.uniform(-0.5, 0.5, 50), rng.uniform(-0.5, 0.5, 50)
    for radius in (3.0, 7.3, 12.0):
        w = aperture_weights(dx, dy, 2 * int(radius) + 5, radius, subsample=16)
        np.testing.assert_allclose(w.sum(axis=(1, 2)), np.pi * radius**2, rtol=2e-3)
        assert w.min() == 0.0 and w.max() == 1.0
