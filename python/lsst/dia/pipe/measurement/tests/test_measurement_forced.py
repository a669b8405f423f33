"""Forced PSF photometry: blends, image edges, unusable pixels, degenerate groups, empty input, schema."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
import yaml
from astropy import units as u

from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.measurement import (
    ForcedPhotometryConfig,
    PositionShapeError,
    forced_columns,
    forced_psf_photometry,
    render_point_sources,
)
from lsst.dia.pipe.psf import GaussianPsf

NOISE = 10.0
SIGMA = 2.0
FWHM = 2.3548 * SIGMA

_SDM_TYPES = {"float": "float32", "double": "float64", "int": "int32", "long": "int64", "boolean": "bool"}


def _exposure(image: np.ndarray) -> Exposure:
    return Exposure(
        image=image.astype(np.float32),
        variance=np.full(image.shape, NOISE**2, np.float32),
        mask=np.zeros(image.shape, np.uint32),
        psf=GaussianPsf(SIGMA),
        wcs=None,
    )


def _scene(n: int, x, y, flux, seed: int) -> Exposure:
    rng = np.random.default_rng(seed)
    image = render_point_sources((n, n), GaussianPsf(SIGMA), np.asarray(x), np.asarray(y), np.asarray(flux))
    return _exposure(image + rng.normal(0, NOISE, (n, n)))


def test_blended_pairs_one_fwhm_apart_are_deblended():
    n = 1024
    rng = np.random.default_rng(40)
    g = np.arange(30, n - 30, 48, dtype=float)
    cx, cy = (a.ravel() for a in np.meshgrid(g, g))
    angle = rng.uniform(0, np.pi, cx.size)
    x = np.concatenate([cx + 0.5 * FWHM * np.cos(angle), cx - 0.5 * FWHM * np.cos(angle)])
    y = np.concatenate([cy + 0.5 * FWHM * np.sin(angle), cy - 0.5 * FWHM * np.sin(angle)])
    flux = np.concatenate([rng.uniform(1000, 3000, cx.size), rng.uniform(200, 3000, cx.size)])
    exposure = _scene(n, x, y, flux, seed=41)
    table = forced_psf_photometry(exposure, x, y)
    assert np.all(table["blendSize"] == 2)
    pull = (np.asarray(table["psfFlux"]) - flux) / np.asarray(table["psfFluxErr"])
    assert abs(np.mean(pull)) < 0.1
    assert np.std(pull) == pytest.approx(1.0, abs=0.08)
    assert np.median(table["psfChi2"] / table["psfNdata"]) == pytest.approx(1.0, abs=0.05)
    # The joint fit pays for the overlap: the error grows by 1 / sqrt(1 - c^2), with c the normalised PSF
    # overlap exp(-d^2 / 4 sigma^2) = 1/4 at d = FWHM.
    p = GaussianPsf(SIGMA).kernel_image(0, 0)
    c = np.exp(-(FWHM**2) / (4 * SIGMA**2))
    isolated = NOISE / np.sqrt((p * p).sum())
    assert np.median(table["psfFluxErr"]) == pytest.approx(isolated / np.sqrt(1 - c * c), rel=2e-3)
    # ... while fitting each source alone (no linking) is biased by the neighbour's light.
    config = ForcedPhotometryConfig()
    config.blendCoupling = 0.999
    alone = forced_psf_photometry(exposure, x, y, config)
    assert np.all(alone["blendSize"] == 1)
    assert np.mean((alone["psfFlux"] - flux) / alone["psfFluxErr"]) > 5


def test_blend_with_background_fit():
    n = 512
    g = np.arange(30, n - 30, 50, dtype=float)
    cx, cy = (a.ravel() for a in np.meshgrid(g, g))
    x = np.concatenate([cx, cx + FWHM, cx + 0.5 * FWHM])
    y = np.concatenate([cy, cy, cy + FWHM])
    rng = np.random.default_rng(42)
    flux = rng.uniform(500, 3000, x.size)
    exposure = _scene(n, x, y, flux, seed=43)
    exposure.image += np.float32(40.0)
    config = ForcedPhotometryConfig()
    config.fitBackground = True
    table = forced_psf_photometry(exposure, x, y, config)
    assert np.all(table["blendSize"] == 3)
    pull = (np.asarray(table["psfFlux"]) - flux) / np.asarray(table["psfFluxErr"])
    assert abs(np.mean(pull)) < 0.2
    assert np.std(pull) == pytest.approx(1.0, abs=0.15)
    # One background per group, shared by its members.
    assert np.allclose(table["localBackground"][: cx.size], table["localBackground"][cx.size : 2 * cx.size])
    bkg_pull = (np.asarray(table["localBackground"][: cx.size]) - 40.0) / np.asarray(
        table["localBackgroundErr"][: cx.size]
    )
    assert abs(np.mean(bkg_pull)) < 0.5 and np.std(bkg_pull) < 1.5


def test_edge_and_off_image_objects_are_flagged_not_dropped():
    n = 200
    x = np.array([100.0, 2.3, 197.6, -3.0, 100.0, np.nan, 150.0])
    y = np.array([100.0, 50.0, 120.0, 60.0, 250.0, 10.0, -0.4])
    flux = np.array([5000.0, 5000.0, 5000.0, 5000.0, 5000.0, 0.0, 5000.0])
    exposure = _scene(n, x[np.isfinite(x)], y[np.isfinite(x)], flux[np.isfinite(x)], seed=44)
    table = forced_psf_photometry(exposure, x, y)
    assert len(table) == len(x)
    np.testing.assert_array_equal(np.asarray(table["x"]), x.astype(np.float32))
    off = np.array([False, False, False, True, True, True, False])
    np.testing.assert_array_equal(table["pixelFlags_offimage"], off)
    assert np.all(np.isnan(table["psfFlux"][off]))
    assert np.all(table["psfFlux_flag"][off]) and np.all(table["pixelFlags_edge"][off])
    assert np.all(table["psfNdata"][off] == 0)
    # Objects whose stamp is clipped by the border are measured on what is left, and flagged.
    edge = np.array([False, True, True, False, False, False, True])
    np.testing.assert_array_equal(table["psfFlux_flag_edge"], edge | off)
    np.testing.assert_array_equal(table["pixelFlags_edge"], edge | off)
    pull = (table["psfFlux"][edge] - 5000.0) / table["psfFluxErr"][edge]
    assert np.all(np.abs(pull) < 4)
    assert not table["psfFlux_flag"][0]


def test_nan_and_masked_pixels_are_left_out():
    n = 128
    x, y = np.array([40.2, 90.7, 64.0]), np.array([40.6, 90.1, 12.0])
    flux = np.full(3, 20000.0)
    exposure = _scene(n, x, y, flux, seed=45)
    clean = forced_psf_photometry(exposure, x, y)
    exposure.image[40, 40] = np.nan  # source 0: one NaN pixel at the core
    exposure.image[89:93, 89:93] = 1e7  # source 1: a saturated block, masked
    exposure.mask[89:93, 89:93] |= np.uint32(MaskBit.SATURATED)
    exposure.mask[:25, :] |= np.uint32(MaskBit.NO_DATA)  # source 2
    table = forced_psf_photometry(exposure, x, y)
    assert table["psfNdata"][0] == clean["psfNdata"][0] - 1
    assert table["psfNdata"][1] == clean["psfNdata"][1] - 16
    for i in (0, 1):
        assert abs(table["psfFlux"][i] - 20000.0) < 4 * table["psfFluxErr"][i]
        assert table["psfFluxErr"][i] > clean["psfFluxErr"][i]
    assert table["pixelFlags_saturated"][1] and table["pixelFlags_saturatedCenter"][1]
    assert not table["pixelFlags_saturated"][0]
    # Source 2 lies wholly in NO_DATA: no usable pixel, NaN flux, flagged.
    assert table["psfFlux_flag_noGoodPixels"][2] and table["psfFlux_flag"][2]
    assert np.isnan(table["psfFlux"][2])
    assert table["pixelFlags_nodata"][2] and table["pixelFlags_nodataCenter"][2]


def test_coincident_objects_fall_back_to_single_fits():
    n = 128
    exposure = _scene(n, [60.0], [60.0], [10000.0], seed=46)
    x, y = np.array([60.0, 60.05, 90.0]), np.array([60.0, 60.0, 90.0])
    table = forced_psf_photometry(exposure, x, y)
    assert table["psfFlux_flag"][0] and table["psfFlux_flag"][1] and not table["psfFlux_flag"][2]
    assert table["blendSize"][0] == 1
    assert table["psfFlux"][0] == pytest.approx(10000.0, rel=0.02)


def test_groups_above_max_size_are_fitted_singly_and_flagged():
    n = 256
    x = 60.0 + FWHM * np.arange(5)
    y = np.full(5, 100.0)
    exposure = _scene(n, x, y, np.full(5, 3000.0), seed=47)
    config = ForcedPhotometryConfig()
    assert np.all(forced_psf_photometry(exposure, x, y, config)["blendSize"] == 5)
    config.maxBlendSize = 4
    table = forced_psf_photometry(exposure, x, y, config)
    assert np.all(table["blendSize"] == 1) and np.all(table["psfFlux_flag"])


def test_empty_and_bad_input():
    table = forced_psf_photometry(_exposure(np.zeros((32, 32))), np.array([]), np.array([]))
    assert len(table) == 0
    assert table.colnames == [c.name for c in forced_columns()]
    with pytest.raises(PositionShapeError):
        forced_psf_photometry(_exposure(np.zeros((32, 32))), np.zeros(3), np.zeros(2))


def test_columns_follow_the_sdm_schema():
    schema = yaml.safe_load((files("lsst.sdm.schemas") / "apdb.yaml").read_text())
    table = {t["name"]: t for t in schema["tables"]}["DiaForcedSource"]
    sdm = {c["name"]: c for c in table["columns"]}
    exposure = _scene(64, [30.0], [30.0], [1000.0], seed=48)
    result = forced_psf_photometry(exposure, np.array([30.0]), np.array([30.0]))
    for col in forced_columns(fit_background=True):
        if col.sdm:
            assert col.name in sdm
            assert col.dtype == _SDM_TYPES[sdm[col.name]["datatype"]]
            assert col.unit == sdm[col.name].get("fits:tunit")
        else:
            assert col.name not in sdm
    for col in forced_columns():
        assert result[col.name].dtype == np.dtype(col.dtype)
        assert result[col.name].unit == (u.Unit(col.unit) if col.unit else None)
