"""Ingest building blocks on synthetic data with known answers: TPV, DQ, sky, PSF from stars, reprojection,
calibration, names and metadata."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from lsst.dia.pipe.ingest.background import estimate_background
from lsst.dia.pipe.ingest.calibration import njy_per_count, relative_calibration, zeropoint_from_njy_per_count
from lsst.dia.pipe.ingest.dq import dq_to_mask, guess_dq_convention
from lsst.dia.pipe.ingest.errors import InsufficientPsfStarsError, MissingMetadataError, WcsConversionError
from lsst.dia.pipe.ingest.fits_input import InputSpec, PlaneNaming, resolve_planes
from lsst.dia.pipe.ingest.metadata import parse_band_rule, read_observation_metadata, visit_from_mjd
from lsst.dia.pipe.ingest.prepare import find_psfex_file
from lsst.dia.pipe.ingest.psf_estimation import estimate_psf, stamp_fwhm
from lsst.dia.pipe.ingest.reproject import coordinate_map, footprint_box, resample, transform_psf
from lsst.dia.pipe.ingest.wcs import TpvProjection, read_celestial_wcs, tpv_to_sip
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GridPsf
from lsst.dia.pipe.skymap.geometry import tan_wcs


def tpv_header(**extra) -> fits.Header:
    """A DECam-like TPV header: CCD far from the optical axis, 90° rotation, cubic distortion."""
    h = fits.Header({"CTYPE1": "RA---TPV", "CTYPE2": "DEC--TPV", "CRVAL1": 187.3, "CRVAL2": 25.5,
                     "CRPIX1": -118.2, "CRPIX2": 7292.7, "CD1_1": -1.1e-7, "CD1_2": 7.285e-5,
                     "CD2_1": -7.288e-5, "CD2_2": -1.26e-7,
                     "PV1_0": 0.002, "PV1_1": 1.0097, "PV1_2": 1.7e-4, "PV1_4": 7.8e-3, "PV1_5": 6.3e-4,
                     "PV1_6": -6.7e-4, "PV1_7": 1.34e-3, "PV1_8": 7.2e-4, "PV1_9": -2.66e-3, "PV1_10": -4.66e-3,
                     "PV2_0": 2.1e-4, "PV2_1": 1.0066, "PV2_2": 3.2e-4, "PV2_4": -3.9e-5, "PV2_5": 3.45e-3,
                     "PV2_6": 6.6e-4, "PV2_7": -7.0e-3, "PV2_8": 1.55e-3, "PV2_9": -7.6e-4, "PV2_10": 3.1e-4})
    h.update(extra)
    return h


def wcslib(header: fits.Header) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def separation_arcsec(ra1, dec1, ra2, dec2) -> np.ndarray:
    return np.hypot((ra1 - ra2) * np.cos(np.deg2rad(dec2)), dec1 - dec2) * 3600.0


@pytest.mark.parametrize("shape", [(250, 250), (4096, 2048)])
def test_tpv_evaluation_matches_wcslib_and_sip_fit_is_within_tolerance(shape):
    header = tpv_header()
    tpv = TpvProjection.from_header(header)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, shape[1] - 1, 200), rng.uniform(0, shape[0] - 1, 200)
    ra, dec = tpv.pixel_to_sky(x, y)
    assert separation_arcsec(ra, dec, *wcslib(header).pixel_to_world_values(x, y)).max() < 1e-6
    solution = read_celestial_wcs(header, shape)
    assert solution.projection == "TPV" and solution.sip_order == 3
    assert solution.max_residual_px < 0.01
    fitted = solution.wcs.pixel_to_world_values(x, y)
    assert separation_arcsec(*fitted, ra, dec).max() < 0.01 * 0.27
    xb, yb = solution.wcs.world_to_pixel_values(ra, dec)
    assert np.hypot(xb - x, yb - y).max() < 0.01


def test_tpv_radial_terms_need_a_higher_sip_order():
    header = tpv_header(PV1_3=3e-3, PV2_3=-2e-3, PV1_11=0.01, CRPIX1=1382.0, CRPIX2=5293.0)
    shape = (4096, 2048)
    solution = tpv_to_sip(TpvProjection.from_header(header), shape)
    assert solution.sip_order > 3 and solution.max_residual_px < 0.01
    with pytest.raises(WcsConversionError, match="exceeds 0.01 px at SIP order 3"):
        tpv_to_sip(TpvProjection.from_header(header), shape, max_order=3)


def test_dq_conventions():
    dq = np.array([[1, 0, 3, 1], [4, 5, 6, 7], [8, 2, 0, 0]])
    mask = dq_to_mask(dq, "cp-codes")
    assert mask[0, 0] == MaskBit.BAD and mask[0, 3] == MaskBit.SATURATED  # a bad pixel next to saturation is saturated
    assert mask[0, 2] == mask[1, 0] == MaskBit.SATURATED
    assert mask[1, 1] == MaskBit.COSMIC_RAY and mask[1, 3] == MaskBit.SUSPECT and mask[2, 0] == MaskBit.STREAK
    assert mask[2, 1] == MaskBit.NO_DATA | MaskBit.BAD and mask[2, 2] == 0
    bits = dq_to_mask(np.array([[2 | 16, 4, 128, 4096]]), "cp-bits")
    assert bits[0, 0] == MaskBit.SATURATED | MaskBit.COSMIC_RAY and bits[0, 1] == MaskBit.INTERPOLATED
    assert bits[0, 2] == MaskBit.SUSPECT and bits[0, 3] == MaskBit.SUSPECT
    np.testing.assert_array_equal(dq_to_mask(dq, "nonzero") != 0, dq != 0)
    assert [guess_dq_convention(v) for v in ("V4.8.2a", "V3.4.1", None)] == ["cp-codes", "cp-bits", "nonzero"]


def test_background_recovers_a_smooth_sky_under_stars():
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:300, 0:400]
    sky = 500.0 + 0.05 * x - 0.03 * y + 20 * np.sin(x / 150.0)
    image = sky + rng.normal(0, 10, sky.shape)
    for xc, yc in rng.uniform(10, 290, (30, 2)):
        image += 5e4 * np.exp(-0.5 * ((x - xc) ** 2 + (y - yc) ** 2) / 2.0**2) / (2 * np.pi * 4)
    est = estimate_background(image, box=64)
    inner = (slice(32, -32), slice(32, -32))
    assert np.abs(est.background[inner] - sky[inner]).max() < 3.0
    assert est.sky_sigma == pytest.approx(10.0, rel=0.1)


def moffat_stamp(dx: float, dy: float, fwhm: float, size: int, beta: float = 3.0, sub: int = 5) -> np.ndarray:
    """Pixel-integrated (sub-sampled) Moffat profile centred at ``(dx, dy)`` from the stamp centre, sum 1."""
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    c = (np.arange(size * sub) - (size * sub - 1) / 2) / sub
    yy, xx = np.meshgrid(c - dy, c - dx, indexing="ij")
    fine = (1 + (xx**2 + yy**2) / alpha**2) ** -beta
    img = fine.reshape(size, sub, size, sub).sum(axis=(1, 3))
    return img / img.sum()


def moffat_field(n_side: int, fwhm_of_x, nx: int = 480, ny: int = 400, seed: int = 4):
    rng = np.random.default_rng(seed)
    image = rng.normal(0, 5.0, (ny, nx))
    xs = np.linspace(30, nx - 31, n_side) + rng.uniform(-4, 4, n_side)
    ys = np.linspace(30, ny - 31, n_side) + rng.uniform(-4, 4, n_side)
    for yc in ys:
        for xc in xs:
            ix, iy = int(round(xc)), int(round(yc))
            stamp = moffat_stamp(xc - ix, yc - iy, fwhm_of_x(xc), 31) * rng.uniform(2e4, 8e4)
            image[iy - 15 : iy + 16, ix - 15 : ix + 16] += stamp
    return image.astype(np.float32), np.full((ny, nx), 25.0, np.float32), np.zeros((ny, nx), np.uint32)


def test_psf_from_stars_recovers_a_spatially_varying_moffat():
    def fwhm_of_x(x):
        return 3.5 + 1.2 * x / 479.0

    image, variance, mask = moffat_field(7, fwhm_of_x)
    estimate = estimate_psf(image, variance, mask, fwhm_guess=4.0, n_grid=3)
    assert estimate.n_used == 49 and estimate.psf.stamps.shape[:2] == (3, 3)  # all stars, though FWHM varies 30%
    for x in (60.0, 240.0, 420.0):
        truth = stamp_fwhm(moffat_stamp(0.0, 0.0, fwhm_of_x(x), estimate.psf.size))
        assert stamp_fwhm(estimate.psf.kernel_image(x, 200.0)) == pytest.approx(truth, rel=0.015), x
        # the stamp is centred: first moments vanish
        stamp = estimate.psf.kernel_image(x, 200.0)
        c = np.arange(stamp.shape[0]) - stamp.shape[0] // 2
        assert abs((stamp.sum(axis=0) * c).sum()) < 0.03 and abs((stamp.sum(axis=1) * c).sum()) < 0.03


def test_psf_from_stars_refuses_too_few_stars():
    image, variance, mask = moffat_field(1, lambda x: 4.0)
    with pytest.raises(InsufficientPsfStarsError, match="1 usable PSF star"):
        estimate_psf(image, variance, mask, min_stars=3)


def test_reprojection_conserves_flux_position_and_psf_moments():
    """A star on a 90°-rotated 0.26″ grid, reprojected to a north-up 0.2″ grid."""
    src_wcs = tan_wcs(150.0, 2.0, 60.0, 60.0, 0.26, rotation_deg=90.0)
    dst_wcs = tan_wcs(150.0, 2.0, 100.0, 90.0, 0.2)
    sx, sy = 52.3, 67.6
    sigma_x, sigma_y = 1.6, 2.4  # elliptical source PSF, source pixels
    y, x = np.mgrid[0:120, 0:120]
    image = np.exp(-0.5 * ((x - sx) ** 2 / sigma_x**2 + (y - sy) ** 2 / sigma_y**2))
    image *= 1e5 / image.sum()
    variance = np.full(image.shape, 4.0)
    mask = np.zeros(image.shape, np.uint32)
    mask[10, 100] = MaskBit.COSMIC_RAY
    box = footprint_box(src_wcs, image.shape, dst_wcs, (180, 200))
    cmap = coordinate_map(src_wcs, dst_wcs, box)
    out, out_var, out_mask = resample(image, variance, mask, cmap, (180, 200))
    assert out.sum() == pytest.approx(1e5, rel=5e-3)
    ex, ey = dst_wcs.world_to_pixel_values(*src_wcs.pixel_to_world_values(sx, sy))
    yy, xx = np.mgrid[0:180, 0:200]
    assert (out * xx).sum() / out.sum() == pytest.approx(float(ex), abs=0.02)
    assert (out * yy).sum() / out.sum() == pytest.approx(float(ey), abs=0.02)
    area = (0.2 / 0.26) ** 2  # source pixels per destination pixel
    assert np.nanmedian(out_var[np.isfinite(out_var)]) == pytest.approx(4.0 * area**2, rel=1e-3)
    assert np.count_nonzero(out_mask & MaskBit.COSMIC_RAY) >= 1
    assert out_mask[0, 0] == MaskBit.NO_DATA and np.isnan(out_var[0, 0])
    # PSF: a 90° rotation and a 1.3 scale: destination sigmas are (1.3 sigma_y, 1.3 sigma_x)
    r = np.arange(25) - 12
    psf_stamp = np.exp(-0.5 * (r[None, :] ** 2 / sigma_x**2 + r[:, None] ** 2 / sigma_y**2))
    grid = GridPsf(np.array([60.0]), np.array([60.0]), psf_stamp[None, None])
    moved = transform_psf(grid, cmap, np.array([float(ex)]), np.array([float(ey)])).stamps[0, 0]
    c = np.arange(moved.shape[0]) - moved.shape[0] // 2
    var_x = (moved.sum(axis=0) * c**2).sum()
    var_y = (moved.sum(axis=1) * c**2).sum()
    assert np.sqrt(var_x) == pytest.approx(1.3 * sigma_y, rel=0.02)
    assert np.sqrt(var_y) == pytest.approx(1.3 * sigma_x, rel=0.02)


def test_relative_calibration_recovers_a_known_scale():
    rng = np.random.default_rng(5)
    ra, dec = 150 + rng.uniform(0, 0.01, 20), 2 + rng.uniform(0, 0.01, 20)
    ref_flux = rng.uniform(1e4, 1e5, 20)  # nJy
    counts = ref_flux / njy_per_count(27.3) * (1 + rng.normal(0, 0.01, 20))
    jitter = 0.2 / 3600
    cal = relative_calibration(counts[:15], ra[:15] + jitter, dec[:15], [(ref_flux, ra, dec)])
    assert cal.n_matched == 15 and cal.zeropoint == pytest.approx(27.3, abs=0.01)
    assert zeropoint_from_njy_per_count(njy_per_count(27.3)) == pytest.approx(27.3)
    assert relative_calibration(counts[:2], ra[:2], dec[:2], [(ref_flux, ra, dec)], min_matches=3) is None
    assert relative_calibration(counts, ra + 5 / 3600, dec, [(ref_flux, ra, dec)]) is None  # 5″ off: no match


def test_file_names_input_specs_and_band_rules(tmp_path):
    spec = InputSpec.parse("a.fits,weight=w.fits,mask=m.fits,zp=25.5,psf=p.psf")
    assert (spec.weight, spec.mask, spec.psf, spec.zeropoint) == (Path("w.fits"), Path("m.fits"), Path("p.psf"), 25.5)
    with pytest.raises(ValueError, match="not both"):
        InputSpec.parse("a.fits,weight=w.fits,variance=v.fits")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        InputSpec.parse("a.fits,gain=4")
    for name in ("c4d_1_ooi_r_v1.fits", "c4d_1_oow_r_v1.fits", "c4d_1_ood_r_v1.fits", "img.fits", "img.wht.fits"):
        (tmp_path / name).touch()
    cp = resolve_planes(InputSpec(tmp_path / "c4d_1_ooi_r_v1.fits"), PlaneNaming())
    assert cp.weight.name == "c4d_1_oow_r_v1.fits" and cp.mask.name == "c4d_1_ood_r_v1.fits"
    plain = resolve_planes(InputSpec(tmp_path / "img.fits"), PlaneNaming(weight_suffix=".wht.fits"))
    assert plain.weight.name == "img.wht.fits" and plain.mask is None
    candidates = [Path("c/x_ooi_z/x_ooi_z-N2-psfex.fits"), Path("c/x_ooi_z/x_ooi_z-N21-psfex.fits"),
                  Path("c/y_ooi_z-psfex.fits")]
    assert find_psfex_file(Path("x_ooi_z.N2.fits"), "N2", candidates) == candidates[0]
    assert find_psfex_file(Path("x_ooi_z.N21.fits"), "N21", candidates) == candidates[1]
    assert find_psfex_file(Path("y_ooi_z.fits"), "S4", candidates) == candidates[2]  # merged per-exposure file
    assert find_psfex_file(Path("w_ooi_z.fits"), "S4", candidates) is None
    rule = parse_band_rule("r DECam r.*")
    assert rule.band == "r" and rule.pattern.search("DECam r.2") and parse_band_rule("i=^i ").band == "i"
    with pytest.raises(ValueError):
        parse_band_rule("r")


def test_metadata_from_headers():
    h = fits.Header({"INSTRUME": "DECam", "FILTER": "z DECam SDSS c0004", "DATE-OBS": "2017-03-16T06:18:30.75",
                     "EXPTIME": 100.0, "DETPOS": "S5", "DETSEC": "[1:2048,1:4096]", "OBJECT": "field 7"})
    meta = read_observation_metadata(h, "f.fits", hdu_index=3)
    assert (meta.band, meta.detector_id, meta.detector_name, meta.target) == ("z", 29, "S5", "field 7")
    assert meta.visit == visit_from_mjd(57828.26285590) and meta.detector_center_px == (1023.5, 2047.5)
    assert meta.mjd == pytest.approx(57828.26285590 + (37 + 50) / 86400, abs=1e-6)  # TAI, mid-exposure
    del h["FILTER"]
    with pytest.raises(MissingMetadataError, match="no filter"):
        read_observation_metadata(h, "f.fits", hdu_index=3)
