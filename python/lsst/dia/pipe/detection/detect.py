"""Detection of positive and negative sources on a difference image."""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.table import Table

from ..exposure import Exposure
from ..masks import MaskBit, planes_set
from .config import DetectionConfig, mask_bits
from .footprints import Footprints, find_footprints, pair_dipoles, truncated_peaks
from .matched_filter import (
    PsfCorrelator,
    filtered_noise_variance,
    robust_sigma,
    significance_from,
    usable_planes,
)
from .systematics import measure_systematics, systematic_variance

__all__ = ["DetectionResult", "ScoreShapeError", "Systematics", "detect_sources", "PEAK_COLUMNS"]

#: Columns of `DetectionResult.peaks`: name -> (dtype, description).
PEAK_COLUMNS: dict[str, tuple[str, str]] = {
    "peak_id": ("int64", "Row index of the peak (positive footprints first, then negative)."),
    "x": ("int64", "Column of the significance extremum [pixel]."),
    "y": ("int64", "Row of the significance extremum [pixel]."),
    "significance": ("float32", "Signed significance at the peak [sigma]."),
    "polarity": ("int8", "+1 for a positive footprint, -1 for a negative one."),
    "footprint_id": ("int32", "Label of the footprint in positive_labels or negative_labels (by polarity)."),
    "npix": ("int64", "Number of pixels in the grown footprint."),
    "bbox_x_min": ("int64", "Footprint bounding box, first column [pixel]."),
    "bbox_y_min": ("int64", "Footprint bounding box, first row [pixel]."),
    "bbox_x_max": ("int64", "Footprint bounding box, last column (inclusive) [pixel]."),
    "bbox_y_max": ("int64", "Footprint bounding box, last row (inclusive) [pixel]."),
    "is_dipole_candidate": ("bool", "Footprint was merged with one of the other polarity into a dipole."),
    "dipole_partner": ("int64", "peak_id of the other lobe of a dipole candidate, -1 otherwise."),
}


class ScoreShapeError(ValueError):
    """The score image does not have the shape of the difference image."""

    def __init__(self, score_shape: tuple[int, ...], image_shape: tuple[int, ...]) -> None:
        self.score_shape = score_shape
        self.image_shape = image_shape
        super().__init__(f"Score or model image shape {score_shape} differs from difference image shape {image_shape}.")


@dataclasses.dataclass(frozen=True)
class Systematics:
    """Systematic-noise terms used by detection (see `lsst.dia.pipe.detection.systematics`).

    Attributes
    ----------
    flux_fraction : `float`
        Fractional flux mismatch ``ε``.
    registration_sigma : `float`
        Per-axis registration error ``σ_r`` [arcsec].
    n_sources : `int`
        Template sources they were measured on (0: the configured values).
    """

    flux_fraction: float
    registration_sigma: float
    n_sources: int


@dataclasses.dataclass
class DetectionResult:
    """Detections on a difference image.

    Attributes
    ----------
    peaks : `astropy.table.Table`
        One row per footprint, columns `PEAK_COLUMNS`.
    positive_labels, negative_labels : `numpy.ndarray`
        ``(ny, nx)`` int32 label images of the grown positive / negative footprints (0: none).
    mask : `numpy.ndarray`
        Copy of the difference mask with ``DETECTED`` / ``DETECTED_NEGATIVE`` set on footprint pixels.
    significance : `numpy.ndarray`
        ``(ny, nx)`` float32 image that was thresholded (matched-filter significance or the score) [sigma].
    threshold : `float`
        Threshold applied to ``|significance|`` [sigma].
    systematics : `Systematics`
        Systematic-noise terms included in ``significance`` (zeros when no model was given).
    """

    peaks: Table
    positive_labels: np.ndarray
    negative_labels: np.ndarray
    mask: np.ndarray
    significance: np.ndarray
    threshold: float
    systematics: Systematics

    def __len__(self) -> int:
        return len(self.peaks)


