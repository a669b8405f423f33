"""Per-image evaluation helpers, cutout resampling, figures and failure reasons, on synthetic inputs."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.table import Table
from astropy.wcs import WCS
from matplotlib.image import imread

from lsst.dia.pipe.execution import ExecutionSummary, QuantumOutcome, QuantumStatus
from lsst.dia.pipe.exposure import Exposure
from lsst.dia.pipe.masks import MaskBit
from lsst.dia.pipe.psf import GaussianPsf
from lsst.dia.pipe.qa import figures
from lsst.dia.pipe.qa.collect import RunCatalogs, failures_from_summary
from lsst.dia.pipe.qa.cutouts import resample_onto
from lsst.dia.pipe.qa.evaluate import _forced_pulls, difference_noise
from lsst.dia.pipe.qa.metrics import LogisticFit, binned_completeness


def _wcs(crpix=(50.0, 50.0), rotation_deg=0.0, scale_arcsec=0.2) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [30.0, -20.0]
    wcs.wcs.crpix = [crpix[0] + 1, crpix[1] + 1]  # FITS 1-based -> array pixel crpix
    c, s = np.cos(np.deg2rad(rotation_deg)), np.sin(np.deg2rad(rotation_deg))
    wcs.wcs.cd = scale_arcsec / 3600.0 * np.array([[-c, s], [s, c]])
    return wcs


def test_difference_noise_masks_bright_sources_and_gives_psf_flux_errors():
    rng = np.random.default_rng(2)
    shape = (300, 300)
    psf = GaussianPsf(2.0, size=25)
    variance = np.full(shape, 25.0, np.float32)
    image = rng.normal(0.0, 5.0, shape).astype(np.float32)
    stamp = psf.kernel_image(0, 0)
    # residual noise around a bright star (S/N ~ 14000): masked within 1.5 FWHM (S/N / 5)^0.2 ~ 35 px
    image[130:170, 100:140] *= 2.0
    mask = np.zeros(shape, np.uint32)
    mask[:, 280:] = np.uint32(MaskBit.NO_TEMPLATE)
    truth = Table({"x": [120.0, 200.0, 290.0], "y": [150.0, 150.0, 150.0],
                   "trueFlux": [5e5, 10.0, 1e3], "templateFlux": [5e5, 0.0, 0.0]})
    noise = difference_noise(Exposure(image, variance, mask, psf, _wcs()), truth, block=100)
    assert noise.residual_noise_ratio == pytest.approx(1.0, abs=0.02)  # the residual is masked by position
    assert noise.n_usable_pixels == 300 * 280
    assert noise.truth_usable.tolist() == [True, True, False]
    expected = np.sqrt(25.0 / (stamp**2).sum())
    assert noise.truth_sigma[1] == pytest.approx(expected, rel=1e-6)
    assert noise.noise_map.shape == (3, 3)
    unmasked = difference_noise(Exposure(image, variance, mask, psf, _wcs()), truth[1:], block=100)
    assert unmasked.noise_map[1, 1] > 1.05  # the residual shows where it is not masked


def test_resample_onto_rotated_grid():
    yy, xx = np.mgrid[0:101, 0:101].astype(float)
    source_wcs = _wcs(rotation_deg=0.0)
    target_wcs = _wcs(crpix=(20.0, 20.0), rotation_deg=30.0)
    ra, dec = source_wcs.pixel_to_world_values(xx, yy)
    source = Exposure((ra * 1e4 + dec * 3e4).astype(np.float32), np.ones(xx.shape, np.float32),
                      np.zeros(xx.shape, np.uint32), GaussianPsf(1.0), source_wcs)
    target = Exposure(np.zeros((41, 41), np.float32), np.ones((41, 41), np.float32), np.zeros((41, 41), np.uint32),
                      GaussianPsf(1.0), target_wcs)
    out = resample_onto(source, target)
    ty, tx = np.mgrid[0:41, 0:41].astype(float)
    tra, tdec = target_wcs.pixel_to_world_values(tx, ty)
    expected = tra * 1e4 + tdec * 3e4
    inside = np.isfinite(out)
    assert inside[20, 20] and inside.mean() > 0.5
    # a linear function of the sky is reproduced (float32 precision of ~3e5)
    assert np.nanmax(np.abs(out - expected)) < 0.2


def test_failures_from_summary():
    summary = ExecutionSummary([
        QuantumOutcome("imageDifference", "visit=3 detector=1", QuantumStatus.FAILED, 1.0, "NoTemplateCoverageError"),
        QuantumOutcome("imageDifference", "visit=3 detector=2", QuantumStatus.DONE, 1.0),
        QuantumOutcome("forcedPhotCcdDia", "visit=3 detector=1", QuantumStatus.BLOCKED, 0.0, "upstream"),
    ])
    assert failures_from_summary(summary) == {(3, 1): "failed: NoTemplateCoverageError"}
    assert failures_from_summary(summary, "forcedPhotCcdDia") == {(3, 1): "blocked: upstream"}


def test_figures_are_small_pngs(tmp_path):
    rng = np.random.default_rng(0)
    snr = np.exp(rng.uniform(0, 4.6, 500))
    curve = binned_completeness(snr, snr > 5, np.geomspace(1, 100, 11))
    fit = LogisticFit(5.0, 5.0, 0.1, 1.0, 500, 300)
    written = [
        figures.plot_completeness({"AL": (curve, fit), "ZOGY": (curve, None)}, tmp_path / "c.png"),
        figures.plot_pull_histograms({"diff": rng.normal(size=300)}, tmp_path / "p.png"),
        figures.plot_noise_maps({"a": np.ones((4, 4)), "b": np.full((4, 4), 1.2)}, tmp_path / "n.png"),
        figures.plot_artifact_causes({"AL": {"edge": 1.0, "other": 2.0}}, tmp_path / "a.png"),
        figures.plot_sky_map(Table({"ra": [359.99, 0.01], "dec": [0.0, 0.01], "band": ["g", "r"]}),
                             Table({"ra": [0.0], "dec": [0.0]}), tmp_path / "s.png"),
        figures.plot_cutouts({"science": rng.normal(size=(31, 31)), "template": None,
                              "difference": rng.normal(size=(31, 31))}, "obj", tmp_path / "x.png"),
        figures.plot_light_curve(Table({"midpointMjdTai": [1.0, 2.0], "band": ["g", "r"], "psfFlux": [1.0, 2.0],
                                        "psfFluxErr": [0.1, 0.1], "scienceFlux": [3.0, 4.0],
                                        "scienceFluxErr": [0.1, 0.1]}), "lc", tmp_path / "l.png"),
    ]
    for path in written:
        height, width = imread(path).shape[:2]
        assert 50 < width <= 600 and 50 < height <= 500, (path.name, width, height)


def test_forced_pulls_against_truth_including_epochs_before_explosion():
    """Two transients over 40 visits, fluxes drawn with unit pulls; the first has no flux in its first 10
    visits (before explosion), the second carries a +3 sigma bias there: only the null-epoch statistics of
    the second are off."""
    rng = np.random.default_rng(8)
    n_visits = 40
    visit = np.tile(np.arange(n_visits), 2)
    obj = np.repeat([0, 1], n_visits)
    true = np.where(visit < 10, 0.0, 1000.0 + 50.0 * visit)
    err = np.full(visit.size, 40.0)

    def catalogs(null_bias: float) -> RunCatalogs:
        flux = true + err * rng.normal(size=true.size) + np.where((obj == 1) & (true == 0), null_bias * 40.0, 0.0)
        forced = Table({"diaObjectId": obj + 100, "visit": visit, "detector": np.zeros(visit.size, int),
                        "psfFlux": flux, "psfFluxErr": err, "scienceFlux": flux, "scienceFluxErr": err})
        objects = Table({"diaObjectId": [100, 101], "ra": [10.0, 10.01], "dec": [-5.0, -5.0]})
        truth_objects = Table({"id": [1, 2], "ra": [10.0, 10.01], "dec": [-5.0, -5.0],
                               "objectType": ["transient", "transient"]})
        truth_visit = Table({"id": obj + 1, "visit": visit, "detector": np.zeros(visit.size, int),
                             "objectType": ["transient"] * visit.size, "hostId": np.full(visit.size, -1),
                             "trueFlux": true, "diffFlux": true})
        return RunCatalogs("repo", "rerun", Table(), Table(), objects, Table(), forced, 1, 1, truth_visit,
                           truth_objects)

    diff, sci, _, _, null = _forced_pulls(catalogs(0.0))
    assert diff.n == sci.n == 80 and null.n == 20
    assert abs(null.mean) < 0.6 and 0.6 < null.std < 1.4
    _, _, _, _, biased = _forced_pulls(catalogs(3.0))
    assert biased.mean > 1.0
