"""Quality of one rerun against simulation truth: the metrics of `lsst.dia.pipe.qa.metrics` over a survey.

`evaluate_run` takes the catalogs (`~lsst.dia.pipe.qa.collect.RunCatalogs`) and an iterable of difference
images and returns a `RunQuality`; it reads nothing itself.  Matches use `MATCH_RADIUS` (1″).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np
from astropy.table import Table, join

from ..exposure import Exposure
from ..masks import MaskBit
from ..sim import mag_from_flux
from .collect import RunCatalogs
from .matching import ccd_key, match_sky
from .metrics import (
    ARTIFACT_CAUSES,
    INJECTED_TYPES,
    ArtifactCriteria,
    AssociationQuality,
    CompletenessFitError,
    LogisticFit,
    PullStats,
    artifacts_per_ccd4k,
    association_quality,
    classify_artifacts,
    disc_mask,
    fit_completeness,
    gaussian_noise_peak_rate,
    psf_flux_sigma,
    pull_statistics,
    residual_noise_map,
    residual_noise_ratio,
)

__all__ = ["MATCH_RADIUS", "DifferenceNoise", "RunQuality", "difference_noise", "evaluate_run"]

#: Matching radius of detections and DIAObjects to truth [arcsec].
MATCH_RADIUS = 1.0
#: DIASource flux pulls and bias use matched sources of true S/N above this (issue 4: S/N > 20).
DIASOURCE_MIN_SNR = 20.0

#: Truth objects brighter than this S/N (on the difference image's noise) are masked for the noise ratio.
_EXCLUDE_SNR = 5.0

#: Pixels without a usable difference.
_NO_DIFFERENCE = MaskBit.NO_DATA | MaskBit.NO_TEMPLATE


@dataclasses.dataclass
class DifferenceNoise:
    """Noise properties of one difference image and the PSF-flux error at the truth positions.

    Attributes
    ----------
    residual_noise_ratio : `float`
        `~lsst.dia.pipe.qa.metrics.residual_noise_ratio` over source-free pixels, with discs around truth
        objects brighter than S/N 5 also left out.
    noise_map : `numpy.ndarray`
        The same in blocks (`~lsst.dia.pipe.qa.metrics.residual_noise_map`).
    n_usable_pixels : `int`
        Pixels with a difference (no NO_DATA/NO_TEMPLATE).
    shape : `tuple` [`int`, `int`]
        Image ``(ny, nx)``.
    truth_sigma : `numpy.ndarray`
        PSF-flux error [nJy] at each truth row's position.
    truth_usable : `numpy.ndarray`
        Truth row's centre pixel is on the image and has a difference.
    """

    residual_noise_ratio: float
    noise_map: np.ndarray
    n_usable_pixels: int
    shape: tuple[int, int]
    truth_sigma: np.ndarray
    truth_usable: np.ndarray


def difference_noise(difference: Exposure, truth: Table, block: int = 128) -> DifferenceNoise:
    """Noise statistics of a difference image, using the truth of its visit/detector.

    Parameters
    ----------
    difference : `~lsst.dia.pipe.exposure.Exposure`
        Difference image [nJy] with variance, mask and PSF.
    truth : `astropy.table.Table`
        ``truth_visit`` rows of this visit/detector (``x``, ``y`` in the difference's pixel grid,
        ``trueFlux``, ``templateFlux`` [nJy]); may be empty.
    block : `int`
        Block side of the noise map [pixels].

    Returns
    -------
    noise : `DifferenceNoise`
    """
    ny, nx = difference.image.shape
    x = np.asarray(truth["x"], dtype=np.float64) if len(truth) else np.zeros(0)
    y = np.asarray(truth["y"], dtype=np.float64) if len(truth) else np.zeros(0)
    sigma = psf_flux_sigma(difference.variance, difference.psf, x, y)
    no_diff = (difference.mask & np.uint32(int(_NO_DIFFERENCE))) != 0
    ix, iy = np.rint(x).astype(np.int64), np.rint(y).astype(np.int64)
    on = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
    usable = on.copy()
    usable[on] = ~no_diff[iy[on], ix[on]]
    exclude = None
    if len(truth):
        flux = np.fmax(np.asarray(truth["trueFlux"], float), np.asarray(truth["templateFlux"], float))
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = np.abs(flux) / sigma
        fwhm = difference.psf_fwhm
        bright = np.isfinite(snr) & (snr > _EXCLUDE_SNR)
        # 1.5 FWHM at S/N 5, growing slowly with brightness (6 FWHM at S/N 5000), at most 20 FWHM
        radius = np.minimum(1.5 * fwhm * (snr[bright] / _EXCLUDE_SNR) ** 0.2, 20 * fwhm)
        exclude = disc_mask((ny, nx), x[bright], y[bright], radius)
    return DifferenceNoise(
        residual_noise_ratio=residual_noise_ratio(difference.image, difference.variance, difference.mask,
                                                  exclude=exclude),
        noise_map=residual_noise_map(difference.image, difference.variance, difference.mask, block=block,
                                     exclude=exclude),
        n_usable_pixels=int((~no_diff).sum()),
        shape=(ny, nx),
        truth_sigma=sigma,
        truth_usable=usable,
    )


@dataclasses.dataclass
class RunQuality:
    """Quality of a rerun against truth.

    Attributes
    ----------
    label : `str`
        Name used in figures and JSON keys (e.g. ``"al"``).
    ccd_noise : `astropy.table.Table`
        Per difference image: ``visit``, ``detector``, ``band``, ``residualNoiseRatio``, ``nUsablePixels``.
    noise_maps : `dict` [`tuple` [`int`, `int`], `numpy.ndarray`]
        Block noise maps of the first few difference images.
    injected : `astropy.table.Table`
        Injected transients/variables on usable pixels with ``diffFlux != 0``: ``id``, ``visit``,
        ``detector``, ``band``, ``objectType``, ``diffFlux``, ``trueSnr``, ``diffMag``, ``detected``.
    completeness_fit : `LogisticFit` or `None`
        Logistic fit of detection versus true S/N (`None` when it fails; see ``completeness_fit_error``).
    completeness_fit_error : `str`
        Why the fit failed.
    artifacts : `astropy.table.Table`
        DIASources matching no injected object: ``diaSourceId``, ``visit``, ``detector``, ``band``, ``ra``,
        ``dec``, ``snr``, ``cause``.
    n_detections : `int`
        DIASources.
    n_usable_pixels : `int`
        Difference-image pixels with a template, summed over CCDs.
    pulls_diasrc : `PullStats` or `None`
        DIASource ``psfFlux`` against ``diffFlux`` for matched DIASources of true S/N > `DIASOURCE_MIN_SNR`
        (above it detection is complete, so the detection threshold does not bias the pulls); its
        ``bias_highsnr`` is the median fractional bias over the same sources.
    pulls_diff, pulls_sci : `PullStats` or `None`
        Forced photometry on the difference (true = ``diffFlux``) and science (true = ``trueFlux``) images.
    pull_values_diff, pull_values_sci : `numpy.ndarray`
        The pulls themselves (for histograms).
    pulls_null : `PullStats` or `None`
        Forced photometry on the difference image at the epochs where an injected transient has no flux yet
        (before explosion: true = 0), which must be consistent with zero.
    n_noise_peaks : `float`
        Detections that pure Gaussian noise would give on the same usable pixels with the same PSFs.
    association : `AssociationQuality` or `None`
        Association purity/completeness (`None` without DIAObjects).
    """

    label: str
    ccd_noise: Table
    noise_maps: dict
    injected: Table
    completeness_fit: LogisticFit | None
    completeness_fit_error: str
    artifacts: Table
    n_detections: int
    n_usable_pixels: int
    pulls_diasrc: PullStats | None
    pulls_diff: PullStats | None
    pulls_sci: PullStats | None
    pull_values_diff: np.ndarray
    pull_values_sci: np.ndarray
    association: AssociationQuality | None
    pulls_null: PullStats | None = None
    n_noise_peaks: float = float("nan")

    @property
    def residual_noise_ratio(self) -> float:
        """Median over difference images of the per-image residual noise ratio."""
        values = np.asarray(self.ccd_noise["residualNoiseRatio"], dtype=float) if len(self.ccd_noise) else []
        return float(np.nanmedian(values)) if np.isfinite(values).any() else float("nan")

    @property
    def snr50(self) -> float:
        """S/N at 50 % completeness (NaN when the fit failed)."""
        return self.completeness_fit.snr50 if self.completeness_fit else float("nan")

    @property
    def artifacts_per_ccd4k(self) -> float:
        """Artifacts per 4k × 4k CCD-equivalent of usable difference image."""
        return artifacts_per_ccd4k(len(self.artifacts), self.n_usable_pixels)

    @property
    def noise_floor_per_ccd4k(self) -> float:
        """Artifacts per 4k × 4k CCD-equivalent that Gaussian noise alone would give (``n_noise_peaks``)."""
        return artifacts_per_ccd4k(self.n_noise_peaks, self.n_usable_pixels)

    def artifacts_by_cause(self) -> dict[str, float]:
        """Artifact rate per 4k CCD-equivalent for each cause."""
        causes = np.asarray(self.artifacts["cause"]) if len(self.artifacts) else np.zeros(0, str)
        return {c: artifacts_per_ccd4k(int((causes == c).sum()), self.n_usable_pixels) for c in ARTIFACT_CAUSES}

    def summary(self) -> dict:
        """JSON-ready numbers, keys suffixed with ``_<label>``."""
        s = f"_{self.label}" if self.label else ""
        out = {
            f"residual_noise_ratio{s}": self.residual_noise_ratio,
            f"snr50{s}": self.snr50,
            f"artifacts_per_ccd4k{s}": self.artifacts_per_ccd4k,
            f"artifact_fraction{s}": len(self.artifacts) / self.n_detections if self.n_detections else float("nan"),
            f"artifacts_by_cause_per_ccd4k{s}": self.artifacts_by_cause(),
            f"artifact_noise_floor_per_ccd4k{s}": self.noise_floor_per_ccd4k,
            f"n_dia_sources{s}": self.n_detections,
            f"n_injected{s}": len(self.injected),
            f"n_ccds{s}": len(self.ccd_noise),
        }
        if self.completeness_fit is not None:
            out[f"completeness_plateau{s}"] = self.completeness_fit.plateau
            out[f"completeness_width{s}"] = self.completeness_fit.width
        if self.pulls_diasrc is not None:
            out[f"diasrc_flux_bias_highsnr{s}"] = self.pulls_diasrc.bias_highsnr
            out[f"n_diasrc_flux_bias{s}"] = self.pulls_diasrc.n_highsnr
            out[f"diasrc_pull_mean{s}"] = self.pulls_diasrc.mean
            out[f"diasrc_pull_std{s}"] = self.pulls_diasrc.std
            out[f"diasrc_pull_robust_std{s}"] = self.pulls_diasrc.robust_std
        for kind, stats in (("diff", self.pulls_diff), ("sci", self.pulls_sci), ("null", self.pulls_null)):
            if stats is not None:
                out[f"forced_pull_mean_{kind}{s}"] = stats.mean
                out[f"forced_pull_std_{kind}{s}"] = stats.std
                out[f"forced_pull_robust_std_{kind}{s}"] = stats.robust_std
                out[f"forced_pull_clipped_fraction_{kind}{s}"] = stats.n_clipped / stats.n if stats.n else None
                out[f"forced_bias_highsnr_{kind}{s}"] = stats.bias_highsnr
                out[f"n_forced_{kind}{s}"] = stats.n
        if self.association is not None:
            out[f"assoc_purity{s}"] = self.association.purity
            out[f"assoc_completeness{s}"] = self.association.completeness
            out[f"n_assoc_objects{s}"] = self.association.n_objects
            out[f"n_assoc_truth{s}"] = self.association.n_truth
        return out


def _group_rows(keys: np.ndarray) -> dict[int, np.ndarray]:
    """Row indices per distinct key."""
    order = np.argsort(keys, kind="stable")
    unique, starts = np.unique(keys[order], return_index=True)
    return dict(zip(unique.tolist(), np.split(order, starts[1:])))


def _truth_match_ids(ra, dec, truth_objects: Table) -> tuple[np.ndarray, np.ndarray]:
    """Truth row (injected objects first, then any other) of each position within `MATCH_RADIUS`, or -1."""
    types = np.asarray(truth_objects["objectType"]).astype(str)
    injected = np.isin(types, INJECTED_TYPES)
    t_ra = np.asarray(truth_objects["ra"], float)
    t_dec = np.asarray(truth_objects["dec"], float)
    rows = np.full(len(ra), -1, dtype=np.int64)
    for subset in (np.flatnonzero(injected), np.flatnonzero(~injected)):
        todo = rows < 0
        m = match_sky(np.asarray(ra)[todo], np.asarray(dec)[todo], t_ra[subset], t_dec[subset], MATCH_RADIUS)
        found = np.flatnonzero(todo)[m.matched]
        rows[found] = subset[m.index[m.matched]]
    return rows, types


#: Forced-photometry flags that remove a measurement from the pulls.
_FORCED_FLAGS = ("psfFlux_flag", "scienceFlux_flag", "pixelFlags_saturated", "pixelFlags_suspect")


def _flag(table: Table, name: str) -> np.ndarray:
    """Boolean flag column (all False when absent)."""
    return np.asarray(table[name], bool) if name in table.colnames else np.zeros(len(table), bool)


def _forced_pulls(
    catalogs: RunCatalogs,
) -> tuple[PullStats | None, PullStats | None, np.ndarray, np.ndarray, PullStats | None]:
    forced, objects = catalogs.forced, catalogs.dia_objects
    empty = np.zeros(0)
    if not len(forced) or not len(objects):
        return None, None, empty, empty, None
    truth_objects = catalogs.truth_objects
    rows, types = _truth_match_ids(objects["ra"], objects["dec"], truth_objects)
    matched = rows >= 0
    link = Table({"diaObjectId": np.asarray(objects["diaObjectId"], np.int64)[matched],
                  "id": np.asarray(truth_objects["id"], np.int64)[rows[matched]]})
    link = link[np.unique(np.asarray(link["diaObjectId"]), return_index=True)[1]]
    columns = ["diaObjectId", "visit", "detector", "psfFlux", "psfFluxErr", "scienceFlux", "scienceFluxErr"]
    columns += [c for c in _FORCED_FLAGS if c in forced.colnames]
    measured = forced[columns]
    measured = join(measured, link, keys="diaObjectId")
    truth = catalogs.truth_visit["id", "visit", "detector", "objectType", "hostId", "trueFlux", "diffFlux"]
    rows = join(measured, truth, keys=["visit", "detector", "id"])
    if not len(rows):
        return None, None, empty, empty, None
    kind = np.asarray(rows["objectType"]).astype(str)
    injected = np.isin(kind, INJECTED_TYPES)
    # static stars are DIAObjects only through artifacts (mostly near saturation): left out of both
    unsaturated = ~(_flag(rows, "pixelFlags_saturated") | _flag(rows, "pixelFlags_suspect"))
    diff = injected & unsaturated & ~_flag(rows, "psfFlux_flag")
    # science-image PSF fluxes of hosted transients include their host galaxy: left out
    hosted = (kind == "transient") & (np.asarray(rows["hostId"]) >= 0)
    sci = injected & ~hosted & unsaturated & ~_flag(rows, "scienceFlux_flag")

    def pulls(sel, flux, err, true):
        m, e, t = (np.asarray(rows[c], float)[sel] for c in (flux, err, true))
        with np.errstate(invalid="ignore", divide="ignore"):
            values = (m - t) / e
        return pull_statistics(m, e, t), values[np.isfinite(values)]

    stats_diff, values_diff = pulls(diff, "psfFlux", "psfFluxErr", "diffFlux")
    stats_sci, values_sci = pulls(sci, "scienceFlux", "scienceFluxErr", "trueFlux")
    null = diff & (kind == "transient") & (np.asarray(rows["trueFlux"], float) == 0)
    stats_null = pulls(null, "psfFlux", "psfFluxErr", "diffFlux")[0] if null.any() else None
    return stats_diff, stats_sci, values_diff, values_sci, stats_null


def evaluate_run(
    catalogs: RunCatalogs,
    differences: Iterable[tuple[tuple[int, int], Exposure]],
    label: str = "",
    n_maps: int = 8,
    criteria: ArtifactCriteria = ArtifactCriteria(),
    detection_threshold: float = 5.0,
) -> RunQuality:
    """Compute every quality metric of a rerun against its simulation truth.

    Parameters
    ----------
    catalogs : `~lsst.dia.pipe.qa.collect.RunCatalogs`
        The rerun's catalogs, with truth.
    differences : iterable of ``((visit, detector), Exposure)``
        The difference images (e.g. `~lsst.dia.pipe.qa.collect.iter_differences`), consumed once.
    label : `str`
        Name of the run in the summary keys.
    n_maps : `int`
        Noise maps kept for figures.
    criteria : `~lsst.dia.pipe.qa.metrics.ArtifactCriteria`
        Artifact classification thresholds.
    detection_threshold : `float`
        Detection threshold of the run [sigma], for the Gaussian-noise floor of the artifact rate
        (`~lsst.dia.pipe.qa.metrics.gaussian_noise_peak_rate` at each difference image's PSF width).

    Returns
    -------
    quality : `RunQuality`

    Raises
    ------
    ValueError
        If the catalogs carry no truth.
    """
    if not catalogs.has_truth:
        raise ValueError(f"Rerun {catalogs.rerun!r} of {catalogs.repo} has no simulation truth to evaluate against.")
    truth = catalogs.truth_visit
    truth_rows = _group_rows(ccd_key(truth))
    sigma = np.full(len(truth), np.nan)
    usable = np.zeros(len(truth), dtype=bool)
    band_of = {(int(r["visit"]), int(r["detector"])): str(r["band"]) for r in catalogs.ccds}
    noise_rows, maps, shape, n_pixels = [], {}, (0, 0), 0
    n_noise_peaks = 0.0
    for (visit, detector), difference in differences:
        rows = truth_rows.get(int((visit << 20) | detector), np.zeros(0, np.int64))
        noise = difference_noise(difference, truth[rows])
        n_noise_peaks += gaussian_noise_peak_rate(difference.psf_sigma, detection_threshold) * noise.n_usable_pixels
        sigma[rows], usable[rows] = noise.truth_sigma, noise.truth_usable
        noise_rows.append((visit, detector, band_of.get((visit, detector), ""), noise.residual_noise_ratio,
                           noise.n_usable_pixels))
        if len(maps) < n_maps:
            maps[(visit, detector)] = noise.noise_map
        shape = noise.shape
        n_pixels += noise.n_usable_pixels
    ccd_noise = Table(rows=noise_rows, names=["visit", "detector", "band", "residualNoiseRatio", "nUsablePixels"],
                      dtype=[np.int64, np.int64, "U8", np.float64, np.int64])

    # completeness: injected objects with a difference at their position, matched within 1"
    sources = catalogs.dia_sources
    kind = np.asarray(truth["objectType"]).astype(str)
    diff_flux = np.asarray(truth["diffFlux"], float)
    is_injected = np.isin(kind, INJECTED_TYPES) & (diff_flux != 0)
    inj = np.flatnonzero(is_injected & usable)
    n_src = len(sources)
    src_ra = np.asarray(sources["ra"], float) if n_src else np.zeros(0)
    src_dec = np.asarray(sources["dec"], float) if n_src else np.zeros(0)
    src_key = ccd_key(sources) if n_src else np.zeros(0, np.int64)
    detected = match_sky(truth["ra"][inj], truth["dec"][inj], src_ra, src_dec, MATCH_RADIUS,
                         ccd_key(truth[inj]), src_key).matched
    with np.errstate(invalid="ignore", divide="ignore"):
        true_snr = np.abs(diff_flux) / sigma
    injected = truth[inj]["id", "visit", "detector", "objectType", "diffFlux"]
    injected["band"] = [band_of.get((int(v), int(d)), "") for v, d in zip(injected["visit"], injected["detector"])]
    injected["trueSnr"] = true_snr[inj]
    injected["diffMag"] = mag_from_flux(np.abs(diff_flux[inj]))
    injected["detected"] = detected
    fit, fit_error = None, ""
    try:
        fit = fit_completeness(true_snr[inj], detected)
    except CompletenessFitError as err:
        fit_error = str(err)

    # artifacts: detections matching no injected object (any epoch flux != 0) of their visit/detector
    all_inj = np.flatnonzero(is_injected)
    to_truth = match_sky(src_ra, src_dec, truth["ra"][all_inj], truth["dec"][all_inj], MATCH_RADIUS,
                         src_key, ccd_key(truth[all_inj]))
    source_truth_row = np.where(to_truth.matched, all_inj[np.clip(to_truth.index, 0, None)], -1)
    is_artifact = source_truth_row < 0
    artifacts = Table()
    if n_src:
        truth_hlr = join(truth["id", "ra", "dec", "visit", "detector", "objectType", "trueFlux", "templateFlux"],
                         catalogs.truth_objects["id", "halfLightRadius"], keys="id", join_type="left")
        causes = classify_artifacts(sources[is_artifact], truth_hlr, shape, criteria)
        artifacts = sources[is_artifact]["diaSourceId", "visit", "detector", "band", "ra", "dec", "snr"]
        artifacts["cause"] = causes

    # DIASource flux pulls and bias where detection is complete
    matched = np.flatnonzero(~is_artifact)
    good = matched[~np.asarray(sources["psfFlux_flag"], bool)[matched]] if n_src else matched
    good = good[true_snr[source_truth_row[good]] > DIASOURCE_MIN_SNR]
    pulls_diasrc = None
    if good.size:
        pulls_diasrc = pull_statistics(np.asarray(sources["psfFlux"], float)[good],
                                       np.asarray(sources["psfFluxErr"], float)[good],
                                       diff_flux[source_truth_row[good]], high_snr=DIASOURCE_MIN_SNR)

    # association: DIAObject of each associated DIASource vs its matched injected object
    association = None
    if len(catalogs.object_sources) and n_src:
        ids = np.asarray(sources["diaSourceId"], np.int64)
        order = np.argsort(ids)
        pos = np.searchsorted(ids[order], np.asarray(catalogs.object_sources["diaSourceId"], np.int64))
        pos = np.clip(pos, 0, len(ids) - 1)
        found = ids[order][pos] == np.asarray(catalogs.object_sources["diaSourceId"])
        src_rows = order[pos[found]]
        truth_ids = np.where(is_artifact[src_rows], -1,
                             np.asarray(truth["id"], np.int64)[np.clip(source_truth_row[src_rows], 0, None)])
        association = association_quality(np.asarray(catalogs.object_sources["diaObjectId"])[found], truth_ids)

    pulls_diff, pulls_sci, values_diff, values_sci, pulls_null = _forced_pulls(catalogs)
    return RunQuality(label, ccd_noise, maps, injected, fit, fit_error, artifacts, n_src, n_pixels, pulls_diasrc,
                      pulls_diff, pulls_sci, values_diff, values_sci, association, pulls_null, n_noise_peaks)
