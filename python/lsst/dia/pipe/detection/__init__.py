"""Detection on difference images: matched-filter significance, footprints, dipole candidates.

Public API
----------
- `detect_sources` (difference `Exposure`, `DetectionConfig`, optional score image) -> `DetectionResult`
- `DetectionConfig`: pex_config fields (nested by tasks as ``config.detection``)
- `DetectionResult`: peak table (`PEAK_COLUMNS`), footprint label images, mask with DETECTED bits
- `matched_filter_significance`: the PSF-correlated significance image on its own
- `mask_bits`: OR of MaskBit names (e.g. a config's ``badMaskPlanes``)
- `ScoreShapeError`
"""

from .config import DetectionConfig, mask_bits
from .detect import PEAK_COLUMNS, DetectionResult, ScoreShapeError, detect_sources
from .matched_filter import matched_filter_significance, robust_sigma

__all__ = [
    "DetectionConfig",
    "DetectionResult",
    "PEAK_COLUMNS",
    "ScoreShapeError",
    "detect_sources",
    "mask_bits",
    "matched_filter_significance",
    "robust_sigma",
]
