"""Typed errors of image ingest: each carries its context and reads as one clear line."""

from __future__ import annotations

__all__ = [
    "IngestError",
    "MissingWcsError",
    "UnsupportedProjectionError",
    "WcsConversionError",
    "PlaneShapeMismatchError",
    "MissingZeroPointError",
    "MissingMetadataError",
    "InsufficientPsfStarsError",
    "NoTemplateOverlapError",
]


class IngestError(Exception):
    """Base class of every per-file ingest failure (the file is skipped, the others are ingested)."""


class MissingWcsError(IngestError):
    """The image header has no celestial WCS."""

    def __init__(self, source: str) -> None:
        super().__init__(f"{source}: no celestial WCS (CTYPE1/CTYPE2) in the header.")
        self.source = source


class UnsupportedProjectionError(IngestError):
    """The header WCS uses a projection ingest cannot represent (only TAN, TAN-SIP and TPV are)."""

    def __init__(self, source: str, ctype: tuple[str, str]) -> None:
        super().__init__(
            f"{source}: unsupported projection {ctype[0]!r}/{ctype[1]!r} (supported: TAN, TAN-SIP, TPV)."
        )
        self.source = source
        self.ctype = ctype


class WcsConversionError(IngestError):
    """A TPV distortion could not be represented as TAN-SIP within the tolerance."""

    def __init__(self, max_residual_px: float, tolerance_px: float, max_order: int) -> None:
        super().__init__(
            f"TPV -> TAN-SIP fit residual {max_residual_px:.4f} px exceeds {tolerance_px} px "
            f"at SIP order {max_order}."
        )
        self.max_residual_px = max_residual_px
        self.tolerance_px = tolerance_px
        self.max_order = max_order


class PlaneShapeMismatchError(IngestError):
    """Image, variance/weight and mask planes of one image have different shapes."""

    def __init__(self, source: str, shapes: dict[str, tuple[int, ...]]) -> None:
        detail = ", ".join(f"{k} {v}" for k, v in shapes.items())
        super().__init__(f"{source}: planes have different shapes: {detail}.")
        self.source = source
        self.shapes = shapes


class MissingZeroPointError(IngestError):
    """No photometric zero point: not in the header keywords searched and none given as an option."""

    def __init__(self, source: str, keywords: tuple[str, ...]) -> None:
        super().__init__(
            f"{source}: no photometric zero point (header keywords {', '.join(keywords) or 'none'} absent; "
            "give --zeropoint or --calibrate-to-template)."
        )
        self.source = source
        self.keywords = keywords


class MissingMetadataError(IngestError):
    """A header value ingest needs (time, filter, …) is missing or unparseable."""

    def __init__(self, source: str, what: str, keywords: tuple[str, ...]) -> None:
        super().__init__(f"{source}: no {what} (looked for header keywords {', '.join(keywords)}).")
        self.source = source
        self.what = what
        self.keywords = keywords


class InsufficientPsfStarsError(IngestError):
    """Too few isolated, unsaturated stars to estimate a PSF from the image."""

    def __init__(self, n_stars: int, n_required: int, n_candidates: int | None = None) -> None:
        extra = f" (of {n_candidates} peaks)" if n_candidates is not None else ""
        super().__init__(
            f"{n_stars} usable PSF star(s){extra}, {n_required} required; give a PSFEx file with --psf."
        )
        self.n_stars = n_stars
        self.n_required = n_required
        self.n_candidates = n_candidates


class NoTemplateOverlapError(IngestError):
    """A relative calibration needs a same-band template overlapping the image, and there is none."""

    def __init__(self, source: str, band: str, n_matched: int = 0, n_required: int = 0) -> None:
        if n_required:
            msg = f"{source}: only {n_matched} stars matched the {band}-band templates, {n_required} required."
        else:
            msg = f"{source}: no calibrated {band}-band template overlaps the image."
        super().__init__(msg)
        self.source = source
        self.band = band
        self.n_matched = n_matched
        self.n_required = n_required
