"""Survey presets and visit plans."""

import numpy as np
import pytest

from lsst.dia.pipe.sim import (
    FieldTooSmallError,
    get_preset,
    mag_from_flux,
    make_catalog,
    monomials,
    plan_survey,
)


def _separation_deg(ra1, dec1, ra2, dec2):
    ra1, dec1, ra2, dec2 = (np.deg2rad(np.asarray(v, float)) for v in (ra1, dec1, ra2, dec2))
    c = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(ra1 - ra2)
    return np.rad2deg(np.arccos(np.clip(c, -1, 1)))


def test_demo_plan():
    preset = get_preset("demo")
    plans = plan_survey(preset, 11)
    assert len(plans) == len(preset.bands) * preset.visits_per_band
    assert [p.visit for p in plans] == list(range(1, len(plans) + 1))
    mjd = np.array([p.mjd for p in plans])
    assert np.all(np.diff(mjd) > 0)
    assert mjd.min() >= preset.mjd_start and mjd.max() <= preset.mjd_start + preset.mjd_span
    for band in preset.bands:
        in_band = [p for p in plans if p.band == band]
        assert len(in_band) == preset.visits_per_band
        assert {p.physical_filter for p in in_band} == {f"SIM-{band}"}
        assert len({int(p.mjd) for p in in_band}) == preset.visits_per_band  # distinct nights
    seeing = np.array([p.seeing for p in plans])
    assert seeing.min() >= 0.6 and seeing.max() <= 1.2
    rotation = np.array([p.rotation for p in plans])
    assert np.ptp(rotation) > 10  # templates must be warped
    sep = _separation_deg([p.ra for p in plans], [p.dec for p in plans], preset.field_ra, preset.field_dec)
    assert sep.max() <= preset.dither_arcmin / 60 + 1e-9 and sep.max() > 0.3 * preset.dither_arcmin / 60
    # dithered visits stay inside the simulated field
    assert sep.max() + preset.camera().field_radius_arcsec / 3600 <= preset.field_radius_deg


def test_plan_is_deterministic():
    preset = get_preset("demo")
    a, b = plan_survey(preset, 5), plan_survey(preset, 5)
    assert [(p.mjd, p.ra, p.seeing) for p in a] == [(p.mjd, p.ra, p.seeing) for p in b]
    assert [p.mjd for p in plan_survey(preset, 6)] != [p.mjd for p in a]


def test_calibration_and_depth():
    preset = get_preset("demo")
    plans = plan_survey(preset, 1)
    for p in plans:
        nominal = preset.nominal_nJy_per_electron(p.band)
        # extinction only dims: more nJy per electron, by at most extinction_max magnitudes
        assert nominal <= p.nJy_per_electron <= nominal * 10 ** (0.4 * preset.extinction_max) * (1 + 1e-12)
        assert p.zero_point == pytest.approx(31.4 - 2.5 * np.log10(p.nJy_per_electron))
    # 5-sigma point-source depth of an average r visit is LSST-like (24-25 mag)
    r = [p for p in plans if p.band == "r"][0]
    n_eff = 4 * np.pi * (r.seeing / 2.355 / preset.pixel_scale) ** 2
    depth = mag_from_flux(5 * np.sqrt(n_eff * (r.sky + preset.read_noise**2)) * r.nJy_per_electron)
    assert 23.8 < depth < 25.2


def test_psf_terms_bounded():
    preset = get_preset("demo")
    for p in plan_survey(preset, 2):
        assert p.psf_terms.shape == (3, 6)
        assert p.psf_terms[0, 0] == 1.0
        assert np.abs(p.psf_terms[0, 1:]).sum() <= preset.psf_size_variation + 1e-12
        # |g| on a dense grid of the normalised focal plane
        u, v = np.meshgrid(np.linspace(-1, 1, 41), np.linspace(-1, 1, 41))
        g = monomials(u, v, 2) @ p.psf_terms[1:].T
        assert np.hypot(g[:, 0], g[:, 1]).max() <= preset.psf_shear_max + 1e-12


def test_field_too_small_and_overrides():
    with pytest.raises(FieldTooSmallError, match="field radius"):
        plan_survey(get_preset("demo", field_radius_deg=0.05), 1)
    near_zero = get_preset("demo", field_ra=0.02, field_dec=0.0)
    plans = plan_survey(near_zero, 3)
    ra = np.array([p.ra for p in plans])
    assert np.all((ra >= 0) & (ra < 360))
    cat = make_catalog(near_zero, 3)
    assert np.any(np.asarray(cat["ra"]) > 359.9)
    with pytest.raises(KeyError, match="Unknown survey preset"):
        get_preset("nope")


def test_dc2_preset_geometry():
    preset = get_preset("dc2")
    camera = preset.camera()
    assert len(camera.detectors) == 9 and camera.detector(4).nx == 4096
    assert len(plan_survey(preset, 1)) == 6 * preset.visits_per_band