def _systematics(
    numerator: np.ndarray, noise_var: np.ndarray, model_filtered: np.ndarray, pixel_scale: float,
    config: DetectionConfig,
) -> Systematics:
    """The configured systematics, raised to the values measured on this image when enough sources allow."""
    floors = Systematics(config.systematicFluxFraction, config.registrationSigma, 0)
    if not config.doMeasureSystematics:
        return floors
    eps, sigma_pix, n = measure_systematics(numerator, noise_var, model_filtered, config.systematicsMinSnr)
    if n < config.systematicsMinSources:
        return floors
    return Systematics(max(floors.flux_fraction, eps), max(floors.registration_sigma, sigma_pix * pixel_scale), n)


def _peak_rows(fp: Footprints, polarity: int) -> dict[str, np.ndarray]:
    return {
        "x": fp.peak_x,
        "y": fp.peak_y,
        "significance": fp.peak_significance,
        "polarity": np.full(fp.count, polarity, np.int8),
        "footprint_id": np.arange(1, fp.count + 1, dtype=np.int32),
        "npix": fp.npix,
        "bbox_x_min": fp.bbox[:, 0],
        "bbox_y_min": fp.bbox[:, 1],
        "bbox_x_max": fp.bbox[:, 2],
        "bbox_y_max": fp.bbox[:, 3],
    }


def _empty_footprints(shape: tuple[int, int]) -> Footprints:
    none = np.zeros(0, np.int64)
    return Footprints(
        np.zeros(shape, np.int32), none, none, np.zeros(0, np.float32), none, np.zeros((0, 4), np.int64)
    )


