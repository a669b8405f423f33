"""Sky model: object counts and positions, hosts, colours, light curves and template fluxes."""

import numpy as np
import pytest
from astropy.table import Table

from lsst.dia.pipe.sim import (
    BAND_COLOR_SLOPES,
    SkyModelConfig,
    UnknownBandError,
    mag_from_flux,
    make_sky_catalog,
    offset_positions,
    template_flux,
    true_flux,
)

BANDS = ("g", "r", "i")
MJD = (60000.0, 60060.0)


@pytest.fixture(scope="module")
def catalog():
    return make_sky_catalog(SkyModelConfig(), ra=56.0, dec=-30.0, radius_deg=0.1, bands=BANDS, mjd_range=MJD,
                            seed=3)


def _separation_deg(ra1, dec1, ra2, dec2):
    ra1, dec1, ra2, dec2 = (np.deg2rad(np.asarray(v, float)) for v in (ra1, dec1, ra2, dec2))
    c = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(ra1 - ra2)
    return np.rad2deg(np.arccos(np.clip(c, -1, 1)))


def test_deterministic_and_seed_dependent(catalog):
    again = make_sky_catalog(SkyModelConfig(), ra=56.0, dec=-30.0, radius_deg=0.1, bands=BANDS, mjd_range=MJD,
                             seed=3)
    other = make_sky_catalog(SkyModelConfig(), ra=56.0, dec=-30.0, radius_deg=0.1, bands=BANDS, mjd_range=MJD,
                             seed=4)
    assert len(again) == len(catalog)
    np.testing.assert_array_equal(again["ra"], catalog["ra"])
    assert len(other) != len(catalog) or not np.array_equal(other["ra"], catalog["ra"])


def test_counts_positions_and_ids(catalog):
    config = SkyModelConfig()
    area = np.pi * (0.1 * 60) ** 2  # arcmin², flat-sky approximation is fine at 0.1 deg
    kinds = np.asarray(catalog["objectType"])
    for kind, density in [("star", config.star_density), ("galaxy", config.galaxy_density),
                          ("transient", config.transient_density), ("variable", config.variable_density)]:
        expected = density * area
        assert abs((kinds == kind).sum() - expected) < 5 * np.sqrt(expected)
    assert len(np.unique(catalog["id"])) == len(catalog) and catalog["id"].min() == 1
    sep = _separation_deg(catalog["ra"], catalog["dec"], 56.0, -30.0)
    assert sep.max() <= 0.1 + 2.5 * 3.0 / 3600  # a hosted transient may sit 2.5 hlr (<= 3") beyond its host
    # uniform on the sky: half of the objects inside radius / sqrt(2)
    assert np.mean(sep < 0.1 / np.sqrt(2)) == pytest.approx(0.5, abs=0.03)


def test_star_magnitudes_follow_power_law(catalog):
    mags = mag_from_flux(catalog["r_flux"][catalog["objectType"] == "star"])
    lo, hi = SkyModelConfig().star_mag_range
    assert mags.min() >= lo and mags.max() <= hi
    # dN/dm ∝ 10^(0.2 m): two magnitudes fainter hold 10^0.4 = 2.5 times more stars
    n1 = np.sum((mags > 21) & (mags <= 22))
    n2 = np.sum((mags > 23) & (mags <= 24))
    assert n2 / n1 == pytest.approx(10**0.4, rel=0.2)


def test_colours(catalog):
    slope = BAND_COLOR_SLOPES["g"] - BAND_COLOR_SLOPES["i"]
    colour = (mag_from_flux(catalog["g_flux"]) - mag_from_flux(catalog["i_flux"])) / slope
    stars = catalog["objectType"] == "star"
    lo, hi = SkyModelConfig().star_color_range
    assert colour[stars].min() >= lo - 1e-9 and colour[stars].max() <= hi + 1e-9


