"""PSFEx models: classic and legacypipe-merged files, polynomial order, resampling, real DECam models."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from scipy.ndimage import zoom

from lsst.dia.pipe.psf import PsfexFormatError, PsfexModel, psf_moments_sigma, psfex_to_grid, read_psfex

DECAM = Path("/work/shared/data/legacypipe-testcase4")
DECAM_MODELS = sorted(DECAM.glob("calib/decam/CP/*/*/*/*-psfex.fits"))
needs_decam = pytest.mark.skipif(
    not DECAM_MODELS, reason=f"real DECam PSFEx test data not found under {DECAM} (legacypipe testcase4)"
)


def gaussian_basis(sigma_image: float, sampling: float, size: int = 41) -> np.ndarray:
    """A Gaussian of ``sigma_image`` image pixels drawn on a basis grid with ``sampling`` image px per pixel."""
    r = (np.arange(size) - size // 2) * sampling
    g = np.exp(-0.5 * (r[None, :] ** 2 + r[:, None] ** 2) / sigma_image**2)
    return g / g.sum()


def classic_basis(sampling: float) -> np.ndarray:
    """Degree-1 model: 1 -> sigma 2.0, X -> sigma 2.4 - 2.0 (so X = 1 gives sigma 2.4), Y -> 0."""
    g20, g24 = gaussian_basis(2.0, sampling), gaussian_basis(2.4, sampling)
    return np.array([g20, g24 - g20, np.zeros_like(g20)])


def write_classic(path: Path, basis: np.ndarray, sampling: float) -> None:
    column = fits.Column(name="PSF_MASK", format=f"{basis.size}E", dim=f"({basis.shape[2]},{basis.shape[1]},3)",
                         array=basis[None].astype(np.float32))
    table = fits.BinTableHDU.from_columns([column], name="PSF_DATA")
    cards = {"LOADED": 40, "ACCEPTED": 38, "POLNAXIS": 2, "POLGRP1": 1, "POLNAME1": "X_IMAGE",
             "POLZERO1": 1001.0, "POLSCAL1": 500.0, "POLGRP2": 1, "POLNAME2": "Y_IMAGE", "POLZERO2": 2001.0,
             "POLSCAL2": 1000.0, "POLNGRP": 1, "POLDEG1": 1, "PSF_FWHM": 4.7, "PSF_SAMP": sampling,
             "PSFNAXIS": 3, "PSFAXIS1": basis.shape[2], "PSFAXIS2": basis.shape[1], "PSFAXIS3": 3}
    table.header.update(cards)
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("X", "E", array=[0.0])]),
                  table]).writeto(path)


@pytest.mark.parametrize("sampling", [1.0, 0.5, 0.8])
def test_classic_file_polynomial_and_resampling(tmp_path, sampling):
    path = tmp_path / "model.psf"
    write_classic(path, classic_basis(sampling), sampling)
    model = read_psfex(path, stamp_size=25)
    assert model.degree == 1 and model.sampling == sampling and model.size == 25 and model.fwhm == 4.7
    # X = (x + 1 - POLZERO1) / POLSCAL1: array x = 1000 is X = 0, x = 1500 is X = 1
    at_zero = model.kernel_image(1000.0, 2000.0)
    at_one = model.kernel_image(1500.0, 3000.0)  # Y has a zero basis image
    assert at_zero.sum() == pytest.approx(1.0) and np.unravel_index(at_zero.argmax(), at_zero.shape) == (12, 12)
    assert psf_moments_sigma(at_zero) == pytest.approx(2.0, rel=2e-3)
    assert psf_moments_sigma(at_one) == pytest.approx(2.4, rel=2e-3)
    # resampled to image pixels: the point-sampled Gaussian of 2.0 image pixels. Lanczos-3 (how PSFEx itself
    # resamples) is exact on basis pixels (up to the float32 file and the basis edge at 5 sigma for
    # sampling 0.5) and good to ~3e-3 of the peak between them
    r = np.arange(25) - 12
    truth = np.exp(-0.5 * (r[None, :] ** 2 + r[:, None] ** 2) / 4.0)
    tolerance = 1e-5 if sampling in (1.0, 0.5) else 5e-3
    assert np.abs(at_zero - truth / truth.sum()).max() < tolerance * at_zero.max()


def test_merged_legacypipe_file_selects_the_ccd(tmp_path):
    basis = np.array([gaussian_basis(s, 1.0, 31) for s in (1.8, 2.6)])
    n = 31 * 31
    columns = [
        fits.Column("expnum", "K", array=[123, 123]),
        fits.Column("ccdname", "3A", array=["N1", "S22"]),
        fits.Column("psf_mask", f"{n}E", dim="(31,31,1)", array=basis[:, None].astype(np.float32)),
        fits.Column("polnaxis", "J", array=[0, 0]),
        fits.Column("polname1", "4A", array=["fake", "fake"]),
        fits.Column("polzero1", "D", array=[0.0, 0.0]),
        fits.Column("polscal1", "D", array=[1.0, 1.0]),
        fits.Column("poldeg1", "J", array=[0, 0]),
        fits.Column("psf_samp", "E", array=[1.0, 1.0]),
        fits.Column("psf_fwhm", "E", array=[4.2, 6.1]),
    ]
    path = tmp_path / "decam-00000123-psfex.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path)
    model = read_psfex(path, ccdname="S22")
    assert model.degree == 0 and model.fwhm == pytest.approx(6.1) and model.size == 31
    assert psf_moments_sigma(model.kernel_image(10.0, 3000.0)) == pytest.approx(2.6, rel=1e-2)
    with pytest.raises(PsfexFormatError, match="pass ccdname"):
        read_psfex(path)
    with pytest.raises(PsfexFormatError, match="no row for CCD 'N4'"):
        read_psfex(path, ccdname="N4")


def test_unsupported_or_broken_files_are_clear_errors(tmp_path):
    path = tmp_path / "model.psf"
    write_classic(path, classic_basis(1.0), 1.0)
    with fits.open(path, mode="update") as hdus:
        hdus["PSF_DATA"].header["POLNAME1"] = "MAG_AUTO"
    with pytest.raises(PsfexFormatError, match="X_IMAGE, Y_IMAGE"):
        read_psfex(path)
    other = tmp_path / "other.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("X", "E", array=[0.0])])]
                 ).writeto(other)
    with pytest.raises(PsfexFormatError, match="no binary table with a PSF_MASK column"):
        read_psfex(other)
    with pytest.raises(ValueError, match="needs 6 basis images"):
        PsfexModel(basis=np.ones((3, 5, 5)), degree=2)


def test_psfex_to_grid_spans_the_image(tmp_path):
    path = tmp_path / "model.psf"
    write_classic(path, classic_basis(1.0), 1.0)
    grid = psfex_to_grid(read_psfex(path), (4000, 2000), n_x=3, n_y=2, stamp_size=21)
    np.testing.assert_allclose(grid.x_nodes, [0.0, 999.5, 1999.0])
    np.testing.assert_allclose(grid.y_nodes, [0.0, 3999.0])
    assert grid.size == 21
    # the second moment is linear in X: sigma² = 2.0² + X (2.4² - 2.0²), X = (1999 + 1 - 1001) / 500
    assert grid.sigma(1999.0, 0.0) == pytest.approx(np.sqrt(4.0 + 1.76 * 999 / 500), rel=2e-3)
    np.testing.assert_allclose(grid.kernel_image(1999.0, 3999.0), grid.kernel_image(1999.0, 0.0), atol=1e-15)


def half_max_fwhm(stamp: np.ndarray, oversample: int = 8) -> float:
    """FWHM [pixels] from the area above half maximum of a cubic-upsampled stamp."""
    fine = zoom(stamp, oversample, order=3)
    return 2.0 * np.sqrt((fine >= 0.5 * fine.max()).sum() / np.pi) / oversample


@needs_decam
def test_real_decam_models_one_per_band():
    bands = {path.name.split("_")[4] for path in DECAM_MODELS}
    assert bands == {"g", "r", "z"}
    for path in DECAM_MODELS:
        model = read_psfex(path, stamp_size=31)
        assert model.degree == 2 and model.sampling == 1.0 and model.basis.shape == (6, 63, 63)
        grid = psfex_to_grid(model, (250, 250), n_x=3, n_y=3)
        assert np.allclose(grid.stamps.sum(axis=(2, 3)), 1.0)
        centre = grid.kernel_image(125.0, 125.0)
        assert np.unravel_index(centre.argmax(), centre.shape) == (15, 15), path.name
        fwhm = half_max_fwhm(centre)
        assert 3.0 < fwhm < 6.0, path.name  # DECam at 0.26"/px: 0.8-1.6 arcsec seeing
        assert fwhm == pytest.approx(model.fwhm, rel=0.15), path.name  # PSFEx's own PSF_FWHM card
        # smooth: across the 250 px crop the width changes by < 10%, the stamps by < 10% of the peak
        sigmas = np.array([[grid.sigma(x, y) for x in grid.x_nodes] for y in grid.y_nodes])
        assert np.ptp(sigmas) < 0.1 * sigmas.mean(), path.name
        assert np.abs(np.diff(grid.stamps, axis=1)).max() < 0.1 * grid.stamps.max(), path.name


@needs_decam
def test_real_decam_polynomial_term_order():
    # PSFEx orders the degree-2 terms 1, X, X², Y, XY, Y²: check against explicit sums of the basis images
    path = DECAM_MODELS[0]
    full = read_psfex(path)
    assert full.size == 63  # the whole basis footprint by default
    (x0, y0), (sx, sy) = full.zero, full.scale
    b = full.basis

    def expected(*terms):
        s = sum(b[t] for t in terms)
        return s / s.sum()

    np.testing.assert_allclose(full.kernel_image(x0 - 1, y0 - 1), expected(0), atol=1e-12)
    np.testing.assert_allclose(full.kernel_image(x0 - 1 + sx, y0 - 1), expected(0, 1, 2), atol=1e-12)
    np.testing.assert_allclose(full.kernel_image(x0 - 1, y0 - 1 + sy), expected(0, 3, 5), atol=1e-12)
    np.testing.assert_allclose(full.terms(x0 - 1 + 2 * sx, y0 - 1 + 3 * sy), [1, 2, 4, 3, 6, 9])
