"""Bad inputs fail one by one with a clear line; the other files are ingested; nothing is half-written."""

from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from lsst.daf.butler import Butler
from lsst.daf.butler.direct_butler import DirectButler

from lsst.dia.pipe.ingest import IngestOptions, ingest_images
from lsst.dia.pipe.ingest.cli import main
from lsst.dia.pipe.ingest.metadata import parse_band_rule
from lsst.dia.pipe.repo.collections import DEFAULT_INPUT_COLLECTION

NY, NX = 160, 180


def star_field(n_stars: int, seed: int) -> np.ndarray:
    """Sky 100 counts + Gaussian stars (sigma 1.8 px) on a grid + unit-variance-per-count noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:NY, 0:NX]
    image = np.full((NY, NX), 100.0)
    grid = [(20 + 35 * i + rng.uniform(-3, 3), 20 + 35 * j + rng.uniform(-3, 3)) for i in range(4) for j in range(4)]
    for xc, yc in grid[:n_stars]:
        image += 3e4 * np.exp(-0.5 * ((x - xc) ** 2 + (y - yc) ** 2) / 1.8**2) / (2 * np.pi * 1.8**2)
    return (image + rng.normal(0, 10.0, image.shape)).astype(np.float32)


def header(extname: str = "S1", ccdnum: int = 25, expnum: int = 1001, **changes) -> fits.Header:
    h = fits.Header()
    h.update({"EXTNAME": extname, "CCDNUM": ccdnum, "EXPNUM": expnum, "FILTER": "r DECam SDSS c0002",
              "MJD-OBS": 58000.1 + expnum * 1e-3, "EXPTIME": 90.0, "MAGZERO": 30.0, "INSTRUME": "DECam",
              "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 150.0, "CRVAL2": 2.0,
              "CRPIX1": NX / 2, "CRPIX2": NY / 2, "CD1_1": -7.3e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 7.3e-5})
    for key, value in changes.items():
        if value is None:
            del h[key]
        else:
            h[key] = value
    return h


def write_cp(directory: Path, stem: str, hdus: list[tuple[fits.Header, np.ndarray]], weight_shape=None) -> Path:
    """Write ``<stem>_ooi_r.fits`` with its ``_oow_`` (inverse variance) and ``_ood_`` (DQ) companions."""
    image = directory / f"{stem}_ooi_r.fits"
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(data, h) for h, data in hdus]).writeto(image)
    weights, dqs = [fits.PrimaryHDU()], [fits.PrimaryHDU()]
    for h, data in hdus:
        shape = weight_shape or data.shape
        weights.append(fits.ImageHDU(np.full(shape, 0.01, np.float32), fits.Header({"EXTNAME": h["EXTNAME"]})))
        dqs.append(fits.ImageHDU(np.zeros(data.shape, np.int16), fits.Header({"EXTNAME": h["EXTNAME"]})))
    fits.HDUList(weights).writeto(directory / f"{stem}_oow_r.fits")
    fits.HDUList(dqs).writeto(directory / f"{stem}_ood_r.fits")
    return image


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    files = {
        "good": write_cp(d, "good", [(header(expnum=1), star_field(12, 1))]),
        "no_wcs": write_cp(d, "nowcs", [(header(expnum=2, CTYPE1=None, CTYPE2=None), star_field(12, 2))]),
        "projection": write_cp(d, "zpn", [(header(expnum=3, CTYPE1="RA---ZPN", CTYPE2="DEC--ZPN"), star_field(12, 3))]),
        "shapes": write_cp(d, "shape", [(header(expnum=4), star_field(12, 4))], weight_shape=(NY - 10, NX)),
        "zeropoint": write_cp(d, "nozp", [(header(expnum=5, MAGZERO=None), star_field(12, 5))]),
        "stars": write_cp(d, "fewstars", [(header(expnum=6), star_field(1, 6))]),
    }
    return tmp_path, files


EXPECTED = {
    "no_wcs": "no celestial WCS",
    "projection": "unsupported projection 'RA---ZPN'",
    "shapes": "planes have different shapes",
    "zeropoint": "no photometric zero point",
    "stars": "[S1]: 1 usable PSF star(s)",
}


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.fits")]


def test_each_bad_file_fails_with_a_clear_line_and_the_good_one_is_ingested(inputs, capsys):
    tmp_path, files = inputs
    repo = tmp_path / "repo"
    status = main([str(repo), "--science", *map(str, files.values()), "--background-box", "64"])
    # only the per-file failure lines: log lines may reach stderr too when an earlier test configured logging
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("FAILED ")]
    assert status == len(EXPECTED) == len(err)
    for key, phrase in EXPECTED.items():
        line = next(line for line in err if str(files[key]) in line)
        assert line.startswith("FAILED science: ") and phrase in line, line
    butler = Butler.from_config(str(repo), collections=[DEFAULT_INPUT_COLLECTION])
    refs = butler.query_datasets("calexp")
    assert [(r.dataId["visit"], r.dataId["detector"]) for r in refs] == [(1, 25)]
    assert len(stored_files(repo)) == 1  # only the good calexp's file


def test_failed_write_removes_everything_the_file_wrote(tmp_path, monkeypatch):
    d = tmp_path / "in"
    d.mkdir()
    good = write_cp(d, "good", [(header(expnum=1), star_field(12, 1))])
    two_ccds = write_cp(d, "two", [(header("S1", 25, expnum=2), star_field(12, 2)),
                                   (header("S2", 26, expnum=2), star_field(12, 3))])
    original = DirectButler.put

    def flaky_put(self, obj, dataset_type, *args, **kwargs):
        if kwargs.get("detector") == 26:
            raise OSError("disk full")
        return original(self, obj, dataset_type, *args, **kwargs)

    monkeypatch.setattr(DirectButler, "put", flaky_put)
    repo = tmp_path / "repo"
    report = ingest_images(repo, [good, two_ccds], [], IngestOptions(background_box=64))
    assert report.n_failed == 1
    assert "could not store calexp: disk full" in report.failed[0].error and str(two_ccds) in report.failed[0].error
    butler = Butler.from_config(str(repo), collections=[DEFAULT_INPUT_COLLECTION])
    assert [r.dataId["visit"] for r in butler.query_datasets("calexp")] == [1]  # no orphan S1 calexp of visit 2
    assert len(stored_files(repo)) == 1


def test_duplicate_inputs_and_unknown_band(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good = write_cp(d, "good", [(header(expnum=1), star_field(12, 1))])
    odd = write_cp(d, "odd", [(header(expnum=7, FILTER="N964 DECam"), star_field(12, 7))])
    report = ingest_images(tmp_path / "repo", [good, good, odd], [], IngestOptions(background_box=64))
    errors = [f.error for f in report.failed]
    assert len(errors) == 2
    assert any("duplicate data ID instrument=DECam visit=1 detector=25" in e for e in errors)
    assert any("no band for filter 'N964 DECam'" in e for e in errors)
    # a band-map rule fixes the second
    rules = IngestOptions(background_box=64, band_rules=(parse_band_rule("N964 ^N964"),))
    report = ingest_images(tmp_path / "repo", [odd], [], rules)
    assert report.n_failed == 0 and report.files[0].images[0].band == "N964"
