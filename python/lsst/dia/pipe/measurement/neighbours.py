"""Static neighbours of forced-photometry targets on a science image.

Forced PSF photometry of a DIAObject on the *science* image measures everything under its PSF: a star or galaxy
a few arcseconds away that is not itself a DIAObject (it never varied) adds its wing to the fit and biases the
flux up (on the difference image it has been subtracted). Detecting the science image's own sources and fitting
those near a target simultaneously with it (`forced_psf_photometry` fits overlapping positions jointly) removes
that bias.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..detection import DetectionConfig, detect_sources
from ..detection.config import mask_bits
from ..exposure import Exposure
from .centroid import fit_psf_centroids
from .psf_stamps import PsfStampSampler

__all__ = ["science_neighbours"]


def science_neighbours(
    science: Exposure,
    x: np.ndarray,
    y: np.ndarray,
    threshold: float = 5.0,
    min_separation: float = 2.0,
    max_distance: float = 20.0,
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
        A detection closer than this to any target is that target, not a neighbour [pixels].
    max_distance : `float`
        Only detections within this distance of some target are returned [pixels].

    Returns
    -------
    neighbour_x, neighbour_y : `numpy.ndarray`
        PSF-fit centroids of the neighbours (their detection peaks where the fit fails) [pixels]: a bright
        neighbour modelled half a pixel off would leave a residual worse than the wing it is meant to remove.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    empty = np.zeros(0), np.zeros(0)
    if x.size == 0:
        return empty
    config = DetectionConfig()
    config.thresholdValue = threshold
    config.thresholdPolarity = "positive"
    config.doMeasureSystematics = False
    peaks = detect_sources(science, config).peaks
    if len(peaks) == 0:
        return empty
    px = np.asarray(peaks["x"], float)
    py = np.asarray(peaks["y"], float)
    tree = cKDTree(np.column_stack([x, y]))
    distance, _ = tree.query(np.column_stack([px, py]), k=1)
    keep = (distance >= min_separation) & (distance <= max_distance)
    px, py = px[keep], py[keep]
    if px.size == 0:
        return px, py
    sampler = PsfStampSampler(science.psf, science.shape)
    centroids = fit_psf_centroids(science, px, py, sampler, sampler.stamp_size(3.0), mask_bits(config.badMaskPlanes))
    ok = ~centroids.flag
    px, py = np.where(ok, centroids.x, px), np.where(ok, centroids.y, py)
    # a detection that is really part of a target (its wing, or a peak the centroid walked onto it) would split
    # the target's flux
    distance, _ = tree.query(np.column_stack([px, py]), k=1)
    keep = distance >= min_separation
    return px[keep], py[keep]
