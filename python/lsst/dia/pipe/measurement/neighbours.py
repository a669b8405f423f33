"""Static neighbours of forced-photometry targets on a science image.

Forced PSF photometry of a DIAObject on the *science* image measures everything under its PSF: a star or galaxy
a few arcseconds away that is not itself a DIAObject (it never varied) adds its wing to the fit and biases the
flux up (on the difference image it has been subtracted). Detecting the science image's own sources and fitting
those near a target simultaneously with it (`forced_psf_photometry` fits overlapping positions jointly) removes
that bias.

A neighbour one or two PSF widths from a brighter target shares the target's detection footprint, and a footprint
has one peak: such neighbours are found in a second pass, on the science image minus the point-source model of
the targets and of the neighbours found so far (with a systematic-noise term proportional to that model, so that
imperfect subtractions of bright stars do not become neighbours).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial import cKDTree

from ..detection import DetectionConfig, detect_sources
from ..detection.config import mask_bits
from ..exposure import Exposure
from .centroid import fit_psf_centroids
from .config import ForcedPhotometryConfig
from .forced import forced_psf_photometry
from .psf_stamps import PsfStampSampler
from .render import render_point_sources

__all__ = ["science_neighbours"]


#: Fractional PSF-model error of a subtracted star, as systematic noise of the second-pass detection.
MODEL_ERROR_FRACTION = 0.05


def _new_peaks(
    science: Exposure,
    model: np.ndarray | None,
    targets: cKDTree,
    known: cKDTree | None,
    threshold: float,
    min_separation: float,
    max_distance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the detections of ``science`` near the targets and away from targets and known neighbours."""
    config = DetectionConfig()
    config.thresholdValue = threshold
    config.thresholdPolarity = "positive"
    config.doMeasureSystematics = False
    config.systematicFluxFraction = MODEL_ERROR_FRACTION if model is not None else 0.0
    peaks = detect_sources(science, config, model=model).peaks
    px = np.asarray(peaks["x"], float)
    py = np.asarray(peaks["y"], float)

    def away(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each point is at least ``min_separation`` from every target and known neighbour, and its
        distance to the nearest target."""
        points = np.column_stack([px, py])
        distance, _ = targets.query(points, k=1)
        keep = distance >= min_separation
        if known is not None:
            keep &= known.query(points, k=1)[0] >= min_separation
        return keep, distance

    keep, distance = away(px, py)
    keep &= distance <= max_distance
    px, py = px[keep], py[keep]
    if px.size == 0:
        return px, py
    sampler = PsfStampSampler(science.psf, science.shape)
    centroids = fit_psf_centroids(science, px, py, sampler, sampler.stamp_size(3.0), mask_bits(config.badMaskPlanes))
    ok = ~centroids.flag
    px, py = np.where(ok, centroids.x, px), np.where(ok, centroids.y, py)
    # a detection that is really part of a target (its wing, or a peak the centroid walked onto it) would split
    # the target's flux
    keep, _ = away(px, py)
    return px[keep], py[keep]


def science_neighbours(
    science: Exposure,
    x: np.ndarray,
    y: np.ndarray,
    threshold: float = 5.0,
    min_separation: float = 2.0,
    max_distance: float = 20.0,
    passes: int = 2,
    config: ForcedPhotometryConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sources detected on the science image near (but not on) the target positions.

    Parameters
    ----------
    science : `~lsst.dia.pipe.exposure.Exposure`
        Calibrated science image [nJy] with its PSF.
    x, y : `numpy.ndarray`
        Target positions [pixels].
    threshold : `float`
        Detection threshold on the matched-filter significance [sigma] (positive sources only).
    min_separation : `float`
        A detection closer than this to any target (or to a neighbour already found) is that source, not a new
        neighbour [pixels].
    max_distance : `float`
        Only detections within this distance of some target are returned [pixels].
    passes : `int`
        Detection passes; every pass after the first looks at the science image minus the PSF model of the
        targets and of the neighbours found so far (fluxes from a joint forced fit).
    config : `ForcedPhotometryConfig`, optional
        Forced-photometry settings of the joint fits between passes (defaults if omitted).

    Returns
    -------
    neighbour_x, neighbour_y : `numpy.ndarray`
        PSF-fit centroids of the neighbours (their detection peaks where the fit fails) [pixels]: a bright
        neighbour modelled half a pixel off would leave a residual worse than the wing it is meant to remove.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    found_x, found_y = np.zeros(0), np.zeros(0)
    if x.size == 0:
        return found_x, found_y
    targets = cKDTree(np.column_stack([x, y]))
    image, model = science, None
    for n in range(passes):
        known = cKDTree(np.column_stack([found_x, found_y])) if found_x.size else None
        px, py = _new_peaks(image, model, targets, known, threshold, min_separation, max_distance)
        if n and px.size == 0:
            break
        found_x, found_y = np.r_[found_x, px], np.r_[found_y, py]
        if n + 1 < passes:
            all_x, all_y = np.r_[x, found_x], np.r_[y, found_y]
            fit = forced_psf_photometry(science, all_x, all_y, config)
            flux = np.nan_to_num(np.asarray(fit["psfFlux"], float))
            model = render_point_sources(science.shape, science.psf, all_x, all_y, flux)
            image = dataclasses.replace(science, image=(science.image - model).astype(np.float32))
    return found_x, found_y