def test_hosts(catalog):
    transients = catalog[catalog["objectType"] == "transient"]
    hosted = transients[transients["hostId"] > 0]
    assert len(hosted) / len(transients) == pytest.approx(SkyModelConfig().transient_hosted_fraction, abs=0.1)
    assert len(np.unique(hosted["hostId"])) == len(hosted)
    by_id = {int(i): k for k, i in enumerate(catalog["id"])}
    hosts = catalog[[by_id[int(h)] for h in hosted["hostId"]]]
    assert np.all(hosts["objectType"] == "galaxy")
    offset = _separation_deg(hosted["ra"], hosted["dec"], hosts["ra"], hosts["dec"]) * 3600
    assert np.all(offset <= 2.5 * hosts["halfLightRadius"] + 1e-6)
    assert np.all(np.isnan(catalog["halfLightRadius"][catalog["objectType"] != "galaxy"]))


def _single(kind, **columns):
    base = {"id": [1], "objectType": [kind], "ra": [0.0], "dec": [0.0], "hostId": [-1], "r_flux": [1000.0],
            "peakMjd": [np.nan], "riseTime": [np.nan], "declineRate": [np.nan], "period": [np.nan],
            "amplitude": [np.nan], "phaseMjd": [np.nan]}
    base.update({k: [v] for k, v in columns.items()})
    return Table(base)


def test_transient_light_curve():
    sn = _single("transient", peakMjd=60030.0, riseTime=15.0, declineRate=0.05)
    t = np.array([60000.0, 60015.0, 60022.5, 60030.0, 60040.0, 60050.0])
    flux = np.array([true_flux(sn, "r", ti)[0] for ti in t])
    np.testing.assert_allclose(flux[:3], [0.0, 0.0, 1000.0 * (1 - 0.5**2)])
    assert flux[3] == pytest.approx(1000.0)
    # declines by 0.05 mag/day: 0.5 mag after 10 days, 1 mag after 20
    np.testing.assert_allclose(mag_from_flux(flux[3:]) - mag_from_flux(1000.0), [0.0, 0.5, 1.0], atol=1e-12)
    assert template_flux(sn, "r")[0] == 0.0


def test_variable_light_curve_and_vectorisation():
    var = _single("variable", period=4.0, amplitude=0.3, phaseMjd=60000.0)
    t = 60000.0 + np.linspace(0, 4, 401)[:-1]
    flux = true_flux(var[np.zeros(len(t), int)], "r", t)
    assert flux.max() == pytest.approx(1300.0) and flux.min() == pytest.approx(700.0)
    assert flux.mean() == pytest.approx(1000.0)
    assert true_flux(var, "r", 60001.0)[0] == pytest.approx(1300.0)
    assert template_flux(var, "r")[0] == 1000.0
    star = _single("star")
    assert true_flux(star, "r", 60123.0)[0] == 1000.0
    with pytest.raises(UnknownBandError, match="'z'"):
        true_flux(star, "z", 60000.0)


def test_offsets_are_exact_and_wrap_at_ra_zero():
    ra, dec = offset_positions(np.array([0.01, 359.99]), np.array([0.0, -89.5]), np.array([0.5, 0.2]),
                               np.array([90.0, 0.0]))
    assert ra[0] == pytest.approx(0.51, abs=1e-6) and dec[0] == pytest.approx(0.0, abs=1e-5)
    assert ra[1] == pytest.approx(359.99) and dec[1] == pytest.approx(-89.3)
    west, _ = offset_positions(np.array([0.01]), np.array([0.0]), np.array([0.5]), np.array([270.0]))
    assert west[0] == pytest.approx(359.51, abs=1e-6)
    sep = _separation_deg(ra, dec, [0.01, 359.99], [0.0, -89.5])
    np.testing.assert_allclose(sep, [0.5, 0.2], rtol=1e-9)


def test_field_at_ra_zero():
    cat = make_sky_catalog(SkyModelConfig(), ra=0.0, dec=0.0, radius_deg=0.05, bands=("r",), mjd_range=MJD,
                           seed=1)
    ra = np.asarray(cat["ra"])
    assert np.all((ra >= 0) & (ra < 360))
    assert np.any(ra > 359.9) and np.any(ra < 0.1)
    assert _separation_deg(ra, cat["dec"], 0.0, 0.0).max() < 0.0505