def detect_sources(
    difference: Exposure,
    config: DetectionConfig | None = None,
    score: np.ndarray | None = None,
    model: np.ndarray | None = None,
) -> DetectionResult:
    """Detect positive and negative point sources on a difference image.

    Parameters
    ----------
    difference : `~lsst.dia.pipe.exposure.Exposure`
        Difference image [nJy] with variance [nJy²], mask and PSF (ideally decorrelated).
    config : `DetectionConfig`, optional
        Detection configuration (defaults if omitted).
    score : `numpy.ndarray`, optional
        A significance image in sigma (e.g. the ZOGY ``S_corr``); thresholded directly instead of the
        matched filter.
    model : `numpy.ndarray`, optional
        ``(ny, nx)`` template as subtracted (the PSF-matched template) [nJy]. With it, the significance includes
        the systematic noise of bright sources (``config.systematicFluxFraction``, ``config.registrationSigma``;
        `lsst.dia.pipe.detection.systematics`).

    Returns
    -------
    result : `DetectionResult`

    Raises
    ------
    ScoreShapeError
        If ``score`` or ``model`` is given with a shape other than the image's.

    Notes
    -----
    Pixels with any ``config.badMaskPlanes`` bit (or non-finite values) carry no weight in the matched filter and
    are never above threshold. Each grown footprint has one peak (its significance extremum); with
    ``config.doRemoveTruncatedPeaks``, footprints whose peak touches the ``DETECTION_EDGE`` border while the
    unmasked significance keeps rising into it are dropped (`truncated_peaks`). Positive and
    negative footprints closer than ``config.dipoleMergeDistance`` are paired as dipole candidates
    (mutual nearest neighbours). A score image is scaled by ``sqrt(V / (V + V_sys))`` when ``model`` is given.
    """
    config = config if config is not None else DetectionConfig()
    shape = difference.shape
    for plane in (score, model):
        if plane is not None and plane.shape != shape:
            raise ScoreShapeError(plane.shape, shape)
    usable = ~planes_set(difference.mask, mask_bits(config.badMaskPlanes))
    usable &= np.isfinite(difference.image) & np.isfinite(difference.variance)
    with_systematics = model is not None and (
        config.doMeasureSystematics or config.systematicFluxFraction > 0 or config.registrationSigma > 0
    )
    correlator, noise_var = None, None
    if score is None or with_systematics:
        image, variance = usable_planes(difference.image, difference.variance, usable)
        correlator = PsfCorrelator(difference.psf, shape, config.tileSize, config.fftWorkers)
        noise_var = filtered_noise_variance(correlator, variance)
        numerator = correlator.correlate(image)
    if score is not None:
        significance = np.where(usable & np.isfinite(score), score, 0).astype(np.float32)
    else:
        significance = significance_from(numerator, noise_var)
    # Peaks are located on the statistical significance: near a bright source the corrected one flattens into a
    # plateau (signal and systematic noise both scale with the source) with no meaningful maximum.
    peak_image = significance
    systematics = Systematics(0.0, 0.0, 0)
    if with_systematics:
        model_filtered = correlator.correlate(np.where(usable & np.isfinite(model), model, np.float32(0)))
        systematics = _systematics(numerator, noise_var, model_filtered, difference.pixel_scale_arcsec, config)
        sys_var = systematic_variance(
            model_filtered, systematics.flux_fraction, systematics.registration_sigma / difference.pixel_scale_arcsec
        )
        peak_image = significance.copy()
        significance *= significance_from(np.sqrt(noise_var), noise_var + sys_var)
    if config.doRescaleSignificance:
        sample = significance[usable & (significance != 0)]
        step = max(1, sample.size // 1_000_000)
        scale = robust_sigma(sample[::step])
        if scale > 0:
            significance /= np.float32(scale)

    threshold = float(config.thresholdValue)
    detect_pos = config.thresholdPolarity in ("both", "positive")
    detect_neg = config.thresholdPolarity in ("both", "negative")
    pos = (
        find_footprints(peak_image, usable & (significance >= threshold), config.nGrow, +1)
        if detect_pos
        else _empty_footprints(shape)
    )
    neg = (
        find_footprints(peak_image, usable & (significance <= -threshold), config.nGrow, -1)
        if detect_neg
        else _empty_footprints(shape)
    )
    if config.doRemoveTruncatedPeaks:
        # The score as computed, also inside the border (NaN never compares as more significant).
        raw = score if score is not None else peak_image
        border = planes_set(difference.mask, int(MaskBit.DETECTION_EDGE))
        pos = pos.select(~truncated_peaks(pos, raw, border, +1))
        neg = neg.select(~truncated_peaks(neg, raw, border, -1))
    if peak_image is not significance:
        for fp in (pos, neg):
            fp.peak_significance = significance[fp.peak_y, fp.peak_x].astype(np.float32)
    pair_pos, pair_neg = pair_dipoles(pos, neg, config.dipoleMergeDistance)

    pos_rows, neg_rows = _peak_rows(pos, 1), _peak_rows(neg, -1)
    rows = {name: np.concatenate([pos_rows[name], neg_rows[name]]) for name in pos_rows}
    n = pos.count + neg.count
    partner = np.full(n, -1, np.int64)
    partner[pair_pos] = pair_neg + pos.count
    partner[pair_neg + pos.count] = pair_pos
    peaks = Table()
    peaks["peak_id"] = np.arange(n, dtype=np.int64)
    for name, values in rows.items():
        peaks[name] = values
    peaks["is_dipole_candidate"] = partner >= 0
    peaks["dipole_partner"] = partner
    for name, (dtype, doc) in PEAK_COLUMNS.items():
        peaks[name] = peaks[name].astype(dtype)
        peaks[name].description = doc

    mask = difference.mask.copy()
    mask[pos.labels > 0] |= np.uint32(MaskBit.DETECTED)
    mask[neg.labels > 0] |= np.uint32(MaskBit.DETECTED_NEGATIVE)
    return DetectionResult(
        peaks=peaks,
        positive_labels=pos.labels,
        negative_labels=neg.labels,
        mask=mask,
        significance=significance,
        threshold=threshold,
        systematics=systematics,
    )
